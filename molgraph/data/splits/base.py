"""The split record shared by every kind of split: :class:`Split`, sizes, ``splits.json``, user files.

A :class:`Split` holds three arrays of row indices (int64, each sorted ascending) into the
input (molecules, nodes or events), plus how the split was made (method, seed, requested sizes)
and an ``info`` dict. The split functions live in :mod:`~molgraph.data.splits.molecules`,
:mod:`~molgraph.data.splits.nodes` and :mod:`~molgraph.data.splits.temporal`.

Conventions shared by all split functions:

* ``sizes`` are three non-negative fractions (train, val, test) summing to 1 within 1e-6.
* Part sizes are counted with :func:`part_sizes` (largest remainder), so the three parts
  cover exactly the rows that were split.
* The seed is an integer; the same seed gives the same split and it is recorded in the
  :class:`Split`. Deterministic splits record ``None``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import pandas as pd

from molgraph.data.sources import atomic_output

__all__ = [
    "DEFAULT_SIZES",
    "PARTS",
    "Split",
    "check_sizes",
    "load_split_file",
    "part_sizes",
]

PARTS: tuple[str, str, str] = ("train", "val", "test")
DEFAULT_SIZES: tuple[float, float, float] = (0.8, 0.1, 0.1)

_FORMAT = "molgraph.split"
_FORMAT_VERSION = 1
# Labels accepted in the ``split`` column of a user CSV (after strip + lower-case).
_CSV_PART_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}

Errors = Literal["raise", "skip"]
Rejected = tuple[int, str, str]


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def check_sizes(sizes: Sequence[float]) -> tuple[float, float, float]:
    """Validate split fractions and return them as a tuple of three floats.

    Raises:
        ValueError: unless ``sizes`` holds exactly three finite, non-negative numbers whose sum
            is 1 within 1e-6.
    """
    try:
        values = tuple(float(s) for s in sizes)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"sizes must be three numbers (train, val, test), got {sizes!r}") from exc
    if len(values) != 3:
        raise ValueError(f"sizes must be three fractions (train, val, test), got {len(values)}: {sizes!r}")
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise ValueError(f"sizes must be finite and non-negative, got {sizes!r}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"sizes must sum to 1, got {sizes!r} (sum {sum(values):.6g})")
    return values  # type: ignore[return-value]


def _check_seed(seed: Any) -> int:
    # bool is an int subclass; True as a seed is almost surely a mistake.
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    return int(seed)


def _check_errors(errors: str) -> None:
    if errors not in ("raise", "skip"):
        raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")


def part_sizes(n: int, sizes: Sequence[float] = DEFAULT_SIZES) -> tuple[int, int, int]:
    """Number of rows in each part for ``n`` rows (largest-remainder rounding).

    Each part first gets ``floor(fraction * n)`` rows; the rows left over (at most two) go one
    each to the parts with the largest fractional remainders, ties going to the earlier part
    (train, then val, then test). The counts therefore sum to ``n`` exactly, each is within one
    row of ``fraction * n``, and a part whose fraction is 0 stays empty.
    E.g. ``n=2039, sizes=(0.8, 0.1, 0.1)`` gives ``(1631, 204, 204)``.
    """
    fractions = check_sizes(sizes)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    # Round away float noise first (0.29 * 100 == 28.999999999999996) so floor() is honest.
    exact = [round(f * int(n), 9) for f in fractions]
    counts = [math.floor(x) for x in exact]
    left = int(n) - sum(counts)
    by_remainder = sorted(range(3), key=lambda p: (-(exact[p] - counts[p]), p))
    for p in by_remainder[:left]:
        counts[p] += 1
    return counts[0], counts[1], counts[2]


def _as_index_array(values: Any, part: str) -> np.ndarray:
    """Turn ``values`` into a 1-D int64 array of non-negative, distinct row indices."""
    if isinstance(values, (list, tuple)):
        # Check Python values one by one: np.asarray would quietly turn True into 1 and
        # 2.0 into a float array.
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ValueError(f"{part} indices must be integers, got {v!r}")
    arr = np.asarray(values)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1:
        raise ValueError(f"{part} indices must be a 1-D sequence, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{part} indices must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if (arr < 0).any():
        raise ValueError(f"{part} indices must be non-negative, got {int(arr[arr < 0][0])}")
    uniq, counts = np.unique(arr, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"index {int(uniq[counts > 1][0])} appears more than once in {part}")
    return arr


def _check_disjoint(parts: dict[str, np.ndarray]) -> None:
    names = list(parts)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            common = np.intersect1d(parts[a], parts[b])
            if common.size:
                more = f" (and {common.size - 1} more)" if common.size > 1 else ""
                raise ValueError(f"index {int(common[0])} is in both {a} and {b}{more}")


def _jsonable(obj: Any) -> Any:
    """Recursively convert ``obj`` (numpy scalars/arrays, tuples, paths) to JSON types."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in split info: {obj!r}")


