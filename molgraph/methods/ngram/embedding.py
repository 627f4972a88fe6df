"""The N-gram graph estimator (Liu, Demirel, Liang, NeurIPS 2019): unsupervised molecule vectors.

Flow, for ``NGramGraph().fit(train_smiles).transform(smiles)``:

1. featurize: SMILES -> atom multi-hot rows ``X`` (the ``ngram`` atom preset, 39 columns) and
   bonds as ``edge_index`` (:meth:`NGramGraph.featurize`; bad molecules and molecules over
   ``max_atoms`` become rejects naming the row and the reason);
2. fit (:meth:`NGramGraph.fit_graphs`): learn ``W`` (``(39, r)``) with the CBoW model of
   :class:`molgraph.methods.ngram.walks.CBoWVertexEmbedding` on the *training* molecules' atoms only, or
   keep the untrained random ``W`` (``vertex_embedding="random"``, the ablation);
3. transform (:meth:`NGramGraph.transform_graphs`): ``F = X W``, walk sums
   :func:`molgraph.methods.ngram.walks.ngram_walk_sums`, output ``concat(f_1..f_T)``, ``(N, T * r)``.

The fitted estimator saves to one ``.npz`` (``W`` plus a JSON config string) that loads with
``allow_pickle=False``. Calling it on molecules (``ngram(smiles)``) is the same protocol as
:class:`~molgraph.featurizers.MorganFingerprint`, so it can serve as a molecule-level featurizer.
The features are unnormalised sums whose scale grows with ``k``: fine for trees, standardise
them before a linear model or an MLP head.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal, NamedTuple, Sequence

import numpy as np
import torch
from rdkit import Chem

from molgraph.chem import MoleculeError
from molgraph.data.collated import CollatedGraphs
from molgraph.data.sources import atomic_output
from molgraph.featurizers.atom import AtomFeaturizer
from molgraph.featurizers.batch import Reject, iter_featurize
from molgraph.featurizers.bond import BondFeaturizer
from molgraph.featurizers.categorical import onehot_layout
from molgraph.featurizers.graph import MolGraphFeaturizer
from molgraph.methods.ngram.walks import CBoWVertexEmbedding, neighbour_sum, ngram_walk_sums

__all__ = ["NGramEmbedding", "NGramGraph", "NGramGraphConfig", "ngram_graph_featurizer", "segment_targets"]

FORMAT = "molgraph.ngram_graph/1"
VertexEmbedding = Literal["cbow", "random"]


def ngram_graph_featurizer() -> MolGraphFeaturizer:
    """Atom rows of the ``ngram`` preset and the bonds' ``edge_index``; no bond features (the
    method does not use them) and no 3D positions."""
    return MolGraphFeaturizer(AtomFeaturizer.ngram(), BondFeaturizer([], encoding="onehot"), positions=False)


def segment_targets(x: torch.Tensor, atom_featurizer: AtomFeaturizer) -> tuple[torch.Tensor, list[int]]:
    """Class index of every atom in every segment of its one-hot vector (the CBoW targets).

    Args:
        x: ``(N, D)`` one-hot atom rows made by ``atom_featurizer``.

    Returns:
        ``(N, S)`` int64 classes (a 0/1 flag's class is its value) and the class count per segment.
    """
    if atom_featurizer.encoding != "onehot" or atom_featurizer.scalars:
        raise ValueError("the CBoW targets need a one-hot atom featurizer without scalar columns")
    offsets, _ = onehot_layout(atom_featurizer.features)
    columns, classes = [], []
    for off, feat in zip(offsets.tolist(), atom_featurizer.features):
        if feat.is_bool:
            columns.append(x[:, off].long())
            classes.append(2)
        else:
            columns.append(x[:, off : off + feat.cardinality].argmax(dim=1))
            classes.append(feat.cardinality)
    return torch.stack(columns, dim=1), classes


@dataclass
class NGramGraphConfig:
    """Settings of :class:`NGramGraph` (defaults: the reference code's).

    Attributes:
        dim: ``r``, vertex-embedding width.
        n_grams: ``T``, longest walk in vertices; the output has ``T * r`` columns.
        vertex_embedding: ``"cbow"`` (learn ``W``) or ``"random"`` (keep the seeded initial
            ``W`` untrained: the ablation that shows what CBoW adds).
        epochs: CBoW passes over the training atoms; the epoch with the lowest mean training
            loss gives ``W``.
        batch_size: atoms per CBoW step.
        max_steps: stop CBoW after this many optimizer steps in all (``None``: no cap). The
            reference trains 100 epochs whatever the data size; on a CPU budget a step cap
            bounds the cost on large training sets (the epoch in progress is scored on the
            atoms it has seen).
        lr, weight_decay: Adam's.
        head_hidden_dim: hidden width of each segment's softmax head (discarded after training).
        self_loops: walk on ``A + I`` (off in the NeurIPS method).
        max_atoms: molecules with more heavy atoms are rejected (the paper drops them: 55, or
            100 for ClinTox and HIV); ``None`` keeps all.
        seed: seeds ``W``'s initialisation and the CBoW batch order.
        threads: torch threads while fitting and transforming (``None``: leave torch's setting).
            Default 1: CBoW steps are ~100 tiny ops each, where intra-op threads only add
            synchronisation (measured 40x slower with 2 threads on a busy 2-core machine);
            parallelise across folds or molecules instead.
    """

    dim: int = 100
    n_grams: int = 6
    vertex_embedding: VertexEmbedding = "cbow"
    epochs: int = 100
    batch_size: int = 128
    max_steps: int | None = None
    lr: float = 3e-3
    weight_decay: float = 1e-4
    head_hidden_dim: int = 20
    self_loops: bool = False
    max_atoms: int | None = None
    seed: int = 0
    threads: int | None = 1

    def __post_init__(self) -> None:
        if self.vertex_embedding not in ("cbow", "random"):
            raise ValueError(f"vertex_embedding must be 'cbow' or 'random', got {self.vertex_embedding!r}")
        for name in ("dim", "n_grams", "batch_size", "head_hidden_dim"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or None, got {self.max_steps}")
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")
        if self.max_atoms is not None and self.max_atoms < 1:
            raise ValueError(f"max_atoms must be >= 1 or None, got {self.max_atoms}")

    def to_config(self) -> dict[str, Any]:
        return {"type": "NGramGraphConfig", **dataclasses.asdict(self)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "NGramGraphConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - known - {"type"})
        if unknown:
            raise ValueError(f"unknown NGramGraphConfig keys {unknown}")
        return cls(**{k: v for k, v in config.items() if k in known})


class NGramEmbedding(NamedTuple):
    """Embeddings of the molecules that could be embedded, with the others' reasons.

    Attributes:
        embeddings: ``(n_ok, T * r)`` float32, in input order.
        indices: ``(n_ok,)`` input position of each row.
        rejects: the molecules left out (unparsable, or over ``max_atoms``).
    """

    embeddings: np.ndarray
    indices: np.ndarray
    rejects: list[Reject]


class _Threads:
    """Sets torch's intra-op thread count for a block, then restores it."""

    def __init__(self, n: int | None):
        self.n, self.old = n, torch.get_num_threads()

    def __enter__(self) -> None:
        if self.n:
            torch.set_num_threads(int(self.n))

    def __exit__(self, *exc: Any) -> None:
        torch.set_num_threads(self.old)


def _global_edges(graphs: CollatedGraphs) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch-global ``edge_index`` and the ``(N,)`` graph index of every atom."""
    counts = graphs.num_atoms
    batch = torch.repeat_interleave(torch.arange(len(graphs)), counts)
    edge_graph = torch.repeat_interleave(torch.arange(len(graphs)), graphs.edge_ptr[1:] - graphs.edge_ptr[:-1])
    return graphs.edge_index + graphs.atom_ptr[edge_graph], batch


class NGramGraph:
    """N-gram graph embedding: ``fit`` learns ``W`` on training molecules, ``transform`` embeds.

    Args:
        config: the settings (:class:`NGramGraphConfig`); keyword arguments override its fields,
            e.g. ``NGramGraph(dim=50, seed=1)``.
        featurizer: graph featurizer (default :func:`ngram_graph_featurizer`); its atom rows must
            be one-hot without scalars (the CBoW targets are read from the segments).
        W: a ``(D, r)`` matrix to start from as fitted (e.g. from another tool).

    Attributes:
        W: ``(D, r)`` float32 vertex-embedding matrix once fitted, else ``None``.
        fit_info: what the last fit saw and reached (molecules, atoms, best epoch and loss,
            per-segment accuracy on the training atoms, seconds).
    """

    def __init__(self, config: NGramGraphConfig | None = None, *, featurizer: MolGraphFeaturizer | None = None,
                 W: np.ndarray | None = None, **overrides: Any):
        base = config or NGramGraphConfig()
        self.config = dataclasses.replace(base, **overrides) if overrides else base
        self.featurizer = featurizer or ngram_graph_featurizer()
        self.W = None if W is None else np.asarray(W, dtype=np.float32)
        self.fit_info = {}
        if self.W is not None and self.W.shape != (self.in_dim, self.config.dim):
            raise ValueError(f"W must be {(self.in_dim, self.config.dim)}, got {self.W.shape}")

    # -- description ----------------------------------------------------------------------------
    @property
    def in_dim(self) -> int:
        """``D``, width of the atom vectors."""
        return self.featurizer.atom_dim

    @property
    def out_dim(self) -> int:
        """``T * r``, width of the output."""
        return self.config.n_grams * self.config.dim

    @property
    def feature_names(self) -> list[str]:
        """``ngram{k}:{j}`` for walk length ``k`` (vertices) and embedding column ``j``."""
        return [f"ngram{k}:{j}" for k in range(1, self.config.n_grams + 1) for j in range(self.config.dim)]

    @property
    def is_fitted(self) -> bool:
        return self.W is not None

    def to_config(self) -> dict[str, Any]:
        """Settings and featurizer (not ``W``: that is in :meth:`save`'s file)."""
        return {"type": "NGramGraph", "config": self.config.to_config(), "featurizer": self.featurizer.to_config()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "NGramGraph":
        if config.get("type", "NGramGraph") != "NGramGraph":
            raise ValueError(f"config is for {config.get('type')}, not NGramGraph")
        return cls(NGramGraphConfig.from_config(config["config"]),
                   featurizer=MolGraphFeaturizer.from_config(config["featurizer"]))

    def __repr__(self) -> str:
        c = self.config
        state = "fitted" if self.is_fitted else "not fitted"
        return f"NGramGraph(dim={c.dim}, n_grams={c.n_grams}, vertex_embedding={c.vertex_embedding!r}, {state})"

    # -- featurizing ----------------------------------------------------------------------------
    def featurize(
        self,
        molecules: Iterable[str | Chem.Mol],
        *,
        n_jobs: int = 1,
        errors: Literal["raise", "skip"] = "raise",
        progress: bool | None = None,
    ) -> tuple[CollatedGraphs | None, list[Reject]]:
        """Molecules -> graphs of the ``ngram`` preset, in input order, and the rejects.

        ``graphs.rows`` holds each graph's input position. A molecule over ``max_atoms`` is a
        reject ("N heavy atoms > max_atoms=M") like an unparsable one; with ``errors="raise"``
        the first reject raises :class:`MoleculeError`. ``graphs`` is ``None`` when nothing is left.
        """
        cap = self.config.max_atoms
        arrays, rows, rejects = [], [], []
        for index, result in iter_featurize(molecules, self.featurizer, n_jobs=n_jobs, errors=errors,
                                            progress=progress):
            if not isinstance(result, Reject) and cap is not None and result.x.shape[0] > cap:
                result = Reject(index, result.smiles, f"{result.x.shape[0]} heavy atoms > max_atoms={cap}")
                if errors == "raise":
                    raise MoleculeError(result.reason, result.input, index)
            if isinstance(result, Reject):
                rejects.append(result)
            else:
                arrays.append(result)
                rows.append(index)
        graphs = CollatedGraphs.from_arrays(arrays, rows=rows, meta={"featurizer": self.featurizer.to_config()}) \
            if arrays else None
        return graphs, rejects

    def _check_graphs(self, graphs: CollatedGraphs) -> None:
        if graphs.x.dim() != 2 or graphs.x.shape[1] != self.in_dim or not graphs.x.is_floating_point():
            raise ValueError(f"graphs need float atom rows of width {self.in_dim} (the featurizer's), "
                             f"got {tuple(graphs.x.shape)} {graphs.x.dtype}")

    # -- fitting --------------------------------------------------------------------------------
    def _initial_model(self, segment_classes: Sequence[int]) -> CBoWVertexEmbedding:
        # a private RNG stream: the same seed gives the same W whatever else used torch's RNG
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            return CBoWVertexEmbedding(self.in_dim, self.config.dim, segment_classes, self.config.head_hidden_dim)

    def fit(
        self,
        molecules: Iterable[str | Chem.Mol],
        *,
        n_jobs: int = 1,
        errors: Literal["raise", "skip"] = "raise",
        progress: bool | None = None,
    ) -> "NGramGraph":
        """Learn ``W`` from these (training) molecules; see :meth:`fit_graphs`. Returns self."""
        graphs, rejects = self.featurize(molecules, n_jobs=n_jobs, errors=errors, progress=progress)
        if graphs is None:
            raise ValueError(f"none of the {len(rejects)} molecules could be featurized; first: {rejects[:1]}")
        self.fit_graphs(graphs, progress=progress)
        self.fit_info["rejects"] = len(rejects)
        return self

    def fit_graphs(
        self, graphs: CollatedGraphs, subset: Sequence[int] | np.ndarray | None = None, *, progress: bool | None = None
    ) -> "NGramGraph":
        """Learn ``W`` from the atoms of ``graphs`` (only those at positions ``subset`` if given).

        One CBoW sample per atom that has a neighbour: context = sum of its neighbours' rows,
        targets = its own class in every segment (atoms without neighbours have no context and
        are left out). Adam over shuffled batches for ``epochs`` epochs; ``W`` comes from the
        epoch with the lowest mean loss. Atoms of graphs outside ``subset`` are dropped before
        training (contexts never cross molecules), so test molecules cannot influence ``W`` in
        cross-validation. Returns self.
        """
        self._check_graphs(graphs)
        cfg = self.config
        start = time.perf_counter()
        with _Threads(cfg.threads):
            edge_index, batch = _global_edges(graphs)
            x = graphs.x.float()
            context = neighbour_sum(x, edge_index, x.shape[0])
            targets, classes = segment_targets(x, self.featurizer.atom_featurizer)
            keep = torch.bincount(edge_index[1], minlength=x.shape[0]) > 0
            if subset is not None:
                chosen = torch.zeros(len(graphs), dtype=torch.bool)
                chosen[torch.as_tensor(np.asarray(subset, dtype=np.int64))] = True
                keep &= chosen[batch]
            context, targets = context[keep], targets[keep]
            n_graphs = len(graphs) if subset is None else int(np.unique(np.asarray(subset)).size)
            model = self._initial_model(classes)
            info: dict[str, Any] = {"n_molecules": n_graphs, "n_atoms": int(context.shape[0]),
                                    "vertex_embedding": cfg.vertex_embedding}
            if cfg.vertex_embedding == "cbow" and cfg.epochs > 0:
                if context.shape[0] == 0:
                    raise ValueError("no atom with a neighbour to train the CBoW vertex embedding on")
                info.update(self._train(model, context, targets, progress))
            self.W = model.weight.detach().numpy().astype(np.float32).copy()
        info["seconds"] = round(time.perf_counter() - start, 3)
        self.fit_info = info
        return self

    def _train(self, model: CBoWVertexEmbedding, context: torch.Tensor, targets: torch.Tensor,
               progress: bool | None) -> dict[str, Any]:
        from tqdm.auto import tqdm

        from molgraph.featurizers.batch import default_progress

        cfg = self.config
        gen = torch.Generator().manual_seed(cfg.seed)
        # fused Adam: one kernel per step instead of one per parameter (the steps are tiny, so
        # per-op overhead is most of their cost on a CPU)
        optim = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        n = context.shape[0]
        best_loss, best_epoch, best_state = float("inf"), -1, None
        steps, epochs_run = 0, 0
        for epoch in tqdm(range(cfg.epochs), desc="CBoW", unit="epoch", disable=not default_progress(progress)):
            order = torch.randperm(n, generator=gen)
            total, seen = 0.0, 0
            for s in range(0, n, cfg.batch_size):
                idx = order[s : s + cfg.batch_size]
                loss = model.loss(context[idx], targets[idx])
                optim.zero_grad(set_to_none=True)
                loss.backward()
                optim.step()
                total += loss.item() * idx.numel()
                seen += idx.numel()
                steps += 1
                if cfg.max_steps is not None and steps >= cfg.max_steps:
                    break
            epochs_run += 1
            mean = total / seen
            if mean < best_loss:
                best_loss, best_epoch = mean, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if cfg.max_steps is not None and steps >= cfg.max_steps:
                break
        assert best_state is not None
        model.load_state_dict(best_state)
        acc = model.accuracy(context, targets)
        return {"epochs_run": epochs_run, "steps": steps, "best_epoch": best_epoch, "best_loss": round(best_loss, 5),
                "segment_accuracy": [round(float(a), 4) for a in acc]}

    # -- transforming ---------------------------------------------------------------------------
    def _require_fitted(self) -> np.ndarray:
        if self.W is None:
            raise RuntimeError("NGramGraph is not fitted: call fit(molecules) or fit_graphs(graphs) first "
                               "(vertex_embedding='random' also needs fit, which only draws W)")
        return self.W

    def transform_graphs(self, graphs: CollatedGraphs, *, chunk_size: int = 4096) -> np.ndarray:
        """Embeddings of every graph, ``(len(graphs), T * r)`` float32 (columns ``f_1 .. f_T``).

        Computed in float64 over chunks of ``chunk_size`` graphs; each graph's row depends only
        on that graph, so chunking (or embedding one molecule at a time) gives the same values.
        """
        W = torch.from_numpy(self._require_fitted()).double()
        self._check_graphs(graphs)
        cfg = self.config
        out = np.empty((len(graphs), self.out_dim), dtype=np.float32)
        a, e = graphs.atom_ptr.tolist(), graphs.edge_ptr.tolist()
        with _Threads(cfg.threads), torch.no_grad():
            for g0 in range(0, len(graphs), chunk_size):
                g1 = min(g0 + chunk_size, len(graphs))
                x = graphs.x[a[g0] : a[g1]].double()
                counts = graphs.num_atoms[g0:g1]
                batch = torch.repeat_interleave(torch.arange(g1 - g0), counts)
                edge_counts = graphs.edge_ptr[g0 + 1 : g1 + 1] - graphs.edge_ptr[g0:g1]
                offsets = graphs.atom_ptr[g0:g1] - a[g0]
                edges = graphs.edge_index[:, e[g0] : e[g1]] + torch.repeat_interleave(offsets, edge_counts)
                sums = ngram_walk_sums(x @ W, edges, batch, g1 - g0, cfg.n_grams, self_loops=cfg.self_loops)
                out[g0:g1] = sums.reshape(g1 - g0, -1).numpy()
        return out

    def embed(
        self,
        molecules: Iterable[str | Chem.Mol],
        *,
        n_jobs: int = 1,
        errors: Literal["raise", "skip"] = "skip",
        progress: bool | None = None,
    ) -> NGramEmbedding:
        """Embed molecules, keeping going past bad ones (``errors="skip"``): rows + rejects."""
        self._require_fitted()
        graphs, rejects = self.featurize(molecules, n_jobs=n_jobs, errors=errors, progress=progress)
        if graphs is None:
            return NGramEmbedding(np.zeros((0, self.out_dim), np.float32), np.zeros(0, np.int64), rejects)
        return NGramEmbedding(self.transform_graphs(graphs), graphs.rows.numpy(), rejects)

    def transform(self, molecules: Iterable[str | Chem.Mol], *, n_jobs: int = 1,
                  progress: bool | None = None) -> np.ndarray:
        """``(N, T * r)`` float32 embeddings, one row per molecule.

        Raises:
            MoleculeError: the first molecule that cannot be read or is over ``max_atoms``
                (its index and reason); use :meth:`embed` to skip such molecules instead.
        """
        return self.embed(molecules, n_jobs=n_jobs, errors="raise", progress=progress).embeddings

    def __call__(self, molecules: Sequence[str | Chem.Mol]) -> np.ndarray:
        """Same as :meth:`transform` (the molecule-featurizer protocol of ``MorganFingerprint``)."""
        return self.transform(molecules)

    def fit_transform(self, molecules: Sequence[str | Chem.Mol], *, n_jobs: int = 1,
                      progress: bool | None = None) -> np.ndarray:
        """Fit on ``molecules`` and embed them (only for unsupervised use: in evaluation, fit on
        the training molecules and transform the test molecules separately)."""
        graphs, _ = self.featurize(molecules, n_jobs=n_jobs, errors="raise", progress=progress)
        assert graphs is not None
        return self.fit_graphs(graphs, progress=progress).transform_graphs(graphs)

    # -- files ----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted estimator to one ``.npz`` (atomically): ``W`` and a JSON header."""
        W = self._require_fitted()
        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"NGramGraph files end in .npz, got {path}")
        header = {"format": FORMAT, **self.to_config(), "fit_info": self.fit_info}
        with atomic_output(path, "wb") as fh:
            np.savez(fh, W=W, header=np.asarray(json.dumps(header, sort_keys=True)))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "NGramGraph":
        """Read a file written by :meth:`save` (``allow_pickle=False``: no code is unpickled)."""
        path = Path(path)
        with np.load(path, allow_pickle=False) as f:
            if "header" not in f.files or "W" not in f.files:
                raise ValueError(f"{path}: not an NGramGraph file (arrays {f.files})")
            header = json.loads(str(f["header"]))
            W = np.array(f["W"], dtype=np.float32)
        if header.get("format") != FORMAT:
            raise ValueError(f"{path}: format {header.get('format')!r}, expected {FORMAT!r}")
        est = cls.from_config(header)
        if W.shape != (est.in_dim, est.config.dim):
            raise ValueError(f"{path}: W is {W.shape}, expected {(est.in_dim, est.config.dim)}")
        est.W = W
        est.fit_info = dict(header.get("fit_info", {}))
        return est
