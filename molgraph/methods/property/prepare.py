"""From settings to tensors: load and featurize the data, add molecule features, split it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from molgraph.data.collated import CollatedGraphs
from molgraph.data.splits import Split, load_split_file, make_split
from molgraph.featurizers.batch import Reject
from molgraph.featurizers.fingerprints import MorganFingerprint, RDKitDescriptors
from molgraph.featurizers.graph import MolGraphFeaturizer
from molgraph.methods.property.config import TrainConfig
from molgraph.methods.ngram.features import fit_learned_featurizers, is_learned
from molgraph.train.scaling import StandardScaler

__all__ = ["PreparedData", "prepare_data", "add_learned_features", "molecule_features", "split_positions", "split_to_rows", "split_from_rows"]


@dataclass
class PreparedData:
    """Featurized molecules with targets, in file order minus the rejected rows.

    Attributes:
        graphs: the graphs; ``graphs.rows`` are their 0-based data rows in the source file.
        y: ``(N, T)`` float32 targets, NaN = missing.
        smiles: ``N`` SMILES as read.
        target_names, task_type: from the settings or the dataset card.
        featurizer: the graph featurizer used.
        rejects: rows that could not be featurized (row, input, reason).
        extra_raw: ``(N, D)`` float64 molecule-level features before scaling, or ``None``.
        extra_names: their names.
        source: the data file.
    """

    graphs: CollatedGraphs
    y: torch.Tensor
    smiles: list[str]
    target_names: list[str]
    task_type: str
    featurizer: MolGraphFeaturizer
    rejects: list[Reject]
    source: Path
    extra_raw: np.ndarray | None = None
    extra_names: list[str] = field(default_factory=list)

    @property
    def rows(self) -> np.ndarray:
        rows = self.graphs.rows
        return rows.numpy() if hasattr(rows, "numpy") else np.asarray(rows)

    def __len__(self) -> int:
        return len(self.graphs)


def molecule_features(
    names: Sequence[str], smiles: Sequence[str], learned: Mapping[str, Any] | None = None
) -> tuple[np.ndarray | None, list[str]]:
    """Molecule-level features by featurizer name, ``(N, D)`` float64 (NaN where undefined).

    ``learned`` maps each ``ngram[:PATH]`` name to its fitted estimator
    (:func:`molgraph.methods.ngram.features.fit_learned_featurizers`); a molecule it cannot embed
    gets a NaN row, as an undefined descriptor does.
    """
    blocks, cols = [], []
    for name in names:
        if is_learned(name):
            if learned is None or name not in learned:
                raise ValueError(f"molecule featurizer {name!r} is learned: fit it first (fit_learned_featurizers)")
            est = learned[name]
            emb = est.embed(smiles, errors="skip")
            block = np.full((len(smiles), est.out_dim), np.nan)
            block[emb.indices] = emb.embeddings
            blocks.append(block)
            cols += [f"{name}:{n}" for n in est.feature_names]
        elif name == "rdkit_descriptors":
            f = RDKitDescriptors()
            blocks.append(f(smiles))
            cols += [f"rdkit:{n}" for n in f.descriptor_names]
        elif name in ("morgan", "morgan_count"):
            f = MorganFingerprint(radius=2, n_bits=2048, counts=name == "morgan_count")
            blocks.append(f(smiles).astype(np.float64))
            cols += [f"{name}:{i}" for i in range(f.n_bits)]
        else:
            raise ValueError(f"unknown molecule featurizer {name!r}")
    if not blocks:
        return None, []
    out = np.concatenate(blocks, axis=1)
    out[~np.isfinite(out)] = np.nan  # RDKit returns inf for a few descriptors; treat as undefined
    return out, cols


def scale_extra(raw: np.ndarray | None, scaler: StandardScaler | None) -> torch.Tensor | None:
    """Standardize molecule features; undefined entries become 0 (the training mean)."""
    if raw is None or scaler is None:
        return None
    scaled = np.asarray(scaler.transform(raw), dtype=np.float32)
    scaled[np.isnan(scaled)] = 0.0
    # clip: a descriptor far outside the training range (e.g. Ipc) should not saturate the net
    return torch.from_numpy(np.clip(scaled, -10.0, 10.0))


def prepare_data(config: TrainConfig, *, progress: bool | None = None) -> PreparedData:
    """Load and featurize the data the settings name (uses the featurization cache)."""
    from molgraph.methods.property.config import is_shard_dir

    if config.input is not None and is_shard_dir(config.input):
        return _prepare_shards(config)
    featurizer = MolGraphFeaturizer.from_preset(config.featurizer)
    kwargs: dict[str, Any] = dict(featurizer=featurizer, n_jobs=config.n_jobs, errors="skip", progress=progress,
                                  cache=config.cache)
    if config.dataset is not None:
        from molgraph.data.registry import get_card, load_dataset

        card = get_card(config.dataset)
        if config.task_type not in (None, card.task_type):
            raise ValueError(f"dataset {card.name} is a {card.task_type} set, not {config.task_type}")
        ds = load_dataset(card.name, root=config.data_root, **kwargs)
        if config.target_columns and config.target_columns != list(card.target_columns):
            missing = sorted(set(config.target_columns) - set(card.target_columns))
            if missing:
                raise ValueError(f"dataset {card.name} has no target column(s) {missing}")
            keep = [list(card.target_columns).index(c) for c in config.target_columns]
            y, names = ds.y[:, keep], list(config.target_columns)
        else:
            y, names = ds.y, list(card.target_columns)
        task_type = card.task_type
    else:
        from molgraph.data.csv_dataset import MoleculeCSVDataset

        ds = MoleculeCSVDataset(
            config.input, config.smiles_column, config.target_columns, config.task_type or "regression", **kwargs
        )
        y, names, task_type = ds.y, list(config.target_columns), config.task_type or "regression"
    if task_type == "regression":
        pass
    else:
        labels = y[~torch.isnan(y)]
        if labels.numel() and not bool(((labels == 0) | (labels == 1)).all()):
            raise ValueError("classification targets must be 0/1 (or empty for missing)")
    data = PreparedData(
        graphs=ds.graphs,
        y=y.float(),
        smiles=list(ds.smiles),
        target_names=names,
        task_type=task_type,
        featurizer=featurizer,
        rejects=list(ds.rejects),
        source=Path(ds.path),
    )
    if config.molecule_featurizers and not any(is_learned(n) for n in config.molecule_featurizers):
        data.extra_raw, data.extra_names = molecule_features(config.molecule_featurizers, data.smiles)
    # learned featurizers (ngram) need the split first: add_learned_features
    return data


def add_learned_features(config: TrainConfig, data: PreparedData, train: np.ndarray) -> dict[str, Any]:
    """Fit the learned molecule featurizers on the training positions ``train`` and set
    ``data.extra_raw`` (every featurizer, in the configured order). Returns the fitted estimators."""
    if not any(is_learned(n) for n in config.molecule_featurizers):
        return {}
    learned = fit_learned_featurizers(config.molecule_featurizers, data.smiles, train, seed=config.seed,
                                      n_jobs=config.n_jobs, progress=config.progress)
    data.extra_raw, data.extra_names = molecule_features(config.molecule_featurizers, data.smiles, learned)
    return learned


def split_positions(config: TrainConfig, data: PreparedData) -> Split:
    """The split in *positions* of ``data`` (a user split file is given in file rows)."""
    if config.split_file:
        return split_from_rows(load_split_file(config.split_file), data.rows, source=config.split_file)
    labels = None
    if config.split == "stratified":
        if data.y.shape[1] != 1:
            raise ValueError("the stratified split needs exactly one target")
        labels = data.y[:, 0].numpy()
    # featurized shards hold only molecules that parsed: the random and stratified splits need only
    # their count (parsing 10^6 SMILES again would take minutes); scaffold splits read the SMILES
    smiles = data.smiles if not isinstance(data.smiles, LazySmiles) or "scaffold" in config.split else None
    return make_split(
        config.split, smiles=smiles, labels=labels, n=len(data), sizes=config.split_sizes, seed=config.data_seed,
        errors="skip",
    )


class LazySmiles(Sequence[str]):
    """The SMILES of sharded graphs, read one by one from the memory-mapped shards."""

    def __init__(self, graphs: Any) -> None:
        self.graphs = graphs

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self.graphs.smiles(j) for j in range(*i.indices(len(self)))]
        return self.graphs.smiles(int(i))


def _shard_rejects(folder: Path) -> list[Reject]:
    """The molecules featurization rejected, from every shard's ``rejects.csv`` (input row, input, reason)."""
    import csv

    out: list[Reject] = []
    for path in sorted(folder.glob("shard-*/rejects.csv")):
        with open(path, newline="", encoding="utf-8") as fh:
            for rec in csv.DictReader(fh):
                out.append(Reject(int(rec["row"]), rec["input"], rec["reason"]))
    return out


