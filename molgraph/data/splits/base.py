"""The split record shared by every kind of split: :class:`Split`, sizes, ``splits.json``, user files.

A :class:`Split` holds three arrays of row indices (int64, each sorted ascending) into the
input (molecules, nodes or events), plus how the split was made (method, seed, requested sizes)
and an ``info`` dict. The split functions live in :mod:`~molgraph.data.splits.molecules`,
:mod:`~molgraph.data.splits.nodes` and :mod:`~molgraph.data.splits.temporal`.

Split files come in two JSON formats: molgraph's ``splits.json`` (:meth:`Split.save`, with the
method, seed, sizes and rejects) and chemprop v2's ``--splits-file`` (:meth:`Split.save` with
``format="chemprop"``, indices only); :func:`load_split_file` reads both, and CSVs with a
``split`` column.

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
    "SPLIT_FILE_FORMATS",
    "Split",
    "check_sizes",
    "load_split_file",
    "part_sizes",
]

PARTS: tuple[str, str, str] = ("train", "val", "test")
DEFAULT_SIZES: tuple[float, float, float] = (0.8, 0.1, 0.1)

_FORMAT = "molgraph.split"
_FORMAT_VERSION = 1
# What Split.save writes: molgraph's own splits.json, or chemprop v2's --splits-file JSON.
SPLIT_FILE_FORMATS: tuple[str, str] = ("molgraph", "chemprop")
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

    def to_chemprop_json(self) -> str:
        """The split as chemprop v2's ``--splits-file`` JSON: ``[{"train": [...], "val": [...], "test": [...]}]``.

        chemprop v2 (``chemprop train --splits-file``, documented in its ``train`` help since
        v2.0: "a list of dictionaries with keys train, val, and test and values as lists of
        indices") reads one split per list entry (one per replicate) and indexes the rows of its
        ``--data-path`` CSV from 0, header not counted: the same row numbers ``molgraph split``
        writes. Only the indices travel; method, seed, sizes and rejects do not (chemprop has no
        place for them), so keep the molgraph file too if you want them.
        """
        parts = {name: idx.tolist() for name, idx in self.parts().items()}
        return "[\n  {\n" + ",\n".join(f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in parts.items()) + "\n  }\n]\n"

    def save(self, path: str | os.PathLike[str], format: str = "molgraph") -> Path:
        """Write the split as JSON, atomically (a temp file in the same folder, then rename).

        Args:
            path: the file to write, or an existing folder (``splits.json`` is written in it).
            format: ``"molgraph"`` (:meth:`to_json`, everything) or ``"chemprop"``
                (:meth:`to_chemprop_json`, the indices as chemprop v2's ``--splits-file`` wants them).

        Returns:
            The path written.
        """
        if format not in SPLIT_FILE_FORMATS:
            raise ValueError(f"split file format must be one of {', '.join(SPLIT_FILE_FORMATS)}, got {format!r}")
        target = Path(path)
        if target.is_dir():
            target = target / "splits.json"
        _atomic_write_text(target, self.to_json() if format == "molgraph" else self.to_chemprop_json())
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


def load_split_file(path: str | os.PathLike[str], n: int | None = None, replicate: int | None = None) -> Split:
    """Read a user-supplied split.

    Three formats, the first two chosen by the ``.json`` suffix:

    * a JSON object: a ``splits.json`` written by :meth:`Split.save`, or any object with ``train``,
      ``val`` and ``test`` index lists (``method`` defaults to ``"file"``).
    * a JSON list: chemprop v2's ``--splits-file`` (what ``molgraph split --format chemprop``
      writes): one ``{"train": ..., "val": ..., "test": ...}`` object per replicate, each part a
      list of 0-based data-row indices or a string of indices and inclusive ranges such as
      ``"0-2,7"`` (chemprop's ``parse_indices`` rule); a missing ``test`` means an empty test
      part, as in chemprop. A list of one split is read as that split. molgraph trains on one
      split per run, so a list of several is refused unless ``replicate`` (0-based) picks one;
      the error says how to write the chosen one to its own file for ``molgraph train``.
      Chemprop splits get ``method="file"``, ``seed=None`` and sizes from their part counts.
    * anything else (``.csv``, ``.csv.gz``, ...): a CSV with a column ``split`` holding
      ``train``, ``val`` or ``test`` (case and surrounding spaces ignored; ``valid`` and
      ``validation`` mean ``val``) for every row of the dataset, in the dataset's row order.
      Other columns are ignored. The result has ``method="file"`` and ``seed=None``.

    Args:
        path: the file.
        n: number of rows in the dataset, if known: a CSV must have exactly ``n`` rows; a JSON
            split must have every index below ``n`` (and its recorded ``n_rows``, if any, must
            equal ``n``).
        replicate: which split of a chemprop file holding several (0-based); ``None`` requires
            a file of exactly one. Given for a file that is not a chemprop list, it is an error.

    Raises:
        FileNotFoundError: if the file is missing.
        ValueError: for a malformed file or one that does not fit ``n``; every message starts
            with the file's path.
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"split file not found: {source}")
    if source.suffix.lower() == ".json":
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source}: not valid JSON ({exc})") from None
        try:
            if isinstance(data, list):
                split = _chemprop_split(data, source, replicate)
            elif replicate is not None:
                raise ValueError(f"replicate={replicate} was given, but this is one split (a JSON object), "
                                 "not a chemprop list of splits")
            else:
                split = Split.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None
        _check_fits(split, n, source)
        return split
    if replicate is not None:
        raise ValueError(f"{source}: replicate={replicate} applies to chemprop JSON split files only")
    return _load_split_csv(source, n)


