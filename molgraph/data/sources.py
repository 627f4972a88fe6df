"""Where data lives on disk, and safe ways to fetch and write it.

* :func:`data_root` — folder holding the larger raw data sets (``moleculenet/hiv/HIV.csv``, ...),
  laid out like the project's shared data folder.
* :func:`cache_dir` — folder for processed (featurized) caches; :func:`announce_cache_write`
  tells the user (one line on stderr) what was written there (``molgraph cache info|clear``).
* :func:`sha256_file` / :func:`download_file` — checksummed file access.
* :func:`atomic_output` / :func:`atomic_write_bytes` — re-exported from :mod:`molgraph.io`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
import urllib.request
from pathlib import Path

import platformdirs

from molgraph.io import atomic_output, atomic_write_bytes  # re-exported: their home moved to molgraph.io

__all__ = [
    "ChecksumError",
    "DATA_ENV",
    "CACHE_ENV",
    "data_root",
    "cache_dir",
    "announce_cache_write",
    "format_size",
    "sha256_file",
    "sha256_file_cached",
    "download_file",
    "atomic_output",
    "atomic_write_bytes",
]

DATA_ENV = "MOLGRAPH_DATA"
CACHE_ENV = "MOLGRAPH_CACHE"

_CHUNK = 1 << 20  # 1 MiB: large enough for throughput, small enough to stream any file


class ChecksumError(ValueError):
    """A file's sha256 differs from the expected one."""


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding raw data sets that are not bundled with the package.

    Resolution order: the ``root`` argument, else the ``MOLGRAPH_DATA`` environment variable,
    else ``<user cache dir>/molgraph/data`` (platformdirs). The folder is not created here.
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("molgraph")) / "data"


def cache_dir() -> Path:
    """The folder for processed caches: ``MOLGRAPH_CACHE``, else ``<user cache dir>/molgraph/processed``.

    The folder is not created here; :func:`atomic_output` creates parents when it writes.
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("molgraph")) / "processed"


CACHE_LOGGER = "molgraph.cache"


def format_size(num_bytes: int) -> str:
    """A byte count for people: ``"812 B"``, ``"2.3 MB"``, ``"1.4 GB"`` (powers of 1000)."""
    size = float(num_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _tree_size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def announce_cache_write(path: str | os.PathLike[str], what: str, error: BaseException | None = None) -> str:
    """Say, in one line on stderr, that a cache file (or folder) was written: path, size and content.

    Caches are written as a side effect of loading data; without this line a user learns of a
    100 MB file only when the disk fills. The line goes to the ``molgraph.cache`` logger at INFO
    when logging is set up (``molgraph train`` sets it up; an application decides what it shows),
    else straight to stderr, so scripts and notebooks see it too.

    Args:
        path: the file or folder written.
        what: what it holds, e.g. ``"features of esol.csv (1128 molecules, multihot)"``.
        error: the exception that stopped the write (the line then says it was not written).

    Returns:
        The line.
    """
    path = Path(path)
    if error is None:
        line = (f"molgraph: cached {what} in {path} ({format_size(_tree_size(path))}; "
                f"'molgraph cache info' lists the cache, 'molgraph cache clear' empties it)")
    else:
        line = f"molgraph: could not write the cache {path} ({what}): {error}; continuing without it"
    logger = logging.getLogger(CACHE_LOGGER)
    if logger.hasHandlers():
        logger.log(logging.WARNING if error is not None else logging.INFO, line)
    else:
        print(line, file=sys.stderr)
    return line


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


_SHA_CACHE: dict[tuple[str, int, int], str] = {}
_SHA_LOCK = threading.Lock()


def sha256_file_cached(path: str | os.PathLike[str]) -> str:
    """:func:`sha256_file`, remembered per (resolved path, size, mtime_ns) for this process only,
    so the registry's check and the dataset cache key hash a file once, not once each."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _SHA_LOCK:
        known = _SHA_CACHE.get(key)
    if known is None:
        known = sha256_file(path)
        with _SHA_LOCK:
            _SHA_CACHE[key] = known
    return known


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    sha256: str,
    *,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest``, keeping it only if its sha256 equals ``sha256``.

    The bytes stream into a temporary file in ``dest``'s folder while being hashed; the file is
    renamed to ``dest`` only after the checksum matches. On a mismatch (or any network error)
    no file is left behind (an existing ``dest`` is untouched; created parent folders may remain)
    and :class:`ChecksumError` (or the network error, as :class:`OSError`) is raised. If ``dest``
    already exists with the right checksum, nothing is downloaded.

    Args:
        url: any URL :func:`urllib.request.urlopen` understands (``https://``, ``file://``).
        dest: final file path; parent folders are created.
        sha256: expected hex digest (case-insensitive).
        timeout: socket timeout in seconds.

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.
    """
    dest = Path(dest)
    expected = sha256.strip().lower()
    if dest.is_file() and sha256_file(dest) == expected:
        return dest
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_output(dest, "wb") as out:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
            actual = digest.hexdigest()
            if actual != expected:
                # Raising inside atomic_output deletes the temporary file: nothing is kept.
                raise ChecksumError(
                    f"sha256 mismatch for {url}: expected {expected}, got {actual}; "
                    f"the download was discarded and nothing was written to {dest}"
                )
    except OSError as exc:  # ChecksumError is a ValueError and passes through unchanged
        raise OSError(f"could not download {url} to {dest}: {exc}") from exc
    return dest

