"""Settings as dataclasses: a method's config is sections of fields, and everything else is generated.

A method's config is a dataclass whose fields are *sections* (dataclasses themselves): the TOML
file has one table per section (``[data]``, ``[model]``, ``[train]``, ...), and each field of a
section is one setting. Every setting name is unique across the sections of a config, so a flat
file (the format of molgraph 0.1 recipes) and flat attribute access (``config.epochs``) still
work. From the field declarations come:

* the command-line options (:func:`add_arguments`): ``--name-with-dashes``, help text, aliases,
  choices (read from a :class:`~molgraph.registry.Registry`), ``--x/--no-x`` for booleans;
* type checks and normalization (:func:`check_types`), and choice checks against the registries;
* reading and writing (:func:`config_from_dict`, :func:`config_to_dict`, :func:`load_toml`,
  :func:`save_toml`).

A field's options go in its metadata through :func:`setting`::

    @dataclass
    class ModelSection:
        hidden_dim: int = setting(64, help="width", minimum=1)
        norm: str = setting("batch", choices=NORMS, help="normalization")

The shared trainer's own settings (seed, epochs, optimizer, schedule, hardware, run folder) are
the :class:`TrainerSettings` section, which every method's config includes as ``train``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import numbers
import os
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from molgraph.registry import OPTIMIZERS, SCHEDULES, Registry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "setting",
    "SectionedConfig",
    "TrainerSettings",
    "add_arguments",
    "check_types",
    "check_choices",
    "config_from_dict",
    "config_to_dict",
    "flatten",
    "load_toml",
    "save_toml",
    "section_of",
]

_PATH_TYPES = (os.PathLike,)


def setting(
    default: Any = dataclasses.MISSING,
    *,
    default_factory: Any = dataclasses.MISSING,
    help: str = "",
    flags: tuple[str, ...] = (),
    choices: Registry | tuple[str, ...] | None = None,
    metavar: str | tuple[str, ...] | None = None,
    minimum: float | None = None,
    nargs: int | str | None = None,
    path: bool = False,
    cli: bool = True,
    default_text: str | None = None,
    search: tuple[Any, ...] | None = None,
) -> Any:
    """A dataclass field with what the command line and the checks need.

    Args:
        default, default_factory: as :func:`dataclasses.field`.
        help: one line for ``--help`` (``%(choices)s`` lists the registry's names).
        flags: extra option strings (aliases such as chemprop's names, a short ``-s``); the
            ``--name-with-dashes`` option is always made.
        choices: the registry (or tuple) holding the valid names; checked by :func:`check_choices`.
        metavar: argparse metavar (default ``NAME`` for choices).
        minimum: the smallest valid number (``None`` values are not checked).
        nargs: argparse ``nargs`` for list settings (default ``"+"``).
        path: the value is a file or folder path (a ``Path`` is accepted and saved as text).
        cli: make a command-line option (``False``: file-only settings).
        default_text: what the default means, for ``--help`` (needed where the default is
            ``None``: "from the model preset", "no early stopping"); other defaults are shown as
            their value.
        search: the setting's range for ``molgraph hpopt`` (:mod:`molgraph.train.hpopt`):
            ``("int", low, high[, step])``, ``("float", low, high[, step])``, ``("log", low, high)``
            (a float on a log scale) or ``("choice", (a, b, ...))``; ``None``: not searched.
    """
    meta = {"help": help, "flags": tuple(flags), "choices": choices, "metavar": metavar, "minimum": minimum,
            "nargs": nargs, "path": path, "cli": cli, "default_text": default_text, "search": search}
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"molgraph": meta})


def _meta(f: dataclasses.Field) -> dict[str, Any]:
    return dict(f.metadata.get("molgraph", {"help": "", "flags": (), "choices": None, "metavar": None,
                                            "minimum": None, "nargs": None, "path": False, "cli": True,
                                            "default_text": None, "search": None}))


def _help_with_default(f: dataclasses.Field, meta: dict[str, Any]) -> str | None:
    """The help text, with the default appended unless the text already states it."""
    text = meta["help"] or ""
    if "default" in text:
        return text
    if meta["default_text"] is not None:
        shown = meta["default_text"]
    elif f.default is not dataclasses.MISSING and f.default is not None:
        shown = f.default if not isinstance(f.default, bool) else ("on" if f.default else "off")
    elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = f.default_factory()  # type: ignore[misc]
        shown = " ".join(str(v) for v in value) if isinstance(value, list) and value else ("none" if not value else value)
    else:
        return text or None
    return f"{text} (default: {shown})" if text else f"default: {shown}"


def _sections(cls: type) -> list[dataclasses.Field]:
    return [f for f in fields(cls) if dataclasses.is_dataclass(f.type if isinstance(f.type, type) else _hint(cls, f.name))]


def _hint(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


@functools.lru_cache(maxsize=None)
def _section_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def section_fields(cls: type) -> Iterator[tuple[str, type, dataclasses.Field]]:
    """``(section name, section class, field)`` for every setting of config class ``cls``."""
    hints = typing.get_type_hints(cls)
    for sf in fields(cls):
        section_cls = hints[sf.name]
        if not dataclasses.is_dataclass(section_cls):
            raise TypeError(f"{cls.__name__}.{sf.name}: every field of a config is a section (a dataclass)")
        for f in fields(section_cls):
            yield sf.name, section_cls, f


@functools.lru_cache(maxsize=None)
def section_of(cls: type) -> dict[str, str]:
    """Setting name -> its section, for config class ``cls``; a name in two sections, or a setting
    named like a section (``config.name`` would be ambiguous), is an error."""
    where: dict[str, str] = {}
    sections = {f.name for f in fields(cls)}
    for section, _, f in section_fields(cls):
        if f.name in sections:
            raise TypeError(f"{cls.__name__}: setting {f.name!r} has the name of a section; rename the section")
        if f.name in where:
            raise TypeError(f"{cls.__name__}: setting {f.name!r} is in sections {where[f.name]!r} and {section!r}; "
                            "setting names must be unique across sections")
        where[f.name] = section
    return where


class SectionedConfig:
    """Base of method configs: sections as fields, with a flat view of the settings.

    ``Config(epochs=3, model=ModelSection(...))``: keyword arguments are section objects or
    single settings (routed to their section); ``config.epochs`` reads and assigns through to the
    section that holds ``epochs``. Subclasses are ``@dataclass(init=False)`` with one field per
    section, each with a ``default_factory``.
    """

    def __init__(self, **values: Any) -> None:
        where = section_of(type(self))
        hints = _section_hints(type(self))
        section_names = [f.name for f in fields(self)]
        for name in section_names:
            given = values.pop(name, None)
            if given is None:
                given = hints[name]()
            elif isinstance(given, Mapping):
                given = hints[name](**given)
            object.__setattr__(self, name, given)
        unknown = sorted(k for k in values if k not in where)
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}")
        for key, value in values.items():
            setattr(getattr(self, where[key]), key, value)

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails: a setting inside a section
        if name.startswith("__"):
            raise AttributeError(name)
        where = section_of(type(self))
        if name in where:
            return getattr(object.__getattribute__(self, where[name]), name)
        raise AttributeError(f"{type(self).__name__} has no setting {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in {f.name for f in fields(self)}:
            object.__setattr__(self, name, value)
            return
        where = section_of(type(self))
        if name not in where:
            raise AttributeError(f"{type(self).__name__} has no setting {name!r}")
        setattr(getattr(self, where[name]), name, value)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and config_to_dict(self) == config_to_dict(other)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        inner = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return f"{type(self).__name__}({inner})"

    # -- conversions -------------------------------------------------------------------------------
    def to_dict(self, *, nested: bool = False) -> dict[str, Any]:
        """The settings: flat (``name -> value``, molgraph 0.1's layout) or ``nested`` by section."""
        out = config_to_dict(self)
        return out if nested else flatten(out)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "config") -> Any:
        return config_from_dict(cls, values, source=source)


# -- the shared trainer's settings ---------------------------------------------------------------------

@dataclass
class TrainerSettings:
    """Settings of the shared trainer, the same for every method (the ``[train]`` table).

    Learning rates are per optimizer step; ``warmup_epochs`` may be fractional.
    """

    seed: int = setting(0, flags=("--pytorch-seed",), help="model seed (default 0)")
    epochs: int = setting(50, help="default 50", minimum=1)
    patience: int | None = setting(None, help="early stopping after N epochs without improvement", minimum=1,
                                   default_text="no early stopping")
    batch_size: int = setting(64, flags=("-b",), help="examples per batch per process (default 64)", minimum=1)
    optimizer: str = setting("adam", choices=OPTIMIZERS, help="%(choices)s (default adam)")
    weight_decay: float = setting(0.0, help="optimizer weight decay", minimum=0)
    schedule: str = setting("noam", choices=SCHEDULES, help="LR schedule: %(choices)s (default noam)")
    warmup_epochs: float = setting(2.0, help="warm-up of the schedule, in epochs", minimum=0)
    init_lr: float = setting(1e-4)
    max_lr: float = setting(1e-3, search=("log", 2e-4, 3e-3))
    final_lr: float = setting(1e-4)
    grad_clip: float | None = setting(None, help="gradient norm clipping", default_text="no clipping")
    monitor: str = setting("val_loss", flags=("--tracking-metric",),
                           help="what selects the best epoch: val_loss (default) or val_<metric>")
    ensemble_size: int = setting(1, help="deep ensemble of K models (default 1)", minimum=1)
    # hardware
    accelerator: str = setting("auto", help="cpu | gpu | auto (default auto)")
    devices: str = setting("1", help="number of devices or a list like 0,1 (default 1)")
    num_nodes: int = setting(1, minimum=1)
    strategy: str = setting("auto", help="Lightning strategy, e.g. ddp (default auto)")
    precision: str = setting("32-true", help="e.g. 32-true, bf16-mixed")
    num_workers: int = setting(0, help="DataLoader workers (default 0)", minimum=0)
    # measured on this 2-core CPU (lipophilicity, D-MPNN, 3 epochs, paired): 3.33-3.43 s per epoch
    # deterministic against 3.47-3.57 s without, so it is on by default (docs/trainer.md)
    deterministic: bool = setting(True, help="torch's deterministic algorithms: a CPU run repeats bit for bit "
                                             "with the same seeds and thread count, whatever the machine's load "
                                             "(on GPUs, kernels without a deterministic version only warn)")
    progress: bool | None = setting(None, help="progress bar (default: on a terminal; elsewhere one line per epoch)")
    quiet: bool = setting(False, help="no per-epoch lines when there is no progress bar")
    # output
    output_dir: str | None = setting(None, flags=("-o", "--save-dir"), help="run folder to create", path=True,
                                     default_text="none: required")

    def validate(self, logged: tuple[str, ...] = ("val_loss", "train_loss")) -> None:
        """Ranges and combinations of the trainer settings; ``logged``: what the task logs (monitor)."""
        from molgraph.train.optim import check_optimizer, check_schedule

        check_optimizer(self.optimizer)
        check_schedule(self.schedule, init_lr=self.init_lr, max_lr=self.max_lr, final_lr=self.final_lr)
        if not 0 <= self.seed < 2**32:  # numpy's and Lightning's seed range
            raise ValueError(f"seed must be in [0, 2**32), got {self.seed}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 (or left out: no clipping), got {self.grad_clip}")
        if self.monitor not in logged:
            raise ValueError(f"monitor must be one of {', '.join(logged)}; got {self.monitor!r}")
        if self.output_dir is None:
            raise ValueError("output_dir (-o RUN_DIR) is required")


# -- checks ----------------------------------------------------------------------------------------------

def _is_int(value: Any) -> bool:
    # bool is an Integral too, but `epochs = true` is a mistake, not 1
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def coerce(setting_name: str, value: Any, hint: Any, *, path: bool = False) -> Any:
    """``value`` checked against the field type ``hint`` and normalized (ints, floats, lists)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]  # settings' unions are `X | None`
        return coerce(setting_name, value, inner, path=path)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{setting_name} must be a list of {args[0].__name__} values, got {value!r}")
        return [coerce(setting_name, v, args[0], path=path) for v in value]
    if hint is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{setting_name} must be true or false, got {value!r}")
        return bool(value)
    if hint is int:
        if not _is_int(value):
            raise ValueError(f"{setting_name} must be an integer, got {value!r}")
        return int(value)
    if hint is float:
        if not (_is_int(value) or isinstance(value, numbers.Real) and not isinstance(value, bool)):
            raise ValueError(f"{setting_name} must be a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ValueError(f"{setting_name} must be a finite number, got {value!r}")
        return float(value)
    if hint is str:
        if path and isinstance(value, _PATH_TYPES):
            return os.fspath(value)  # a Path is fine; the saved settings file holds its text
        if not isinstance(value, str):
            raise ValueError(f"{setting_name} must be a string, got {value!r}")
        return value
    raise TypeError(f"{setting_name}: no check for type {hint!r}")  # a new field type: add its check here


def check_types(config: Any) -> None:
    """Each value has its field's type (a TOML file can say ``epochs = "3"``); numbers normalized;
    ``minimum`` checked. Raises ``ValueError`` naming the setting."""
    train = getattr(config, "train", None)
    if isinstance(train, TrainerSettings):
        # devices: "1", "0,1", "auto" or -1; a TOML number or list of numbers means the same
        if isinstance(train.devices, (list, tuple)) and all(_is_int(d) for d in train.devices):
            train.devices = ",".join(str(int(d)) for d in train.devices)
        elif _is_int(train.devices):
            train.devices = str(int(train.devices))
    for section, section_cls, f in section_fields(type(config)):
        obj = getattr(config, section)
        hint = typing.get_type_hints(section_cls)[f.name]
        meta = _meta(f)
        value = coerce(f.name, getattr(obj, f.name), hint, path=meta["path"])
        setattr(obj, f.name, value)
        low = meta["minimum"]
        if low is not None and value is not None and not isinstance(value, list) and value < low:
            raise ValueError(f"{f.name} must be >= {low:g}, got {value}")


def check_choices(config: Any) -> None:
    """Every setting declared with ``choices`` names a registered entry (aliases resolved)."""
    for section, _, f in section_fields(type(config)):
        choices = _meta(f)["choices"]
        value = getattr(getattr(config, section), f.name)
        if choices is None or value is None:
            continue
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(choices, Registry):
                canonical = choices.check(v, f.name)
            elif v in choices:
                canonical = v
            else:
                raise ValueError(f"{f.name} must be one of {', '.join(choices)}; got {v!r}")
            if not isinstance(value, list) and canonical != v:
                setattr(getattr(config, section), f.name, canonical)


# -- reading and writing ---------------------------------------------------------------------------------

def flatten(values: Mapping[str, Any]) -> dict[str, Any]:
    """Tables merged into one level; a key in two tables is an error."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            for k, v in flatten(value).items():
                if k in out:
                    raise ValueError(f"setting {k!r} appears twice")
                out[k] = v
        else:
            if key in out:
                raise ValueError(f"setting {key!r} appears twice")
            out[key] = value
    return out


def config_from_dict(cls: type, values: Mapping[str, Any], *, source: str = "config") -> Any:
    """A config of class ``cls`` from nested (by section) or flat values; unknown keys are an error.

    Section names of the file are not trusted: a setting goes to the section that declares it,
    so a recipe that groups settings differently (molgraph 0.1's ``[optim]``) still reads.
    """
    where = section_of(cls)
    flat = flatten({k: v for k, v in values.items() if k != "method"})
    unknown = sorted(set(flat) - set(where))
    if unknown:
        raise ValueError(f"{source}: unknown setting(s) {unknown}; known: {sorted(where)}")
    return cls(**flat)


def config_to_dict(config: Any) -> dict[str, dict[str, Any]]:
    """``{section: {setting: value}}``."""
    return {f.name: dataclasses.asdict(getattr(config, f.name)) for f in fields(config)}


def load_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A TOML file's tables (as written; section names are resolved by :func:`config_from_dict`)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: invalid TOML: {exc}") from None


def save_toml(config: Any, path: str | os.PathLike[str], *, method: str | None = None, header: str = "") -> Path:
    """Write the settings as TOML, one table per section (``None`` values are left out: defaults)."""
    import tomli_w

    from molgraph.io import atomic_output

    values: dict[str, Any] = {"method": method} if method else {}
    for section, content in config_to_dict(config).items():
        kept = {k: v for k, v in content.items() if v is not None}
        if kept:
            values[section] = kept
    path = Path(path)
    with atomic_output(path, "wb") as fh:
        if header:
            fh.write(("".join(f"# {line}\n" for line in header.splitlines())).encode())
        fh.write(tomli_w.dumps(values).encode())
    return path


# -- the command line ------------------------------------------------------------------------------------

class _Choices:
    """argparse ``choices`` read from a registry on first use (listing them imports its home module)."""

    def __init__(self, names: Registry | tuple[str, ...]) -> None:
        self.names = names

    def __contains__(self, value: object) -> bool:
        return value in self.names

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)


def add_arguments(parser: argparse.ArgumentParser, cls: type, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Command-line options for every setting of config class ``cls``, one argument group per section.

    Options default to "not given" (``argparse.SUPPRESS``) so that a config file's value stands
    unless the command line names the setting. Returns setting name -> section.
    """
    hints_by_section: dict[str, dict[str, Any]] = {}
    groups: dict[str, Any] = {}
    for section, section_cls, f in section_fields(cls):
        meta = _meta(f)
        if not meta["cli"] or f.name in skip:
            continue
        if section not in groups:
            groups[section] = parser.add_argument_group(section)
            hints_by_section[section] = typing.get_type_hints(section_cls)
        hint = hints_by_section[section][f.name]
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin in (typing.Union, types.UnionType):
            hint = [a for a in args if a is not type(None)][0]
            origin, args = typing.get_origin(hint), typing.get_args(hint)
        given = [f"--{f.name.replace('_', '-')}", *meta["flags"]]
        # short options first, as argparse shows them; otherwise in declaration order
        names = sorted(given, key=lambda n: (n.startswith("--"), given.index(n)))
        help_text = _help_with_default(f, meta)
        # argparse formats help with %: a literal percent sign in a default would break it
        help_text = help_text.replace("%", "%%").replace("%%(choices)s", "%(choices)s") if help_text else None
        kwargs: dict[str, Any] = {"dest": f.name, "help": help_text, "default": argparse.SUPPRESS}
        if meta["choices"] is not None:
            kwargs["choices"] = _Choices(meta["choices"])
            kwargs["metavar"] = meta["metavar"] or "NAME"
        elif meta["metavar"] is not None:
            kwargs["metavar"] = meta["metavar"]
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif origin is list:
            kwargs["nargs"] = meta["nargs"] or "+"
            kwargs["type"] = args[0] if args[0] in (int, float) else str
        else:
            kwargs["type"] = hint if hint in (int, float) else str
        groups[section].add_argument(*names, **kwargs)
    return section_of(cls)