def _chemprop_part(value: Any, part: str) -> list[int]:
    """One part of a chemprop split: a list of indices, or chemprop's string form ``"0-2,7"``."""
    if isinstance(value, list):
        return value  # checked by Split (integers, non-negative, no repeats)
    if not isinstance(value, str):
        raise ValueError(f"{part} must be a list of row indices or a string like '0-2,7', "
                         f"got {type(value).__name__}")
    indices: list[int] = []
    for piece in value.split(","):
        piece = piece.strip()
        if not piece:
            continue  # "1,2," and "" (an empty part) are harmless
        first, dash, last = piece.partition("-")
        try:
            lo = int(first)
            hi = int(last) if dash else lo
        except ValueError:
            raise ValueError(f"{part}: {piece!r} in {value!r} is not an index or an index range like 0-2") from None
        if hi < lo:
            raise ValueError(f"{part}: range {piece!r} ends before it starts")
        indices.extend(range(lo, hi + 1))  # chemprop's ranges include both ends
    return indices


def _chemprop_split(data: list[Any], source: Path, replicate: int | None) -> Split:
    """The split at ``replicate`` (or the only one) of a chemprop v2 ``--splits-file`` list."""
    if not data:
        raise ValueError("an empty list: a chemprop split file holds one object per split")
    if replicate is None:
        if len(data) != 1:
            raise ValueError(
                f"a chemprop split file with {len(data)} splits (replicates); molgraph trains on one split per "
                f"run. Pick one (0-based) and write it to its own file, e.g. for the first: python -c "
                f"\"from molgraph.data.splits import load_split_file; "
                f"load_split_file({str(source)!r}, replicate=0).save('split0.json')\", then --splits-file split0.json")
        replicate = 0
    if isinstance(replicate, bool) or not isinstance(replicate, int) or not 0 <= replicate < len(data):
        raise ValueError(f"replicate must be an integer in 0..{len(data) - 1}, got {replicate!r}")
    entry = data[replicate]
    if not isinstance(entry, dict):
        raise ValueError(f"split {replicate} must be an object with train, val and test, got {type(entry).__name__}")
    missing = [k for k in ("train", "val") if k not in entry]
    if missing:
        raise ValueError(f"split {replicate} is missing {', '.join(missing)}")
    unknown = sorted(set(entry) - set(PARTS))
    if unknown:
        raise ValueError(f"split {replicate} has unknown key(s) {', '.join(map(repr, unknown))}; "
                         "expected train, val and test")
    # chemprop reads a missing "test" as an empty test part; do the same
    parts = {p: _chemprop_part(entry.get(p, []), p) for p in PARTS}
    total = sum(len(v) for v in parts.values())
    if total == 0:
        raise ValueError(f"split {replicate} has no indices")
    sizes = tuple(len(parts[p]) / total for p in PARTS)
    info = {"source": str(source), "format": "chemprop", "replicate": replicate, "rejected": []}
    return Split(parts["train"], parts["val"], parts["test"], "file", None, sizes, info)  # type: ignore[arg-type]


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
