"""Names of choices, each defined once: one :class:`Registry` per kind of name.

Every name a user can type (a method, an encoder, a norm, a readout, a split, an optimizer, a
schedule, a metric, a dataset) lives in exactly one registry here. The code that implements a
name registers it next to its definition; the command line, the settings check and the model
file read the registry, so a name added in one place is accepted everywhere.

This module is the ground floor: it imports nothing of the package. A registry names the module
that fills it (``home``) and imports it on first lookup, so listing the norms does not import
torch until someone asks for them, and registering a new entry never edits this file::

    from molgraph.registry import NORMS
    NORMS.register("my_norm", MyNorm, help="...")

Plugins: modules named in the environment variable ``MOLGRAPH_PLUGINS`` (comma-separated) and
entry points of the group ``molgraph.plugins`` are imported before the first lookup of any
registry, so a method or encoder defined outside the package is found by ``molgraph train``
without editing a package file.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = [
    "Registry",
    "Entry",
    "load_plugins",
    "METHODS",
    "ENCODERS",
    "MODELS",
    "NORMS",
    "READOUTS",
    "ACTIVATIONS",
    "PROPAGATIONS",
    "SPLITS",
    "OPTIMIZERS",
    "SCHEDULES",
    "METRICS",
    "TASK_TYPES",
    "DATASETS",
    "FEATURIZERS",
    "MOLECULE_FEATURIZERS",
]

T = TypeVar("T")

PLUGINS_ENV = "MOLGRAPH_PLUGINS"
PLUGIN_GROUP = "molgraph.plugins"
_plugins_loaded = False


def load_plugins(*, force: bool = False) -> list[str]:
    """Import the plugin modules (``$MOLGRAPH_PLUGINS``, entry points ``molgraph.plugins``) once.

    Returns the names of the modules imported by this call. A plugin that fails to import is an
    error naming it: a method that silently disappeared would make ``--method NAME`` fail later
    with a less helpful message.
    """
    global _plugins_loaded
    if _plugins_loaded and not force:
        return []
    _plugins_loaded = True
    loaded: list[str] = []
    for name in [n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(",") if n.strip()]:
        try:
            importlib.import_module(name)
        except Exception as exc:
            _plugins_loaded = False
            raise ImportError(f"{PLUGINS_ENV}: plugin module {name!r} failed to import: {exc}") from exc
        loaded.append(name)
    from importlib.metadata import entry_points

    for ep in entry_points(group=PLUGIN_GROUP):
        try:
            ep.load()
        except Exception as exc:
            _plugins_loaded = False
            raise ImportError(f"entry point {ep.name!r} ({ep.value}) of group {PLUGIN_GROUP} failed to load: {exc}") from exc
        loaded.append(ep.value)
    return loaded


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered name: the object, a one-line help text and where it was registered."""

    name: str
    obj: T
    help: str = ""
    module: str = ""


