"""``molgraph train`` as a function, for any method: settings -> data -> (ensemble of) Lightning fits -> run folder.

The runner never names a method: it calls the hooks of a :class:`~molgraph.train.method.Method`
from the registry. The run folder (``RUN_DIR``) gets from the trainer ``config.toml`` (the
settings, one table per section, and the method's name), ``checkpoints/member_K/{best,last}.ckpt``
(Lightning, for resuming), ``model.pt`` (the model file: the method's section, the members'
weights, the settings, versions), ``metrics.json``, ``logs/`` (CSV, and TensorBoard when
installed) and ``learning_curves.png``; the method adds its own files (the property method:
``splits.json``, ``rejects.csv``, ``test_predictions.csv``, parity or ROC plots).

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

from molgraph.featurizers.batch import default_progress
from molgraph.io import atomic_output
from molgraph.registry import METHODS
from molgraph.train.checkpoint import library_versions, safe_torch_load, save_model_file
from molgraph.train.method import Method, Prepared
from molgraph.train.settings import TrainerSettings, check_choices, check_types, save_toml

__all__ = [
    "RunResult",
    "run_training",
    "validate_config",
    "method_of",
    "check_run_dir",
    "check_trainer_settings",
    "EpochTimer",
    "EpochLog",
    "is_global_zero_process",
    "write_csv",
    "write_json",
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


class EpochLog(Callback):
    """One line per epoch (epoch, losses, validation metrics, seconds) through ``say``.

    What a job scheduler, ``nohup`` or a notebook shows of a run: the progress bar is drawn only on
    a terminal, so without this line minutes pass silently between the split and the metrics.
    """

    def __init__(self, say: Callable[[str], None], member: int, n_members: int) -> None:
        self.say = say
        self.prefix = f"member {member}: " if n_members > 1 else ""
        self._start: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or self._start is None:
            return
        # Lightning runs validation before this hook: the epoch's train_loss and val_* are all here
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        shown = "  ".join(f"{k} {metrics[k]:.5g}" for k in sorted(metrics, key=lambda k: (k != "train_loss", k)))
        epochs = trainer.max_epochs if trainer.max_epochs is not None else "?"
        self.say(f"{self.prefix}epoch {trainer.current_epoch + 1}/{epochs}  {shown}  "
                 f"{time.perf_counter() - self._start:.1f} s")


def is_global_zero_process() -> bool:
    """True unless the environment marks this process as a non-zero rank (DDP children)."""
    for var in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"):
        value = os.environ.get(var)
        if value not in (None, "", "0"):
            return False
    return True


# Every name the trainer writes at the top of RUN_DIR; each method adds its own (Method.run_files).
# atomic_output's temporary ".NAME.*.tmp" files count too. A folder holding anything else is the
# user's and is never written into.
RUN_FILES = ("config.toml", "metrics.json", "model.pt", "learning_curves.png")
RUN_FOLDERS = ("checkpoints", "logs")
FINISHED_MARKER = "model.pt"  # written last but the plots: a folder with it holds a finished run


def _run_files(method: Method | None) -> tuple[str, ...]:
    if method is not None:
        return RUN_FILES + tuple(method.run_files)
    # any registered method's files: a folder check that does not know the method yet
    return RUN_FILES + tuple(f for name in METHODS for f in METHODS[name].run_files)


def _ours(name: str, files: tuple[str, ...]) -> bool:
    if name in files or name in RUN_FOLDERS:
        return True
    return any(name.startswith(f".{f}.") and name.endswith(".tmp") for f in files)


def _trained_files(run_dir: Path) -> list[Path]:
    """Checkpoints and finished members' weights: the epochs a restart would throw away."""
    ckpts = run_dir / "checkpoints"
    return sorted(p for p in ckpts.rglob("*") if p.is_file()) if ckpts.is_dir() else []


