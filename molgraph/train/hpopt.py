"""``molgraph hpopt``: hyper-parameter search with Optuna (TPE), pruned on the validation curves.

The search space is declared where the settings are: a setting whose field carries
``search=(...)`` in its :func:`~molgraph.train.settings.setting` metadata is searched (all of them,
or those named with ``params``); every other setting is the recipe's.

Each trial is one ``molgraph train`` run (:func:`~molgraph.train.runner.run_training`) in
``STUDY_DIR/trials/trial_NNN``; its value is the best validation value of the monitored quantity
over the epochs (``monitor``, e.g. ``val_loss``; mean over the members of an ensemble).
:class:`OptunaPruning` reports every epoch's value to Optuna and stops a trial that the median
pruner finds worse than the earlier trials at the same epoch.

The test split is never looked at: before the first trial the method writes the split with an
empty test part (:meth:`~molgraph.train.method.Method.search_config`, the property method's
``search_split.json``: the recipe's train and validation rows), and every trial trains and
selects on it. The test rows take no part in any trial: not in the target scaling, not in the
validation metric, not in a prediction (``tests/test_hpopt.py`` poisons their labels and gets the
same trials).

``STUDY_DIR`` holds ``study.db`` (the Optuna study, SQLite: a killed search continues with the
same command; the trial it was running is marked failed and run again), ``search_space.json``,
``trials.csv`` (one row per trial: number, state, value, parameters, seconds), ``trials.png``
(values against trial number and the best so far) and ``best.toml`` (the recipe with the best
trial's values: ``molgraph train --config STUDY_DIR/best.toml -o RUN_DIR`` trains it on the
recipe's own split, test part included).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from lightning.pytorch.callbacks import Callback

from molgraph.train.settings import _meta, save_toml, section_fields

__all__ = ["HpoptResult", "OptunaPruning", "search_space", "run_hpopt", "check_study_dir"]

log = logging.getLogger("molgraph.hpopt")

STUDY_NAME = "hpopt"
STUDY_FILES = ("study.db", "search_space.json", "search_split.json", "trials.csv", "trials.png", "best.toml",
               "recipe.toml")
STUDY_FOLDERS = ("trials",)


def search_space(config_class: type, params: Sequence[str] | None = None) -> dict[str, tuple[Any, ...]]:
    """Setting name -> its ``search`` declaration, for the settings of ``config_class`` that have one.

    Args:
        params: only these settings (each must declare a range), each as ``NAME`` or ``NAME=LOW:HIGH``
            (a narrower range than the declared one, same step and scale); ``None``: every declared one.

    Raises:
        ValueError: a name in ``params`` that is not a setting, or that declares no range.
    """
    declared: dict[str, tuple[Any, ...]] = {}
    names = set()
    for _, _, f in section_fields(config_class):
        names.add(f.name)
        spec = _meta(f).get("search")
        if spec is not None:
            _check_spec(f.name, spec)
            declared[f.name] = tuple(spec)
    if params is None:
        if not declared:
            raise ValueError(f"{config_class.__name__} declares no search range (setting(..., search=...))")
        return declared
    out = {}
    for item in params:
        name, _, bounds = item.partition("=")
        if name not in names:
            raise ValueError(f"params: {name!r} is not a setting of {config_class.__name__}")
        if name not in declared:
            raise ValueError(f"params: {name!r} declares no search range; searchable: {', '.join(sorted(declared))}")
        out[name] = _narrow(name, declared[name], bounds) if bounds else declared[name]
    return out


def _narrow(name: str, spec: tuple[Any, ...], bounds: str) -> tuple[Any, ...]:
    """``spec`` with its range narrowed to ``LOW:HIGH`` (e.g. ``hidden_dim=100:400`` to bound the cost of
    a search on a CPU); the step and the scale stay the declared ones, and the bounds must lie within
    the declared range (the declaration stays the authority on what is sensible)."""
    if spec[0] == "choice":
        raise ValueError(f"params: {name!r} is a choice; its range cannot be narrowed")
    parts = bounds.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        low, high = (int(x) for x in parts) if spec[0] == "int" else (float(x) for x in parts)
    except ValueError:
        raise ValueError(f"params: {name}={bounds!r}: give the range as NAME=LOW:HIGH "
                         f"({'integers' if spec[0] == 'int' else 'numbers'})") from None
    if not spec[1] <= low < high <= spec[2]:
        raise ValueError(f"params: {name}={bounds}: the range must lie within the declared {spec[1]}..{spec[2]}, low < high")
    return (spec[0], low, high, *spec[3:])


def _check_spec(name: str, spec: Sequence[Any]) -> None:
    kind = spec[0] if spec else None
    if kind in ("int", "float") and len(spec) in (3, 4) and spec[1] < spec[2]:
        return
    if kind == "log" and len(spec) == 3 and 0 < spec[1] < spec[2]:
        return
    if kind == "choice" and len(spec) == 2 and len(spec[1]) >= 1:
        return
    raise TypeError(f"setting {name!r}: bad search declaration {spec!r} (see molgraph.train.settings.setting)")


def _suggest(trial: Any, name: str, spec: tuple[Any, ...]) -> Any:
    kind = spec[0]
    if kind == "int":
        return trial.suggest_int(name, int(spec[1]), int(spec[2]), step=int(spec[3]) if len(spec) == 4 else 1)
    if kind == "float":
        return trial.suggest_float(name, float(spec[1]), float(spec[2]), step=float(spec[3]) if len(spec) == 4 else None)
    if kind == "log":
        return trial.suggest_float(name, float(spec[1]), float(spec[2]), log=True)
    return trial.suggest_categorical(name, list(spec[1]))


class OptunaPruning(Callback):
    """Reports the monitored validation value after every epoch of member 0 and prunes the trial when
    Optuna's pruner says so (raising :class:`optuna.TrialPruned` out of ``fit``); keeps each member's
    best value (``best``) for the trial's objective.

    Args:
        trial: the Optuna trial.
        monitor: the logged value (``val_loss``, ``val_rmse``, ...).
        mode: ``min`` or ``max``.
    """

    def __init__(self, trial: Any, monitor: str, mode: str) -> None:
        self.trial, self.monitor, self.mode = trial, monitor, mode
        self.best: list[float] = []
        self._fits = 0

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._fits += 1
        self.best.append(math.inf if self.mode == "min" else -math.inf)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        if not math.isfinite(value):
            return
        self.best[-1] = min(self.best[-1], value) if self.mode == "min" else max(self.best[-1], value)
        if self._fits > 1:  # Optuna wants one curve per trial: the first member's
            return
        import optuna

        epoch = int(trainer.current_epoch)
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"{self.monitor} {value:.4g} at epoch {epoch + 1}")

    def value(self) -> float:
        """The trial's objective: the mean over members of each member's best epoch value."""
        finite = [b for b in self.best if math.isfinite(b)]
        if not finite:
            raise ValueError(f"no finite {self.monitor} was logged: the trial has no value")
        return float(sum(finite) / len(finite))


@dataclass
class HpoptResult:
    """What a search left: the folder, the best trial and its settings."""

    study_dir: Path
    best_value: float
    best_params: dict[str, Any]
    n_complete: int
    n_pruned: int
    best_recipe: Path
    seconds: float


def check_study_dir(study_dir: Path) -> None:
    """A study folder is new (missing or empty) or one of ours (its ``study.db``); anything else is the
    user's and is refused."""
    if not study_dir.exists():
        return
    if not study_dir.is_dir():
        raise FileExistsError(f"{study_dir} is a file: choose another -o STUDY_DIR")
    entries = [p.name for p in study_dir.iterdir()]
    if not entries:
        return
    foreign = [n for n in entries if n not in STUDY_FILES + STUDY_FOLDERS and not (n.startswith(".") and n.endswith(".tmp"))
               and not n.startswith("study.db")]
    if foreign or "study.db" not in entries:
        raise FileExistsError(f"{study_dir} holds files that molgraph hpopt did not write ({', '.join(sorted(foreign)[:5]) or 'no study.db'}): "
                              "choose a new -o STUDY_DIR (nothing in it was touched)")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def run_hpopt(
    config: Any,
    study_dir: str | os.PathLike[str],
    *,
    trials: int,
    timeout: float | None = None,
    params: Sequence[str] | None = None,
    recipe_values: dict[str, Any] | None = None,
    method: Any = None,
    seed: int | None = None,
    callbacks: Sequence[Callback] = (),
    say: Callable[[str], None] | None = None,
) -> HpoptResult:
    """Search the declared ranges of ``config``'s settings; see the module docstring.

    Args:
        config: the method's settings (a recipe and overrides); ``output_dir`` is ignored.
        study_dir: the study folder (created; an earlier study there is continued).
        trials: the number of finished trials (complete or pruned) to reach, earlier ones included.
        timeout: seconds after which no new trial starts (``None``: no limit).
        params: the settings to search (default: every declared one).
        recipe_values: the recipe's flat settings, for ``best.toml`` (default: all of ``config``'s).
        seed: the TPE sampler's seed (default: the config's ``seed``).
        callbacks: extra Lightning callbacks for every trial.

    Raises:
        ValueError: settings that do not validate, a study folder holding another search (another
            recipe or space), ``trials < 1``.
    """
    import optuna

    from molgraph.registry import METHODS
    from molgraph.train.runner import method_of, run_training, validate_config, write_json

    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    say = say or log.info
    method = METHODS[method] if isinstance(method, str) else (method or method_of(config))
    study_dir = Path(study_dir)
    space = search_space(type(config), params)
    base = copy.deepcopy(config)
    base.output_dir = str(study_dir / "trials" / "check")
    validate_config(base, method)  # a bad recipe fails before anything is written
    check_study_dir(study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)

    # the same search continues; another recipe or space in this folder is refused
    record = {"method": method.name, "space": _plain(space),
              "config": _plain({k: v for k, v in base.to_dict().items() if k != "output_dir"})}
    space_file = study_dir / "search_space.json"
    if space_file.is_file():
        earlier, now = json.loads(space_file.read_text()), json.loads(json.dumps(record))
        # a setting added to the method since the study began counts as the same when at its default
        defaults = json.loads(json.dumps(_plain(type(config)().to_dict())))
        changed = sorted(k for k in set(earlier["config"]) | set(now["config"])
                         if earlier["config"].get(k, defaults.get(k)) != now["config"].get(k, defaults.get(k)))
        if earlier["method"] != now["method"] or earlier["space"] != now["space"] or changed:
            what = f"settings {changed}" if changed else "another method or search space"
            raise ValueError(f"{study_dir} holds a search of other settings ({what} differ from {space_file}): "
                             "choose a new -o STUDY_DIR to search these")
    else:
        write_json(space_file, record)
    search = method.search_config(base, study_dir, say=say)  # the test rows leave the split here

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=int(config.seed if seed is None else seed))
    epochs = int(getattr(config, "epochs", 1))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=max(epochs // 4, 1))
    direction = "minimize" if method.monitor_mode(config.monitor) == "min" else "maximize"
    study = optuna.create_study(storage=f"sqlite:///{study_dir / 'study.db'}", study_name=STUDY_NAME,
                                sampler=sampler, pruner=pruner, direction=direction, load_if_exists=True)
    # trials left RUNNING by a killed search: failed, and their parameters are tried again
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        say(f"trial {t.number} was interrupted: marked failed, its parameters queued again")
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        study.enqueue_trial(t.params, skip_if_exists=False)

    def finished() -> int:
        return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))

    def objective(trial: Any) -> float:
        cfg = copy.deepcopy(search)
        for name, spec in space.items():
            setattr(cfg, name, _suggest(trial, name, spec))
        cfg.output_dir = str(study_dir / "trials" / f"trial_{trial.number:03d}")
        cfg.quiet, cfg.progress = True, False
        pruning = OptunaPruning(trial, cfg.monitor, method.monitor_mode(cfg.monitor))
        start = time.perf_counter()
        try:
            run_training(cfg, method=method, callbacks=[pruning, *callbacks], say=lambda _msg: None)
        finally:
            trial.set_user_attr("seconds", round(time.perf_counter() - start, 2))
        value = pruning.value()
        say(f"trial {trial.number}: {cfg.monitor} {value:.5g}  " + "  ".join(f"{k}={trial.params[k]:.4g}"
            if isinstance(trial.params[k], float) else f"{k}={trial.params[k]}" for k in space))
        return value

    start = time.perf_counter()
    deadline = None if timeout is None else start + float(timeout)
    failures = 0
    while finished() < trials:
        left = None if deadline is None else deadline - time.perf_counter()
        if left is not None and left <= 0:
            say(f"timeout: {finished()} of {trials} trials finished")
            break
        # one trial at a time: the count of finished trials decides, not optuna's n_trials (a failed
        # trial, e.g. a diverged one, is recorded and the search goes on, up to 3 failures in a row)
        before = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
        study.optimize(objective, n_trials=1, timeout=left, catch=(ValueError, RuntimeError), gc_after_trial=True)
        if len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,))) > before:
            failures += 1
            if failures >= 3:
                raise RuntimeError(f"3 trials in a row failed; see {study_dir / 'trials'} and the messages above")
        else:
            failures = 0
    seconds = time.perf_counter() - start
    _write_outputs(study, study_dir, space, base, recipe_values, method.name)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise ValueError(f"no trial completed in {study_dir} (see trials.csv)")
    best = study.best_trial
    return HpoptResult(study_dir=study_dir, best_value=float(best.value), best_params=dict(best.params),
                       n_complete=len(complete),
                       n_pruned=len(study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))),
                       best_recipe=study_dir / "best.toml", seconds=seconds)


