"""What every benchmark script does besides measuring: say where and when it ran, and keep one
results file per benchmark that many runs, each of some parts, add to.

Machine and run description:

* :func:`machine_info`: platform, Python, CPU model, CPU count, CPUs this process may use
  (affinity), total RAM and the load average at the call.
* :func:`library_versions`: installed versions of the named distributions (None when absent).
* :class:`RunInfo` (from :func:`start_run`): one invocation's command line, start date, machine
  and versions; :meth:`RunInfo.record` turns it into the per-part record of a results file, with
  the part's own settings and the load average when the part was recorded.

Results files (``benchmarks/results/<name>.json``):

* A benchmark's results are *parts*: an entry at a key (``"speed"``) or at a path of keys
  (``("datasets", "hiv")``). A run writes the parts it ran with :func:`update_results`, which
  reads the file, replaces those parts whole, keeps every other part, and stores the run's
  record for each written part under ``results["parts"][label]`` (label: the key path joined by
  ``/``). So each part says which command, date, machine and settings produced it, and a run of
  one part never loses or relabels another.
* The read, merge and write happen under an exclusive lock (``<file>.lock``), so benchmark
  processes running at once all end up in the file, and the write is atomic: the JSON is
  serialized in full first, then written to a temporary file in the same folder that replaces
  the old file in one rename. A failure at any point leaves the old file as it was.
* Files from before per-part records carried one file-level ``settings`` (and ``machine``, ...)
  that the last run overwrote whatever parts it ran. :func:`update_results` moves such keys,
  when the caller names them, to ``results["legacy_run"]`` on the first write, and
  :func:`part_settings` falls back to them for parts that have no record of their own.

Recipes: :func:`load_recipe` reads a ``models/*.toml`` recipe as one flat dict, so a benchmark
uses the recipe's values instead of a copy of them.

This module imports only the standard library at import time: ``featurize.py`` times a PyG
baseline in a fresh process that imports the script, and must not pay for importing molgraph.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, Union

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
RECIPES_DIR = REPO_ROOT / "models"

PARTS_KEY = "parts"
LEGACY_KEY = "legacy_run"
LEGACY_NOTE = ("file-level keys of a results file written before per-part records: they describe whichever run "
               "wrote the file last, not necessarily the run behind each part")
DEFAULT_DISTRIBUTIONS = ("rdkit", "torch", "torch_geometric", "numpy", "molgraph")

PartKey = Union[str, Sequence[str]]


class ResultsFileError(RuntimeError):
    """An existing results file cannot be read or merged into; the message names the file and why."""


# -- machine and run ----------------------------------------------------------------------------------
def utc_now() -> str:
    """The current time, UTC, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def loadavg() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the platform has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _total_ram_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def machine_info() -> dict[str, Any]:
    """Where the run happens: platform, Python, CPU model and counts, RAM, load average now.

    ``sched_affinity_count`` is the number of CPUs this process may run on, which a container or
    ``taskset`` can make smaller than ``cpu_count``.
    """
    try:
        affinity: int | None = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "sched_affinity_count": affinity,
        "total_ram_bytes": _total_ram_bytes(),
        "loadavg_at_start": loadavg(),
    }


def library_versions(distributions: Iterable[str] = DEFAULT_DISTRIBUTIONS) -> dict[str, str | None]:
    """Installed version of each distribution, None when it is not installed.

    ``molgraph`` is looked up as its distribution ``molgraph-ml``, then as the package's
    ``__version__`` (a source checkout run without installing). Other names fall back to their
    module's ``__version__`` (RDKit from conda has no distribution metadata).
    """
    from importlib import import_module, metadata

    versions: dict[str, str | None] = {}
    for dist in distributions:
        names = ("molgraph-ml", "molgraph") if dist == "molgraph" else (dist,)
        version = None
        for name in names:
            try:
                version = metadata.version(name)
                break
            except metadata.PackageNotFoundError:
                continue
        if version is None:
            try:
                version = getattr(import_module(dist.replace("-", "_")), "__version__", None)
            except ImportError:
                version = None
        versions[dist] = version
    return versions


def command_line(argv: Sequence[str] | None = None, script: str | None = None) -> str:
    """The command as typed: the script's file name and its arguments (``argv`` when given)."""
    name = Path(script or sys.argv[0]).name
    return " ".join([name, *(sys.argv[1:] if argv is None else list(argv))])