def check_run_dir(run_dir: str | os.PathLike[str], method: Method | None = None) -> list[Path]:
    """Whether a new run (not ``--resume``) may use ``run_dir``; returns what it must clear first.

    Accepted: a folder that does not exist or is empty, and one holding only the files of an
    earlier run of ours that stopped before it trained anything (it failed while preparing or in
    its first epoch): the corrected command reuses the folder, and the returned leftovers are
    removed before the new run writes. Refused with :class:`FileExistsError`, whose message says
    what to do: a folder with files we did not write, a finished run (``model.pt``), and an
    unfinished run with trained epochs, which ``molgraph train --resume`` continues (starting
    over in it would silently discard them). Nothing is written or removed here. ``method``: whose
    files count as ours besides the trainer's (``None``: any registered method's).
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        return []
    if not run_dir.is_dir():
        raise FileExistsError(f"{run_dir} is a file, not a folder: choose another -o RUN_DIR")
    entries = sorted(run_dir.iterdir())
    files = _run_files(method)
    foreign = [p.name for p in entries if not _ours(p.name, files)]
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


def check_trainer_settings(config: TrainerSettings | Any) -> None:
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


def _devices(value: str | int) -> Any:
    text = str(value)
    if text.lstrip("-").isdigit():
        return int(text)
    if "," in text:
        return [int(v) for v in text.split(",") if v.strip()]
    return text


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    with atomic_output(path, "w", newline="", encoding="utf-8") as fh:
        fh.write(buf.getvalue())


def write_json(path: Path, obj: Any) -> None:
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
    method: Method,
    config: Any,
    prepared: Prepared,
    run_dir: Path,
    *,
    resume: bool,
    callbacks: Sequence[Callback],
    say: Callable[[str], None],
) -> tuple[dict[str, torch.Tensor] | None, list[float]]:
    """Train ensemble member ``member``; returns its best weights (rank 0) and epoch times."""
    train = config.train
    mdir = run_dir / "checkpoints" / f"member_{member}"
    done = mdir / "best_weights.pt"
    if resume and done.is_file():
        say(f"member {member}: already trained, kept")
        return safe_torch_load(done), []
    L.seed_everything(train.seed + member, workers=True, verbose=False)
    model = method.build_model(config, prepared)
    task = method.build_task(config, prepared, model, member=member)
    mode = method.monitor_mode(train.monitor)
    ckpt = ModelCheckpoint(
        dirpath=mdir,
        filename="best",
        monitor=train.monitor,
        mode=mode,
        save_top_k=1,
        enable_version_counter=False,
    )
    # last.ckpt is what --resume continues from, so it must hold the latest epoch. Lightning's
    # save_last writes it only in the epochs where the best checkpoint improved, so a resumed run
    # would redo every epoch since the last improvement: a second callback without a monitor
    # keeps the newest epoch instead.
    latest = ModelCheckpoint(dirpath=mdir, filename="last", monitor=None, save_top_k=1, every_n_epochs=1,
                             enable_version_counter=False)
    timer = EpochTimer()
    cbs: list[Callback] = [ckpt, latest, timer, *method.callbacks(config, prepared, run_dir, member=member),
                           *callbacks]
    show_bar = default_progress(train.progress)
    if not show_bar and not train.quiet:
        cbs.append(EpochLog(say, member, train.ensemble_size))
    if train.patience:
        cbs.append(EarlyStopping(monitor=train.monitor, mode=mode, patience=train.patience))
    accelerator = train.accelerator
    trainer = L.Trainer(
        max_epochs=train.epochs,
        accelerator=accelerator,
        devices=_devices(train.devices),
        num_nodes=train.num_nodes,
        strategy=train.strategy,
        precision=train.precision,
        callbacks=cbs,
        logger=_loggers(run_dir, member),
        gradient_clip_val=train.grad_clip,
        deterministic=train.deterministic if accelerator == "cpu" else ("warn" if train.deterministic else False),
        enable_progress_bar=show_bar,
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
        if ckpt_path is not None:  # a resumed member writes into its own checkpoint folder, as it should
            warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")
        trainer.fit(task, datamodule=prepared.datamodule, ckpt_path=ckpt_path, weights_only=True)
    if trainer.interrupted:
        raise KeyboardInterrupt(f"training interrupted; continue with: molgraph train --resume {run_dir}")
    if not trainer.is_global_zero:
        return None, timer.seconds
    best_path = Path(ckpt.best_model_path) if ckpt.best_model_path else last
    state = _strip_prefix(safe_torch_load(best_path)["state_dict"])
    with atomic_output(done, "wb") as fh:
        torch.save(state, fh)
    return state, timer.seconds


def method_of(config: Any) -> Method:
    """The registered method whose ``config_class`` ``config`` is an instance of."""
    for name in METHODS:
        method = METHODS[name]
        if type(config) is method.config_class:
            return method
    raise TypeError(f"no registered method takes a {type(config).__name__}")


def validate_config(config: Any, method: Method | None = None) -> Any:
    """Every check of a method's settings, before anything is read or written; returns ``config``.

    Types and ranges (from the field declarations), names of choices (against the registries),
    the method's own combination checks, then the trainer's (the monitored value must be one the
    method's task logs). Values are normalized in place (numbers, aliases of names).
    """
    method = method or method_of(config)
    check_types(config)
    check_choices(config)
    method.validate(config)
    config.train.validate(method.logged_values(config))
    return config


def _learning_curves(run_dir: Path, title: str) -> None:
    """The first member's learning curves over all its logged versions (resumed runs log several)."""
    from molgraph.train import plots

    parts = sorted((run_dir / "logs" / "member_0").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name[8:]))
    if not parts:
        return
    import tempfile

    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        combined = Path(tmp) / "metrics.csv"
        pd.concat([pd.read_csv(p) for p in parts], ignore_index=True).to_csv(combined, index=False)
        plots.plot_learning_curves(combined, run_dir / "learning_curves.png", title=title)