# --------------------------------------------------------------------------------------------
# The Split record
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Split:
    """Row indices of the train, validation and test parts of one dataset.

    Attributes:
        train, val, test: int64 arrays of row indices into the input (0-based, in input order
            of the rows given to the split function; blank CSV lines are not rows).
        method: how the split was made (``"random"``, ``"scaffold"``, ``"file"``, ...).
        seed: the seed used, or ``None`` for methods that use none.
        sizes: the requested (train, val, test) fractions.
        info: JSON-serializable details, e.g. ``n_rows`` (rows in the input), ``n_scaffolds``,
            ``rejected`` (list of ``(index, input, reason)`` for rows put in no part).

    Raises:
        ValueError: on construction, for negative, non-integer or repeated indices, an index
            in two parts (the message names the index and both parts), or bad sizes.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    method: str
    seed: int | None = None
    sizes: tuple[float, float, float] = DEFAULT_SIZES
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.train = _as_index_array(self.train, "train")
        self.val = _as_index_array(self.val, "val")
        self.test = _as_index_array(self.test, "test")
        _check_disjoint(self.parts())
        self.sizes = check_sizes(self.sizes)
        if self.seed is not None:
            self.seed = _check_seed(self.seed)
        if not isinstance(self.method, str) or not self.method:
            raise ValueError(f"method must be a non-empty string, got {self.method!r}")
        self.info = dict(self.info)
        # JSON turns (index, input, reason) tuples into lists; give them back their shape.
        if "rejected" in self.info:
            self.info["rejected"] = [(int(i), str(s), str(r)) for i, s, r in self.info["rejected"]]

    def parts(self) -> dict[str, np.ndarray]:
        """The three index arrays by name (``train``, ``val``, ``test``)."""
        return {"train": self.train, "val": self.val, "test": self.test}

    @property
    def counts(self) -> dict[str, int]:
        """Number of rows in each part."""
        return {name: int(idx.size) for name, idx in self.parts().items()}

    @property
    def rejected(self) -> list[Rejected]:
        """Rows put in no part because they could not be read: ``(index, input, reason)``."""
        return list(self.info.get("rejected", []))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Split):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.counts.items())
        return f"Split(method={self.method!r}, seed={self.seed}, sizes={self.sizes}, {counts})"

    # -- serialization -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dict (the content of ``splits.json``)."""
        return {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "method": self.method,
            "seed": self.seed,
            "sizes": list(self.sizes),
            "info": _jsonable(self.info),
            "train": self.train.tolist(),
            "val": self.val.tolist(),
            "test": self.test.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Split:
        """Build (and validate) a split from :meth:`to_dict` output."""
        if not isinstance(data, dict):
            raise ValueError(f"a split must be a JSON object, got {type(data).__name__}")
        if data.get("format", _FORMAT) != _FORMAT:
            raise ValueError(f"not a molgraph split (format {data.get('format')!r})")
        if data.get("version", _FORMAT_VERSION) > _FORMAT_VERSION:
            raise ValueError(f"split format version {data['version']} is newer than this molgraph reads")
        missing = [k for k in PARTS if k not in data]
        if missing:
            raise ValueError(f"split is missing {', '.join(missing)}")
        for part in PARTS:
            if not isinstance(data[part], list):
                raise ValueError(f"{part} must be a list of row indices, got {type(data[part]).__name__}")
        return cls(
            train=data["train"],
            val=data["val"],
            test=data["test"],
            method=data.get("method", "file"),  # hand-written split files need not name one
            seed=data.get("seed"),
            sizes=tuple(data.get("sizes", DEFAULT_SIZES)),  # type: ignore[arg-type]
            info=data.get("info") or {},
        )

    def to_json(self) -> str:
        """JSON text: metadata indented, each index list on one line (keeps files short)."""
        data = self.to_dict()
        lines = []
        for key, value in data.items():
            if key in PARTS or key == "sizes":
                text = json.dumps(value)
            else:
                text = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
            lines.append(f"  {json.dumps(key)}: {text}")
        return "{\n" + ",\n".join(lines) + "\n}\n"

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the split as JSON, atomically (a temp file in the same folder, then rename).

        Args:
            path: the file to write, or an existing folder (``splits.json`` is written in it).

        Returns:
            The path written.
        """
        target = Path(path)
        if target.is_dir():
            target = target / "splits.json"
        _atomic_write_text(target, self.to_json())
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Split:
        """Read a split written by :meth:`save` (a file, or a folder holding ``splits.json``)."""
        source = Path(path)
        if source.is_dir():
            source = source / "splits.json"
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source}: not valid JSON ({exc})") from exc
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from exc


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` so that readers see the old file or the new one, never half of either."""
    with atomic_output(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def load_split_file(path: str | os.PathLike[str], n: int | None = None) -> Split:
    """Read a user-supplied split.

    Two formats, chosen by suffix:

    * ``.json``: a ``splits.json`` written by :meth:`Split.save`, or any object with ``train``,
      ``val`` and ``test`` index lists (``method`` defaults to ``"file"``), or a one-element
      list of such objects (chemprop v2's ``--splits-file`` format).
    * anything else (``.csv``, ``.csv.gz``, ...): a CSV with a column ``split`` holding
      ``train``, ``val`` or ``test`` (case and surrounding spaces ignored; ``valid`` and
      ``validation`` mean ``val``) for every row of the dataset, in the dataset's row order.
      Other columns are ignored. The result has ``method="file"`` and ``seed=None``.

    Args:
        path: the file.
        n: number of rows in the dataset, if known: a CSV must have exactly ``n`` rows; a JSON
            split must have every index below ``n`` (and its recorded ``n_rows``, if any, must
            equal ``n``).

    Raises:
        FileNotFoundError: if the file is missing.
        ValueError: for a malformed file or one that does not fit ``n``.
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"split file not found: {source}")
    if source.suffix.lower() == ".json":
        data = json.loads(source.read_text(encoding="utf-8"))
        # chemprop v2's --splits-file holds a list of splits (one per replicate): accept one
        if isinstance(data, list):
            if len(data) != 1:
                raise ValueError(f"{source}: holds {len(data)} splits; give a file with exactly one")
            data = data[0]
        try:
            split = Split.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None
        _check_fits(split, n, source)
        return split
    return _load_split_csv(source, n)


def _check_fits(split: Split, n: int | None, source: Path) -> None:
    if n is None:
        return
    recorded = split.info.get("n_rows")
    if recorded is not None and int(recorded) != n:
        raise ValueError(f"{source}: split was made for {recorded} rows, the dataset has {n}")
    for name, idx in split.parts().items():
        if idx.size and int(idx.max()) >= n:
            raise ValueError(f"{source}: {name} index {int(idx.max())} is out of range for {n} rows")


def _load_split_csv(source: Path, n: int | None) -> Split:
    try:
        frame = pd.read_csv(source, dtype=str, keep_default_na=False, skip_blank_lines=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{source}: cannot read as CSV ({exc})") from exc
    if "split" not in frame.columns:
        raise ValueError(f"{source}: no 'split' column (columns: {', '.join(map(str, frame.columns))})")
    if frame.empty:
        raise ValueError(f"{source}: no rows")
    if n is not None and len(frame) != n:
        raise ValueError(f"{source}: has {len(frame)} rows, the dataset has {n}")
    names = frame["split"].str.strip().str.lower()
    unknown = ~names.isin(list(_CSV_PART_NAMES))
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise ValueError(
            f"{source}: row {row} has split {frame['split'].iloc[row]!r}; expected train, val or test"
        )
    parts = names.map(_CSV_PART_NAMES).to_numpy()
    indices = {p: np.flatnonzero(parts == p).astype(np.int64) for p in PARTS}
    total = len(frame)
    sizes = tuple(indices[p].size / total for p in PARTS)
    info = {"n_rows": total, "source": str(source), "rejected": []}
    return Split(indices["train"], indices["val"], indices["test"], "file", None, sizes, info)  # type: ignore[arg-type]