@dataclass
class RunInfo:
    """One invocation of a benchmark: command line, start date, machine and library versions."""

    command: str
    date: str
    machine: dict[str, Any]
    versions: dict[str, str | None]

    def record(self, settings: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        """The per-part record: this run's description, the part's settings, the load average now.

        ``date`` is when the run started; ``machine["loadavg_at_end"]`` is the load average at
        this call (when the part finished), next to ``loadavg_at_start`` of the run.
        """
        machine = dict(self.machine, loadavg_at_end=loadavg())
        return {"date": self.date, "recorded": utc_now(), "command": self.command,
                "settings": dict(settings or {}), "machine": machine, "versions": dict(self.versions), **extra}


def start_run(argv: Sequence[str] | None = None, *, script: str | None = None,
              distributions: Iterable[str] = DEFAULT_DISTRIBUTIONS,
              output: str | os.PathLike[str] | None = None) -> RunInfo:
    """Describe this invocation (call it before measuring: the load average is taken now).

    With ``output``, an existing results file there is read once, so that a file the run could
    not merge into stops the run now rather than after hours of measuring.
    """
    if output is not None:
        read_results(output)
    return RunInfo(command=command_line(argv, script), date=utc_now(), machine=machine_info(),
                   versions=library_versions(distributions))


# -- recipes ------------------------------------------------------------------------------------------
def recipe_path(name: str | os.PathLike[str]) -> Path:
    """``models/<name>.toml`` for a bare name, else the path as given."""
    text = str(name)
    if os.sep in text or text.endswith(".toml"):
        return Path(text)
    return RECIPES_DIR / f"{text}.toml"


def load_recipe(name: str | os.PathLike[str], required: Iterable[str] = ()) -> dict[str, Any]:
    """A recipe (``models/<name>.toml``) as one flat dict of settings.

    Recipes group their keys in tables (``[data]``, ``[model]``, ``[optim]``) only for reading,
    as ``molgraph train --config`` reads them; a key in two tables is an error here because the
    benchmark could not tell which one the trainer uses. ``required``: keys the caller needs; a
    missing one raises ``KeyError`` naming the recipe.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    path = recipe_path(name)
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"recipe {path} not found (the benchmark reads its settings from models/)") from None
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        items = value.items() if isinstance(value, dict) else [(key, value)]
        for k, v in items:
            if k in flat:
                raise ValueError(f"recipe {path}: setting {k!r} appears twice")
            flat[k] = v
    missing = [k for k in required if k not in flat]
    if missing:
        raise KeyError(f"recipe {path} has no {', '.join(missing)} (needed by the benchmark)")
    return flat


# -- results files -------------------------------------------------------------------------------------
def part_label(key: PartKey) -> str:
    """The label of a part in ``results["parts"]``: its key path joined by ``/``."""
    path = _path(key)
    return "/".join(path)


def _path(key: PartKey) -> tuple[str, ...]:
    path = (key,) if isinstance(key, str) else tuple(key)
    if not path or not all(isinstance(k, str) and k for k in path):
        raise ValueError(f"a part key is a non-empty string or a sequence of them, not {key!r}")
    return path


def get_part(results: Mapping[str, Any], key: PartKey, default: Any = None) -> Any:
    """The entry at a part's key path, or ``default``."""
    node: Any = results
    for k in _path(key):
        if not isinstance(node, Mapping) or k not in node:
            return default
        node = node[k]
    return node


def part_record(results: Mapping[str, Any], key: PartKey) -> dict[str, Any] | None:
    """The record of the run that wrote a part (None for parts written before records existed)."""
    return results.get(PARTS_KEY, {}).get(part_label(key))


def part_settings(results: Mapping[str, Any], key: PartKey,
                  legacy_key: str = "settings") -> dict[str, Any] | None:
    """The settings a part was run with.

    From the part's own record; for a part without one (a file from before per-part records),
    the file-level settings of that old file (``legacy_run.settings``, or a top-level ``settings``
    not yet moved there), which describe whichever run wrote the file last. None when neither
    exists.
    """
    record = part_record(results, key)
    if record is not None:
        return record.get("settings")
    legacy = results.get(LEGACY_KEY, {})
    if legacy_key in legacy:
        return legacy[legacy_key]
    value = results.get(legacy_key)
    return value if isinstance(value, dict) and PARTS_KEY not in results else None


def _json_default(obj: Any) -> Any:
    """numpy numbers and arrays, paths and sets as JSON; anything else is an error (no silent str())."""
    item = getattr(obj, "item", None)
    if type(obj).__module__ == "numpy" and callable(item):
        return obj.tolist() if getattr(obj, "ndim", 0) else item()
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot write a {type(obj).__name__} to a results file: {obj!r}")


def dumps(payload: Any, **json_kwargs: Any) -> str:
    """``payload`` as JSON text (indent 2 unless given), numpy values converted, ending in a newline."""
    json_kwargs.setdefault("indent", 2)
    return json.dumps(payload, default=_json_default, **json_kwargs) + "\n"


def write_json_atomic(path: str | os.PathLike[str], payload: Any, **json_kwargs: Any) -> Path:
    """Write ``payload`` as JSON to ``path`` atomically; returns the path.

    The text is made in full before the file is touched (a value JSON cannot hold raises here,
    with the old file intact), then written with molgraph's atomic writer: a temporary file in
    the same folder, flushed, fsynced and renamed over ``path``.
    """
    text = dumps(payload, **json_kwargs)
    from molgraph.data.sources import atomic_output  # lazy: keeps this module stdlib-only at import

    with atomic_output(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(path)


def read_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The results file at ``path`` ({} when there is none).

    A file that exists but is not a JSON object raises :class:`ResultsFileError`: writing over it
    would throw away whatever it held.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ResultsFileError(f"cannot read results file {p}: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ResultsFileError(f"results file {p} is not valid JSON ({exc}); move it away or fix it, "
                               "a run would otherwise overwrite it") from exc
    if not isinstance(data, dict):
        raise ResultsFileError(f"results file {p} holds a JSON {type(data).__name__}, not an object")
    return data


@contextlib.contextmanager
def locked(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on ``<path>.lock`` (blocking) while the body runs.

    Where ``fcntl`` is missing (Windows) the body runs unlocked: the write stays atomic, but two
    benchmark processes finishing at the same moment could each miss the other's parts.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    with open(p.with_name(p.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass
class Part:
    """One part of a run's results: where it goes, what it holds, and the settings it ran with.

    ``record``: the part's record as it is, instead of this run's (for a part copied from another
    results file, which keeps the record of the run that measured it).
    """

    key: PartKey
    entry: Any
    settings: Mapping[str, Any] = field(default_factory=dict)
    record: Mapping[str, Any] | None = None


def move_legacy_keys(results: dict[str, Any], legacy_keys: Iterable[str]) -> dict[str, Any]:
    """Move file-level run keys of an old-format file under ``legacy_run`` (in place; returns it).

    Only for a file without per-part records; a file that has them is left alone (its file-level
    keys, if any, were written on purpose).
    """
    if PARTS_KEY in results:
        return results
    moved = {k: results.pop(k) for k in legacy_keys if k in results}
    if moved:
        results[LEGACY_KEY] = {**moved, "note": LEGACY_NOTE}
    return results


def merge_parts(results: Mapping[str, Any], parts: Iterable[Part], run: RunInfo,
                legacy_keys: Iterable[str] = ()) -> dict[str, Any]:
    """A copy of ``results`` with each of ``parts`` written and recorded; every other part kept.

    A part's entry replaces whatever was at its key path (a rerun part replaces its own entry;
    parents along the path are created). Its record, ``run.record(part.settings)`` (or the
    part's own ``record``), goes to ``results["parts"][label]``.
    """
    merged = json.loads(dumps(dict(results)))  # a deep copy, so the caller's dict is never half-updated
    move_legacy_keys(merged, legacy_keys)
    records = merged.setdefault(PARTS_KEY, {})
    for part in parts:
        path = _path(part.key)
        node = merged
        for k in path[:-1]:
            child = node.get(k)
            if child is None:
                child = node[k] = {}
            elif not isinstance(child, dict):
                raise ResultsFileError(f"part {part_label(path)}: {k!r} holds a {type(child).__name__}, not an object")
            node = child
        node[path[-1]] = part.entry
        records[part_label(path)] = dict(part.record) if part.record is not None else run.record(part.settings)
    return merged


def update_results(path: str | os.PathLike[str],
                   parts: Iterable[Part] | Callable[[dict[str, Any]], Iterable[Part]],
                   run: RunInfo, *, benchmark: str | None = None, legacy_keys: Iterable[str] = (),
                   finalize: Callable[[dict[str, Any]], None] | None = None,
                   json_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Merge ``parts`` into the results file at ``path`` and write it atomically; returns the new content.

    Under the file's lock: read the file, :func:`merge_parts`, set ``benchmark`` (when given) and
    ``updated`` (now), call ``finalize(results)`` to recompute what derives from all parts
    (tables, summaries), write. ``parts`` may be a function of the file's current content, for
    parts that fold earlier runs in (it is called under the lock, so no other process writes in
    between). ``legacy_keys``: the file-level run keys an old-format file of this benchmark has
    (see :func:`move_legacy_keys`).
    """
    legacy_keys = tuple(legacy_keys)
    with locked(path):
        current = read_results(path)
        chosen = list(parts(current) if callable(parts) else parts)
        merged = merge_parts(current, chosen, run, legacy_keys)
        if benchmark is not None:
            merged["benchmark"] = benchmark
        merged["updated"] = utc_now()
        if finalize is not None:
            finalize(merged)
        write_json_atomic(path, merged, **dict(json_kwargs or {}))
    return merged