def _write_outputs(study: Any, study_dir: Path, space: dict[str, Any], base: Any, recipe_values: dict[str, Any] | None,
                   method_name: str) -> None:
    """``trials.csv``, ``trials.png`` and ``best.toml`` (when a trial completed)."""
    from optuna.trial import TrialState

    from molgraph.train.runner import write_csv

    trials = study.get_trials(deepcopy=False)
    header = ["number", "state", "value", *space, "seconds", "pruned_at_epoch"]
    rows = []
    for t in trials:
        steps = sorted(t.intermediate_values)
        rows.append([t.number, t.state.name, "" if t.value is None else t.value,
                     *[t.params.get(k, "") for k in space], t.user_attrs.get("seconds", ""),
                     (steps[-1] + 1 if steps else "") if t.state == TrialState.PRUNED else ""])
    write_csv(study_dir / "trials.csv", header, rows)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    try:
        _plot_trials(trials, study.direction.name.lower(), study_dir / "trials.png")
    except Exception as exc:  # noqa: BLE001  a plotting failure must not lose the search
        log.warning("trials.png was not written: %s", exc)
    if not complete:
        return
    best = study.best_trial
    cfg = copy.deepcopy(base)
    for k, v in best.params.items():
        setattr(cfg, k, v)
    values = dict(recipe_values) if recipe_values is not None else {k: v for k, v in cfg.to_dict().items()}
    values.update(best.params)
    values.pop("output_dir", None)  # base holds the user's split settings, not the search split
    best_cfg = type(base).from_dict(values)
    save_toml(best_cfg, study_dir / "best.toml", method=method_name,
              header=(f"best of {len(complete)} complete trials of molgraph hpopt (trial {best.number}, "
                      f"{base.monitor} {best.value:.5g} on the validation split)\n"
                      f"use: molgraph train --config {study_dir / 'best.toml'} -o RUN_DIR"))


def _plot_trials(trials: Sequence[Any], direction: str, out_png: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from optuna.trial import TrialState

    from molgraph.io import atomic_output

    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    done = [(t.number, t.value) for t in trials if t.state == TrialState.COMPLETE]
    pruned = [(t.number, t.intermediate_values[max(t.intermediate_values)]) for t in trials
              if t.state == TrialState.PRUNED and t.intermediate_values]
    if done:
        ax.scatter(*zip(*done), label="complete", s=18)
        best, run = [], math.inf if direction == "minimize" else -math.inf
        for n, v in sorted(done):
            run = min(run, v) if direction == "minimize" else max(run, v)
            best.append((n, run))
        ax.step(*zip(*best), where="post", color="C3", label="best so far")
    if pruned:
        ax.scatter(*zip(*pruned), marker="x", color="0.5", label="pruned (last reported)", s=18)
    ax.set_xlabel("trial")
    ax.set_ylabel("validation value")
    ax.legend(fontsize="small")
    fig.tight_layout()
    with atomic_output(out_png, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