def _prepare_shards(config: TrainConfig) -> PreparedData:
    """Featurized shards (``molgraph featurize -o DIR/``), opened lazily: checksums verified, arrays mapped."""
    from molgraph.data.shards import ShardedGraphs

    ds = ShardedGraphs.open(config.input)
    y = torch.as_tensor(np.asarray(ds.y, dtype=np.float32))
    task_type = config.task_type or "regression"
    if task_type == "classification":
        labels = y[~torch.isnan(y)]
        if labels.numel() and not bool(((labels == 0) | (labels == 1)).all()):
            raise ValueError("classification targets must be 0/1 (or empty for missing)")
    return PreparedData(
        graphs=ds,
        y=y,
        smiles=LazySmiles(ds),
        target_names=list(ds.target_columns),
        task_type=task_type,
        featurizer=MolGraphFeaturizer.from_config(ds.featurizer_config),
        rejects=_shard_rejects(Path(config.input)),
        source=Path(config.input),
    )


def split_to_rows(split: Split, rows: np.ndarray) -> Split:
    """Positions -> data rows of the source file (what ``splits.json`` records)."""
    info = dict(split.info)
    info["indices"] = "rows"
    return Split(rows[split.train], rows[split.val], rows[split.test], split.method, split.seed, split.sizes, info)


def split_from_rows(split: Split, rows: np.ndarray, *, source: Any = "split") -> Split:
    """Data rows -> positions; rows that were rejected at featurization are left out (reported)."""
    where = {int(r): i for i, r in enumerate(rows)}
    parts, dropped = {}, []
    for name, idx in split.parts().items():
        pos = [where.get(int(r), -1) for r in idx]
        dropped += [int(r) for r, p in zip(idx, pos) if p < 0]
        parts[name] = np.asarray([p for p in pos if p >= 0], dtype=np.int64)
    info = dict(split.info)
    info["indices"] = "positions"
    if dropped:
        info["rows_not_featurized"] = sorted(dropped)
    if len(parts["train"]) == 0:
        raise ValueError(f"{source}: no training molecule left after featurization")
    return Split(parts["train"], parts["val"], parts["test"], split.method, split.seed, split.sizes, info)
