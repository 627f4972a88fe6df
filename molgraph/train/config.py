"""Training settings: one dataclass, read from TOML, overridden from the command line, saved.

A recipe file (``models/*.toml``) holds the same keys as :class:`TrainConfig` (flat, or grouped in
tables, whose names are ignored). Command-line values override the file; the resolved settings
are written to ``RUN_DIR/config.toml`` so ``molgraph train --resume RUN_DIR`` needs nothing else.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import tomli_w

from molgraph.data.sources import atomic_output
from molgraph.train.learned_features import check_learned_name, is_learned

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["TrainConfig", "load_config_file", "resolve_config", "save_config"]

MODEL_NAMES = ("dmpnn", "gin", "gcn")
SPLITS = ("random", "scaffold", "ogb_scaffold", "balanced_scaffold", "stratified")
NORM_NAMES = ("graph", "batch", "layer", "instance", "none")  # molgraph.nn.norm.NORMS
GCN_PROPAGATIONS = ("symmetric", "mean")  # molgraph.nn.gcn.PROPAGATIONS
MOLECULE_FEATURIZERS = ("rdkit_descriptors", "morgan", "morgan_count")
# chemprop v2's names for the same featurizers
MOLECULE_FEATURIZER_ALIASES = {"rdkit_2d": "rdkit_descriptors", "morgan_binary": "morgan"}


@dataclass
class TrainConfig:
    """Everything ``molgraph train`` needs; field names are the TOML keys.

    Data: ``input`` (CSV path) with ``smiles_column`` and ``target_columns``, or ``dataset`` (a
    registry name; its card supplies columns and task type); ``data_root`` for data-root sets.
    Units: learning rates per optimizer step; ``split_sizes`` fractions summing to 1.
    """

    # data
    input: str | None = None
    smiles_column: str | None = None
    target_columns: list[str] = field(default_factory=list)
    dataset: str | None = None
    data_root: str | None = None
    task_type: str | None = None
    featurizer: str = "multihot"
    molecule_featurizers: list[str] = field(default_factory=list)
    n_jobs: int = 1
    # split
    split: str = "random"
    split_sizes: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    split_file: str | None = None
    data_seed: int = 0
    # model
    model: str = "dmpnn"
    hidden_dim: int | None = None
    depth: int | None = None
    dropout: float = 0.0
    readout: str | None = None
    ffn_hidden_dim: int | None = None
    ffn_layers: int = 1
    batch_norm: bool | None = None
    norm: str | None = None  # GIN's normalization: graph | batch | layer | instance | none
    # residual connections in gin/gcn; None: on for the per-graph norms (graph, instance), as in the
    # GraphNorm reference, off otherwise (the OGB baselines)
    residual: bool | None = None
    # eps of gin's/gcn's norms (None: 1e-5). GraphNorm divides by sqrt(var + eps) per molecule, so a
    # feature that is nearly constant within a small molecule is amplified up to 1/sqrt(eps).
    norm_eps: float | None = None
    # the gcn model's layer: symmetric (Kipf & Welling weights, the OGB baseline; the default) or mean
    # (the GraphNorm reference's molecule GCN, molgraph.nn.MeanBondConv)
    gcn_propagation: str | None = None
    # the gin model's ReLU on each message h_u + e_uv and after its last layer (None: on, GINEConv's and
    # the package's default); both off: the GraphNorm reference's molecule GIN
    gin_message_activation: bool | None = None
    gin_last_activation: bool | None = None
    # dropout on the model's raw outputs while training (the GraphNorm reference's molecule models: 0.5)
    output_dropout: float = 0.0
    # optimisation
    seed: int = 0
    epochs: int = 50
    patience: int | None = None
    batch_size: int = 64
    optimizer: str = "adam"
    weight_decay: float = 0.0
    schedule: str = "noam"
    warmup_epochs: float = 2.0
    init_lr: float = 1e-4
    max_lr: float = 1e-3
    final_lr: float = 1e-4
    grad_clip: float | None = None
    metrics: list[str] = field(default_factory=list)
    monitor: str = "val_loss"
    ensemble_size: int = 1
    mc_dropout_samples: int = 0
    # hardware
    accelerator: str = "auto"
    devices: str = "1"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    num_workers: int = 0
    deterministic: bool = False
    progress: bool | None = None
    # output
    output_dir: str | None = None

    def validate(self) -> "TrainConfig":
        """Check values that can be checked without the data; returns self."""
        if (self.input is None) == (self.dataset is None):
            raise ValueError("give exactly one of input (-i FILE) and dataset (--dataset NAME)")
        if self.input is not None and not self.smiles_column:
            raise ValueError("input needs smiles_column (-s)")
        if self.input is not None and not self.target_columns:
            raise ValueError("input needs target_columns (--target-columns)")
        if self.input is not None and self.task_type is None:
            raise ValueError("input needs task_type (-t regression|classification)")
        if self.task_type not in (None, "regression", "classification"):
            raise ValueError(f"task_type must be regression or classification, got {self.task_type!r}")
        if self.model not in MODEL_NAMES:
            raise ValueError(f"model must be one of {MODEL_NAMES}, got {self.model!r}")
        if self.norm is not None and self.norm not in NORM_NAMES:
            raise ValueError(f"norm must be one of {NORM_NAMES}, got {self.norm!r}")
        if self.norm is not None and self.model == "dmpnn":
            raise ValueError("norm applies to the gin and gcn models; the D-MPNN has no normalization layers")
        if self.norm_eps is not None and self.model == "dmpnn":
            raise ValueError("norm_eps applies to the gin and gcn models; the D-MPNN has no normalization layers")
        if self.norm_eps is not None and not self.norm_eps > 0:
            raise ValueError(f"norm_eps must be > 0, got {self.norm_eps}")
        if self.gcn_propagation is not None and self.gcn_propagation not in GCN_PROPAGATIONS:
            raise ValueError(f"gcn_propagation must be one of {GCN_PROPAGATIONS}, got {self.gcn_propagation!r}")
        if self.gcn_propagation is not None and self.model != "gcn":
            raise ValueError(f"gcn_propagation applies to the gcn model, not {self.model!r}")
        for key in ("gin_message_activation", "gin_last_activation"):
            if getattr(self, key) is not None and self.model != "gin":
                raise ValueError(f"{key} applies to the gin model, not {self.model!r}")
        if self.residual is not None and self.model == "dmpnn":
            raise ValueError("residual applies to the gin and gcn models, not the D-MPNN")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        self.molecule_featurizers = [MOLECULE_FEATURIZER_ALIASES.get(n, n) for n in self.molecule_featurizers]
        for name in self.molecule_featurizers:
            if is_learned(name):
                check_learned_name(name)
            elif name not in MOLECULE_FEATURIZERS:
                raise ValueError(f"unknown molecule featurizer {name!r}; choose from {MOLECULE_FEATURIZERS}, "
                                 "ngram (W fitted on the training split) or ngram:MODEL.npz")
        if len(set(self.molecule_featurizers)) != len(self.molecule_featurizers):
            raise ValueError(f"molecule featurizers repeat: {self.molecule_featurizers}")
        for name, value, low in (
            ("epochs", self.epochs, 1),
            ("batch_size", self.batch_size, 1),
            ("ensemble_size", self.ensemble_size, 1),
            ("n_jobs", self.n_jobs, 1),
        ):
            if int(value) < low:
                raise ValueError(f"{name} must be >= {low}, got {value}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.output_dropout < 1.0:
            raise ValueError(f"output_dropout must be in [0, 1), got {self.output_dropout}")
        if self.mc_dropout_samples and self.dropout == 0.0:
            raise ValueError("mc_dropout_samples needs dropout > 0")
        if self.output_dir is None:
            raise ValueError("output_dir (-o RUN_DIR) is required")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "config") -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        flat = _flatten(values)
        unknown = sorted(set(flat) - known)
        if unknown:
            raise ValueError(f"{source}: unknown setting(s) {unknown}")
        return cls(**flat)


def _flatten(values: Mapping[str, Any]) -> dict[str, Any]:
    """Tables (``[model]``, ``[optim]``...) are only for readability: merge them."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            for k, v in _flatten(value).items():
                if k in out:
                    raise ValueError(f"setting {k!r} appears twice")
                out[k] = v
        else:
            if key in out:
                raise ValueError(f"setting {key!r} appears twice")
            out[key] = value
    return out


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Settings from a TOML file (flattened); unknown keys are an error naming them."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            values = tomllib.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: invalid TOML: {exc}") from None
    flat = _flatten(values)
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(flat) - known)
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {unknown}; known: {sorted(known)}")
    return flat


def resolve_config(file_values: Mapping[str, Any] | None, overrides: Mapping[str, Any]) -> TrainConfig:
    """File values, then command-line ``overrides`` (``None`` values mean "not given")."""
    merged = dict(file_values or {})
    merged.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(merged)


def save_config(config: TrainConfig, path: str | os.PathLike[str]) -> Path:
    """Write the resolved settings as TOML (``None`` values are left out: they are defaults)."""
    values = {k: v for k, v in config.to_dict().items() if v is not None}
    path = Path(path)
    with atomic_output(path, "wb") as fh:
        fh.write(b"# resolved settings of this run; `molgraph train --resume RUN_DIR` reads them\n")
        fh.write(tomli_w.dumps(values).encode())
    return path
