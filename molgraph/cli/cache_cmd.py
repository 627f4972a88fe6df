"""``molgraph cache``: what molgraph keeps in its cache folder, and removing it.

Examples::

    molgraph cache info                  # the folder, each cache with its size and content, total
    molgraph cache clear                 # asks before removing molgraph's caches
    molgraph cache clear --yes           # no question (scripts)
    molgraph cache info --dir /scratch/molgraph-cache

The folder is ``$MOLGRAPH_CACHE``, else ``<user cache dir>/molgraph/processed``
(:func:`molgraph.data.sources.cache_dir`). Loading data writes caches there: featurized molecule
tables (``<name>-<key>.npz``; ``.pt`` from molgraph versions before the compact format), QM9's
processed arrays (``qm9-<key>.npz``) and TU sets parsed by PyG (``tu/<NAME>-<key>/``).

A file counts as molgraph's only when its content says so (the format string molgraph writes
into it, or the marker file of a TU folder) or it is an unfinished write of such a file
(``.<cache file name>.<random>.tmp``). ``clear`` removes only those; anything else in the folder
is listed as "not molgraph's" and left alone. The module reads files with numpy and zipfile only
(no torch, no RDKit), so the command answers at once.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["CacheEntry", "CacheScan", "clear_cache", "register", "run", "scan_cache"]

# The formats molgraph writes into its cache files. They are spelled out here rather than imported
# (csv_dataset and qm9 import torch and RDKit: seconds for a listing); tests/test_cache.py checks
# that they equal the writers' constants.
CSV_CACHE_FORMAT = "molgraph.csv_dataset_cache/2"
CSV_CACHE_LEGACY = ("molgraph.csv_dataset_cache/1",)
QM9_CACHE_FORMAT = "molgraph.qm9_cache/1"
TU_CACHE_FORMAT = "molgraph.tu_cache/1"
TU_CACHE_MARKER = "molgraph-cache.json"
TU_NAMES = ("MUTAG", "PTC_MR", "PROTEINS", "NCI1", "IMDB-BINARY", "IMDB-MULTI")

# atomic_output's temporary file for <final>: ".<final>.<random>.tmp"
_TMP_NAME = re.compile(r"^\.(?P<final>[^/]+-[0-9a-f]{16,20}\.(?:npz|pt))\.[^./]+\.tmp$")
_TU_FOLDER = re.compile(r"^(?P<name>[A-Z0-9_-]+)-[0-9a-f]{16}$")
_TU_TMP_FOLDER = re.compile(r"^\.(?P<name>[A-Z0-9_-]+)-[0-9a-f]{16}\.[^/]+$")  # mkdtemp of a TU build
# An unfinished write younger than this may still be going on in another process: clear keeps it.
UNFINISHED_MIN_AGE_S = 3600.0
# Pickle of an old .pt cache (strings and tensor references, no tensor data): read at most this much.
_MAX_PICKLE_BYTES = 256 << 20


@dataclass(frozen=True)
class CacheEntry:
    """One cache file (or TU folder) molgraph wrote.

    Attributes:
        path: the file or folder.
        kind: ``"features"``, ``"features (old format)"``, ``"qm9"``, ``"tu"`` or ``"unfinished"``.
        what: what it holds, for people.
        size: bytes on disk (a folder: all its files).
        removable: whether ``clear`` removes it (an unfinished write younger than
            :data:`UNFINISHED_MIN_AGE_S` is kept: it may still be in progress).
    """

    path: Path
    kind: str
    what: str
    size: int
    removable: bool = True


@dataclass(frozen=True)
class CacheScan:
    """What :func:`scan_cache` found in a cache folder.

    Attributes:
        folder: the folder scanned.
        entries: molgraph's cache files and folders, by name.
        others: everything else at the top of the folder (and in ``tu/``): never removed.
    """

    folder: Path
    entries: tuple[CacheEntry, ...]
    others: tuple[Path, ...]

    @property
    def total(self) -> int:
        """Bytes of molgraph's entries."""
        return sum(e.size for e in self.entries)


def _tree_size(path: Path) -> int:
    if path.is_dir() and not path.is_symlink():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return path.lstat().st_size


