"""Sharded, memory-mapped graph datasets: millions of featurized molecules, written with bounded
memory and read without loading them.

**Layout.** A dataset is a folder ``DIR/`` holding ``manifest.json`` and one sub-folder per shard,
``shard-00000/``, ``shard-00001/``, ... Shard ``k`` holds the graphs of INPUT ROWS
``[k * shard_size, (k + 1) * shard_size)`` (the last shard may be shorter): the boundaries depend
only on the input and ``shard_size``, never on the number of workers or on which engine wrote the
shard, so shards can be written in any order and an interrupted run resumes by skipping the rows
of the shards already complete.

Each shard folder holds plain, uncompressed ``.npy`` files (``np.load(path, mmap_mode="r")`` maps
them) plus a CSV of its rejects. With ``n`` graphs, ``V`` nodes and ``E`` directed edges in the shard:

* ``x.npy``: ``(V, atom_dim)`` node features, stored narrow (see below), read back in the
  featurizer's dtype (int64 for index presets, float32 for one-hot ones);
* ``edge_index.npy``: ``(2, E)`` LOCAL node indices (0-based within each graph, as in
  :class:`~molgraph.data.collated.CollatedGraphs`), unsigned and as narrow as the shard's largest
  molecule allows (``uint8`` up to 256 atoms); read back as int64. Graph ``i``'s edges follow graph
  ``i - 1``'s, in the featurizer's order (the reverse of edge ``e`` is ``e ^ 1``);
* ``edge_attr.npy``: ``(E, bond_dim)`` bond features, stored narrow, read back in the featurizer's dtype;
* ``node_counts.npy``, ``edge_counts.npy``: ``(n,)`` int32 nodes / directed edges of each graph;
* ``rows.npy``: ``(n,)`` int64, the 0-based input row of each graph (strictly increasing);
* ``y.npy``: ``(n, T)`` float32 targets (NaN = missing label), only when target columns were given;
* ``pos.npy``, ``z.npy``: ``(V, 3)`` float32 angstrom and ``(V,)`` atomic numbers (narrow, read back
  as int64), only when every graph of the shard carries a 3D conformer (a reader exposes them
  only when every shard has them, as :class:`~molgraph.data.collated.CollatedArrays` keeps
  positions only when every graph has them);
* ``smiles_utf8.npy`` ``(B,)`` uint8 and ``smiles_offsets.npy`` ``(n + 1,)`` int64: graph ``i``'s
  SMILES is ``smiles_utf8[offsets[i]:offsets[i + 1]]``, UTF-8;
* ``rejects.csv``: ``row,input,reason`` of every input row of the shard that gave no graph.

*Narrow storage*: an integer array is stored in the smallest integer dtype that holds the shard's
values (:func:`~molgraph.data.collated.narrow_int_dtype`: OGB index features fit ``uint8``); a
float array holding only 0s and 1s (one-hot features) is stored as ``uint8``; other arrays as they
are. The manifest records both dtypes of every array (``stored`` and ``dtype``); the reader casts
back, so batches hold exactly the featurizer's values and dtypes.

**Manifest.** ``manifest.json`` records the format (:data:`FORMAT`), the featurizer config, the
input's path and sha256, the SMILES and target columns, ``shard_size``, every written shard
(``name``, ``index``, ``first_row``, ``n_rows``, ``n_graphs``, ``n_rejected``, ``n_nodes``,
``n_edges``, ``arrays``: name -> ``{file, level, stored, dtype, shape}``, ``files``: file name ->
sha256), ``totals``, and ``complete: true`` once every shard is written (:meth:`ShardWriter.close`).

**Crash safety.** A shard is written into a temporary folder (``.tmp-shard-xxxxx-*``), its files
fsynced, then renamed into place; the manifest is replaced atomically after every shard. A killed
run therefore leaves the manifest listing only complete shards; :class:`ShardWriter` with
``resume=True`` checks that input and featurizer are the same and continues.

**Reading.** :class:`ShardedGraphs` maps the files lazily and is a
:class:`~molgraph.data.loader.Collate`: ``sharded(indices)`` returns the batch
:class:`~molgraph.data.loader.GraphBatcher` returns for the same graphs in memory (same keys,
values and dtypes), gathered from the mapped arrays across shards.

Writing imports neither torch nor PyG (``molgraph featurize`` needs neither); reading imports them
when the first batch is built.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from molgraph.data.collated import _is_zero_one, narrow_int_dtype, ranges
from molgraph.data.sources import ChecksumError, atomic_output
from molgraph.io import _UMASK  # the process's umask, read once at import (reading it means setting it)
from molgraph.featurizers.batch import Reject
from molgraph.featurizers.graph import GraphArrays

if TYPE_CHECKING:
    import torch
    from torch_geometric.data import Batch

    from molgraph.data.collated import CollatedGraphs
    from molgraph.featurizers.batch import PackedChunk

__all__ = [
    "FORMAT", "MANIFEST", "ShardError", "ShardChecksumError", "ShardBuilder", "ShardWriter", "ShardedGraphs",
    "shard_name", "is_shard_dataset",
]

FORMAT = "molgraph.shards/1"
MANIFEST = "manifest.json"
_TMP_PREFIX = ".tmp-shard-"
_REJECTS = "rejects.csv"
# the molecule fields a shard may hold, with their levels (as in CollatedGraphs)
_FIELD_LEVELS = {"x": "node", "edge_attr": "edge", "pos": "node", "z": "node"}
_HASH_BLOCK = 1 << 20


class ShardError(ValueError):
    """A shard dataset that cannot be written, resumed or read as asked (the message names the
    folder, and the shard and file where one is at fault)."""


class ShardChecksumError(ShardError, ChecksumError):
    """A shard file whose bytes are not the ones the manifest recorded (corrupted or truncated)."""


def shard_name(index: int) -> str:
    """Folder name of shard ``index``: ``shard-00000``, ``shard-00001``, ..."""
    return f"shard-{index:05d}"


def is_shard_dataset(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder holding a shard dataset's manifest."""
    return (Path(path) / MANIFEST).is_file()


