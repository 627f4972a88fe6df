"""The property method: SMILES -> graph -> graph-level properties (D-MPNN, GIN, GCN), as a :class:`Method`.

Rooms: ``config`` (the settings), ``model`` (``PropertyModel`` and the presets), ``task``
(``PropertyTask``: loss, target scaling, metrics), ``prepare`` (featurize, molecule features,
split), ``predict`` (``Predictor``: a model file -> predictions), ``cli`` (``molgraph
predict``/``evaluate`` for property models), and this module, which joins them for the trainer.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from molgraph.train.method import Method, Prepared
from molgraph.methods.property.config import TRANSFORMER_SETTINGS, PropertyConfig

__all__ = ["PropertyMethod", "PropertyPrepared", "apply_calibration", "describe_uncertainty", "model_config_for",
           "residual_for"]


@dataclass
class PropertyPrepared(Prepared):
    """The featurized data, split, scalers and network config of a property run."""

    data: Any = None
    split: Any = None
    target_scaler: Any = None
    extra_scaler: Any = None
    learned: Any = None
    batcher: Any = None
    model_config: Any = None


def residual_for(config: TrainConfig) -> bool:
    """Residual connections of gin/gcn: ``config.residual``, or by default on for the per-graph norms.

    A per-graph norm on the last layer removes each molecule's mean, so a mean readout needs the
    residual stream to tell molecules apart (the GraphNorm reference's molecule models have it);
    with batch norm or none the default stays off, as in the OGB baselines.
    """
    if config.residual is not None:
        return bool(config.residual)
    return config.norm in ("graph", "instance")


def model_config_for(config: PropertyConfig, data: Any, extra_dim: int) -> dict[str, Any]:
    """Constructor kwargs of the network: preset, then the settings that were given."""
    from molgraph.methods.property.model import MODEL_PRESETS, PropertyModel

    preset = dict(MODEL_PRESETS[config.model])
    feat = data.featurizer
    preset.update(
        num_tasks=len(data.target_names),
        atom_dim=feat.atom_dim,
        bond_dim=feat.bond_dim,
        extra_dim=extra_dim,
        dropout=float(config.dropout),
        output_dropout=float(config.output_dropout),
        ffn_layers=int(config.ffn_layers),
    )
    if feat.atom_featurizer.encoding == "index":
        preset["atom_cardinalities"] = list(feat.atom_featurizer.cardinalities)
        preset["bond_cardinalities"] = list(feat.bond_featurizer.cardinalities)
    for key in ("hidden_dim", "depth", "readout", "ffn_hidden_dim", "batch_norm", "norm"):
        value = getattr(config, key)
        if value is not None:
            preset[key] = value
    if preset["encoder"] in ("gine", "gcn"):
        preset["residual"] = residual_for(config)
        if config.norm_eps is not None:
            preset["norm_eps"] = float(config.norm_eps)
    if config.gcn_propagation is not None:
        preset["gcn_propagation"] = config.gcn_propagation
    for key in ("gin_message_activation", "gin_last_activation"):
        if getattr(config, key) is not None:
            preset[key] = bool(getattr(config, key))
    options = {k: getattr(config, k) for k in TRANSFORMER_SETTINGS if getattr(config, k) is not None}
    if options:
        preset["encoder_options"] = {**preset.get("encoder_options", {}), **options}
    if "ffn_hidden_dim" not in preset or config.ffn_hidden_dim is None:
        preset["ffn_hidden_dim"] = preset.get("hidden_dim", 300)
    from molgraph.methods.property.uncertainty import head_for

    preset["head"] = head_for(config.uncertainty_method(), data.task_type)
    return PropertyModel(**preset).config  # normalized, JSON-able


class PropertyMethod(Method):
    """Graph-level property prediction (regression or binary multi-task classification)."""

    name = "property"
    help = "graph-level properties from SMILES: D-MPNN, GIN, GCN (the default method)"
    config_class = PropertyConfig
    run_files = ("splits.json", "rejects.csv", "test_predictions.csv", "parity_test.png", "roc_test.png",
                 "calibration_test.png")
    example_noun = "molecules"

    def validate(self, config: PropertyConfig) -> None:
        config.check_combinations()

    def logged_values(self, config: PropertyConfig) -> tuple[str, ...]:
        return config.logged_values()

    def monitor_mode(self, monitor: str) -> str:
        from molgraph.train.metrics import higher_is_better

        if monitor in ("val_loss", "train_loss"):
            return "min"
        return "max" if higher_is_better(monitor.removeprefix("val_")) else "min"

    # -- a run ---------------------------------------------------------------------------------------
    def prepare(self, config: PropertyConfig, *, run_dir: Path, resume: bool, say: Callable[[str], None]) -> PropertyPrepared:
        """Data, split, scalers, loaders and network config; reads, but writes nothing in ``run_dir``.

        Everything that can fail on the data (a missing column, an unreadable split file, a model
        that cannot be built) fails here, before the run folder is created.
        """
        import torch

        from molgraph.data.loader import GraphBatcher
        from molgraph.data.splits import Split
        from molgraph.methods.property.prepare import (
            LazySmiles, add_learned_features, prepare_data, scale_extra, split_from_rows, split_positions,
        )
        from molgraph.train.datamodule import GraphDataModule
        from molgraph.train.scaling import StandardScaler

        data = prepare_data(config, progress=config.progress)
        say(f"data: {len(data)} molecules featurized, {len(data.rejects)} rejected ({data.source})")
        splits_file = run_dir / "splits.json"
        if resume and splits_file.is_file():
            split = split_from_rows(Split.load(splits_file), data.rows, source=splits_file)
        else:
            split = split_positions(config, data)
        if len(split.val) == 0:
            raise ValueError("the validation set is empty: it selects the best epoch; give split sizes with val > 0")
        say(f"split ({split.method}): train {len(split.train)}, val {len(split.val)}, test {len(split.test)}")

        train_idx = torch.as_tensor(split.train)
        target_scaler = None
        if data.task_type == "regression":
            target_scaler = StandardScaler().fit(data.y[train_idx].numpy())
        learned = add_learned_features(config, data, split.train)
        extra, extra_scaler = None, None
        if data.extra_raw is not None:
            extra_scaler = StandardScaler().fit(data.extra_raw[split.train])
            extra = scale_extra(data.extra_raw, extra_scaler)
        # sharded input batches itself, from the mapped shards (targets included); else gather in memory
        batcher = data.graphs if isinstance(data.smiles, LazySmiles) else GraphBatcher(data.graphs, data.y, extra)
        dm = GraphDataModule(
            batcher, split.train, split.val, split.test,
            batch_size=config.batch_size, data_seed=config.data_seed, num_workers=config.num_workers,
        )
        model_config = model_config_for(config, data, 0 if extra is None else extra.shape[1])
        return PropertyPrepared(
            datamodule=dm, n_train=len(split.train), data=data, split=split, target_scaler=target_scaler,
            extra_scaler=extra_scaler, learned=learned, batcher=batcher, model_config=model_config,
        )

    def resolve(self, config: PropertyConfig, prepared: PropertyPrepared) -> None:
        """The preset's network sizes, the data's task type and targets, the task type's metrics."""
        from molgraph.train.metrics import default_metrics

        data, mc = prepared.data, prepared.model_config
        config.task_type = data.task_type
        config.target_columns = list(data.target_names)
        config.uncertainty = config.uncertainty_method()
        if config.uncertainty == "mc-dropout" and not config.mc_dropout_samples:
            config.mc_dropout_samples = 10
        if not config.metrics:
            config.metrics = list(default_metrics(data.task_type))
        for key in ("hidden_dim", "depth", "readout", "ffn_hidden_dim"):
            setattr(config, key, mc[key])
        if mc["encoder"] in ("gine", "gcn"):  # the settings that only these encoders take
            config.norm = mc["norm"] or ("batch" if mc["batch_norm"] else "none")
            config.batch_norm = None  # norm now says it
            config.residual = bool(mc["residual"])
        if mc["encoder"] == "gcn":
            config.gcn_propagation = mc["gcn_propagation"]
        if mc["encoder"] == "gine":
            config.gin_message_activation = bool(mc["gin_message_activation"])
            config.gin_last_activation = bool(mc["gin_last_activation"])
        if mc["encoder"] == "graph_transformer":  # the run folder records the encoder's defaults too
            from molgraph.nn.graph_transformer import build_graph_transformer_defaults

            used = {**build_graph_transformer_defaults(), **mc.get("encoder_options", {})}
            for key in TRANSFORMER_SETTINGS:
                setattr(config, key, used[key])

    def write_start(self, config: PropertyConfig, prepared: PropertyPrepared, run_dir: Path) -> None:
        """Rejected molecules and the split (file rows)."""
        from molgraph.methods.property.prepare import split_to_rows
        from molgraph.train.runner import write_csv

        data = prepared.data
        if data.rejects:
            write_csv(run_dir / "rejects.csv", ["row", "smiles", "reason"],
                      [(r.index, r.input, r.reason) for r in data.rejects])
        split_to_rows(prepared.split, data.rows).save(run_dir / "splits.json")

    def build_model(self, config: PropertyConfig, prepared: PropertyPrepared) -> Any:
        from molgraph.methods.property.model import PropertyModel

        return PropertyModel(**prepared.model_config)

    def build_task(self, config: PropertyConfig, prepared: PropertyPrepared, model: Any, *, member: int) -> Any:
        from molgraph.methods.property.task import PropertyTask

        if config.compile:
            # in place: the parameters keep their names, so checkpoints and model files do not change;
            # dynamic shapes because every batch has another number of atoms and bonds
            model.encoder.compile(dynamic=True)
        return PropertyTask(
            model,
            task_type=prepared.data.task_type,
            target_names=prepared.data.target_names,
            target_scaler=prepared.target_scaler,
            metrics=config.metrics or None,
            optimizer=config.optimizer,
            weight_decay=config.weight_decay,
            schedule=config.schedule,
            warmup_epochs=config.warmup_epochs,
            init_lr=config.init_lr,
            max_lr=config.max_lr,
            final_lr=config.final_lr,
            seed=config.seed + member,
            head=prepared.model_config.get("head", "point"),
            evidential_lambda=config.evidential_lambda,
        )

    def callbacks(self, config: PropertyConfig, prepared: PropertyPrepared, run_dir: Path, *, member: int) -> list[Any]:
        out: list[Any] = []
        if config.task_affinity_every or config.transference:
            from molgraph.train.task_grouping import TaskAffinityCallback, TransferenceCallback

            if config.task_affinity_every:
                where = run_dir if member == 0 else run_dir / "checkpoints" / f"member_{member}"
                out.append(TaskAffinityCallback(config.task_affinity_every, where, prepared.data.target_names))
            if config.transference:
                out.append(TransferenceCallback(seed=config.seed + member))
        return out

    def finish(self, config: PropertyConfig, prepared: PropertyPrepared, models: list[Any], run_dir: Path,
               *, say: Callable[[str], None]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Validation and test metrics (uncertainty metrics too), calibration fitted on the validation
        split, test predictions, plots; the model file's section."""
        import torch

        from molgraph.methods.ngram.features import learned_state
        from molgraph.methods.property.predict import predict_values
        from molgraph.methods.property.prepare import split_to_rows
        from molgraph.train.calibration import fit_calibrator
        from molgraph.train.metrics import compute_metrics, default_metrics
        from molgraph.train.uncertainty_metrics import uncertainty_metrics

        data, split, batcher, target_scaler = prepared.data, prepared.split, prepared.batcher, prepared.target_scaler
        head = prepared.model_config.get("head", "point")
        pred_kwargs = dict(task_type=data.task_type, target_scaler=target_scaler,
                           mc_dropout_samples=config.mc_dropout_samples, seed=config.seed, head=head)
        metric_names = config.metrics or default_metrics(data.task_type)
        results: dict[str, Any] = {}
        preds: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        labels: dict[str, np.ndarray] = {}
        for part, idx in (("val", split.val), ("test", split.test)):
            if len(idx) == 0:
                continue
            mean, std = predict_values(models, batcher, idx, **pred_kwargs)
            preds[part] = (mean, std)
            labels[part] = data.y[torch.as_tensor(idx)].numpy()
            results[part] = compute_metrics(mean, labels[part], data.task_type, metric_names, data.target_names)
            results[part]["n"] = int(len(idx))
        # the uncertainty, raw and (when asked) calibrated on the validation split
        calibrator = None
        if config.calibration is not None and "val" in preds:
            calibrator = fit_calibrator(config.calibration, data.task_type, labels["val"], *preds["val"])
        results["uncertainty"] = {"method": describe_uncertainty(config, head)}
        for part in preds:
            mean, std = preds[part]
            one = {"raw": uncertainty_metrics(data.task_type, labels[part], mean, std)}
            if calibrator is not None:
                cmean, cstd = apply_calibration(calibrator, mean, std)
                one["calibrated"] = uncertainty_metrics(data.task_type, labels[part], cmean, cstd)
            results["uncertainty"][part] = one
        if config.ensemble_size > 1:
            results["members"] = []
            for m in models:
                one = {}
                for part, idx in (("val", split.val), ("test", split.test)):
                    if len(idx):
                        mean, _ = predict_values([m], batcher, idx, task_type=data.task_type, target_scaler=target_scaler,
                                                 head=head)
                        one[part] = compute_metrics(mean, data.y[torch.as_tensor(idx)].numpy(), data.task_type,
                                                    metric_names, data.target_names)
                results["members"].append(one)
        results["primary_metric"] = metric_names[0]
        results["n_rejected"] = len(data.rejects)
        if "test" in preds:
            mean, std = preds["test"]
            prob = None
            if calibrator is not None:
                cmean, cstd = apply_calibration(calibrator, mean, std)
                prob = cmean if data.task_type == "classification" else None
                std = cstd
            _write_predictions(run_dir / "test_predictions.csv", data, split.test, mean, std, prob)
        extra_scaler, learned = prepared.extra_scaler, prepared.learned
        section = {
            "model_class": "PropertyModel",
            "model_config": prepared.model_config,
            "featurizer": data.featurizer.to_config(),
            "task_type": data.task_type,
            "target_names": data.target_names,
            "target_scaler": target_scaler.to_dict() if target_scaler else None,
            "molecule_features": (
                {"featurizers": list(config.molecule_featurizers), "names": data.extra_names,
                 "scaler": extra_scaler.to_dict(),
                 "learned": {name: learned_state(est) for name, est in learned.items()}}
                if extra_scaler is not None else None
            ),
            "split": split_to_rows(split, data.rows).to_dict(),
            "smiles_column": config.smiles_column,
            "mc_dropout_samples": int(config.mc_dropout_samples),
            "uncertainty": describe_uncertainty(config, head),
            "calibration": calibrator.to_dict() if calibrator is not None else None,
        }
        _plots(run_dir, data, split, preds, calibrator)
        return results, section

    def search_config(self, config: PropertyConfig, study_dir: Path, *, say: Callable[[str], None]) -> PropertyConfig:
        """The recipe's split with an empty test part, as ``study_dir/search_split.json`` (file rows), and
        ``config`` pointed at it: the trials of ``molgraph hpopt`` train and select on the recipe's own
        train and validation rows and never see a test row.

        A split that reads labels (``stratified``) reads them all, test rows included, to draw the
        parts; give such a split as a file (``--split-file``) to keep the test labels out of it.
        """
        import copy

        from molgraph.data.splits import Split
        from molgraph.methods.property.prepare import prepare_data, split_positions, split_to_rows

        data = prepare_data(config, progress=False)
        rows = split_to_rows(split_positions(config, data), data.rows)
        hidden = Split(rows.train, rows.val, np.zeros(0, dtype=np.int64), f"search:{rows.method}", rows.seed,
                       rows.sizes, {"n_test_rows_left_out": int(len(rows.test))})
        path = study_dir / "search_split.json"
        if path.is_file():
            if Split.load(path) != hidden:
                raise ValueError(f"{path} holds another split than the recipe's: choose a new -o STUDY_DIR")
        else:
            hidden.save(path)
        say(f"search split ({rows.method}): train {len(rows.train)}, val {len(rows.val)}; "
            f"{len(rows.test)} test rows left out of every trial")
        out = copy.deepcopy(config)
        out.split_file = str(path)
        return out

    # -- a model file --------------------------------------------------------------------------------
    def load(self, section: dict[str, Any], payload: dict[str, Any]) -> Any:
        from molgraph.methods.property.predict import Predictor

        return Predictor.from_section(section, payload)

    def add_predict_arguments(self, parser: argparse.ArgumentParser) -> None:
        from molgraph.methods.property.cli import add_predict_arguments

        add_predict_arguments(parser)

    def predict_command(self, predictor: Any, args: argparse.Namespace) -> int:
        from molgraph.methods.property.cli import predict_command

        return predict_command(predictor, args)


def describe_uncertainty(config: PropertyConfig, head: str) -> str:
    """What gives the std (or the probability): e.g. ``mve``, ``evidential+ensemble(5)``,
    ``mc-dropout(10)``, ``ensemble(5)+zscale``; ``none`` for a single point model without calibration."""
    parts = []
    if head != "point":
        parts.append(head)
    if config.ensemble_size > 1:
        parts.append(f"ensemble({config.ensemble_size})")
    if config.mc_dropout_samples:
        parts.append(f"mc-dropout({config.mc_dropout_samples})")
    if config.calibration is not None:
        parts.append(config.calibration)
    return "+".join(parts) or "none"


def apply_calibration(calibrator: Any, mean: np.ndarray, std: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """``(mean, std)`` after ``calibrator``: regression calibrates the std, classification the probability
    (``mean``), each in place of the raw one."""
    if calibrator.task_type == "regression":
        return mean, (calibrator.apply_std(std) if std is not None else None)
    return calibrator.apply_prob(mean), std


def _write_predictions(path: Path, data: Any, idx: np.ndarray, mean: np.ndarray, std: np.ndarray | None,
                       prob: np.ndarray | None = None) -> None:
    """``row, smiles`` and per target ``T, T_pred[, T_std][, T_prob]`` (``T_prob``: the calibrated probability)."""
    header = ["row", "smiles"]
    for name in data.target_names:
        header += [name, f"{name}_pred"] + ([f"{name}_std"] if std is not None else []) + (
            [f"{name}_prob"] if prob is not None else [])
    rows = data.rows
    y = data.y.numpy()
    out = []
    for k, i in enumerate(idx):
        line: list[Any] = [int(rows[i]), data.smiles[i]]
        for t in range(len(data.target_names)):
            true = y[i, t]
            line += ["" if np.isnan(true) else float(true), float(mean[k, t])]
            if std is not None:
                line.append(float(std[k, t]))
            if prob is not None:
                line.append(float(prob[k, t]))
        out.append(line)
    from molgraph.train.runner import write_csv

    write_csv(path, header, out)



def _plots(run_dir: Path, data: Any, split: Any, preds: dict, calibrator: Any = None) -> None:
    """A parity (regression) or ROC (classification) plot of the test set, and its calibration plot
    (regression: when there is a std; calibrated when a calibration was fitted); a failure only warns."""
    import warnings

    import torch

    from molgraph.train import plots

    try:
        if "test" in preds:
            y = data.y[torch.as_tensor(split.test)].numpy()
            mean, std = preds["test"]
            if data.task_type == "regression":
                plots.plot_parity(y, mean, data.target_names, run_dir / "parity_test.png")
            else:
                plots.plot_roc(y, mean, data.target_names, run_dir / "roc_test.png")
            if data.task_type == "classification" or std is not None:
                title = "calibration (test)"
                if calibrator is not None:
                    mean, std = apply_calibration(calibrator, mean, std)
                    title += f", {calibrator.method} fitted on validation"
                plots.plot_calibration(y, mean, std, data.task_type, data.target_names,
                                       run_dir / "calibration_test.png", title=title)
    except Exception as exc:  # noqa: BLE001  a plotting failure must not lose a trained model
        warnings.warn(f"plots were not written: {exc}", stacklevel=2)