def _npz_entry(path: Path) -> tuple[str, str] | None:
    """``(kind, what)`` of a molgraph ``.npz`` cache, else ``None``. Reads only the small members."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as f:
            names = set(f.files)
            if "format" in names and str(f["format"]) == CSV_CACHE_FORMAT:
                about = json.loads(str(f["about_json"])) if "about_json" in names else {}
                rejected = about.get("num_rejected")
                detail = ", ".join(str(x) for x in (
                    f"{about['num_graphs']} molecules" if "num_graphs" in about else None,
                    about.get("featurizer"),
                    f"{rejected} rejected" if rejected else None,
                    f"molgraph {about['molgraph_version']}" if "molgraph_version" in about else None,
                ) if x)
                return "features", f"features of {about.get('source', '?')} ({detail})"
            if "key" in names:
                key = json.loads(str(f["key"]))
                if isinstance(key, dict) and key.get("format") == QM9_CACHE_FORMAT:
                    n = f["index"].shape[0] if "index" in names else "?"
                    return "qm9", (f"QM9 processed arrays ({n} molecules, {len(key.get('targets', []))} targets, "
                                   f"{key.get('energy_unit')}, molgraph {key.get('molgraph_version')})")
    except Exception:  # not an npz, damaged, or members of other types: not recognizably ours
        return None
    return None


def _pt_entry(path: Path) -> tuple[str, str] | None:
    """``(kind, what)`` of an old-format ``.pt`` feature cache, else ``None``.

    A torch file is a zip whose ``<archive>/data.pkl`` holds the dict's strings; the format string
    molgraph wrote is looked for there, without unpickling anything (and without torch)."""
    try:
        with zipfile.ZipFile(path) as zf:
            pickles = [i for i in zf.infolist() if i.filename.endswith("/data.pkl") and i.filename.count("/") == 1]
            if len(pickles) != 1 or pickles[0].file_size > _MAX_PICKLE_BYTES:
                return None
            data = zf.read(pickles[0])
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    for fmt in CSV_CACHE_LEGACY:
        if fmt.encode() in data:
            return "features (old format)", f"features, old .pt format ({fmt}): no longer read"
    return None


def _tu_entry(folder: Path, name_pattern: re.Pattern[str]) -> str | None:
    """The TU set's name if ``folder`` is a TU cache folder holding nothing but what molgraph and
    PyG put there (``<NAME>/raw/*``, ``<NAME>/processed/*``, the marker), else ``None``."""
    match = name_pattern.match(folder.name)
    if not match or match["name"] not in TU_NAMES or folder.is_symlink():
        return None
    tu_name = match["name"]
    marker = folder / TU_CACHE_MARKER
    if marker.is_file():
        try:
            if json.loads(marker.read_text()).get("format") != TU_CACHE_FORMAT:
                return None
        except (OSError, ValueError, AttributeError):
            return None
    elif not (folder / tu_name / "processed").is_dir():
        return None  # folders from before the marker: recognized by PyG's layout
    for p in folder.rglob("*"):
        rel = p.relative_to(folder).parts
        if p.is_symlink():
            return None
        if rel == (TU_CACHE_MARKER,) or rel == (tu_name,) or (len(rel) >= 2 and rel[:1] == (tu_name,)
                                                              and rel[1] in ("raw", "processed")):
            continue
        return None  # something molgraph did not put there: leave the whole folder alone
    return tu_name


def scan_cache(folder: str | os.PathLike[str] | None = None, *, now: float | None = None) -> CacheScan:
    """List molgraph's caches in ``folder`` (default :func:`~molgraph.data.sources.cache_dir`).

    Only the top of the folder and its ``tu/`` sub-folder are looked at; files are recognized by
    content (see the module doc), never by name alone. A missing folder gives an empty scan.
    """
    from molgraph.data.sources import cache_dir

    folder = Path(folder) if folder is not None else cache_dir()
    now = time.time() if now is None else now
    entries: list[CacheEntry] = []
    others: list[Path] = []
    if not folder.is_dir():
        return CacheScan(folder, (), ())
    for path in sorted(folder.iterdir()):
        found: tuple[str, str] | None = None
        removable = True
        if path.is_symlink():
            found = None
        elif path.is_dir() and path.name == "tu":
            _scan_tu(path, entries, others, now)
            continue
        elif path.is_file() and path.suffix == ".npz":
            found = _npz_entry(path)
        elif path.is_file() and path.suffix == ".pt":
            found = _pt_entry(path)
        elif path.is_file() and _TMP_NAME.match(path.name):
            found = "unfinished", f"unfinished write of {_TMP_NAME.match(path.name)['final']}"
            removable = now - path.stat().st_mtime >= UNFINISHED_MIN_AGE_S
        if found is None:
            others.append(path)
        else:
            entries.append(CacheEntry(path, found[0], found[1], _tree_size(path), removable))
    return CacheScan(folder, tuple(entries), tuple(others))


def _scan_tu(tu_dir: Path, entries: list[CacheEntry], others: list[Path], now: float) -> None:
    for path in sorted(tu_dir.iterdir()):
        if path.is_dir() and not path.is_symlink():
            name = _tu_entry(path, _TU_FOLDER)
            if name is not None:
                entries.append(CacheEntry(path, "tu", f"TU {name} parsed by PyG (raw copies + processed)",
                                          _tree_size(path)))
                continue
            name = _tu_entry(path, _TU_TMP_FOLDER)
            if name is not None:
                young = now - path.stat().st_mtime < UNFINISHED_MIN_AGE_S
                entries.append(CacheEntry(path, "unfinished", f"unfinished TU {name} build", _tree_size(path),
                                          removable=not young))
                continue
        others.append(path)


def clear_cache(folder: str | os.PathLike[str] | None = None, *, scan: CacheScan | None = None) -> list[CacheEntry]:
    """Remove molgraph's removable caches from ``folder`` (or those of ``scan``); returns them.

    Files molgraph did not write are never touched (:func:`scan_cache` decides by content); an
    emptied ``tu/`` folder is removed too. An entry that vanished meanwhile is skipped.
    """
    scan = scan if scan is not None else scan_cache(folder)
    removed = []
    for entry in scan.entries:
        if not entry.removable:
            continue
        try:
            if entry.path.is_dir() and not entry.path.is_symlink():
                shutil.rmtree(entry.path)
            else:
                entry.path.unlink()
        except FileNotFoundError:
            continue  # another process removed it
        removed.append(entry)
    tu_dir = scan.folder / "tu"
    if tu_dir.is_dir() and not tu_dir.is_symlink() and not any(tu_dir.iterdir()):
        tu_dir.rmdir()
    return removed


# -- command line --------------------------------------------------------------------------------

def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``cache`` sub-command to the main parser's ``subparsers``."""
    parser = subparsers.add_parser(
        "cache",
        help="show or clear molgraph's cache folder (featurized datasets)",
        description="Show or clear the folder where loading data caches featurized molecules "
        "($MOLGRAPH_CACHE, else the user cache folder). Only files molgraph wrote are ever removed.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    p_info = actions.add_parser("info", help="the cache folder, each cache file with size and content, total")
    p_info.add_argument("--dir", default=None, help="cache folder (default: $MOLGRAPH_CACHE or the user cache)")
    p_clear = actions.add_parser("clear", help="remove molgraph's cache files (asks first unless --yes)")
    p_clear.add_argument("--dir", default=None, help="cache folder (default: $MOLGRAPH_CACHE or the user cache)")
    p_clear.add_argument("-y", "--yes", action="store_true", help="remove without asking")
    parser.set_defaults(func=run, _cache_parser=parser)
    return parser


def run(args: argparse.Namespace, *, ask: Callable[[str], str] = input) -> int:
    """Dispatch ``molgraph cache ACTION``; returns the exit code (``ask``: the confirmation prompt)."""
    action = getattr(args, "action", None)
    if action == "info":
        return _info(args.dir)
    if action == "clear":
        return _clear(args.dir, args.yes, ask)
    args._cache_parser.print_help()
    return 2


def _where(folder: Path, given: str | None) -> str:
    from molgraph.data.sources import CACHE_ENV

    if given is not None:
        return f"{folder} (--dir)"
    if os.environ.get(CACHE_ENV):
        return f"{folder} (${CACHE_ENV})"
    return f"{folder} (user cache; set ${CACHE_ENV} to move it)"


def _info(given: str | None) -> int:
    from molgraph.data.sources import format_size

    scan = scan_cache(given)
    print(f"cache folder: {_where(scan.folder, given)}")
    if not scan.folder.is_dir():
        print("  (does not exist yet: nothing cached)")
        return 0
    if scan.entries:
        rows = [(format_size(e.size), e.path.relative_to(scan.folder).as_posix() + ("/" if e.path.is_dir() else ""),
                 e.what + ("" if e.removable else " (recent: may still be in progress, kept by clear)"))
                for e in scan.entries]
        width = [max(len(r[i]) for r in rows) for i in range(2)]
        for size, name, what in rows:
            print(f"  {size.rjust(width[0])}  {name.ljust(width[1])}  {what}")
    n = len(scan.entries)
    print(f"total: {n} cache {'entry' if n == 1 else 'entries'}, {format_size(scan.total)}")
    if scan.others:
        names = ", ".join(p.relative_to(scan.folder).as_posix() for p in scan.others[:5])
        more = f" and {len(scan.others) - 5} more" if len(scan.others) > 5 else ""
        print(f"not molgraph's (never removed): {names}{more}")
    return 0


def _clear(given: str | None, yes: bool, ask: Callable[[str], str]) -> int:
    from molgraph.data.sources import format_size

    scan = scan_cache(given)
    doomed = [e for e in scan.entries if e.removable]
    if not doomed:
        print(f"nothing to remove in {_where(scan.folder, given)}")
        return 0
    size = format_size(sum(e.size for e in doomed))
    if not yes:
        try:
            answer = ask(f"remove {len(doomed)} molgraph cache {'entry' if len(doomed) == 1 else 'entries'} "
                         f"({size}) from {scan.folder}? [y/N] ")
        except EOFError:  # no terminal (a pipe, /dev/null): same as no
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing removed (answer y, or pass --yes)", file=sys.stderr)
            return 1
    removed = clear_cache(scan=CacheScan(scan.folder, tuple(doomed), scan.others))
    print(f"removed {len(removed)} cache {'entry' if len(removed) == 1 else 'entries'} "
          f"({format_size(sum(e.size for e in removed))}) from {scan.folder}")
    kept = len(scan.entries) - len(doomed)
    if kept:
        print(f"kept {kept} unfinished write(s) younger than {UNFINISHED_MIN_AGE_S / 3600:.0f} h (may be in progress)")
    if scan.others:
        print(f"left alone {len(scan.others)} item(s) molgraph did not write")
    return 0


def main(argv: Sequence[str] | None = None) -> int:  # pragma: no cover - convenience for python -m
    from molgraph.cli.main import main as molgraph_main

    return molgraph_main(["cache", *(argv if argv is not None else sys.argv[1:])])