# -- narrow storage ------------------------------------------------------------------------------
class _Column:
    """One array of a shard, accumulated piece by piece, each piece narrowed as it arrives.

    Narrowing each piece on arrival keeps a shard's pending arrays small in memory (an OGB
    ``x`` piece drops from int64 to uint8, 8x); at the end every piece is cast to one common stored
    dtype, which is exact: the common dtype holds every piece's values.
    """

    def __init__(self, name: str, axis: int = 0):
        self.name, self.axis = name, axis
        self.pieces: list[np.ndarray] = []
        self.dtype: np.dtype | None = None  # the dtype readers get back (the featurizer's)
        self.tail: tuple[int, ...] | None = None  # shape without the concatenation axis
        self.lo, self.hi = 0, 0  # value range so far (integer arrays)
        self.any_values = False
        self.zero_one = True  # float arrays: every value so far is exactly 0 or 1

    def add(self, a: np.ndarray) -> None:
        a = np.asarray(a)
        tail = a.shape[:self.axis] + a.shape[self.axis + 1:]
        if self.dtype is None:
            self.dtype, self.tail = a.dtype, tail
        elif a.dtype != self.dtype or tail != self.tail:
            raise ShardError(f"array {self.name!r}: a piece of dtype {a.dtype} and shape {a.shape} does not match "
                             f"the earlier pieces ({self.dtype}, other dimensions {self.tail})")
        kind = a.dtype.kind
        if a.size == 0:
            self.pieces.append(a)
            return
        if kind in "iu":
            lo, hi = int(a.min()), int(a.max())
            self.lo, self.hi = (lo, hi) if not self.any_values else (min(self.lo, lo), max(self.hi, hi))
            self.any_values = True
            a = a.astype(narrow_int_dtype(lo, hi), copy=False)
        elif kind == "f":
            if self.zero_one and _is_zero_one(a):
                a = a.astype(np.uint8)
            elif self.zero_one:
                # the first piece with other values: the earlier 0/1 pieces go back to the
                # float dtype (exact: 0 and 1 are floats exactly)
                self.zero_one = False
                self.pieces = [p.astype(self.dtype) for p in self.pieces]
        self.pieces.append(a)

    def stored_dtype(self) -> np.dtype:
        assert self.dtype is not None
        kind = self.dtype.kind
        if kind in "iu":
            return narrow_int_dtype(self.lo, self.hi) if self.any_values else np.dtype(np.uint8)
        if kind == "f" and self.zero_one:
            return np.dtype(np.uint8)
        return self.dtype

    def shape(self) -> tuple[int, ...]:
        assert self.tail is not None
        n = sum(p.shape[self.axis] for p in self.pieces)
        return self.tail[:self.axis] + (n,) + self.tail[self.axis:]

    def stored_pieces(self) -> Iterator[np.ndarray]:
        """The pieces in the stored dtype, C-ordered, whose bytes in order are the stored array's."""
        dtype = self.stored_dtype()
        if self.axis == 0:
            for p in self.pieces:
                yield np.ascontiguousarray(p, dtype=dtype)
            return
        # concatenated along axis 1 of a 2-D array: all first rows, then all second rows, ...
        assert self.tail is not None and len(self.tail) == 1
        for r in range(self.tail[0]):
            for p in self.pieces:
                yield np.ascontiguousarray(p[r], dtype=dtype)


class _HashingFile:
    """Writes through to a file and hashes every byte written (sha256 without reading it back)."""

    def __init__(self, fh: Any):
        self.fh, self.digest, self.nbytes = fh, hashlib.sha256(), 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        self.nbytes += len(view)
        return self.fh.write(view)


def _write_npy(path: Path, dtype: np.dtype, shape: tuple[int, ...], pieces: Iterable[np.ndarray]) -> str:
    """Write an ``.npy`` (format 1.0, C order) from pieces; fsynced; returns the file's sha256."""
    with open(path, "wb") as raw:
        fh = _HashingFile(raw)
        np.lib.format.write_array_header_1_0(fh, {
            "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape),
        })
        for piece in pieces:
            if piece.size:
                fh.write(piece.reshape(-1).view(np.uint8))
        raw.flush()
        os.fsync(raw.fileno())
    return fh.digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # a platform without directory descriptors: the rename is as safe as it gets
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- one shard's content -------------------------------------------------------------------------
class ShardBuilder:
    """One shard's graphs and rejects, collected in input order before :meth:`ShardWriter.write_built`.

    Graphs come as featurized molecules (:meth:`add_graphs`) or as items of the packed chunks of
    :func:`molgraph.featurizers.batch.iter_featurize_chunks` (:meth:`add_packed`, which never makes
    per-molecule objects); rejects with :meth:`add_rejects`. Arrays are narrowed piece by piece
    as they arrive (see the module doc), so a shard of OGB features holds ~1/8 of its int64 size.

    Args:
        index: the shard's index; it covers input rows ``[index * shard_size, (index + 1) * shard_size)``.
        first_row: ``index * shard_size``.
    """

    def __init__(self, index: int, first_row: int):
        self.index, self.first_row = int(index), int(first_row)
        self.columns = {"x": _Column("x"), "edge_index": _Column("edge_index", axis=1),
                        "edge_attr": _Column("edge_attr")}
        self.pos, self.z = _Column("pos"), _Column("z")
        self.with_pos = True  # every graph so far has pos/z
        self.node_counts: list[np.ndarray] = []
        self.edge_counts: list[np.ndarray] = []
        self.rows: list[np.ndarray] = []
        self.smiles: list[str] = []
        self.rejects: list[Reject] = []

    @property
    def n_graphs(self) -> int:
        return len(self.smiles)

    def _add_pos(self, pos: np.ndarray | None, z: np.ndarray | None) -> None:
        if pos is None or z is None:
            if self.with_pos:
                self.with_pos = False
                self.pos, self.z = _Column("pos"), _Column("z")  # free what was collected
            return
        if self.with_pos:
            self.pos.add(pos)
            self.z.add(z)

    def add_graphs(self, graphs: Sequence[GraphArrays], rows: Sequence[int]) -> None:
        """Append featurized molecules (input order) and their 0-based input rows."""
        if len(graphs) != len(rows):
            raise ShardError(f"shard {self.index}: {len(graphs)} graphs but {len(rows)} rows")
        if not graphs:
            return
        self.columns["x"].add(np.concatenate([g.x for g in graphs]))
        self.columns["edge_index"].add(np.concatenate([g.edge_index for g in graphs], axis=1))
        self.columns["edge_attr"].add(np.concatenate([g.edge_attr for g in graphs]))
        self.node_counts.append(np.fromiter((g.x.shape[0] for g in graphs), dtype=np.int64, count=len(graphs)))
        self.edge_counts.append(np.fromiter((g.edge_index.shape[1] for g in graphs), dtype=np.int64,
                                            count=len(graphs)))
        self.rows.append(np.asarray(rows, dtype=np.int64))
        self.smiles.extend(g.smiles for g in graphs)
        if all(g.pos is not None for g in graphs):
            self._add_pos(np.concatenate([g.pos for g in graphs]), np.concatenate([g.z for g in graphs]))
        else:
            self._add_pos(None, None)

    def add_rejects(self, rejects: Iterable[Reject]) -> None:
        """Append rejects; ``Reject.index`` must be the 0-based input row."""
        self.rejects.extend(rejects)

    def add_packed(self, chunk: PackedChunk, row0: int, start: int = 0, stop: int | None = None) -> None:
        """Append items ``[start, stop)`` of a packed chunk; item ``k`` is input row ``row0 + k - start``.

        The chunk's own reject indices are not used (they count positions in the featurized
        stream, which skips the rows of shards already complete on resume): rows come from ``row0``.
        """
        kinds = chunk.kinds
        stop = len(kinds) if stop is None else stop
        # graph g of the chunk is item graph_items[g]; reject r is item reject_items[r]
        kinds_arr = np.asarray(kinds, dtype=bool)
        graph_items = np.flatnonzero(kinds_arr)
        reject_items = np.flatnonzero(~kinds_arr)
        g0, g1 = np.searchsorted(graph_items, [start, stop])
        r0, r1 = np.searchsorted(reject_items, [start, stop])
        for r in range(r0, r1):
            rej = chunk.rejects[r]
            self.rejects.append(Reject(row0 + int(reject_items[r]) - start, rej.input, rej.reason))
        if g1 <= g0:
            return
        atom_counts = np.asarray(chunk.atom_counts, dtype=np.int64)
        edge_counts = np.asarray(chunk.edge_counts, dtype=np.int64)
        a0, a1 = int(atom_counts[:g0].sum()), int(atom_counts[:g1].sum())
        e0, e1 = int(edge_counts[:g0].sum()), int(edge_counts[:g1].sum())
        assert chunk.x is not None and chunk.edge_index is not None and chunk.edge_attr is not None
        self.columns["x"].add(chunk.x[a0:a1])
        self.columns["edge_index"].add(chunk.edge_index[:, e0:e1])
        self.columns["edge_attr"].add(chunk.edge_attr[e0:e1])
        self.node_counts.append(atom_counts[g0:g1])
        self.edge_counts.append(edge_counts[g0:g1])
        self.rows.append(graph_items[g0:g1].astype(np.int64) - start + row0)
        self.smiles.extend(chunk.smiles[g0:g1])
        has_pos = chunk.has_pos[g0:g1]
        if all(has_pos) and chunk.pos is not None and chunk.z is not None:
            # the chunk's pos/z hold only its graphs with has_pos: skip those before graph g0
            p0 = sum(c for c, h in zip(chunk.atom_counts[:g0], chunk.has_pos[:g0]) if h)
            self._add_pos(chunk.pos[p0:p0 + (a1 - a0)], chunk.z[p0:p0 + (a1 - a0)])
        else:
            self._add_pos(None, None)


