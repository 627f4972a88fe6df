"""``graphcnf``: categorical normalizing flows that generate molecules (Lippe & Gavves, ICLR 2021).

``molgraph train --method graphcnf`` reads MOSES (``-d moses``) or any SMILES file
(``--data-path``), keeps the molecules with at most ``max_atoms`` heavy atoms that the
Kekulé/no-hydrogen graph represents exactly (the others are counted by reason: the
representation ceiling), holds out ``val_size`` of them, trains the flow on the rest and reports
bits per atom on validation against the factorized i.i.d. baseline, the encode -> decode
reconstruction rate, and the validity, uniqueness and novelty of ``eval_samples`` samples.
``molgraph generate --model RUN`` samples from the model file; ``molgraph predict --model RUN``
scores molecules in bits per atom.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from molgraph.methods.graphcnf.config import GraphCNFConfig
from molgraph.train.method import Method, Prepared

__all__ = ["GraphCNFMethod", "load_graphs", "iid_baseline_bits", "reconstruction_rate", "reconstruction_errors"]


@dataclass
class GraphCNFPrepared(Prepared):
    graphs: Any = None
    train: Any = None
    val: Any = None
    data_info: Any = None


def _read_smiles(config: GraphCNFConfig) -> tuple[list[str], dict[str, Any]]:
    from molgraph.data.sources import sha256_file_cached
    from molgraph.data.table import iter_molecule_inputs

    if config.data_path is not None:
        path = Path(config.data_path)
        if not path.is_file():
            raise FileNotFoundError(f"data_path {path} does not exist")
        smiles = []
        for item in iter_molecule_inputs(path, config.smiles_column):
            if not isinstance(item, str):
                raise ValueError(f"{path}: graphcnf reads SMILES (.csv/.tsv/.smi), not {type(item).__name__} records")
            smiles.append(item)
        return smiles, {"source": str(path), "sha256": sha256_file_cached(path)}
    if config.dataset != "moses":
        raise ValueError(f"dataset {config.dataset!r}: graphcnf reads 'moses' or a SMILES file given by --data-path")
    from molgraph.data.moses import load_moses

    ms = load_moses("moses", config.data_root, part="train")
    return ms.smiles, {"source": f"moses/train ({ms.path})", "sha256": ms.sha256}


def load_graphs(config: GraphCNFConfig) -> tuple[Any, dict[str, Any]]:
    """The run's molecules as dense graphs (a seeded shuffle of the input, size-filtered) and a
    summary of what was read and rejected."""
    from molgraph.data.dense_graphs import DenseMolGraphs

    smiles, info = _read_smiles(config)
    order = np.random.default_rng(config.data_seed).permutation(len(smiles))
    graphs, rejects = DenseMolGraphs.from_smiles((smiles[i] for i in order), max_atoms=config.max_atoms,
                                                 limit=config.max_molecules)
    graphs.source_index = order[graphs.source_index]
    reasons = Counter("not representable" if r.startswith("not representable") else r for _, _, r in rejects)
    size = sum(n for r, n in reasons.items() if r.startswith("more than"))
    read = len(graphs) + len(rejects)
    fitting = read - size - reasons.get("parse", 0)
    info.update({"read": read, "kept": len(graphs), "rejected": dict(reasons),
                 "representable_share": len(graphs) / fitting if fitting else None,
                 "input_molecules": len(smiles)})
    return graphs, info


def iid_baseline_bits(graphs: Any, fit: np.ndarray, eval_idx: np.ndarray) -> float:
    """Bits per atom of the factorized i.i.d. model on ``eval_idx``: atom types and pair types
    (none / single / double / triple) drawn independently with the frequencies of ``fit``
    (the molecule's size given, as for the flow)."""
    sub = graphs.subset(fit)
    pa = sub.atom_frequencies()
    pp = sub.pair_frequencies()
    la, lp = np.log2(np.clip(pa, 1e-12, None)), np.log2(np.clip(pp, 1e-12, None))
    bits, atoms = 0.0, 0
    for i in np.asarray(eval_idx).tolist():
        t, a = graphs.graph(i)
        n = len(t)
        iu = np.triu_indices(n, 1)
        bits -= la[t].sum() + lp[a[iu]].sum()
        atoms += n
    return bits / atoms


def reconstruction_rate(model: Any, graphs: Any, idx: np.ndarray, *, seed: int = 0, batch_size: int = 128) -> float:
    """Share of the molecules at ``idx`` whose encode -> decode gives back exactly their graph."""
    import torch

    from molgraph.data.dense_graphs import DenseGraphBatcher

    batcher = DenseGraphBatcher(graphs)
    gen = torch.Generator().manual_seed(int(seed))
    model.eval()
    ok = 0
    with torch.no_grad():
        for i in range(0, len(idx), batch_size):
            b = batcher(np.asarray(idx[i:i + batch_size]))
            r = model.encode(b["types"], b["adj"], b["mask"], noise=model.noise(b["mask"], gen))
            t, a = model.decode(r["zn"], r["ze"], b["mask"])
            same = ((t == b["types"]) | ~b["mask"]).all(1) & (a == b["adj"]).all((1, 2))
            ok += int(same.sum())
    return ok / max(len(idx), 1)


def reconstruction_errors(model: Any, graphs: Any, idx: np.ndarray, *, seeds: tuple[int, ...] = (0,),
                          batch_size: int = 128) -> dict[str, int]:
    """Where encode -> decode goes wrong, summed over one noise draw per seed.

    Returns counts: ``molecules`` and ``reconstructed`` (graph exactly back); ``atoms``,
    ``bonds``, ``pairs`` (variables seen); ``own_atoms``, ``own_bond_types``, ``own_pairs``:
    variables decided wrongly on the encoder's own sample, before any flow (the encoders'
    overlap); ``decoded_atoms``, ``decoded_bond_types``, ``decoded_pairs``: wrong after the full
    encode -> flows -> invert -> decode. ``decoded_pairs == own_pairs`` when inverting the flow
    adds no error; decoded atom and bond-type errors beyond the own ones follow wrong pairs (the
    graph steps 2 and 1 are inverted on changes).
    """
    import torch

    from molgraph.data.dense_graphs import DenseGraphBatcher
    from molgraph.methods.graphcnf.model import upper_pairs

    batcher = DenseGraphBatcher(graphs)
    model.eval()
    keys = ("molecules", "reconstructed", "atoms", "bonds", "pairs", "own_atoms", "own_bond_types", "own_pairs",
            "decoded_atoms", "decoded_bond_types", "decoded_pairs")
    out = dict.fromkeys(keys, 0)
    with torch.no_grad():
        for seed in seeds:
            gen = torch.Generator().manual_seed(int(seed))
            for i in range(0, len(idx), batch_size):
                b = batcher(np.asarray(idx[i:i + batch_size]))
                mask, types, adj = b["mask"], b["types"], b["adj"]
                r = model.encode(types, adj, mask, noise=model.noise(mask, gen))
                pairs = upper_pairs(model.masks(mask))
                truth = adj[pairs[:, 0], pairs[:, 1], pairs[:, 2]]
                is_bond = truth > 0
                t, a = model.decode(r["zn"], r["ze"], mask)
                got = a[pairs[:, 0], pairs[:, 1], pairs[:, 2]]
                out["molecules"] += int(mask.shape[0])
                out["reconstructed"] += int((((t == types) | ~mask).all(1) & (a == adj).all((1, 2))).sum())
                out["atoms"] += int(mask.sum())
                out["bonds"] += int(is_bond.sum())
                out["pairs"] += int(is_bond.numel())
                out["own_atoms"] += int(((model.atom_enc.decode(r["zn_enc"]) != types) & mask).sum())
                out["own_bond_types"] += int((model.bond_enc.decode(r["zb_enc"]) != truth[is_bond] - 1).sum())
                out["own_pairs"] += int((model.edge_dec(r["zp_enc"].float()).argmax(-1) != is_bond.long()).sum())
                out["decoded_atoms"] += int(((t != types) & mask).sum())
                out["decoded_bond_types"] += int((is_bond & (got > 0) & (got != truth)).sum())
                out["decoded_pairs"] += int(((got > 0) != is_bond).sum())
    return out


class GraphCNFMethod(Method):
    """GraphCNF: a three-step categorical normalizing flow over molecular graphs."""

    name = "graphcnf"
    help = "GraphCNF molecule generation (categorical normalizing flows) on MOSES or a SMILES file"
    config_class = GraphCNFConfig
    example_noun = "molecules"

    def validate(self, config: GraphCNFConfig) -> None:
        if config.data_path is None and config.dataset is None:
            raise ValueError("give a dataset (-d moses) or a SMILES file (--data-path)")
        if config.max_molecules is not None and config.max_molecules <= config.val_size:
            raise ValueError(f"max_molecules ({config.max_molecules}) must exceed val_size ({config.val_size})")
        if config.monitor == "val_validity" and not config.val_samples:
            raise ValueError("monitor val_validity needs val_samples > 0")

    def logged_values(self, config: Any) -> tuple[str, ...]:
        return ("val_loss", "train_loss", "val_validity") if config.val_samples else ("val_loss", "train_loss")

    def monitor_mode(self, monitor: str) -> str:
        return "max" if monitor == "val_validity" else "min"

    def prepare(self, config: GraphCNFConfig, *, run_dir: Path, resume: bool,
                say: Callable[[str], None]) -> GraphCNFPrepared:
        from molgraph.methods.graphcnf.task import GraphCNFDataModule

        graphs, info = load_graphs(config)
        if len(graphs) <= config.val_size:
            raise ValueError(f"{len(graphs)} molecules kept (max_atoms {config.max_atoms}): not more than "
                             f"val_size {config.val_size}")
        val = np.arange(config.val_size)
        train = np.arange(config.val_size, len(graphs))
        share = info["representable_share"]
        say(f"data: {info['source']}: {len(graphs)} molecules with <= {config.max_atoms} heavy atoms kept of "
            f"{info['read']} read; representable {share:.2%} of those within the size limit; "
            f"vocabulary {[graphs.vocab.label(i) for i in range(len(graphs.vocab))]}")
        say(f"split: train {train.size}, val {val.size}")
        dm = GraphCNFDataModule(graphs, train, val, batch_size=config.batch_size, data_seed=config.data_seed,
                                steps_per_epoch=config.steps_per_epoch)
        return GraphCNFPrepared(datamodule=dm, n_train=int(train.size), summary=f"{len(graphs)} molecules",
                                graphs=graphs, train=train, val=val, data_info=info)

    def _priors(self, prepared: GraphCNFPrepared) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        sub = prepared.graphs.subset(prepared.train)
        pp = sub.pair_frequencies()
        bonds = pp[1:] / max(pp[1:].sum(), 1e-12)
        hist = np.bincount(sub.lengths, minlength=prepared.graphs.max_atoms + 1)
        return sub.atom_frequencies(), bonds, float(1.0 - pp[0]), hist

    def build_model(self, config: GraphCNFConfig, prepared: GraphCNFPrepared) -> Any:
        from molgraph.methods.graphcnf.model import GraphCNF

        atom_freq, bond_freq, bond_share, _ = self._priors(prepared)
        return GraphCNF(len(prepared.graphs.vocab), atom_freq, bond_freq, bond_share, node_dim=config.node_dim,
                        edge_dim=config.edge_dim, hidden=config.hidden, edge_hidden=config.edge_hidden,
                        gnn_layers=config.gnn_layers, node_flows=config.node_flows, bond_flows=config.bond_flows,
                        pair_flows=config.pair_flows, node_mixtures=config.node_mixtures,
                        edge_mixtures=config.edge_mixtures,
                        encoder_separation=config.encoder_separation or None)

    def build_task(self, config: GraphCNFConfig, prepared: GraphCNFPrepared, model: Any, *, member: int) -> Any:
        from molgraph.methods.graphcnf.task import GraphCNFTask

        _, _, _, hist = self._priors(prepared)
        return GraphCNFTask(model, beta_start=config.beta_start, beta_half_life=config.beta_half_life,
                            beta_end=config.beta_end,
                            cdf_reg=config.cdf_reg, val_seed=config.data_seed, val_samples=config.val_samples,
                            length_hist=hist, vocab=prepared.graphs.vocab, time_limit=config.time_limit,
                            optimizer=config.optimizer, weight_decay=config.weight_decay, schedule=config.schedule,
                            warmup_epochs=config.warmup_epochs, init_lr=config.init_lr, max_lr=config.max_lr,
                            final_lr=config.final_lr, seed=config.seed + member)

    def finish(self, config: GraphCNFConfig, prepared: GraphCNFPrepared, models: list[Any], run_dir: Path,
               *, say: Callable[[str], None]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Validation bits per atom vs the i.i.d. baseline, reconstruction, and sample metrics."""
        from molgraph.data.dense_graphs import DenseGraphBatcher
        from molgraph.methods.graphcnf.predict import GraphCNFGenerator
        from molgraph.methods.graphcnf.task import evaluate_bits

        model, graphs = models[0], prepared.graphs
        _, _, _, hist = self._priors(prepared)
        bits = evaluate_bits(model, DenseGraphBatcher(graphs), prepared.val, seed=config.data_seed)
        atoms = graphs.lengths[prepared.val]
        val_bits = float((bits * atoms).sum() / atoms.sum())
        baseline = iid_baseline_bits(graphs, prepared.train, prepared.val)
        recon = reconstruction_rate(model, graphs, prepared.val, seed=config.data_seed)
        say(f"val: {val_bits:.3f} bits/atom (i.i.d. baseline {baseline:.3f}); encode -> decode {recon:.2%}")
        train_smiles = [graphs.smiles[i] for i in prepared.train.tolist()]
        section = {
            "model_config": dict(model.config),
            "vocab": graphs.vocab.to_list(),
            "length_hist": [int(v) for v in hist],
            "train_smiles": train_smiles,
            "data": {k: (v if not isinstance(v, np.generic) else v.item()) for k, v in prepared.data_info.items()},
            "max_atoms": int(config.max_atoms),
        }
        results: dict[str, Any] = {
            "primary_metric": "bits_per_atom",
            "val": {"bits_per_atom": val_bits, "iid_baseline_bits_per_atom": baseline, "reconstruction": recon,
                    "n": int(prepared.val.size)},
            "data": section["data"],
        }
        if config.eval_samples:
            gen = GraphCNFGenerator(model, graphs.vocab, hist, train_smiles)
            t0 = time.perf_counter()
            _, report = gen.generate(config.eval_samples, seed=config.data_seed)
            report["seconds"] = time.perf_counter() - t0
            results["samples"] = report
            say(f"samples: validity {report['validity']:.2%} (largest fragment "
                f"{report['validity_largest_fragment']:.2%}), uniqueness {report['uniqueness'] or 0:.2%}, "
                f"novelty {report['novelty'] or 0:.2%}, {report['molecules_per_second']:.1f} molecules/s")
        return results, section

    # -- a model file --------------------------------------------------------------------------------
    def load(self, section: dict[str, Any], payload: dict[str, Any]) -> Any:
        from molgraph.methods.graphcnf.predict import GraphCNFGenerator

        return GraphCNFGenerator.from_section(section, payload)

    def add_predict_arguments(self, parser: argparse.ArgumentParser) -> None:
        from molgraph.methods.graphcnf.predict import add_predict_arguments

        add_predict_arguments(parser)

    def predict_command(self, predictor: Any, args: argparse.Namespace) -> int:
        from molgraph.methods.graphcnf.predict import predict_command

        return predict_command(predictor, args)