class Registry(Mapping[str, T]):
    """Name -> object, filled by the modules that define the objects.

    A read-only mapping (``REG[name]``, ``name in REG``, ``list(REG)``: names in registration
    order) with :meth:`register` to add entries and :meth:`get` for a lookup whose error lists the
    valid names. ``home`` modules are imported on the first read, then plugins.

    Args:
        kind: what the names are ("norm", "method"), used in messages.
        home: modules that register the built-in entries (imported lazily, in order).
    """

    def __init__(self, kind: str, home: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.home = tuple(home)
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}
        self._filled = not self.home
        self._filling = False

    # -- filling -------------------------------------------------------------------------------------
    def _fill(self) -> None:
        if self._filled or self._filling:
            return
        self._filling = True
        try:
            for module in self.home:
                importlib.import_module(module)
            self._filled = True
        finally:
            self._filling = False
        load_plugins()

    def register(
        self,
        name: str,
        obj: T | None = None,
        *,
        help: str = "",
        aliases: tuple[str, ...] = (),
        overwrite: bool = False,
    ) -> Any:
        """Add ``name`` -> ``obj``; without ``obj``, a decorator that registers what it decorates.

        Raises:
            ValueError: ``name`` (or an alias) is taken and ``overwrite`` is false, or it is not a
                plain identifier-like word (letters, digits, ``_``, ``-``).
        """
        if obj is None:
            def decorator(target: T) -> T:
                self.register(name, target, help=help, aliases=aliases, overwrite=overwrite)
                return target

            return decorator
        if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"{self.kind} name must be a word of letters, digits, '_' or '-', got {name!r}")
        for key in (name, *aliases):
            if overwrite:
                break
            if key in self._entries and self._entries[key].obj is not obj:
                raise ValueError(f"{self.kind} {key!r} is already registered (by {self._entries[key].module or '?'})")
            if key in self._aliases and self._aliases[key] != name:
                raise ValueError(f"{self.kind} {key!r} is already an alias of {self._aliases[key]!r}")
        module = getattr(obj, "__module__", "") or ""
        self._entries[name] = Entry(name, obj, help or _first_line(getattr(obj, "__doc__", None)), module)
        for alias in aliases:
            self._aliases[alias] = name
        return obj

    def unregister(self, name: str) -> None:
        """Remove ``name`` and its aliases (tests and plugins that replace an entry)."""
        self._entries.pop(name, None)
        for alias in [a for a, n in self._aliases.items() if n == name]:
            del self._aliases[alias]

    # -- reading -------------------------------------------------------------------------------------
    def canonical(self, name: str) -> str:
        """The registered name for ``name`` or one of its aliases (``KeyError`` if neither)."""
        self._fill()
        if name in self._entries:
            return name
        if name in self._aliases:
            return self._aliases[name]
        raise KeyError(self.unknown_message(name))

    def get(self, name: str, default: Any = ...) -> T:  # type: ignore[override]
        """The object registered as ``name`` (or an alias); ``KeyError`` listing the names if none."""
        try:
            return self._entries[self.canonical(name)].obj
        except KeyError:
            if default is not ...:
                return default
            raise

    def entry(self, name: str) -> Entry[T]:
        return self._entries[self.canonical(name)]

    def names(self) -> tuple[str, ...]:
        self._fill()
        return tuple(self._entries)

    def aliases(self) -> dict[str, str]:
        self._fill()
        return dict(self._aliases)

    def unknown_message(self, name: Any) -> str:
        return f"unknown {self.kind} {name!r}; choose one of {', '.join(self.names())}"

    def check(self, name: Any, setting: str | None = None) -> str:
        """``name`` if registered (aliases resolved), else ``ValueError`` naming the setting and the choices."""
        self._fill()
        if isinstance(name, str) and (name in self._entries or name in self._aliases):
            return self._aliases.get(name, name)
        what = setting or self.kind
        raise ValueError(f"{what} must be one of {', '.join(self.names())}; got {name!r}")

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        self._fill()
        return isinstance(name, str) and (name in self._entries or name in self._aliases)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        shown = ", ".join(self._entries) if self._filled else "not loaded yet"
        return f"Registry({self.kind!r}: {shown})"


def _first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0].strip() if doc and doc.strip() else ""


# One registry per kind of name. The home modules register the built-in entries; nothing else
# lists these names.
METHODS: Registry[Any] = Registry("method", ("molgraph.methods",))
ENCODERS: Registry[Callable[..., Any]] = Registry("encoder", ("molgraph.methods.property.model",))
MODELS: Registry[dict[str, Any]] = Registry("model", ("molgraph.methods.property.model",))
NORMS: Registry[Callable[..., Any]] = Registry("norm", ("molgraph.nn.norm",))
READOUTS: Registry[Any] = Registry("readout", ("molgraph.nn.readout",))
ACTIVATIONS: Registry[Callable[[], Any]] = Registry("activation", ("molgraph.nn.ffn",))
PROPAGATIONS: Registry[Any] = Registry("gcn propagation", ("molgraph.nn.gcn",))
SPLITS: Registry[Callable[..., Any]] = Registry("split", ("molgraph.data.splits",))
OPTIMIZERS: Registry[Callable[..., Any]] = Registry("optimizer", ("molgraph.train.optim",))
SCHEDULES: Registry[Callable[..., Any]] = Registry("schedule", ("molgraph.train.optim",))
METRICS: Registry[Any] = Registry("metric", ("molgraph.train.metrics",))
TASK_TYPES: Registry[Any] = Registry("task type", ("molgraph.train.metrics",))
DATASETS: Registry[Any] = Registry("dataset", ("molgraph.data.registry",))
FEATURIZERS: Registry[Any] = Registry("featurizer", ("molgraph.featurizers.graph",))
MOLECULE_FEATURIZERS: Registry[Any] = Registry(
    "molecule featurizer", ("molgraph.featurizers.fingerprints", "molgraph.methods.ngram.features"))
