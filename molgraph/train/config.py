"""Training settings: one dataclass, read from TOML, overridden from the command line, saved.

A recipe file (``models/*.toml``) holds the same keys as :class:`TrainConfig` (flat, or grouped in
tables, whose names are ignored). Command-line values override the file; the resolved settings
are written to ``RUN_DIR/config.toml`` so ``molgraph train --resume RUN_DIR`` needs nothing else.

:meth:`TrainConfig.validate` checks every setting (names of choices against the registries that
define them, see :func:`setting_choices`; types; ranges; combinations) before a run writes
anything, so a misspelt name never leaves a run folder behind.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import sys
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import tomli_w

from molgraph.data.sources import atomic_output
from molgraph.methods.ngram.features import check_learned_name, is_learned

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["TrainConfig", "load_config_file", "resolve_config", "save_config", "setting_choices"]

MOLECULE_FEATURIZERS = ("rdkit_descriptors", "morgan", "morgan_count")
# chemprop v2's names for the same featurizers
MOLECULE_FEATURIZER_ALIASES = {"rdkit_2d": "rdkit_descriptors", "morgan_binary": "morgan"}


def setting_choices() -> dict[str, tuple[str, ...]]:
    """The valid names of each setting that names a choice, read from the registries defining them.

    Each list lives once, next to the code that implements the names (optimizers and schedules in
    :mod:`molgraph.train.optim`, norms in :mod:`molgraph.nn.norm`, splits in
    :mod:`molgraph.data.splits`, ...); :meth:`TrainConfig.validate` and the ``molgraph train``
    options read them here, so a name added there is accepted everywhere. Imported on call: the
    registries pull in torch, which ``import molgraph.cli`` should not pay for.
    """
    from molgraph.data.splits import SPLIT_METHODS
    from molgraph.featurizers import AtomFeaturizer, BondFeaturizer
    from molgraph.methods.property.model import MODEL_PRESETS
    from molgraph.nn import NORMS, PROPAGATIONS, READOUTS
    from molgraph.train.metrics import METRICS, TASK_TYPES
    from molgraph.train.optim import OPTIMIZERS, SCHEDULES

    return {
        "task_type": tuple(TASK_TYPES),
        # MolGraphFeaturizer.from_preset needs the name among both the atom and the bond presets
        "featurizer": tuple(n for n in AtomFeaturizer._PRESETS if n in BondFeaturizer._PRESETS),
        "split": tuple(SPLIT_METHODS),
        "model": tuple(MODEL_PRESETS),
        "readout": tuple(READOUTS),
        "norm": tuple(NORMS),
        "gcn_propagation": tuple(PROPAGATIONS),
        "optimizer": tuple(OPTIMIZERS),
        "schedule": tuple(SCHEDULES),
        "metrics": tuple(METRICS),
    }


def _check_choice(setting: str, value: Any, names: tuple[str, ...]) -> None:
    """One message for every misnamed choice: the setting, the value given and the valid names."""
    if value not in names:
        raise ValueError(f"{setting} must be one of {', '.join(names)}; got {value!r}")


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
        """Check every setting before anything is read or written; returns self.

        Names of choices (against the registries of :func:`setting_choices`), types, numeric ranges
        and combinations of settings are checked here, so that a mistake fails at once with a
        message naming the setting, the value and what is allowed, rather than minutes later
        inside Lightning with a half-written run folder. A ``dataset`` is looked up in the
        registry's cards (no data is read). Values are normalized in place: numbers to ``int`` /
        ``float``, tuples to lists, ``devices`` to a string, chemprop's featurizer names to ours.
        Hardware settings that only Lightning can judge (accelerator, strategy, precision on this
        machine) are checked by :func:`molgraph.train.runner.check_trainer_settings`.
        """
        self._check_types()
        choices = setting_choices()
        task_type, n_targets = self._check_data(choices)
        self._check_split(choices, n_targets)
        self._check_model(choices)
        self._check_optimization(choices, task_type)
        for name, value, low in (("num_nodes", self.num_nodes, 1), ("num_workers", self.num_workers, 0)):
            if value < low:
                raise ValueError(f"{name} must be >= {low}, got {value}")
        if self.output_dir is None:
            raise ValueError("output_dir (-o RUN_DIR) is required")
        return self

    def _check_types(self) -> None:
        """Each value has its field's type (a TOML file can say ``epochs = "3"``); normalizes numbers."""
        hints = typing.get_type_hints(type(self))
        # devices: "1", "0,1", "auto" or -1; a TOML number or list of numbers means the same
        if isinstance(self.devices, (list, tuple)) and all(_is_int(d) for d in self.devices):
            self.devices = ",".join(str(int(d)) for d in self.devices)
        elif _is_int(self.devices):
            self.devices = str(int(self.devices))
        for f in fields(self):
            setattr(self, f.name, _coerce(f.name, getattr(self, f.name), hints[f.name]))

    def _check_data(self, choices: Mapping[str, tuple[str, ...]]) -> tuple[str, int]:
        """Input, dataset, columns, task type and featurizers; returns the task type and target count."""
        if (self.input is None) == (self.dataset is None):
            raise ValueError("give exactly one of input (-i FILE) and dataset (--dataset NAME)")
        if self.task_type is not None:
            _check_choice("task_type", self.task_type, choices["task_type"])
        if self.input is not None:
            if not self.smiles_column:
                raise ValueError("input needs smiles_column (-s)")
            if not self.target_columns:
                raise ValueError("input needs target_columns (--target-columns)")
            if self.task_type is None:
                raise ValueError("input needs task_type (-t regression|classification)")
            task_type, n_targets = self.task_type, len(self.target_columns)
        else:
            from molgraph.data.registry import get_card

            try:
                card = get_card(str(self.dataset))
            except KeyError as exc:
                raise ValueError(f"dataset: {exc.args[0]}") from None
            if self.task_type not in (None, card.task_type):
                raise ValueError(f"task_type: dataset {card.name} is a {card.task_type} set, got {self.task_type!r} "
                                 "(leave task_type out: the dataset's card sets it)")
            missing = [c for c in self.target_columns if c not in card.target_columns]
            if missing:
                shown = ", ".join(repr(c) for c in card.target_columns[:20])
                more = f" and {len(card.target_columns) - 20} more" if len(card.target_columns) > 20 else ""
                raise ValueError(f"target_columns: dataset {card.name} has no target column(s) {missing}; "
                                 f"its targets: {shown}{more}")
            if card.task_type not in choices["task_type"]:
                raise ValueError(f"dataset: {card.name} is a {card.task_type} set; molgraph train fits "
                                 f"{' and '.join(choices['task_type'])} sets")
            task_type, n_targets = card.task_type, len(self.target_columns or card.target_columns)
        if len(set(self.target_columns)) != len(self.target_columns):
            raise ValueError(f"target_columns repeat: {self.target_columns}")
        _check_choice("featurizer", self.featurizer, choices["featurizer"])
        if not (self.n_jobs >= 1 or self.n_jobs == -1):
            raise ValueError(f"n_jobs must be >= 1 (or -1: all cores), got {self.n_jobs}")
        self.molecule_featurizers = [MOLECULE_FEATURIZER_ALIASES.get(n, n) for n in self.molecule_featurizers]
        for name in self.molecule_featurizers:
            if is_learned(name):
                check_learned_name(name)
            elif name not in MOLECULE_FEATURIZERS:
                raise ValueError(f"unknown molecule featurizer {name!r}; molecule_featurizers must be among "
                                 f"{', '.join(MOLECULE_FEATURIZERS)}, ngram (W fitted on the training split) "
                                 "or ngram:MODEL.npz")
        if len(set(self.molecule_featurizers)) != len(self.molecule_featurizers):
            raise ValueError(f"molecule featurizers repeat: {self.molecule_featurizers}")
        return task_type, n_targets

    def _check_split(self, choices: Mapping[str, tuple[str, ...]], n_targets: int) -> None:
        from molgraph.data.splits import check_sizes

        _check_choice("split", self.split, choices["split"])
        try:
            check_sizes(self.split_sizes)
        except ValueError as exc:
            raise ValueError(f"split_sizes: {exc}") from None
        for name, seed in (("data_seed", self.data_seed), ("seed", self.seed)):
            if not 0 <= seed < 2**32:  # numpy's and Lightning's seed range
                raise ValueError(f"{name} must be in [0, 2**32), got {seed}")
        if self.split_file is None:
            # with a split file the file decides; the runner refuses an empty validation part then
            if self.split_sizes[1] <= 0:
                raise ValueError(f"split_sizes: the validation fraction must be > 0 (it selects the best epoch), "
                                 f"got {self.split_sizes}")
            if self.split == "stratified" and n_targets != 1:
                raise ValueError(f"split: the stratified split needs exactly one target, got {n_targets}")

    def _check_model(self, choices: Mapping[str, tuple[str, ...]]) -> None:
        _check_choice("model", self.model, choices["model"])
        for name, low in (("hidden_dim", 1), ("depth", 1), ("ffn_hidden_dim", 1), ("ffn_layers", 0)):
            value = getattr(self, name)
            if value is not None and value < low:
                raise ValueError(f"{name} must be >= {low}, got {value}")
        if self.readout is not None:
            _check_choice("readout", self.readout, choices["readout"])
        for name in ("dropout", "output_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.norm is not None:
            _check_choice("norm", self.norm, choices["norm"])
        if self.gcn_propagation is not None:
            _check_choice("gcn_propagation", self.gcn_propagation, choices["gcn_propagation"])
        # settings of some models only: refused for the others rather than silently ignored
        for key in ("norm", "norm_eps", "batch_norm"):
            if getattr(self, key) is not None and self.model == "dmpnn":
                raise ValueError(f"{key} applies to the gin and gcn models; the D-MPNN has no normalization layers")
        if self.residual is not None and self.model == "dmpnn":
            raise ValueError("residual applies to the gin and gcn models, not the D-MPNN")
        if self.norm_eps is not None and not self.norm_eps > 0:
            raise ValueError(f"norm_eps must be > 0, got {self.norm_eps}")
        # batch_norm is the older switch for norm = batch | none; the model follows norm when both are given
        if self.batch_norm is not None and self.norm not in (None, "batch" if self.batch_norm else "none"):
            raise ValueError(f"batch_norm = {self.batch_norm} contradicts norm = {self.norm!r}: give norm alone")
        if self.gcn_propagation is not None and self.model != "gcn":
            raise ValueError(f"gcn_propagation applies to the gcn model, not {self.model!r}")
        for key in ("gin_message_activation", "gin_last_activation"):
            if getattr(self, key) is not None and self.model != "gin":
                raise ValueError(f"{key} applies to the gin model, not {self.model!r}")

    def _check_optimization(self, choices: Mapping[str, tuple[str, ...]], task_type: str) -> None:
        from molgraph.train.metrics import METRICS, default_metrics
        from molgraph.train.optim import check_optimizer, check_schedule

        for name, low in (("epochs", 1), ("batch_size", 1), ("ensemble_size", 1), ("mc_dropout_samples", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")
        check_optimizer(self.optimizer)
        check_schedule(self.schedule, init_lr=self.init_lr, max_lr=self.max_lr, final_lr=self.final_lr)
        for name in ("weight_decay", "warmup_epochs"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 (or left out: no clipping), got {self.grad_clip}")
        for name in self.metrics:
            _check_choice("metrics", name, choices["metrics"])
            if task_type not in METRICS[name].task_types:
                fitting = ", ".join(n for n in choices["metrics"] if task_type in METRICS[n].task_types)
                raise ValueError(f"metrics: {name!r} does not apply to a {task_type} task; "
                                 f"for {task_type} choose from {fitting}")
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError(f"metrics repeat: {self.metrics}")
        # the epoch is selected by a value the task logs: the losses, or val_<metric> of a reported metric
        logged = ["val_loss", "train_loss"] + [f"val_{m}" for m in (self.metrics or default_metrics(task_type))]
        _check_choice("monitor", self.monitor, tuple(logged))
        if self.mc_dropout_samples and self.dropout == 0.0:
            raise ValueError("mc_dropout_samples needs dropout > 0")

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


_PATH_SETTINGS = ("input", "data_root", "split_file", "output_dir")


def _is_int(value: Any) -> bool:
    # bool is an Integral too, but `epochs = true` is a mistake, not 1
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _coerce(setting: str, value: Any, hint: Any) -> Any:
    """``value`` checked against the field type ``hint`` and normalized (ints, floats, lists)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]  # TrainConfig's unions are `X | None`
        return _coerce(setting, value, inner)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{setting} must be a list of {args[0].__name__} values, got {value!r}")
        return [_coerce(setting, v, args[0]) for v in value]
    if hint is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{setting} must be true or false, got {value!r}")
        return bool(value)
    if hint is int:
        if not _is_int(value):
            raise ValueError(f"{setting} must be an integer, got {value!r}")
        return int(value)
    if hint is float:
        if not (_is_int(value) or isinstance(value, numbers.Real) and not isinstance(value, bool)):
            raise ValueError(f"{setting} must be a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ValueError(f"{setting} must be a finite number, got {value!r}")
        return float(value)
    if hint is str:
        if setting in _PATH_SETTINGS and isinstance(value, os.PathLike):
            return os.fspath(value)  # a Path is fine; the saved settings file holds its text
        if not isinstance(value, str):
            raise ValueError(f"{setting} must be a string, got {value!r}")
        return value
    raise TypeError(f"{setting}: no check for type {hint!r}")  # a new field type: add its check here


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
