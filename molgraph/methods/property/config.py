"""Settings of the property method: sections ``[data]``, ``[splits]``, ``[network]``, ``[evaluation]``, ``[train]``.

A recipe file (``models/*.toml``) holds these settings, in tables or flat (table names are not
trusted: each setting goes to the section that declares it, so molgraph 0.1 recipes read
unchanged). Command-line values override the file; the resolved settings are written to
``RUN_DIR/config.toml`` so ``molgraph train --resume RUN_DIR`` needs nothing else.

:meth:`PropertyConfig.validate` checks every setting (names of choices against the registries,
types, ranges, combinations) before a run writes anything, so a misspelt name never leaves a run
folder behind. The ``molgraph train`` options are generated from these declarations.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from molgraph.registry import (
    FEATURIZERS,
    METRICS,
    MODELS,
    MOLECULE_FEATURIZERS,
    NORMS,
    PROPAGATIONS,
    READOUTS,
    TASK_TYPES,
)
from molgraph.train.settings import (
    SectionedConfig,
    TrainerSettings,
    check_choices,
    check_types,
    config_from_dict,
    flatten,
    load_toml,
    save_toml,
    section_of,
    setting,
)

__all__ = ["PropertyConfig", "TrainConfig", "load_config_file", "resolve_config", "save_config", "setting_choices"]


def _split_names() -> tuple[str, ...]:
    from molgraph.data.splits import SPLIT_METHODS

    return tuple(SPLIT_METHODS)


class _SplitNames:
    """The molecule splits ``make_split`` accepts (read on use: the splits module imports RDKit)."""

    def __contains__(self, value: object) -> bool:
        return value in _split_names()

    def __iter__(self):
        return iter(_split_names())


@dataclass
class DataSection:
    """Where the molecules and targets come from, and how they become graphs."""

    input: str | None = setting(None, flags=("-i", "--data-path"),
                                help="CSV/TSV file with SMILES and targets, or a folder of featurized shards "
                                     "(`molgraph featurize -o DIR/ --target-columns ...`, read lazily)", default_text="none: give -i or --dataset",
                                path=True)
    smiles_column: str | None = setting(None, flags=("-s", "--smiles-columns"), help="SMILES column", default_text="none: required with -i")
    target_columns: list[str] = setting(default_factory=list, help="target column(s)")
    dataset: str | None = setting(None, help="a registry dataset instead of -i (see `molgraph datasets list`)",
                                default_text="none")
    data_root: str | None = setting(None, help="folder holding data-root datasets (default: $MOLGRAPH_DATA)",
                                    path=True)
    task_type: str | None = setting(None, flags=("-t",), choices=TASK_TYPES, metavar="TASK_TYPE", help="%(choices)s",
                                default_text="the dataset card's; required with -i")
    featurizer: str = setting("multihot", choices=FEATURIZERS, help="atom/bond features: %(choices)s (default: multihot)")
    molecule_featurizers: list[str] = setting(
        default_factory=list, flags=("--features-generators",), metavar="NAME",
        help="extra molecule-level features: rdkit_descriptors, morgan, morgan_count (rdkit_2d and morgan_binary: "
             "chemprop's names), ngram (N-gram graph, W fitted on the training split) or ngram:MODEL.npz (a fitted "
             "N-gram model, from `molgraph ngram embed --save-model`)")
    n_jobs: int = setting(1, help="featurization processes")
    cache: bool = setting(True, help="read and write the featurized molecules in the cache folder "
                                     "($MOLGRAPH_CACHE; `molgraph cache info`)")


@dataclass
class SplitSection:
    """How the molecules are split into train/validation/test."""

    split: str = setting("random", flags=("--split-type",), choices=_SplitNames(),
                         help="%(choices)s (default: random; ogb_scaffold: the rule of OGB's ogbg-mol* splits, "
                              "ties latest first)")
    split_sizes: list[float] = setting(default_factory=lambda: [0.8, 0.1, 0.1], nargs=3,
                                       metavar=("TRAIN", "VAL", "TEST"), help="default: 0.8 0.1 0.1")
    split_file: str | None = setting(None, flags=("--splits-file",), help="a split file (JSON or CSV, file rows)", default_text="none: --split decides",
                                     path=True)
    data_seed: int = setting(0, help="seed of the split and of the batch order (default 0)")


#: ModelSection settings that only the graph_transformer model takes (its encoder_options)
TRANSFORMER_SETTINGS = ("heads", "pe", "pe_kind", "pe_dim", "norm_first")


@dataclass
class ModelSection:
    """The network: a preset (``model``) and the settings that override it."""

    model: str = setting("dmpnn", choices=MODELS,
                         help="%(choices)s (default: dmpnn; gin, gcn: Hu et al. 2020 baselines)")
    # the search ranges (molgraph hpopt) are about chemprop v2's hpopt space, narrowed for a CPU budget
    hidden_dim: int | None = setting(None, flags=("--message-hidden-dim",), minimum=1, help="encoder width",
                                    default_text="the preset's: 300", search=("int", 100, 600, 50))
    depth: int | None = setting(None, help="message-passing steps", minimum=1,
                               default_text="the preset's: dmpnn 3, gin/gcn 5", search=("int", 2, 6))
    dropout: float = setting(0.0, search=("float", 0.0, 0.4, 0.05))
    readout: str | None = setting(None, flags=("--aggregation",), choices=READOUTS,
                                  help="molecule readout: %(choices)s (norm: sum / 100, what chemprop uses)",
                                  default_text="the preset's: mean")
    ffn_hidden_dim: int | None = setting(None, minimum=1, help="width of the head's hidden layers",
                                        default_text="hidden_dim", search=("int", 100, 600, 50))
    ffn_layers: int = setting(1, flags=("--ffn-num-layers",), minimum=0, search=("int", 1, 3))
    batch_norm: bool | None = setting(None, cli=False)  # older switch for norm = batch | none (files only)
    norm: str | None = setting(None, choices=NORMS,
                               help="normalization of gin and gcn after each linear map: %(choices)s (graph: "
                                    "GraphNorm, Cai et al. 2021; default batch; not for dmpnn)")
    # residual connections in gin/gcn; None: on for the per-graph norms (graph, instance), as in the
    # GraphNorm reference, off otherwise (the OGB baselines)
    residual: bool | None = setting(None, help="residual connections in gin and gcn (default: on with --norm graph "
                                               "or instance, else off)")
    # GraphNorm divides by sqrt(var + eps) per molecule, so a feature that is nearly constant within
    # a small molecule is amplified up to 1/sqrt(eps)
    norm_eps: float | None = setting(None, help="eps of the gin/gcn norms (default 1e-5); GraphNorm on small "
                                                "molecules may want more")
    gcn_propagation: str | None = setting(None, choices=PROPAGATIONS,
                                          help="the gcn model's layer: symmetric (Kipf & Welling, the OGB baseline; "
                                               "default) or mean (the GraphNorm reference's molecule GCN)",
                                          default_text="symmetric")
    gin_message_activation: bool | None = setting(None, help="the gin model's ReLU on each message h_u + e_uv "
                                                             "(default on, GINEConv; off: the GraphNorm reference's "
                                                             "molecule GIN)")
    gin_last_activation: bool | None = setting(None, help="the gin model's ReLU after its last layer (default on; "
                                                          "off: Hu et al.'s code and the GraphNorm reference's)")
    heads: int | None = setting(None, minimum=1, help="attention heads of the graph_transformer model (default 4)")
    pe: str | None = setting(None, choices=("tupe", "add", "none"),
                             help="positions in the graph_transformer model: tupe (untied position attention, "
                                  "Ke et al. 2021; default), add (added to the inputs) or none")
    pe_kind: str | None = setting(None, choices=("rw", "lap"),
                                  help="the graph_transformer's positional encoding: rw (random-walk; default) or "
                                       "lap (Laplacian eigenvectors, signs flipped at random in training)")
    pe_dim: int | None = setting(None, minimum=1, help="width of the graph_transformer's positional encoding "
                                                       "(default 16)")
    norm_first: bool | None = setting(None, help="Pre-LN blocks in the graph_transformer model (default on; "
                                                 "--no-norm-first: Post-LN)")
    output_dropout: float = setting(0.0, help="dropout on the raw outputs (logits) while training (default 0; the "
                                              "GraphNorm reference's molecule models use 0.5)")
    # measured on the 2-core CPU (docs/uncertainty.md): no per-epoch gain for the D-MPNN or GIN there,
    # so it stays off by default
    compile: bool = setting(False, help="torch.compile the encoder for training (dynamic shapes; the first "
                                        "epoch pays the compilation; predictions run eager)")


@dataclass
class EvalSection:
    """What is reported and how predictions carry uncertainty."""

    metrics: list[str] = setting(default_factory=list, flags=("--metric",), choices=METRICS,
                                 help="%(choices)s (those of the task type); the first one is the primary metric",
                                 default_text="regression: rmse mae r2; classification: roc_auc prc_auc accuracy")
    mc_dropout_samples: int = setting(0, help="MC-dropout passes at prediction (needs --dropout)", minimum=0)
    uncertainty: str | None = setting(
        None, choices=("none", "ensemble", "mc-dropout", "mve", "evidential", "dirichlet"), metavar="METHOD",
        help="none, ensemble (needs --ensemble-size > 1), mc-dropout (needs --dropout; 10 passes unless "
             "--mc-dropout-samples), mve (mean-variance head, regression), evidential (Normal-Inverse-Gamma "
             "head for regression, Dirichlet for classification), dirichlet (classification); mve, evidential "
             "and dirichlet combine with --ensemble-size > 1",
        default_text="from --ensemble-size and --mc-dropout-samples")
    evidential_lambda: float = setting(0.2, minimum=0, help="weight of the evidence regularizer of the evidential "
                                                            "and Dirichlet losses (default 0.2, chemprop v2's)")
    calibration: str | None = setting(
        None, choices=("zscale", "isotonic", "platt"), metavar="METHOD",
        help="calibration fitted on the validation split and stored in the model file: zscale or isotonic "
             "(regression, of the std), platt or isotonic (classification, of the probability)",
        default_text="none")


@dataclass
class MultitaskSection:
    """Multi-task training aids (Fifty et al.; ``molgraph.train.task_grouping``): per-task point heads only."""

    task_affinity_every: int = setting(
        0, minimum=0, help="record TAG lookahead inter-task affinities every N training steps into "
                           "task_affinity.json/.png in the run folder (0: off); molgraph task-groups RUN picks groups")
    transference: bool = setting(False, help="increased-transfer training: each step, the summed task gradient or "
                                             "its PCGrad projection, whichever lookahead lowers the batch loss more")


@dataclass(init=False, eq=False, repr=False)
class PropertyConfig(SectionedConfig):
    """Everything ``molgraph train --method property`` needs; setting names are the TOML keys.

    Data: ``input`` (CSV path) with ``smiles_column`` and ``target_columns``, or ``dataset`` (a
    registry name; its card supplies columns and task type); ``data_root`` for data-root sets.
    Units: learning rates per optimizer step; ``split_sizes`` fractions summing to 1.
    """

    # section names differ from every setting name (``split`` and ``model`` are settings)
    data: DataSection = field(default_factory=DataSection)
    splits: SplitSection = field(default_factory=SplitSection)
    network: ModelSection = field(default_factory=ModelSection)
    evaluation: EvalSection = field(default_factory=EvalSection)
    multitask: MultitaskSection = field(default_factory=MultitaskSection)
    train: TrainerSettings = field(default_factory=TrainerSettings)

    def validate(self) -> "PropertyConfig":
        """Check every setting before anything is read or written; returns self.

        Names of choices (against the registries), types, numeric ranges and combinations of
        settings are checked here, so that a mistake fails at once with a message naming the
        setting, the value and what is allowed, rather than minutes later inside Lightning with a
        half-written run folder. A ``dataset`` is looked up in the registry's cards (no data is
        read). Values are normalized in place: numbers to ``int`` / ``float``, tuples to lists,
        ``devices`` to a string, chemprop's featurizer names to ours. Hardware settings that only
        Lightning can judge are checked by :func:`molgraph.train.runner.check_trainer_settings`.
        """
        from molgraph.registry import METHODS
        from molgraph.train.runner import validate_config

        validate_config(self, METHODS["property"])
        return self

    # the checks of several settings together; called by PropertyMethod.validate
    def check_combinations(self) -> tuple[str, int]:
        """Returns the task type and the number of targets."""
        choices = setting_choices()
        task_type, n_targets = self._check_data(choices)
        self._check_split(choices, n_targets)
        self._check_model(choices)
        self._check_optimization(choices, task_type)
        self._check_multitask(n_targets)
        return task_type, n_targets

    def _check_multitask(self, n_targets: int) -> None:
        """Task affinities and transference compare per-task losses: several targets, point heads."""
        asked = [k for k in ("task_affinity_every", "transference") if getattr(self, k)]
        if not asked:
            return
        if n_targets == 1:  # 0: not known before the data is read
            raise ValueError(f"{asked[0]} compares tasks: it needs at least 2 targets, got {n_targets}")
        if self.uncertainty in ("mve", "evidential", "dirichlet"):
            raise ValueError(f"{asked[0]} works on one output per task; uncertainty = {self.uncertainty} adds "
                             "outputs: leave one of them out")

    def _check_data(self, choices: Mapping[str, tuple[str, ...]]) -> tuple[str, int]:
        """Input, dataset, columns, task type and featurizers; returns the task type and target count."""
        if (self.input is None) == (self.dataset is None):
            raise ValueError("give exactly one of input (-i FILE) and dataset (--dataset NAME)")
        if self.task_type is not None:
            _check_choice("task_type", self.task_type, choices["task_type"])
        if self.input is not None and is_shard_dir(self.input):
            # featurized shards (`molgraph featurize -o DIR/`): the manifest names the SMILES column,
            # the targets and the featurizer
            import json
            from pathlib import Path

            manifest = json.loads((Path(self.input) / "manifest.json").read_text())
            stored = list(manifest.get("target_columns") or [])
            if not stored:
                raise ValueError(f"input {self.input}: the shards hold no target column; featurize with "
                                 "--target-columns to train on them")
            if self.target_columns and list(self.target_columns) != stored:
                raise ValueError(f"target_columns: the shards in {self.input} hold {stored}; give those (or none)")
            if self.task_type is None:
                raise ValueError("input needs task_type (-t regression|classification)")
            if self.molecule_featurizers:
                raise ValueError("molecule_featurizers need every SMILES in memory; the sharded input is read "
                                 "lazily: featurize the molecule features into a CSV input instead")
            task_type, n_targets = self.task_type, len(stored)
        elif self.input is not None:
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
        from molgraph.methods.ngram.features import check_learned_name, is_learned

        # chemprop's names (aliases in the registry) become ours
        self.molecule_featurizers = [MOLECULE_FEATURIZERS.canonical(n) if n in MOLECULE_FEATURIZERS else n
                                     for n in self.molecule_featurizers]
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
        for key in TRANSFORMER_SETTINGS:
            if getattr(self, key) is not None and self.model != "graph_transformer":
                raise ValueError(f"{key} applies to the graph_transformer model, not {self.model!r}")

    def _check_optimization(self, choices: Mapping[str, tuple[str, ...]], task_type: str) -> None:
        """The metrics fit the task type (the trainer's own settings are TrainerSettings.validate's)."""
        for name in self.metrics:
            _check_choice("metrics", name, choices["metrics"])
            if task_type not in METRICS[name].task_types:
                fitting = ", ".join(n for n in choices["metrics"] if task_type in METRICS[n].task_types)
                raise ValueError(f"metrics: {name!r} does not apply to a {task_type} task; "
                                 f"for {task_type} choose from {fitting}")
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError(f"metrics repeat: {self.metrics}")
        if self.mc_dropout_samples and self.dropout == 0.0:
            raise ValueError("mc_dropout_samples needs dropout > 0")
        self._check_uncertainty(task_type)

    def _check_uncertainty(self, task_type: str) -> None:
        """The uncertainty method fits the task type and the other settings; so does the calibration."""
        from molgraph.methods.property.uncertainty import head_for
        from molgraph.train.calibration import CALIBRATIONS

        kind = self.uncertainty
        if kind is not None:
            head_for(kind, task_type)  # raises for mve / dirichlet on the wrong task type
            if kind == "ensemble" and self.ensemble_size < 2:
                raise ValueError("uncertainty = ensemble needs ensemble_size >= 2 (--ensemble-size K)")
            if kind == "mc-dropout" and self.dropout == 0.0:
                raise ValueError("uncertainty = mc-dropout needs dropout > 0 (--dropout)")
            if kind == "none" and (self.ensemble_size > 1 or self.mc_dropout_samples):
                raise ValueError("uncertainty = none contradicts ensemble_size > 1 / mc_dropout_samples > 0: "
                                 "leave uncertainty out (the spread is then reported) or drop those settings")
            if kind in ("mve", "evidential", "dirichlet") and self.output_dropout > 0:
                raise ValueError(f"output_dropout drops raw logits; it does not apply to uncertainty = {kind}")
        if self.calibration is not None:
            if self.calibration not in CALIBRATIONS[task_type]:
                raise ValueError(f"calibration {self.calibration!r} does not apply to {task_type}; choose one of "
                                 f"{', '.join(CALIBRATIONS[task_type])}")
            if task_type == "regression" and self.uncertainty_method() == "none":
                raise ValueError(f"calibration {self.calibration!r} calibrates a predicted std: give --uncertainty "
                                 "(mve, evidential, ensemble or mc-dropout)")

    def uncertainty_method(self) -> str:
        """The uncertainty the run gives: ``uncertainty`` when set, else read from the ensemble size and the
        MC-dropout samples (molgraph 0.1's way to ask for one)."""
        if self.uncertainty is not None:
            return self.uncertainty
        if self.ensemble_size > 1:
            return "ensemble"
        if self.mc_dropout_samples:
            return "mc-dropout"
        return "none"

    def logged_values(self) -> tuple[str, ...]:
        """What the property task logs: the losses and val_<metric> of each reported metric."""
        from molgraph.train.metrics import default_metrics

        task_type = self.task_type
        if task_type is None and self.dataset is not None:
            from molgraph.data.registry import get_card

            task_type = get_card(str(self.dataset)).task_type
        metrics = self.metrics or (default_metrics(task_type) if task_type in TASK_TYPES else [])
        return ("val_loss", "train_loss", *[f"val_{m}" for m in metrics])

def is_shard_dir(path: Any) -> bool:
    """Whether ``path`` is a folder of featurized shards (it holds ``manifest.json``)."""
    from pathlib import Path

    p = Path(path)
    return p.is_dir() and (p / "manifest.json").is_file()


def setting_choices() -> dict[str, tuple[str, ...]]:
    """The valid names of each setting that names a choice, read from the registries defining them."""
    from molgraph.registry import OPTIMIZERS, SCHEDULES

    return {
        "task_type": tuple(TASK_TYPES),
        "featurizer": tuple(FEATURIZERS),
        "split": _split_names(),
        "model": tuple(MODELS),
        "readout": tuple(READOUTS),
        "norm": tuple(NORMS),
        "gcn_propagation": tuple(PROPAGATIONS),
        "optimizer": tuple(OPTIMIZERS),
        "schedule": tuple(SCHEDULES),
        "metrics": tuple(METRICS),
    }


def _check_choice(setting_name: str, value: Any, names: tuple[str, ...]) -> None:
    """One message for every misnamed choice: the setting, the value given and the valid names."""
    if value not in names:
        raise ValueError(f"{setting_name} must be one of {', '.join(names)}; got {value!r}")


# molgraph 0.1's name of the config class
TrainConfig = PropertyConfig


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Settings from a TOML file (flattened); unknown keys are an error naming them."""
    values = load_toml(path)
    flat = flatten({k: v for k, v in values.items() if k != "method"})
    known = section_of(PropertyConfig)
    unknown = sorted(set(flat) - set(known))
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {unknown}; known: {sorted(known)}")
    return flat


def resolve_config(file_values: Mapping[str, Any] | None, overrides: Mapping[str, Any]) -> PropertyConfig:
    """File values, then command-line ``overrides`` (``None`` values mean "not given")."""
    merged = dict(file_values or {})
    merged.update({k: v for k, v in overrides.items() if v is not None})
    return config_from_dict(PropertyConfig, merged)


def save_config(config: PropertyConfig, path: str | os.PathLike[str]):
    """Write the resolved settings as TOML, one table per section (``None`` values left out)."""
    return save_toml(config, path, method="property",
                     header="resolved settings of this run; `molgraph train --resume RUN_DIR` reads them")
