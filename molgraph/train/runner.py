"""``molgraph train`` as a function: data -> split -> (ensemble of) Lightning fits -> run folder.

The run folder (``RUN_DIR``) gets ``config.toml``, ``splits.json`` (file rows), ``rejects.csv``
(when molecules could not be featurized), ``checkpoints/member_K/{best,last}.ckpt`` (Lightning,
for resuming), ``model.pt`` (the model file: everything needed to predict), ``metrics.json``,
``test_predictions.csv``, ``logs/`` (CSV, and TensorBoard when installed) and PNG plots.

Settings, hardware settings and the data are all checked before the folder is created. A new
run takes an empty or missing folder, or one left by a run of its own that failed before it
trained anything; anything else is refused with a message saying what to do (:func:`check_run_dir`).

Multi-process training (Lightning DDP) runs this same function in every process; only global
rank 0 writes files, and every rank must reach the same fits in the same order.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint

from molgraph.data.loader import GraphBatcher
from molgraph.data.sources import atomic_output
from molgraph.data.splits import Split
from molgraph.featurizers.batch import default_progress
from molgraph.methods.property.model import MODEL_PRESETS, PropertyModel
from molgraph.train.checkpoint import library_versions, safe_torch_load, save_model_file
from molgraph.train.config import TrainConfig, save_config
from molgraph.train.datamodule import GraphDataModule
from molgraph.train.metrics import compute_metrics, default_metrics, higher_is_better
from molgraph.methods.property.predict import predict_values
from molgraph.methods.ngram.features import learned_state
from molgraph.methods.property.prepare import PreparedData, add_learned_features, prepare_data, scale_extra, split_from_rows, split_positions, split_to_rows
from molgraph.train.scaling import StandardScaler
from molgraph.train.task import PropertyTask

__all__ = [
    "RunResult",
    "run_training",
    "check_run_dir",
    "check_trainer_settings",
    "EpochTimer",
    "model_config_for",
    "is_global_zero_process",
]

log = logging.getLogger("molgraph.train")


@dataclass
class RunResult:
    """What a finished run produced."""

    run_dir: Path
    metrics: dict[str, Any]
    model_path: Path


class EpochTimer(Callback):
    """Wall time of the training batches of each epoch (validation excluded), in seconds."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def _stop(self) -> None:
        if self._start is not None:
            self.seconds.append(time.perf_counter() - self._start)
            self._start = None

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.training:
            self._stop()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop()


def is_global_zero_process() -> bool:
    """True unless the environment marks this process as a non-zero rank (DDP children)."""
    for var in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"):
        value = os.environ.get(var)
        if value not in (None, "", "0"):
            return False
    return True


# Every name run_training writes at the top of RUN_DIR (atomic_output's temporary ".NAME.*.tmp"
# files too). A folder holding anything else is the user's and is never written into.
RUN_FILES = ("config.toml", "splits.json", "rejects.csv", "metrics.json", "test_predictions.csv", "model.pt",
             "learning_curves.png", "parity_test.png", "roc_test.png")
RUN_FOLDERS = ("checkpoints", "logs")
FINISHED_MARKER = "model.pt"  # written last but the plots: a folder with it holds a finished run


def _ours(name: str) -> bool:
    if name in RUN_FILES or name in RUN_FOLDERS:
        return True
    return any(name.startswith(f".{f}.") and name.endswith(".tmp") for f in RUN_FILES)


def _trained_files(run_dir: Path) -> list[Path]:
    """Checkpoints and finished members' weights: the epochs a restart would throw away."""
    ckpts = run_dir / "checkpoints"
    return sorted(p for p in ckpts.rglob("*") if p.is_file()) if ckpts.is_dir() else []