# -- writing ---------------------------------------------------------------------------------------
class ShardWriter:
    """Writes a shard dataset (see the module doc): one complete shard at a time, in any order.

    Args:
        out_dir: the dataset folder (created). Without ``resume`` it must be absent or empty.
        featurizer_config: :meth:`MolGraphFeaturizer.to_config` of the featurizer that made the graphs.
        input_path: the input file (recorded).
        input_sha256: the input's sha256 (:func:`molgraph.data.sources.sha256_file`); resume refuses
            another input.
        smiles_column: the CSV column read (``None`` for SMI/SDF inputs).
        target_columns: CSV columns stored as ``y`` (float32, ``(n_graphs, T)``), in this order.
        shard_size: input rows per shard (>= 1).
        resume: continue the dataset in ``out_dir``: its manifest must record the same format,
            featurizer config, input sha256, SMILES and target columns and shard size
            (:class:`ShardError` naming the first difference otherwise); its listed shards whose
            files still match their checksums are :attr:`done_shards`. Without a manifest it
            starts afresh.

    Raises:
        ShardError: a bad ``shard_size``; ``out_dir`` already holds a dataset (or other files)
            and ``resume`` is off; a resumed manifest that does not match.

    Thread-safe: shards may be written from several threads (each shard's files are written
    outside the lock; only the manifest update is serialized).
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        *,
        featurizer_config: dict,
        input_path: str | os.PathLike[str],
        input_sha256: str,
        smiles_column: str | None,
        target_columns: Sequence[str] = (),
        shard_size: int = 100_000,
        resume: bool = False,
    ):
        if isinstance(shard_size, bool) or not isinstance(shard_size, (int, np.integer)) or shard_size < 1:
            raise ShardError(f"shard_size must be an integer >= 1, got {shard_size!r}")
        self.dir = Path(out_dir)
        self.shard_size = int(shard_size)
        self.target_columns = [str(c) for c in target_columns]
        self._lock = threading.Lock()
        self._header: dict[str, Any] = {
            "format": FORMAT,
            "complete": False,
            "featurizer": json.loads(json.dumps(featurizer_config)),  # a JSON copy: what the file will hold
            "input": {"path": str(input_path), "sha256": str(input_sha256).lower()},
            "smiles_column": smiles_column,
            "target_columns": list(self.target_columns),
            "shard_size": self.shard_size,
            "edge_index": "local",
        }
        self._shards: dict[int, dict[str, Any]] = {}
        self.notes: list[str] = []  # what resuming found (e.g. a shard dropped for a bad checksum)
        manifest_path = self.dir / MANIFEST
        if manifest_path.is_file():
            if not resume:
                raise ShardError(f"{self.dir} already holds a shard dataset ({MANIFEST}); resume it "
                                 f"(--resume / resume=True) or remove the folder")
            self._resume(_read_manifest(self.dir))
        elif self.dir.exists():
            if not self.dir.is_dir():
                raise ShardError(f"{self.dir} exists and is not a folder")
            stray = [p.name for p in self.dir.iterdir() if not p.name.startswith(_TMP_PREFIX)]
            if stray:
                raise ShardError(f"{self.dir} is not empty and holds no {MANIFEST} ({', '.join(sorted(stray)[:5])}"
                                 f"{', ...' if len(stray) > 5 else ''}); write the shards to a new or empty folder")
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in self.dir.glob(_TMP_PREFIX + "*"):  # left by a killed run: never listed anywhere
            shutil.rmtree(stale, ignore_errors=True)
        self._write_manifest(complete=False)

    # -- resume ----------------------------------------------------------------------------------
    def _resume(self, old: dict[str, Any]) -> None:
        for key, what in (("format", "format"), ("featurizer", "featurizer config"),
                          ("smiles_column", "SMILES column"), ("target_columns", "target columns"),
                          ("shard_size", "shard size")):
            if old.get(key) != self._header[key]:
                raise ShardError(f"cannot resume {self.dir}: its {what} is {old.get(key)!r}, this run's is "
                                 f"{self._header[key]!r}; write to a new folder")
        old_sha = (old.get("input") or {}).get("sha256")
        if old_sha != self._header["input"]["sha256"]:
            raise ShardError(f"cannot resume {self.dir}: it was written from an input with sha256 {old_sha} "
                             f"({(old.get('input') or {}).get('path')}), this input "
                             f"({self._header['input']['path']}) has sha256 {self._header['input']['sha256']}; "
                             f"write to a new folder")
        for entry in old.get("shards", []):
            try:
                _verify_shard(self.dir, entry)
            except ShardError as err:
                # a listed shard whose files changed since: written again rather than trusted
                self.notes.append(f"{entry.get('name')}: {err}; it is featurized again")
                continue
            self._shards[int(entry["index"])] = entry

    @property
    def done_shards(self) -> set[int]:
        """Indices of the shards already complete (listed in the manifest, files intact)."""
        with self._lock:
            return set(self._shards)

    # -- writing shards ----------------------------------------------------------------------------
    def write_shard(
        self,
        index: int,
        arrays: Sequence[GraphArrays],
        rows: Sequence[int],
        y: np.ndarray | None,
        rejects: Sequence[Reject],
        n_rows: int,
    ) -> None:
        """Write shard ``index`` complete, from featurized molecules.

        Args:
            index: the shard; it covers input rows ``[index * shard_size, index * shard_size + n_rows)``.
            arrays: the shard's graphs, in input order.
            rows: each graph's 0-based INPUT row (strictly increasing, inside the shard's range).
            y: ``(len(arrays), T)`` targets of the graphs (T = number of target columns), or
                ``None`` when the writer has no target columns.
            rejects: the shard's input rows that gave no graph (``Reject.index`` = input row).
            n_rows: input rows the shard covers: ``shard_size``, or fewer for the input's last shard.

        Every row of the range must be exactly one graph or one reject. Writing a shard that is
        already complete replaces it.

        Raises:
            ShardError: any of the above violated (the message names the shard and the row).
        """
        builder = ShardBuilder(index, int(index) * self.shard_size)
        builder.add_graphs(arrays, rows)
        builder.add_rejects(rejects)
        self.write_built(builder, y, n_rows)

    def write_built(self, builder: ShardBuilder, y: np.ndarray | None, n_rows: int) -> None:
        """Write the shard collected in ``builder`` (see :meth:`write_shard` for ``y`` and ``n_rows``)."""
        index = builder.index
        if index < 0:
            raise ShardError(f"shard index must be >= 0, got {index}")
        if builder.first_row != index * self.shard_size:
            raise ShardError(f"shard {index} starts at input row {index * self.shard_size}, the builder says "
                             f"{builder.first_row}")
        if not 1 <= n_rows <= self.shard_size:
            raise ShardError(f"shard {index}: n_rows must be in [1, {self.shard_size}], got {n_rows}")
        rows = np.concatenate(builder.rows) if builder.rows else np.zeros(0, dtype=np.int64)
        _check_rows(index, builder.first_row, n_rows, rows, builder.rejects)
        y_arr = self._check_y(index, y, len(rows))
        name = shard_name(index)
        tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{index:05d}-", dir=self.dir))
        try:
            os.chmod(tmp, 0o777 & ~_UMASK)  # a shard folder gets the usual permissions, not mkdtemp's 0700
            entry = self._write_files(tmp, builder, rows, y_arr, n_rows)
            _fsync_dir(tmp)
            with self._lock:
                final = self.dir / name
                if final.exists():  # a shard written before the kill but never listed, or replaced
                    shutil.rmtree(final)
                os.replace(tmp, final)
                _fsync_dir(self.dir)
                self._shards[index] = entry
                self._write_manifest(complete=False)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _check_y(self, index: int, y: np.ndarray | None, n_graphs: int) -> np.ndarray | None:
        t = len(self.target_columns)
        if t == 0:
            if y is not None and np.asarray(y).size:
                raise ShardError(f"shard {index}: y given, but the writer has no target columns")
            return None
        if y is None:
            raise ShardError(f"shard {index}: y is missing; the writer has target columns {self.target_columns}")
        y_arr = np.asarray(y, dtype=np.float32)
        if y_arr.ndim == 1 and t == 1:
            y_arr = y_arr.reshape(-1, 1)
        if y_arr.shape != (n_graphs, t):
            raise ShardError(f"shard {index}: y has shape {y_arr.shape}, expected ({n_graphs}, {t}) "
                             f"(one row per graph, one column per target)")
        return y_arr

    def _write_files(self, folder: Path, b: ShardBuilder, rows: np.ndarray, y: np.ndarray | None,
                     n_rows: int) -> dict[str, Any]:
        """Write the shard's files into ``folder``; returns its manifest entry."""
        arrays: dict[str, dict[str, Any]] = {}
        files: dict[str, str] = {}
        cols = dict(b.columns)
        if b.n_graphs == 0:
            cols = self._empty_columns()
        elif b.with_pos and b.pos.pieces:
            cols["pos"], cols["z"] = b.pos, b.z
        for name, col in cols.items():
            fname = name + ".npy"
            stored = col.stored_dtype()
            shape = col.shape()
            files[fname] = _write_npy(folder / fname, stored, shape, col.stored_pieces())
            arrays[name] = {"file": fname, "level": _FIELD_LEVELS.get(name, "edge"), "stored": stored.str,
                            "dtype": np.dtype(col.dtype).str, "shape": list(shape)}
        node_counts = np.concatenate(b.node_counts) if b.node_counts else np.zeros(0, dtype=np.int64)
        edge_counts = np.concatenate(b.edge_counts) if b.edge_counts else np.zeros(0, dtype=np.int64)
        encoded = [s.encode("utf-8", "surrogatepass") for s in b.smiles]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
        plain = {
            "node_counts": node_counts.astype(np.int32),
            "edge_counts": edge_counts.astype(np.int32),
            "rows": rows.astype(np.int64),
            "smiles_utf8": np.frombuffer(b"".join(encoded), dtype=np.uint8),
            "smiles_offsets": offsets,
        }
        if y is not None:
            plain["y"] = y
        for name, a in plain.items():
            fname = name + ".npy"
            files[fname] = _write_npy(folder / fname, a.dtype, a.shape, [np.ascontiguousarray(a)])
            arrays[name] = {"file": fname, "level": "smiles" if name.startswith("smiles") else "graph",
                            "stored": a.dtype.str, "dtype": a.dtype.str, "shape": list(a.shape)}
        arrays["edge_index"]["level"] = "edge"
        arrays["edge_index"]["dtype"] = np.dtype(np.int64).str  # read back as int64, as featurized
        files[_REJECTS] = _write_rejects(folder / _REJECTS, sorted(b.rejects, key=lambda r: r.index))
        entry = {
            "name": shard_name(b.index), "index": b.index, "first_row": b.first_row, "n_rows": int(n_rows),
            "n_graphs": b.n_graphs, "n_rejected": len(b.rejects),
            "n_nodes": int(node_counts.sum()), "n_edges": int(edge_counts.sum()),
            "arrays": arrays, "files": files,
            "nbytes": sum((folder / f).stat().st_size for f in files),
        }
        return entry

    def _empty_columns(self) -> dict[str, _Column]:
        """Zero-row arrays of the featurizer's widths and dtypes, for a shard whose rows were all rejected."""
        from molgraph.featurizers.graph import MolGraphFeaturizer

        fz = MolGraphFeaturizer.from_config(self._header["featurizer"])
        cols = {"x": _Column("x"), "edge_index": _Column("edge_index", axis=1), "edge_attr": _Column("edge_attr")}
        cols["x"].add(np.zeros((0, fz.atom_dim), dtype=fz.atom_featurizer.dtype))
        cols["edge_index"].add(np.zeros((2, 0), dtype=np.int64))
        cols["edge_attr"].add(np.zeros((0, fz.bond_dim), dtype=fz.bond_featurizer.dtype))
        return cols

    # -- manifest ----------------------------------------------------------------------------------
    def _manifest(self, complete: bool, n_input_rows: int | None = None) -> dict[str, Any]:
        shards = [self._shards[k] for k in sorted(self._shards)]
        totals = {
            "n_shards": len(shards),
            "n_rows": sum(s["n_rows"] for s in shards),
            "n_graphs": sum(s["n_graphs"] for s in shards),
            "n_rejected": sum(s["n_rejected"] for s in shards),
            "n_nodes": sum(s["n_nodes"] for s in shards),
            "n_edges": sum(s["n_edges"] for s in shards),
            "nbytes": sum(s.get("nbytes", 0) for s in shards),
        }
        if n_input_rows is not None:
            totals["n_input_rows"] = int(n_input_rows)
        return {**self._header, "complete": bool(complete), "totals": totals, "shards": shards}

    def _write_manifest(self, complete: bool, n_input_rows: int | None = None) -> dict[str, Any]:
        manifest = self._manifest(complete, n_input_rows)
        with atomic_output(self.dir / MANIFEST, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=1)
            fh.write("\n")
        return manifest

    def close(self, n_input_rows: int) -> dict:
        """Check that the shards cover input rows ``[0, n_input_rows)`` with no gap, then write the
        complete manifest (``complete: true``) and return it.

        Raises:
            ShardError: a missing shard, a shard past the input's end, or a shard whose row count
                is not what ``n_input_rows`` implies (each names the shard).
        """
        n_input_rows = int(n_input_rows)
        if n_input_rows < 0:
            raise ShardError(f"n_input_rows must be >= 0, got {n_input_rows}")
        n_shards = -(-n_input_rows // self.shard_size)
        with self._lock:
            missing = [k for k in range(n_shards) if k not in self._shards]
            if missing:
                shown = ", ".join(shard_name(k) for k in missing[:5]) + (", ..." if len(missing) > 5 else "")
                raise ShardError(f"{self.dir}: {len(missing)} shard(s) of {n_shards} not written ({shown}); "
                                 f"the dataset stays incomplete")
            extra = [k for k in self._shards if k >= n_shards]
            if extra:
                raise ShardError(f"{self.dir}: {shard_name(min(extra))} lies past the input's {n_input_rows} rows")
            for k in range(n_shards):
                expected = min(self.shard_size, n_input_rows - k * self.shard_size)
                if self._shards[k]["n_rows"] != expected:
                    raise ShardError(f"{self.dir}: {shard_name(k)} covers {self._shards[k]['n_rows']} rows; with "
                                     f"{n_input_rows} input rows it must cover {expected}")
            return self._write_manifest(complete=True, n_input_rows=n_input_rows)


def _check_rows(index: int, first_row: int, n_rows: int, rows: np.ndarray, rejects: Sequence[Reject]) -> None:
    """Every input row of the shard is exactly one graph or one reject; graphs in input order."""
    where = f"shard {index} (input rows {first_row}..{first_row + n_rows - 1})"
    if rows.size and (np.diff(rows) <= 0).any():
        k = int(np.flatnonzero(np.diff(rows) <= 0)[0])
        raise ShardError(f"{where}: graph rows must increase (input order); row {int(rows[k + 1])} follows {int(rows[k])}")
    rej = np.fromiter((r.index for r in rejects), dtype=np.int64, count=len(rejects))
    every = np.concatenate([rows, rej])
    outside = every[(every < first_row) | (every >= first_row + n_rows)]
    if outside.size:
        raise ShardError(f"{where}: row {int(outside[0])} lies outside the shard")
    counts = np.bincount(every - first_row, minlength=n_rows)
    if (counts > 1).any():
        raise ShardError(f"{where}: row {first_row + int(np.flatnonzero(counts > 1)[0])} is given twice "
                         f"(as two graphs, two rejects, or both)")
    if (counts == 0).any():
        raise ShardError(f"{where}: row {first_row + int(np.flatnonzero(counts == 0)[0])} is neither a graph "
                         f"nor a reject")


def _write_rejects(path: Path, rejects: Sequence[Reject]) -> str:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(["row", "input", "reason"])
    writer.writerows([r.index, r.input, r.reason] for r in rejects)
    data = buf.getvalue().encode("utf-8", "backslashreplace")
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return hashlib.sha256(data).hexdigest()


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        raise ShardError(f"{root} is not a shard dataset: no {MANIFEST}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShardError(f"{path}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        fmt = manifest.get("format") if isinstance(manifest, dict) else None
        raise ShardError(f"{path}: format {fmt!r}, expected {FORMAT!r}")
    return manifest


def _sha256_path(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify_shard(root: Path, entry: Mapping[str, Any]) -> None:
    """Raise :class:`ShardChecksumError` naming the shard and file unless every file matches its sha256."""
    name = entry.get("name", "?")
    folder = root / name
    for fname, expected in entry.get("files", {}).items():
        path = folder / fname
        if not path.is_file():
            raise ShardChecksumError(f"{root}: shard {name}: file {fname} is missing")
        actual = _sha256_path(path)
        if actual != expected:
            raise ShardChecksumError(f"{root}: shard {name}: file {fname} does not match its checksum (sha256 "
                                     f"{actual}, the manifest says {expected}): the file is corrupted or truncated")


# -- reading ---------------------------------------------------------------------------------------
@dataclass
class _Where:
    """Where a batch's nodes (or edges) lie: ``src[a:b]`` are positions in shard ``s`` for each
    ``(s, a, b)`` of ``groups``, going to output rows ``dst[a:b]`` (``None``: rows ``a:b``)."""

    size: int
    groups: list[tuple[int, int, int]]
    src: np.ndarray
    dst: np.ndarray | None


class ShardedGraphs:
    """A shard dataset, read lazily: graphs indexed ``0 .. len - 1`` across shards in row order.

    Opened with :meth:`open`. Arrays are memory-mapped on first use, shard by shard; a batch
    gathers its graphs' rows from the mapped files (only those pages are read).

    Implements :class:`~molgraph.data.loader.Collate`: ``sharded(indices)`` returns the
    :class:`~molgraph.data.loader.GraphBatch` that ``GraphBatcher(graphs, y)(indices)`` returns
    for the same graphs held in memory (``graphs = sharded.to_collated()``, ``y`` the stored
    targets as a float32 tensor): ``edge_index`` (int64, offset to batch numbering), the fields
    ``x``/``edge_attr`` (+ ``pos``/``z``) in the featurizer's dtypes, ``batch``, ``ptr``,
    ``index`` (the global graph indices) and ``y`` when targets are stored (or given with
    :meth:`with_targets`). Pickles without its mapped arrays (DataLoader workers re-map them).

    Attributes:
        root: the dataset folder.
        manifest: the parsed ``manifest.json``.
        fields: name -> level of the graph fields (``x``, ``edge_attr``, and ``pos``/``z`` when
            every shard stores them).
    """

    def __init__(self, root: Path, manifest: dict[str, Any]):
        self.root = Path(root)
        self.manifest = manifest
        self._entries = sorted(manifest.get("shards", []), key=lambda e: e["index"])
        counts = np.array([e["n_graphs"] for e in self._entries], dtype=np.int64)
        self._graph_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)  # (S + 1,)
        self.fields = self._common_fields()
        self._batch_y: torch.Tensor | None = None
        self._batch_extra: torch.Tensor | None = None
        self._targets_given = False
        self._reset_cache()

    def _reset_cache(self) -> None:
        self._mm: dict[tuple[int, str], np.ndarray] = {}
        self._index: dict[str, np.ndarray] | None = None
        self._y: np.ndarray | None = None
        self._stored_y_tensor: torch.Tensor | None = None

    def _common_fields(self) -> dict[str, str]:
        with_data = [e for e in self._entries if e["n_graphs"]]
        fields = {"x": "node", "edge_attr": "edge"}
        if with_data and all("pos" in e["arrays"] for e in with_data):
            fields.update(pos="node", z="node")
        # every shard must read back as the same dtype and width (one featurizer wrote them)
        for name in fields:
            specs = {(e["arrays"][name]["dtype"], tuple(e["arrays"][name]["shape"][1:]))
                     for e in self._entries if name in e["arrays"]}
            if len(specs) > 1:
                raise ShardError(f"{self.root}: field {name!r} differs between shards: {sorted(specs)}")
        return fields

    # -- opening -----------------------------------------------------------------------------------
    @classmethod
    def open(cls, dir: str | os.PathLike[str], *, verify: bool = True, allow_incomplete: bool = False) -> "ShardedGraphs":
        """Open the dataset in ``dir``.

        Args:
            verify: check every file's sha256 against the manifest first (reads every byte once).
            allow_incomplete: open a dataset whose writing did not finish (its complete shards only).

        Raises:
            ShardError: no manifest, another format, an incomplete dataset (unless allowed).
            ShardChecksumError: a missing, corrupted or truncated file (naming shard and file).
        """
        root = Path(dir)
        manifest = _read_manifest(root)
        if not manifest.get("complete") and not allow_incomplete:
            raise ShardError(f"{root} is incomplete: its manifest lists {len(manifest.get('shards', []))} shard(s) "
                             f"and complete: false (an interrupted `molgraph featurize`: rerun it with --resume)")
        out = cls(root, manifest)
        if verify:
            out.verify()
        return out

    def verify(self) -> None:
        """Check every file of every shard against its sha256 (:class:`ShardChecksumError` naming shard and file)."""
        for entry in self._entries:
            _verify_shard(self.root, entry)

    # -- metadata ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._graph_start[-1])

    @property
    def featurizer_config(self) -> dict[str, Any]:
        return self.manifest["featurizer"]

    @property
    def target_columns(self) -> list[str]:
        return list(self.manifest.get("target_columns", []))

    @property
    def shard_size(self) -> int:
        return int(self.manifest["shard_size"])

    @property
    def num_shards(self) -> int:
        return len(self._entries)

    @property
    def num_nodes(self) -> int:
        return sum(e["n_nodes"] for e in self._entries)

    @property
    def num_edges(self) -> int:
        return sum(e["n_edges"] for e in self._entries)

    @property
    def num_rejected(self) -> int:
        return sum(e["n_rejected"] for e in self._entries)

    def __repr__(self) -> str:
        return (f"ShardedGraphs({self.root}: {len(self)} graphs in {self.num_shards} shards, {self.num_nodes} nodes, "
                f"{self.num_edges} edges; fields {', '.join(f'{n}:{lv}' for n, lv in self.fields.items())})")

    # -- mapped arrays -----------------------------------------------------------------------------
    def _array(self, s: int, name: str) -> np.ndarray:
        """Array ``name`` of the ``s``-th shard (position in shard order), memory-mapped."""
        key = (s, name)
        out = self._mm.get(key)
        if out is None:
            entry = self._entries[s]
            spec = entry["arrays"].get(name)
            if spec is None:
                raise ShardError(f"{self.root}: shard {entry['name']} has no array {name!r}")
            path = self.root / entry["name"] / spec["file"]
            try:
                out = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise ShardError(f"{self.root}: shard {entry['name']}: file {spec['file']} cannot be read ({exc})") from None
            if out.dtype != np.dtype(spec["stored"]) or list(out.shape) != list(spec["shape"]):
                raise ShardError(f"{self.root}: shard {entry['name']}: file {spec['file']} holds {out.dtype} "
                                 f"{list(out.shape)}, the manifest says {spec['stored']} {spec['shape']}")
            # a plain ndarray view of the map: np.memmap's subclass hooks cost more than a small gather
            out = self._mm[key] = np.asarray(out)
        return out

    def _concat(self, name: str, dtype: np.dtype) -> np.ndarray:
        parts = [np.asarray(self._array(s, name)) for s in range(self.num_shards)]
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype=dtype)

    def _graph_index(self) -> dict[str, np.ndarray]:
        """Per graph (global order): node and edge counts, first node / edge within its shard."""
        if self._index is None:
            nodes, edges, node0, edge0 = [], [], [], []
            for s in range(self.num_shards):
                n = np.asarray(self._array(s, "node_counts"), dtype=np.int64)
                e = np.asarray(self._array(s, "edge_counts"), dtype=np.int64)
                nodes.append(n)
                edges.append(e)
                node0.append(np.cumsum(n) - n)
                edge0.append(np.cumsum(e) - e)

            def cat(parts: list[np.ndarray]) -> np.ndarray:
                return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

            self._index = {"nodes": cat(nodes), "edges": cat(edges), "node0": cat(node0), "edge0": cat(edge0)}
        return self._index

    @property
    def num_atoms(self) -> np.ndarray:
        """Nodes per graph, ``(len,)`` int64."""
        return self._graph_index()["nodes"]

    @property
    def num_bonds_directed(self) -> np.ndarray:
        """Directed edges per graph, ``(len,)`` int64."""
        return self._graph_index()["edges"]

    @property
    def rows(self) -> np.ndarray:
        """Input row of every graph, ``(len,)`` int64 (concatenated from the shards)."""
        return self._concat("rows", np.dtype(np.int64))

    @property
    def y(self) -> np.ndarray | None:
        """Stored targets ``(len, T)`` float32 (NaN = missing), or ``None`` without target columns."""
        if not self.target_columns:
            return None
        if self._y is None:
            self._y = self._concat("y", np.dtype(np.float32)).reshape(-1, len(self.target_columns))
        return self._y

    def _shard_of(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(shard position, index within the shard) of global graph indices."""
        s = np.searchsorted(self._graph_start, idx, side="right") - 1
        return s, idx - self._graph_start[s]

    def _check_indices(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = np.array(indices, dtype=np.int64).reshape(-1)  # a copy: the batch's index owns it
        n = len(self)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            bad = int(idx[(idx < 0) | (idx >= n)][0])
            raise IndexError(f"graph index {bad} out of range for {n} graphs")
        return idx

    def smiles(self, i: int) -> str:
        """SMILES of graph ``i`` (global index)."""
        idx = self._check_indices([i])
        s, local = self._shard_of(idx)
        s, local = int(s[0]), int(local[0])
        off = self._array(s, "smiles_offsets")
        blob = self._array(s, "smiles_utf8")
        return bytes(blob[int(off[local]):int(off[local + 1])]).decode("utf-8", "surrogatepass")

    def smiles_list(self, indices: Sequence[int] | np.ndarray | None = None) -> list[str]:
        """SMILES of graphs ``indices`` (default: all), in that order."""
        if indices is None:
            out: list[str] = []
            for s in range(self.num_shards):
                off = np.asarray(self._array(s, "smiles_offsets")).tolist()
                text = bytes(self._array(s, "smiles_utf8")).decode("utf-8", "surrogatepass")
                if text.isascii():  # byte offsets are character offsets
                    out.extend(text[a:b] for a, b in zip(off[:-1], off[1:]))
                else:
                    raw = bytes(self._array(s, "smiles_utf8"))
                    out.extend(raw[a:b].decode("utf-8", "surrogatepass") for a, b in zip(off[:-1], off[1:]))
            return out
        return [self.smiles(int(i)) for i in np.asarray(indices, dtype=np.int64).reshape(-1)]

    def rejects(self) -> list[Reject]:
        """Every shard's rejects, in row order (``Reject.index`` = input row)."""
        out: list[Reject] = []
        for entry in self._entries:
            with open(self.root / entry["name"] / _REJECTS, newline="", encoding="utf-8") as fh:
                reader = csv.reader(fh)
                next(reader, None)
                out.extend(Reject(int(row), text, reason) for row, text, reason in reader)
        return out

    # -- gathering ---------------------------------------------------------------------------------
    def _spec(self, name: str, axis: int) -> tuple[np.dtype, tuple[int, ...]]:
        """Reader dtype and shape without the gathered axis of array ``name`` (the same in every shard)."""
        if self._entries:
            spec = self._entries[0]["arrays"][name]
            return np.dtype(spec["dtype"]), tuple(spec["shape"][:axis] + spec["shape"][axis + 1:])
        # no shard at all (an empty input): the featurizer says what its arrays would be
        from molgraph.featurizers.graph import MolGraphFeaturizer

        fz = MolGraphFeaturizer.from_config(self.featurizer_config)
        return {"x": (fz.atom_featurizer.dtype, (fz.atom_dim,)), "edge_attr": (fz.bond_featurizer.dtype, (fz.bond_dim,)),
                "edge_index": (np.dtype(np.int64), (2,))}[name]

    def _gather(self, name: str, where: _Where, axis: int = 0) -> np.ndarray:
        """Rows (``axis=0``) or columns (``axis=1``) of array ``name`` at ``where``, in the reader's
        dtype (stored narrow values cast back exactly)."""
        dtype, tail = self._spec(name, axis)
        shape = (tail[0], where.size) if axis == 1 else (where.size, *tail)
        out = np.empty(shape, dtype=dtype)
        for s, a, b in where.groups:
            mm = self._array(s, name)
            src = where.src[a:b]
            dst = slice(a, b) if where.dst is None else where.dst[a:b]
            if axis == 1:
                out[:, dst] = mm[:, src]
            else:
                out[dst] = mm[src]
        return out

    def _select(self, idx: np.ndarray) -> dict[str, Any]:
        """Where the graphs ``idx`` lie: their nodes' and edges' shards and positions there, and
        the batch's counts and offsets.

        Graphs are grouped by shard (a stable sort of the ``B`` graphs, not of their nodes or
        edges), so each shard's rows are taken with one fancy index per array.
        """
        gi = self._graph_index()
        shard, _ = self._shard_of(idx)
        n_nodes, n_edges = gi["nodes"][idx], gi["edges"][idx]
        zero = np.zeros(1, dtype=np.int64)
        node_ptr = np.concatenate([zero, np.cumsum(n_nodes)])
        edge_ptr = np.concatenate([zero, np.cumsum(n_edges)])
        if idx.size == 0:
            order, graph_bounds = None, np.zeros(1, dtype=np.int64)
        elif (shard == shard[0]).all():  # one shard (e.g. unshuffled batches): no reordering
            order, graph_bounds = None, np.array([0, idx.size])
        else:
            order = np.argsort(shard, kind="stable")
            graph_bounds = np.concatenate([[0], np.flatnonzero(np.diff(shard[order])) + 1, [idx.size]])
        group_shards = [int(shard[0 if order is None else order[a]]) for a in graph_bounds[:-1]]

        def where(counts: np.ndarray, first: np.ndarray, ptr: np.ndarray) -> _Where:
            o = slice(None) if order is None else order
            c = counts[o]
            ends = np.concatenate([zero, np.cumsum(c)])[graph_bounds]
            groups = [(s, int(a), int(b)) for s, a, b in zip(group_shards, ends[:-1], ends[1:]) if b > a]
            return _Where(int(ptr[-1]), groups, ranges(first[idx][o], c),
                          None if order is None else ranges(ptr[:-1][order], c))

        return {
            "num_nodes": n_nodes, "num_edges": n_edges, "node_ptr": node_ptr, "edge_ptr": edge_ptr,
            "node": where(n_nodes, gi["node0"], node_ptr), "edge": where(n_edges, gi["edge0"], edge_ptr),
        }

    def gather_arrays(self, indices: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
        """The graphs ``indices`` as numpy arrays: ``edge_index`` ``(2, E)`` int64 LOCAL node indices,
        each field (``x``, ``edge_attr``, ...) in its reader dtype, ``num_nodes``/``num_edges``
        ``(B,)`` int64, ``node_ptr``/``edge_ptr`` ``(B + 1,)`` int64 offsets in the gathered rows,
        and ``index`` ``(B,)`` int64 (the graphs)."""
        idx = self._check_indices(indices)
        sel = self._select(idx)
        out = {"index": idx, "num_nodes": sel["num_nodes"], "num_edges": sel["num_edges"],
               "node_ptr": sel["node_ptr"], "edge_ptr": sel["edge_ptr"],
               "edge_index": self._gather("edge_index", sel["edge"], axis=1)}
        for name, level in self.fields.items():
            out[name] = self._gather(name, sel[level])
        return out

    def with_targets(self, y: Any = None, extra: Any = None) -> "ShardedGraphs":
        """A view of the same files whose batches carry ``y`` (instead of the stored targets) and ``extra``.

        Args:
            y: ``(len, T)`` tensor or array (e.g. scaled targets), or ``None`` for no ``y``.
            extra: ``(len, extra_dim)`` molecule-level features, or ``None``.
        """
        import torch

        out = copy.copy(self)
        out._reset_cache()
        for name, t in (("y", y), ("extra", extra)):
            if t is not None and len(t) != len(self):
                raise ValueError(f"{name} has {len(t)} rows for {len(self)} graphs")
        out._batch_y = None if y is None else torch.as_tensor(y)
        out._batch_extra = None if extra is None else torch.as_tensor(extra)
        out._targets_given = True
        return out

    def _y_tensor(self) -> torch.Tensor | None:
        if self._targets_given:
            return self._batch_y
        if self._stored_y_tensor is None and self.y is not None:
            import torch

            self._stored_y_tensor = torch.from_numpy(np.ascontiguousarray(self.y))
        return self._stored_y_tensor

    def __call__(self, indices: Sequence[int] | np.ndarray) -> Batch:
        """The batch of graphs ``indices`` (global, any order; see the class doc)."""
        import torch

        from molgraph.data.loader import _new_batch

        g = self.gather_arrays(indices)
        batch_size = len(g["index"])
        shift = np.repeat(g["node_ptr"][:-1], g["num_edges"])
        values: dict[str, Any] = {
            "edge_index": torch.from_numpy(g["edge_index"] + shift),
            **{name: torch.from_numpy(g[name]) for name in self.fields},
            "batch": torch.from_numpy(np.repeat(np.arange(batch_size, dtype=np.int64), g["num_nodes"])),
            "ptr": torch.from_numpy(g["node_ptr"]),
            "index": torch.from_numpy(g["index"]),
        }
        t_idx = values["index"]
        y = self._y_tensor()
        if y is not None:
            values["y"] = y.index_select(0, t_idx)
        if self._batch_extra is not None:
            values["extra"] = self._batch_extra.index_select(0, t_idx)
        batch = _new_batch(values)
        # the slice tables GraphBatch builds on demand (get_example / to_data_list), as GraphBatcher sets them
        levels = {"index": "graph", **self.fields, "y": "graph", "extra": "graph"}
        batch.__dict__["_graph_levels"] = (levels, g["edge_ptr"])
        return batch

    def to_collated(self, indices: Sequence[int] | np.ndarray | None = None) -> CollatedGraphs:
        """Graphs ``indices`` (default: all) loaded into a :class:`~molgraph.data.collated.CollatedGraphs`
        (``rows`` and the featurizer config in ``meta`` kept). Holds them in memory: for subsets
        and tests; training batches come from calling this object."""
        import torch

        from molgraph.data.collated import CollatedGraphs

        idx = np.arange(len(self), dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64)
        g = self.gather_arrays(idx)
        rows = self.rows[g["index"]]
        t = torch.from_numpy
        return CollatedGraphs(
            None, t(g["edge_index"]), None, t(g["node_ptr"]), t(g["edge_ptr"]), self.smiles_list(idx),
            meta={"featurizer": self.featurizer_config}, rows=t(rows),
            fields={name: (level, t(g[name])) for name, level in self.fields.items()},
        )

    def __getstate__(self) -> dict[str, Any]:
        # memory maps would pickle as full copies of the arrays: a worker re-maps the files instead
        state = dict(self.__dict__)
        for key in ("_mm", "_index", "_y", "_stored_y_tensor"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset_cache()