def run_training(
    config: Any,
    *,
    method: Method | str | None = None,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    say: Callable[[str], None] | None = None,
) -> RunResult | None:
    """Train as ``molgraph train`` does; returns the result on global rank 0, else ``None``.

    Args:
        config: the method's settings (validated here).
        method: the method (object or registry name; default: the one whose config class
            ``config`` is).
        resume: continue the run in ``config.output_dir`` (finished members are kept, an
            interrupted one continues from its ``last.ckpt``).
        callbacks: extra Lightning callbacks for every member's trainer.
        say: where progress messages go (default: the ``molgraph.train`` logger).
    """
    if isinstance(method, str):
        method = METHODS[method]
    method = method or method_of(config)
    # every check before the first write: a mistake must not leave a folder that blocks the retry
    validate_config(config, method)
    check_trainer_settings(config)
    say = say or log.info
    run_dir = Path(config.train.output_dir)
    zero = is_global_zero_process()
    leftovers: list[Path] = []
    if resume:
        if not (run_dir / "config.toml").is_file():
            raise FileNotFoundError(f"nothing to resume in {run_dir}: it holds no config.toml of a molgraph train run")
    elif zero:
        leftovers = check_run_dir(run_dir, method)
    prepared = method.prepare(config, run_dir=run_dir, resume=resume, say=say)
    method.resolve(config, prepared)
    if zero:
        if leftovers:
            say(f"{run_dir}: removing the files of an earlier run that stopped before training anything")
            _clear(leftovers)
        run_dir.mkdir(parents=True, exist_ok=True)
        save_toml(config, run_dir / "config.toml", method=method.name,
                  header="resolved settings of this run; `molgraph train --resume RUN_DIR` reads them")
        method.write_start(config, prepared, run_dir)

    states, epoch_seconds = [], []
    try:
        for member in range(config.train.ensemble_size):
            state, seconds = _fit_member(member, method, config, prepared, run_dir,
                                         resume=resume, callbacks=callbacks, say=say)
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
        m = method.build_model(config, prepared)
        m.load_state_dict(state)
        models.append(m)
    results, section = method.finish(config, prepared, models, run_dir, say=say)
    seconds = [s for member in epoch_seconds for s in member]
    if seconds:
        steady = seconds[1:] if len(seconds) > 1 else seconds
        results["timing"] = {
            "train_epoch_seconds_median": float(np.median(steady)),
            f"train_{method.example_noun}_per_second": float(prepared.n_train / np.median(steady)),
            "epochs_run": [len(s) for s in epoch_seconds],
        }
    write_json(run_dir / "metrics.json", results)
    payload = {
        "method": method.name,
        "section_version": method.section_version,
        "config": config.to_dict(nested=True),
        "members": states,
        "metrics": {k: v for k, v in results.items() if k in ("val", "test")},
        "versions": library_versions(),
        method.name: section,
    }
    model_path = save_model_file(run_dir / "model.pt", payload)
    try:
        model = getattr(config, "model", None)
        _learning_curves(run_dir, title=f"{method.name}: {model}" if isinstance(model, str) else method.name)
    except Exception as exc:  # noqa: BLE001  a plotting failure must not lose a trained model
        warnings.warn(f"learning curves were not plotted: {exc}", stacklevel=2)
    return RunResult(run_dir=run_dir, metrics=results, model_path=model_path)
