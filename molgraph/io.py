"""Safe file writing and reading, used by every layer (the ground floor: imports nothing of molgraph).

* :func:`atomic_output` / :func:`atomic_write_bytes`: every write in molgraph goes through these, so
  a crash or an exception never leaves a half-written file under its final name.
* :func:`safe_torch_load`: ``torch.load(..., weights_only=True)``; a file with pickled objects is
  refused, never run.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
import warnings
from pathlib import Path
from typing import IO, Any, Iterator

__all__ = ["atomic_output", "atomic_write_bytes", "error_exit", "safe_torch_load", "UnsafeFileError"]

_WRITE_MODES = frozenset({"w", "wt", "wb"})


class UnsafeFileError(ValueError):
    """A torch file that must not be loaded (it carries pickled code) or cannot be read."""


def _current_umask() -> int:
    # os.umask can only be read by setting it; do it once at import, before worker threads exist.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], mode: str = "wb", **open_kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success it replaces ``path`` in one step.

    The temporary file lives in the destination folder (so :func:`os.replace` is an atomic rename
    on the same file system) and is flushed and fsynced before the rename. If the ``with`` body
    raises, the temporary file is deleted and an existing ``path`` is left untouched. Parent
    folders are created. The new file gets the usual permissions (0666 minus the umask), not the
    0600 of a raw temporary file.

    Args:
        path: final destination.
        mode: ``"wb"`` (default), ``"w"`` or ``"wt"``; appending or reading modes are refused
            because the temporary file starts empty.
        **open_kwargs: passed to :func:`open` (e.g. ``encoding="utf-8"``, ``newline=""``).
    """
    if mode not in _WRITE_MODES:
        raise ValueError(f"atomic_output supports modes {sorted(_WRITE_MODES)}, not {mode!r}")
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        fh = os.fdopen(fd, mode, **open_kwargs)
    except BaseException:
        os.close(fd)  # fdopen failed (e.g. a bad encoding): the descriptor is still ours
        tmp.unlink(missing_ok=True)
        raise
    try:
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, dest)
    except BaseException:
        # BaseException too: a KeyboardInterrupt mid-write must not leave a stray temp file.
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_output`); returns the path."""
    with atomic_output(path, "wb") as fh:
        fh.write(data)
    return Path(path)




def safe_torch_load(path: str | os.PathLike[str], map_location: Any = "cpu", *, error: type[Exception] = UnsafeFileError) -> Any:
    """``torch.load`` with ``weights_only=True``; a pickle payload becomes ``error`` (nothing in it runs)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with warnings.catch_warnings():
            # torch notes files pickled with protocol > 2 (Lightning's checkpoints, other tools'
            # files); weights_only loading handles them, and a refused file raises below
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise error(
            f"{path}: refused to load: the file contains pickled objects other than tensors and plain "
            f"containers, which could run code when loaded (weights_only=True rejected it: "
            f"{_reason(exc)})"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise error(f"{path}: not a readable torch file ({exc})") from None


def _reason(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if "Unsupported global" in ln or "Unsupported operand" in ln]
    return lines[0] if lines else str(exc).splitlines()[0]


def error_exit(message: str, code: int = 1) -> int:
    """Print ``molgraph: error: message`` to stderr and return the exit code (for the sub-commands,
    including those a method adds)."""
    import sys

    print(f"molgraph: error: {message}", file=sys.stderr)
    return code
