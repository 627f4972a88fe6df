"""What a method gives the shared trainer: the :class:`Method` interface.

A method is one subpackage of :mod:`molgraph.methods` (or a plugin module) holding a subclass of
:class:`Method`, registered in :data:`molgraph.registry.METHODS`. The trainer
(:func:`molgraph.train.runner.run_training`), ``molgraph train/predict`` and the model file
never name a method: they call these hooks.

Life of a run (``molgraph train --method NAME``)::

    config = Method.config_class(...)          # sections; CLI options generated from the fields
    method.validate(config)                    # before anything is read or written
    prepared = method.prepare(config, ...)     # data, split, loaders: fails before the run folder
    method.resolve(config, prepared)           # preset and data defaults written into the settings
    method.write_start(config, prepared, run_dir)
    for member in range(ensemble_size):        # Lightning fits, checkpoints, resume: the trainer's
        model = method.build_model(config, prepared)
        task = method.build_task(config, prepared, model, member=member)
    metrics, section = method.finish(config, prepared, models, run_dir)
    model file = {format, method, config, versions, metrics, <method name>: section}

and ``molgraph predict --model RUN``: ``method.load(section)`` -> an object with
``predict_command(args)``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

__all__ = ["Method", "Prepared"]


@dataclass
class Prepared:
    """What :meth:`Method.prepare` returns; methods subclass it or attach their own fields.

    Attributes:
        datamodule: the Lightning data module of the run (train/val loaders).
        n_train: training examples (for the throughput in ``metrics.json``).
        summary: one line for the log ("data: 1128 molecules, split random 902/113/113").
    """

    datamodule: Any
    n_train: int
    summary: str = ""


class Method:
    """Base class of a method; subclasses set the class attributes and implement the hooks.

    Class attributes:
        name: the registry name (``molgraph train --method NAME``).
        help: one line for ``molgraph train --help``.
        config_class: the config dataclass (a :class:`~molgraph.train.settings.SectionedConfig`
            whose ``train`` section is :class:`~molgraph.train.settings.TrainerSettings`).
        section_version: version of the method's section of the model file (bump when its
            layout changes; :meth:`load` receives it).
        run_files: names the method writes at the top of the run folder (besides the trainer's).
        example_noun: what one training example is, for ``metrics.json``'s throughput
            (``train_<noun>_per_second``).
        commands: modules adding the method's own sub-commands to ``molgraph`` (each with
            ``register(subparsers)``, as the core's ``molgraph/cli/*_cmd.py``).
        config_class: ``None`` for a method that does not train through ``molgraph train``
            (its own commands do the work).
    """

    name: ClassVar[str] = ""
    help: ClassVar[str] = ""
    config_class: ClassVar[type | None] = None
    section_version: ClassVar[int] = 1
    run_files: ClassVar[tuple[str, ...]] = ()
    example_noun: ClassVar[str] = "examples"
    commands: ClassVar[tuple[str, ...]] = ()

    # -- settings -----------------------------------------------------------------------------------
    def validate(self, config: Any) -> None:
        """Checks that need several settings (types, ranges and choices are checked already).

        Must not read data or write files. Raise ``ValueError`` naming the setting.
        """

    def logged_values(self, config: Any) -> tuple[str, ...]:
        """What the method's task logs each epoch (valid ``monitor`` values)."""
        return ("val_loss", "train_loss")

    def monitor_mode(self, monitor: str) -> str:
        """``min`` or ``max``: which way ``monitor`` improves."""
        return "min"

    # -- a run ---------------------------------------------------------------------------------------
    def prepare(self, config: Any, *, run_dir: Path, resume: bool, say: Callable[[str], None]) -> Prepared:
        """Read the data, split it, build the data module. Writes nothing in ``run_dir``."""
        raise NotImplementedError(f"method {self.name!r} does not train")

    def resolve(self, config: Any, prepared: Prepared) -> None:
        """Fill in the settings that were left to defaults decided by the data or a preset.

        Called after :meth:`prepare` and before ``config.toml`` is written, so the run folder
        records every value the run used (the network's sizes from a preset, the metrics of the
        task type). Must not change what the run does.
        """

    def write_start(self, config: Any, prepared: Prepared, run_dir: Path) -> None:
        """Files written before training besides ``config.toml`` (the split, rejected inputs)."""

    def build_model(self, config: Any, prepared: Prepared) -> Any:
        """A fresh ``torch.nn.Module`` (seeded by the trainer before this call)."""
        raise NotImplementedError

    def build_task(self, config: Any, prepared: Prepared, model: Any, *, member: int) -> Any:
        """The LightningModule (a :class:`~molgraph.train.task.Task`) that trains ``model``."""
        raise NotImplementedError

    def callbacks(self, config: Any, prepared: Prepared, run_dir: Path, *, member: int) -> list[Any]:
        """Extra Lightning callbacks the method's settings ask for, for ensemble member ``member``."""
        return []

    def finish(self, config: Any, prepared: Prepared, models: list[Any], run_dir: Path,
               *, say: Callable[[str], None]) -> tuple[dict[str, Any], dict[str, Any]]:
        """After training: evaluate, write the method's outputs; return ``(metrics, section)``.

        ``metrics`` goes to ``metrics.json`` (and its ``val``/``test`` parts into the model
        file); ``section`` is the method's part of the model file: plain containers, numbers,
        strings and tensors only (the trainer adds the members' weights as ``members``).
        """
        raise NotImplementedError

    def search_config(self, config: Any, study_dir: Path, *, say: Callable[[str], None]) -> Any:
        """The settings ``molgraph hpopt`` trains its trials with: ``config`` with the test part of the
        split left out, so that no trial sees a test label (may write the split into ``study_dir``)."""
        raise NotImplementedError(f"method {self.name!r} does not support molgraph hpopt")

    # -- a model file --------------------------------------------------------------------------------
    def load(self, section: dict[str, Any], payload: dict[str, Any]) -> Any:
        """The predictor of a model file's section (``payload``: the whole file, for its config)."""
        raise NotImplementedError(f"method {self.name!r} has nothing to load")

    def add_predict_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Options of ``molgraph predict`` beyond ``--model``, ``-i``, ``-o``, ``--device``,
        ``-b``, ``--overwrite`` (the common ones)."""

    def predict_command(self, predictor: Any, args: argparse.Namespace) -> int:
        """``molgraph predict`` for a loaded model: read ``args.input``, write ``args.output``."""
        raise NotImplementedError(f"method {self.name!r} does not predict")