def check_run_dir(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Whether a new run (not ``--resume``) may use ``run_dir``; returns what it must clear first.

    Accepted: a folder that does not exist or is empty, and one holding only the files of an
    earlier run of ours that stopped before it trained anything (it failed while preparing or in
    its first epoch): the corrected command reuses the folder, and the returned leftovers are
    removed before the new run writes. Refused with :class:`FileExistsError`, whose message says
    what to do: a folder with files we did not write, a finished run (``model.pt``), and an
    unfinished run with trained epochs, which ``molgraph train --resume`` continues (starting
    over in it would silently discard them). Nothing is written or removed here.
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        return []
    if not run_dir.is_dir():
        raise FileExistsError(f"{run_dir} is a file, not a folder: choose another -o RUN_DIR")
    entries = sorted(run_dir.iterdir())
    foreign = [p.name for p in entries if not _ours(p.name)]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise FileExistsError(f"{run_dir} exists and holds files that molgraph train did not write ({shown}): "
                              "choose a new -o RUN_DIR (nothing in it was touched)")
    if (run_dir / FINISHED_MARKER).exists():
        raise FileExistsError(f"{run_dir} holds a finished run ({FINISHED_MARKER}): choose a new -o RUN_DIR "
                              f"(`molgraph train --resume {run_dir}` rewrites its outputs without training again)")
    trained = _trained_files(run_dir)
    if trained:
        raise FileExistsError(
            f"{run_dir} holds an unfinished run with trained epochs ({trained[0].relative_to(run_dir)}): continue it "
            f"with `molgraph train --resume {run_dir}` (settings given with --resume override the saved ones), "
            "or delete the folder or choose a new -o RUN_DIR to start over")
    return entries


def _clear(entries: Sequence[Path]) -> None:
    for path in entries:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _unfinished_note(run_dir: Path) -> str:
    """What to do with the folder a run left when it failed after its files were written."""
    resume = f"`molgraph train --resume {run_dir}` continues it (settings given with --resume override the saved ones)"
    if _trained_files(run_dir):
        return f"the unfinished run is kept in {run_dir}: {resume}"
    return (f"nothing was trained; {run_dir} holds only the run's settings and split: rerun the corrected command "
            f"with the same -o (the folder is reused), or {resume}")


@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Lightning's INFO lines ("GPU available ...") would print twice: once for the trial trainer."""
    lg = logging.getLogger("lightning.pytorch")
    level = lg.level
    lg.setLevel(max(level, logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        lg.setLevel(level)


def check_trainer_settings(config: TrainConfig) -> None:
    """Raise ValueError unless Lightning accepts the hardware settings on this machine.

    The valid accelerator, strategy and precision names are Lightning's, and whether ``gpu``
    or ``devices`` can be had depends on the machine, so a Trainer is built with them (it
    starts nothing and writes nothing; ``deterministic`` is left out because it switches torch's
    global mode) before the run writes its first file.
    """
    try:
        with _quiet_lightning():
            L.Trainer(
                accelerator=config.accelerator, devices=_devices(config.devices), num_nodes=config.num_nodes,
                strategy=config.strategy, precision=config.precision, logger=False, enable_checkpointing=False,
                enable_progress_bar=False, enable_model_summary=False,
            )
    except Exception as exc:  # noqa: BLE001  Lightning raises ValueError, TypeError or MisconfigurationException
        raise ValueError(
            f"hardware settings refused by Lightning (accelerator={config.accelerator!r}, devices={config.devices!r}, "
            f"num_nodes={config.num_nodes}, strategy={config.strategy!r}, precision={config.precision!r}): {exc}"
        ) from None


def residual_for(config: TrainConfig) -> bool:
    """Residual connections of gin/gcn: ``config.residual``, or by default on for the per-graph norms.

    A per-graph norm on the last layer removes each molecule's mean, so a mean readout needs the
    residual stream to tell molecules apart (the GraphNorm reference's molecule models have it);
    with batch norm or none the default stays off, as in the OGB baselines.
    """
    if config.residual is not None:
        return bool(config.residual)
    return config.norm in ("graph", "instance")


def model_config_for(config: TrainConfig, data: PreparedData, extra_dim: int) -> dict[str, Any]:
    """Constructor kwargs of the network: preset, then the settings that were given."""
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
    if "ffn_hidden_dim" not in preset or config.ffn_hidden_dim is None:
        preset["ffn_hidden_dim"] = preset.get("hidden_dim", 300)
    return PropertyModel(**preset).config  # normalized, JSON-able


def _devices(value: str | int) -> Any:
    text = str(value)
    if text.lstrip("-").isdigit():
        return int(text)
    if "," in text:
        return [int(v) for v in text.split(",") if v.strip()]
    return text


def _monitor_mode(monitor: str) -> str:
    if monitor in ("val_loss", "train_loss"):
        return "min"
    name = monitor.removeprefix("val_")
    return "max" if higher_is_better(name) else "min"


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    with atomic_output(path, "w", newline="", encoding="utf-8") as fh:
        fh.write(buf.getvalue())


def _write_json(path: Path, obj: Any) -> None:
    with atomic_output(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, allow_nan=True)
        fh.write("\n")


def _strip_prefix(state: dict[str, torch.Tensor], prefix: str = "model.") -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _loggers(run_dir: Path, member: int) -> list[Any]:
    from lightning.pytorch.loggers import CSVLogger

    # a resumed run logs to the next version_N folder: Lightning's CSV writer would replace the
    # earlier epochs' rows otherwise; the learning-curve plot reads all versions
    base = run_dir / "logs" / f"member_{member}"
    version = len(list(base.glob("version_*"))) if base.is_dir() else 0
    loggers: list[Any] = [CSVLogger(run_dir / "logs", name=f"member_{member}", version=version)]
    import importlib.util

    if importlib.util.find_spec("tensorboard") is not None or importlib.util.find_spec("tensorboardX") is not None:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(run_dir / "logs", name=f"tensorboard_member_{member}", version=version))
    return loggers


def _fit_member(
    member: int,
    config: TrainConfig,
    run_dir: Path,
    model_config: dict[str, Any],
    data: PreparedData,
    target_scaler: StandardScaler | None,
    datamodule: GraphDataModule,
    *,
    resume: bool,
    callbacks: Sequence[Callback],
    say: Callable[[str], None],
) -> tuple[dict[str, torch.Tensor] | None, list[float]]:
    """Train ensemble member ``member``; returns its best weights (rank 0) and epoch times."""
    mdir = run_dir / "checkpoints" / f"member_{member}"
    done = mdir / "best_weights.pt"
    if resume and done.is_file():
        say(f"member {member}: already trained, kept")
        return safe_torch_load(done), []
    L.seed_everything(config.seed + member, workers=True, verbose=False)
    model = PropertyModel(**model_config)
    task = PropertyTask(
        model,
        task_type=data.task_type,
        target_names=data.target_names,
        target_scaler=target_scaler,
        metrics=config.metrics or None,
        optimizer=config.optimizer,
        weight_decay=config.weight_decay,
        schedule=config.schedule,
        warmup_epochs=config.warmup_epochs,
        init_lr=config.init_lr,
        max_lr=config.max_lr,
        final_lr=config.final_lr,
        seed=config.seed + member,
    )
    mode = _monitor_mode(config.monitor)
    ckpt = ModelCheckpoint(
        dirpath=mdir,
        filename="best",
        monitor=config.monitor,
        mode=mode,
        save_top_k=1,
        save_last=True,
        enable_version_counter=False,
    )
    timer = EpochTimer()
    cbs: list[Callback] = [ckpt, timer, *callbacks]
    if config.patience:
        cbs.append(EarlyStopping(monitor=config.monitor, mode=mode, patience=config.patience))
    progress = default_progress(config.progress)
    accelerator = config.accelerator
    trainer = L.Trainer(
        max_epochs=config.epochs,
        accelerator=accelerator,
        devices=_devices(config.devices),
        num_nodes=config.num_nodes,
        strategy=config.strategy,
        precision=config.precision,
        callbacks=cbs,
        logger=_loggers(run_dir, member),
        gradient_clip_val=config.grad_clip,
        deterministic=config.deterministic if accelerator == "cpu" else ("warn" if config.deterministic else False),
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,  # the data module shards training data itself
        log_every_n_steps=1,
        default_root_dir=run_dir,
    )
    last = mdir / "last.ckpt"
    ckpt_path = last if (resume and last.is_file()) else None
    if ckpt_path is not None:
        say(f"member {member}: resuming from {ckpt_path}")
    with warnings.catch_warnings():
        # Lightning suggests DataLoader workers; collating is a few gathers here (see data.loader)
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*The number of training batches.*")
        warnings.filterwarnings("ignore", message=".*treespec, LeafSpec.*")  # Lightning vs torch 2.13
        # validation metrics are computed on the whole val set by every rank: identical, no sync needed
        warnings.filterwarnings("ignore", message=".*when logging on epoch level in distributed setting.*")
        trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    if trainer.interrupted:
        raise KeyboardInterrupt(f"training interrupted; continue with: molgraph train --resume {run_dir}")
    if not trainer.is_global_zero:
        return None, timer.seconds
    best_path = Path(ckpt.best_model_path) if ckpt.best_model_path else last
    state = _strip_prefix(safe_torch_load(best_path)["state_dict"])
    with atomic_output(done, "wb") as fh:
        torch.save(state, fh)
    return state, timer.seconds


def _prepare_run(config: TrainConfig, run_dir: Path, *, resume: bool, say: Callable[[str], None]):
    """Data, split, scalers, loaders and network config of a run; reads, but writes nothing in ``run_dir``.

    Everything that can fail on the data (a missing column, an unreadable split file, a model
    that cannot be built) fails here, before the run folder is created.
    """
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
    batcher = GraphBatcher(data.graphs, data.y, extra)
    dm = GraphDataModule(
        batcher, split.train, split.val, split.test,
        batch_size=config.batch_size, data_seed=config.data_seed, num_workers=config.num_workers,
    )
    model_config = model_config_for(config, data, 0 if extra is None else extra.shape[1])
    return data, split, target_scaler, extra_scaler, learned, batcher, dm, model_config


def _write_run_start(config: TrainConfig, run_dir: Path, data: PreparedData, split: Split) -> None:
    """The files a run writes before training: settings, rejected molecules, split (file rows)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / "config.toml")
    if data.rejects:
        _write_csv(run_dir / "rejects.csv", ["row", "smiles", "reason"], [(r.index, r.input, r.reason) for r in data.rejects])
    split_to_rows(split, data.rows).save(run_dir / "splits.json")


def run_training(
    config: TrainConfig,
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    say: Callable[[str], None] | None = None,
) -> RunResult | None:
    """Train as ``molgraph train`` does; returns the result on global rank 0, else ``None``.

    Args:
        config: the settings (validated here).
        resume: continue the run in ``config.output_dir`` (finished members are kept, an
            interrupted one continues from its ``last.ckpt``).
        callbacks: extra Lightning callbacks for every member's trainer.
        say: where progress messages go (default: the ``molgraph.train`` logger).
    """
    # every check before the first write: a mistake must not leave a folder that blocks the retry
    config.validate()
    check_trainer_settings(config)
    say = say or log.info
    run_dir = Path(config.output_dir)
    zero = is_global_zero_process()
    leftovers: list[Path] = []
    if resume:
        if not (run_dir / "config.toml").is_file():
            raise FileNotFoundError(f"nothing to resume in {run_dir}: it holds no config.toml of a molgraph train run")
    elif zero:
        leftovers = check_run_dir(run_dir)
    prepared = _prepare_run(config, run_dir, resume=resume, say=say)
    data, split, target_scaler, extra_scaler, learned, batcher, dm, model_config = prepared
    if zero:
        if leftovers:
            say(f"{run_dir}: removing the files of an earlier run that stopped before training anything")
            _clear(leftovers)
        _write_run_start(config, run_dir, data, split)

    states, epoch_seconds = [], []
    try:
        for member in range(config.ensemble_size):
            state, seconds = _fit_member(
                member, config, run_dir, model_config, data, target_scaler, dm,
                resume=resume, callbacks=callbacks, say=say,
            )
            states.append(state)
            epoch_seconds.append(seconds)
    except Exception as exc:
        if zero:  # the folder stays (it may hold trained epochs): say how to go on from it
            exc.add_note(_unfinished_note(run_dir))
        raise
    if not zero or any(s is None for s in states):
        return None

    # -- evaluation, outputs (rank 0 only) -----------------------------------------------------
    models = []
    for state in states:
        m = PropertyModel(**model_config)
        m.load_state_dict(state)
        models.append(m)
    pred_kwargs = dict(
        task_type=data.task_type, target_scaler=target_scaler, mc_dropout_samples=config.mc_dropout_samples,
        seed=config.seed,
    )
    metric_names = config.metrics or default_metrics(data.task_type)
    results: dict[str, Any] = {}
    preds: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for part, idx in (("val", split.val), ("test", split.test)):
        if len(idx) == 0:
            continue
        mean, std = predict_values(models, batcher, idx, **pred_kwargs)
        preds[part] = (mean, std)
        results[part] = compute_metrics(mean, data.y[torch.as_tensor(idx)].numpy(), data.task_type, metric_names, data.target_names)
        results[part]["n"] = int(len(idx))
    if config.ensemble_size > 1:
        results["members"] = []
        for m in models:
            one = {}
            for part, idx in (("val", split.val), ("test", split.test)):
                if len(idx):
                    mean, _ = predict_values([m], batcher, idx, task_type=data.task_type, target_scaler=target_scaler)
                    one[part] = compute_metrics(mean, data.y[torch.as_tensor(idx)].numpy(), data.task_type, metric_names, data.target_names)
            results["members"].append(one)
    seconds = [s for member in epoch_seconds for s in member]
    if seconds:
        steady = seconds[1:] if len(seconds) > 1 else seconds
        results["timing"] = {
            "train_epoch_seconds_median": float(np.median(steady)),
            "train_molecules_per_second": float(len(split.train) / np.median(steady)),
            "epochs_run": [len(s) for s in epoch_seconds],
        }
    results["primary_metric"] = metric_names[0]
    results["n_rejected"] = len(data.rejects)
    _write_json(run_dir / "metrics.json", results)

    if "test" in preds:
        _write_predictions(run_dir / "test_predictions.csv", data, split.test, *preds["test"])

    payload = {
        "model_class": "PropertyModel",
        "model_config": model_config,
        "members": states,
        "featurizer": data.featurizer.to_config(),
        "task_type": data.task_type,
        "target_names": data.target_names,
        "target_scaler": target_scaler.to_dict() if target_scaler else None,
        "molecule_features": (
            {"featurizers": list(config.molecule_featurizers), "names": data.extra_names, "scaler": extra_scaler.to_dict(),
             "learned": {name: learned_state(est) for name, est in learned.items()}}
            if extra_scaler is not None else None
        ),
        "split": split_to_rows(split, data.rows).to_dict(),
        "config": {k: v for k, v in config.to_dict().items() if v is not None},
        "metrics": {k: v for k, v in results.items() if k in ("val", "test")},
        "versions": library_versions(),
    }
    model_path = save_model_file(run_dir / "model.pt", payload)
    _plots(run_dir, data, split, preds, config)
    return RunResult(run_dir=run_dir, metrics=results, model_path=model_path)


def _write_predictions(path: Path, data: PreparedData, idx: np.ndarray, mean: np.ndarray, std: np.ndarray | None) -> None:
    header = ["row", "smiles"]
    for name in data.target_names:
        header += [name, f"{name}_pred"] + ([f"{name}_std"] if std is not None else [])
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
        out.append(line)
    _write_csv(path, header, out)


def _plots(run_dir: Path, data: PreparedData, split: Split, preds: dict, config: TrainConfig) -> None:
    """Learning curves and a parity/ROC plot; a plotting failure must not lose a trained model."""
    from molgraph.train import plots

    try:
        parts = sorted((run_dir / "logs" / "member_0").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name[8:]))
        if parts:
            import tempfile

            import pandas as pd

            with tempfile.TemporaryDirectory() as tmp:
                combined = Path(tmp) / "metrics.csv"
                pd.concat([pd.read_csv(p) for p in parts], ignore_index=True).to_csv(combined, index=False)
                plots.plot_learning_curves(combined, run_dir / "learning_curves.png", title=f"{config.model}")
        if "test" in preds:
            y = data.y[torch.as_tensor(split.test)].numpy()
            mean = preds["test"][0]
            if data.task_type == "regression":
                plots.plot_parity(y, mean, data.target_names, run_dir / "parity_test.png")
            else:
                plots.plot_roc(y, mean, data.target_names, run_dir / "roc_test.png")
    except Exception as exc:  # noqa: BLE001
        warnings.warn(f"plots were not written: {exc}", stacklevel=2)
