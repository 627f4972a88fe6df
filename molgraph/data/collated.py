"""Many graphs in a few tensors: the storage behind datasets, caches and ``molgraph featurize`` files.

All graphs' node rows are concatenated, their edges into one ``edge_index`` (node indices local
to each graph); ``atom_ptr``/``edge_ptr`` (length ``num_graphs + 1``) mark where each graph
starts. Indexing returns a ``Data`` whose tensors are views (no copy).

**Fields.** Every other tensor is a *field* with an explicitly declared *level*
(:data:`LEVELS`), stored in :attr:`CollatedGraphs.fields` (name -> level):

* ``"node"``: one row per node, ``(total_nodes, ...)`` (``x``, ``pos``, ``z``, ``forces``, masks);
* ``"edge"``: one row per edge, ``(total_edges, ...)`` (``edge_attr``, edge times);
* ``"graph"``: one row per graph, ``(num_graphs, ...)`` (``energy``, ``y``).

The level is never guessed from a tensor's length (a molecule with as many atoms as bonds would
make that ambiguous); a field's length is checked against its level's count instead. Batching
(:class:`molgraph.data.loader.GraphBatcher`) gathers each field by its level, so any field
travels to the model. Molecule graphs from the featurizers carry ``x`` (node) and
``edge_attr`` (edge), and ``pos``/``z`` (node) when 3D; 3D sets (QM9, rMD17) carry ``z``,
``pos`` and their targets and no ``x``.

**Files.** The file format is a plain dict of tensors, lists and strings, so it loads with
``torch.load(path, weights_only=True)`` (no pickled code), or an ``.npz`` with the same keys.
A file whose fields are exactly the historical ones (``x``, ``edge_attr``, optionally ``pos``
and ``z``) is written in format ``molgraph.collated_graphs/1``, byte for byte as before fields
existed, so older molgraph versions still read it; any other field set is written in format
``/2``, which adds ``fields_json`` (the name -> level mapping, in order) and stores each field
under its name. Both formats load.

**Compact layout.** :meth:`CollatedGraphs.to_compact` / :meth:`~CollatedGraphs.from_compact`
store the same graphs in a few percent of the bytes (format ``molgraph.collated_graphs_compact/1``):
each array in the cheapest exact codec (:func:`encode_array`: narrow integers, bit-packed 0/1,
a table of distinct rows plus codes), offsets as per-graph counts, SMILES as one UTF-8 blob.
Reading gives back the same tensors, dtypes included. The featurization cache uses it.

:class:`CollatedArrays` is the same content as numpy arrays: it collates and writes a graph file
without importing torch or PyG (``molgraph featurize ... -o graphs.npz`` needs neither), and
:meth:`CollatedGraphs.from_arrays` goes through it, so both write the same file. torch and PyG
are imported on first use.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, IO, Any, Iterable, Iterator, Mapping, NamedTuple, Sequence

import numpy as np

from molgraph.data.sources import atomic_output
from molgraph.featurizers.graph import GraphArrays

if TYPE_CHECKING:
    import torch
    from torch_geometric.data import Data

    from molgraph.featurizers.batch import PackedChunk

__all__ = [
    "FORMAT",
    "FORMAT_FIELDS",
    "LEVELS",
    "CollatedArrays",
    "CollatedGraphs",
    "GraphFileSummary",
    "GraphSelection",
    "save_chunks",
    "COMPACT_FORMAT",
    "encode_array",
    "decode_array",
    "narrow_int_dtype",
]

FORMAT = "molgraph.collated_graphs/1"  # x, edge_attr (+ pos, z): the historical layout
FORMAT_FIELDS = "molgraph.collated_graphs/2"  # any fields, with their levels in fields_json
LEVELS = ("node", "edge", "graph")
# Keys with a structural meaning in the file or in a batch: never field names.
RESERVED = frozenset({
    "format", "fields_json", "meta_json", "edge_index", "atom_ptr", "edge_ptr", "smiles", "rows",
    "batch", "ptr", "index", "num_nodes", "num_graphs",
})
# PyG gives names containing these words a meaning of their own when it batches or separates
# a Data ("index"/"face": concatenated along the last dim and offset by the node count; "batch":
# offset by its maximum; "adj": sparse): a field named so would be re-offset by PyG's own code.
_PYG_SPECIAL_WORDS = ("index", "face", "batch", "adj")
_LEGACY_LEVELS = {"x": "node", "edge_attr": "edge", "pos": "node", "z": "node"}


def check_field(name: Any, level: Any) -> None:
    """Raise ``ValueError`` unless ``name`` is a usable field name and ``level`` one of :data:`LEVELS`."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"field name must be a Python identifier, got {name!r}")
    if name in RESERVED:
        raise ValueError(f"field name {name!r} is reserved (structural key of graph files and batches)")
    special = next((w for w in _PYG_SPECIAL_WORDS if w in name), None)
    if special is not None:
        raise ValueError(f"field name {name!r} contains {special!r}, which PyG treats as an index/batch "
                         f"tensor (offset when batching); store the data under another name")
    if level not in LEVELS:
        raise ValueError(f"field {name!r}: level must be one of {LEVELS}, got {level!r}")


def _is_legacy(levels: Mapping[str, str]) -> bool:
    """Whether these fields fit format /1 (x and edge_attr, optionally pos and z together)."""
    names = set(levels)
    if names not in ({"x", "edge_attr"}, {"x", "edge_attr", "pos", "z"}):
        return False
    return all(levels[n] == _LEGACY_LEVELS[n] for n in names)


def _file_members(
    edge_index: Any, atom_ptr: Any, edge_ptr: Any, smiles: list[str], meta: dict[str, Any], rows: Any,
    levels: Mapping[str, str], values: Mapping[str, Any],
) -> dict[str, Any]:
    """A graph file's members, in file order (numpy or torch values, as given).

    Format /1 when the fields are the historical ones (same members and order as before fields
    existed), else format /2.
    """
    meta_json = json.dumps(meta, sort_keys=True)
    if _is_legacy(levels):
        out: dict[str, Any] = {
            "format": FORMAT,
            "x": values["x"], "edge_index": edge_index, "edge_attr": values["edge_attr"],
            "atom_ptr": atom_ptr, "edge_ptr": edge_ptr, "smiles": smiles, "meta_json": meta_json,
        }
        if "pos" in levels:
            out["pos"], out["z"] = values["pos"], values["z"]
    else:
        out = {
            "format": FORMAT_FIELDS, "edge_index": edge_index, "atom_ptr": atom_ptr, "edge_ptr": edge_ptr,
            "smiles": smiles, "meta_json": meta_json, "fields_json": json.dumps(dict(levels)),
        }
        out.update((name, values[name]) for name in levels)
    if rows is not None:
        out["rows"] = rows
    return out


# zlib level of ``.npz`` members. numpy's savez_compressed uses zlib's default (6); level 1 writes
# HIV's 41k graphs about 2.5x faster (1.6 s -> 0.6 s) into a file about 2.4x larger (5 MB -> 12 MB,
# against 260 MB uncompressed). np.load reads any level.
NPZ_COMPRESSLEVEL = 1


class _Pieces(NamedTuple):
    """An array given as its dtype, shape and C-order data in pieces (never concatenated)."""

    dtype: np.dtype
    shape: tuple[int, ...]
    pieces: Iterable[np.ndarray]  # C-contiguous; their bytes, in order, are the array's


def _savez(fh: IO[bytes], arrays: dict[str, Any], compresslevel: int = NPZ_COMPRESSLEVEL) -> None:
    """``np.savez_compressed(fh, **arrays)`` with a chosen zlib level (same members, same layout).

    A value may be :class:`_Pieces`: its member gets the header ``write_array`` would write for
    the whole array, then the pieces' bytes, so the file is the same as for the concatenation.
    """
    with zipfile.ZipFile(fh, mode="w", compression=zipfile.ZIP_DEFLATED, allowZip64=True,
                         compresslevel=compresslevel) as zf:
        for key, value in arrays.items():
            with zf.open(key + ".npy", "w", force_zip64=True) as member:
                if isinstance(value, _Pieces):
                    np.lib.format.write_array_header_1_0(member, {
                        "descr": np.lib.format.dtype_to_descr(value.dtype), "fortran_order": False,
                        "shape": value.shape,
                    })
                    for piece in value.pieces:
                        assert piece.dtype == value.dtype and piece.flags.c_contiguous
                        member.write(memoryview(piece).cast("B"))
                else:
                    np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)


def _write_graph_file(path: Path, d: dict[str, Any]) -> Path:
    """Write a :meth:`CollatedGraphs.to_dict`-style dict atomically: ``.npz`` (numpy values) or ``.pt``."""
    with atomic_output(path, "wb") as fh:
        if path.suffix == ".npz":
            arrays = {k: (v.numpy() if hasattr(v, "numpy") and not isinstance(v, np.ndarray) else v)
                      for k, v in d.items()}
            arrays["smiles"] = np.asarray(d["smiles"], dtype=object).astype(str)
            _savez(fh, arrays)
        else:
            import torch

            torch.save({k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v) for k, v in d.items()}, fh)
    return path


@dataclass
class CollatedArrays:
    """Collated graphs as numpy arrays: the content of a graph file (see :class:`CollatedGraphs`).

    Built from per-molecule :class:`GraphArrays` (:meth:`from_arrays`) or from the packed chunks of
    :func:`molgraph.featurizers.batch.iter_featurize_chunks` (:meth:`from_chunks`); both give the
    arrays :meth:`CollatedGraphs.from_arrays` would. ``fields`` holds further fields as
    ``name -> (level, array)`` (see the module doc); ``x``/``edge_attr``/``pos``/``z`` are the
    molecule fields the featurizers make.
    """

    x: np.ndarray
    edge_index: np.ndarray
    edge_attr: np.ndarray
    atom_ptr: np.ndarray
    edge_ptr: np.ndarray
    smiles: list[str]
    pos: np.ndarray | None = None
    z: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    rows: np.ndarray | None = None
    fields: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.smiles)

    @classmethod
    def from_arrays(
        cls, graphs: Iterable[GraphArrays], meta: dict[str, Any] | None = None, rows: Sequence[int] | None = None,
    ) -> "CollatedArrays":
        """Concatenate featurized molecules (keeps the order); ``rows``: their input positions."""
        graphs = list(graphs)
        if not graphs:
            raise ValueError("no graphs to collate")
        with_pos = all(g.pos is not None for g in graphs)
        return cls._build(
            [g.x for g in graphs], [g.edge_index for g in graphs], [g.edge_attr for g in graphs],
            [g.x.shape[0] for g in graphs], [g.edge_index.shape[1] for g in graphs], [g.smiles for g in graphs],
            [g.pos for g in graphs] if with_pos else None, [g.z for g in graphs] if with_pos else None,
            meta, rows,
        )

    @classmethod
    def from_chunks(
        cls, chunks: Iterable[tuple[int, PackedChunk]], meta: dict[str, Any] | None = None,
    ) -> "CollatedArrays":
        """Concatenate the graphs of ``(start, PackedChunk)`` pairs; ``rows`` are their input positions."""
        g = _Gathered.of(chunks)
        return cls._build(g.xs, g.eis, g.eas, g.atom_counts, g.edge_counts, g.smiles,
                          g.pos if g.with_pos else None, g.zs if g.with_pos else None, meta, g.rows)

    @classmethod
    def _build(
        cls, xs: list[np.ndarray], eis: list[np.ndarray], eas: list[np.ndarray], atom_counts: Sequence[int],
        edge_counts: Sequence[int], smiles: list[str], pos: list[np.ndarray] | None, zs: list[np.ndarray] | None,
        meta: dict[str, Any] | None, rows: Sequence[int] | None,
    ) -> "CollatedArrays":
        return cls(
            x=np.concatenate(xs),
            edge_index=np.concatenate(eis, axis=1),
            edge_attr=np.concatenate(eas),
            atom_ptr=np.concatenate([[0], np.cumsum(atom_counts)]).astype(np.int64),
            edge_ptr=np.concatenate([[0], np.cumsum(edge_counts)]).astype(np.int64),
            smiles=list(smiles),
            pos=np.concatenate(pos) if pos is not None else None,
            z=np.concatenate(zs) if zs is not None else None,
            meta=dict(meta or {}),
            rows=np.array(rows, dtype=np.int64) if rows is not None else None,
        )

    def _all_fields(self) -> dict[str, tuple[str, np.ndarray]]:
        out: dict[str, tuple[str, np.ndarray]] = {"x": ("node", self.x), "edge_attr": ("edge", self.edge_attr)}
        if self.pos is not None:
            out["pos"], out["z"] = ("node", self.pos), ("node", self.z)
        for name, (level, value) in self.fields.items():
            if name in out:
                raise ValueError(f"field {name!r} is given twice (as an attribute and in fields)")
            check_field(name, level)
            out[name] = (level, value)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The file's content with numpy arrays (:meth:`CollatedGraphs.to_dict` has tensors)."""
        fields = self._all_fields()
        return _file_members(self.edge_index, self.atom_ptr, self.edge_ptr, self.smiles, self.meta, self.rows,
                             {n: lv for n, (lv, _) in fields.items()}, {n: v for n, (_, v) in fields.items()})

    def save(self, path: str | Path) -> Path:
        """Write atomically to ``.pt`` or ``.npz``: the same file as :meth:`CollatedGraphs.save`."""
        return _write_graph_file(Path(path), self.to_dict())

    def to_graphs(self) -> "CollatedGraphs":
        """The same graphs as a :class:`CollatedGraphs` (tensors share memory with these arrays)."""
        import torch

        def t(a: np.ndarray | None) -> torch.Tensor | None:
            return None if a is None else torch.from_numpy(a)

        return CollatedGraphs(
            t(self.x), t(self.edge_index), t(self.edge_attr), t(self.atom_ptr), t(self.edge_ptr), self.smiles,
            t(self.pos), t(self.z), self.meta, t(self.rows),
            fields={name: (level, t(value)) for name, (level, value) in self.fields.items()},
        )


@dataclass
class _Gathered:
    """The pieces of packed chunks, in order, before any concatenation."""

    xs: list[np.ndarray] = field(default_factory=list)
    eis: list[np.ndarray] = field(default_factory=list)
    eas: list[np.ndarray] = field(default_factory=list)
    atom_counts: list[int] = field(default_factory=list)
    edge_counts: list[int] = field(default_factory=list)
    smiles: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    pos: list[np.ndarray] = field(default_factory=list)
    zs: list[np.ndarray] = field(default_factory=list)
    with_pos: bool = True

    @classmethod
    def of(cls, chunks: Iterable[tuple[int, PackedChunk]]) -> "_Gathered":
        g = cls()
        for start, chunk in chunks:
            if chunk.x is None:  # every item of the chunk was rejected
                continue
            g.xs.append(chunk.x)
            g.eis.append(chunk.edge_index)
            g.eas.append(chunk.edge_attr)
            g.atom_counts += chunk.atom_counts
            g.edge_counts += chunk.edge_counts
            g.smiles += chunk.smiles
            g.rows += [start + k for k, is_graph in enumerate(chunk.kinds) if is_graph]
            if g.with_pos and all(chunk.has_pos):
                g.pos.append(chunk.pos)
                g.zs.append(chunk.z)
            else:
                g.with_pos = False
        if not g.smiles:
            raise ValueError("no graphs to collate")
        return g


class GraphFileSummary(NamedTuple):
    """What :func:`save_chunks` wrote."""

    path: Path
    num_graphs: int
    num_atoms: int
    num_edges: int


def save_chunks(
    path: str | Path, chunks: Iterable[tuple[int, PackedChunk]], meta: dict[str, Any] | None = None,
) -> GraphFileSummary:
    """Write the graphs of ``(start, PackedChunk)`` pairs to a graph file, atomically.

    The file is the one ``CollatedArrays.from_chunks(chunks, meta).save(path)`` writes. An
    ``.npz`` is written straight from the chunks' arrays: concatenating them first would only
    copy a few hundred MB into fresh memory (HIV's 41k molecules: 0.3 s for ``x``, ``edge_index``
    and ``edge_attr``, 0.25 s for the fixed-width SMILES array).
    """
    path = Path(path)
    g = _Gathered.of(chunks)
    n_atoms, n_edges = sum(g.atom_counts), sum(g.edge_counts)
    summary = GraphFileSummary(path, len(g.smiles), n_atoms, n_edges)
    if path.suffix != ".npz":
        CollatedArrays._build(g.xs, g.eis, g.eas, g.atom_counts, g.edge_counts, g.smiles,
                              g.pos if g.with_pos else None, g.zs if g.with_pos else None, meta, g.rows).save(path)
        return summary

    def pieces(parts: list[np.ndarray], shape: tuple[int, ...], axis1: bool = False) -> _Pieces:
        dtype = parts[0].dtype
        if any(p.dtype != dtype for p in parts):  # np.concatenate would promote; do as it does
            dtype = np.result_type(*parts)
            parts = [p.astype(dtype) for p in parts]
        if axis1:  # (2, E) concatenated along axis 1: every first row, then every second row
            rows = [np.ascontiguousarray(p[r]) for r in range(shape[0]) for p in parts]
        else:
            rows = [np.ascontiguousarray(p) for p in parts]
        return _Pieces(np.dtype(dtype), shape, rows)

    width = max(1, max(map(len, g.smiles)))  # np.asarray(smiles, dtype=object).astype(str)'s width
    sdtype = np.dtype(f"<U{width}")
    step = 4096
    smiles = _Pieces(sdtype, (len(g.smiles),),
                     (np.array(g.smiles[i:i + step], dtype=sdtype) for i in range(0, len(g.smiles), step)))
    x_shape = (n_atoms, *g.xs[0].shape[1:])
    arrays: dict[str, Any] = {
        "format": FORMAT,
        "x": pieces(g.xs, x_shape),
        "edge_index": pieces(g.eis, (g.eis[0].shape[0], n_edges), axis1=True),
        "edge_attr": pieces(g.eas, (n_edges, *g.eas[0].shape[1:])),
        "atom_ptr": np.concatenate([[0], np.cumsum(g.atom_counts)]).astype(np.int64),
        "edge_ptr": np.concatenate([[0], np.cumsum(g.edge_counts)]).astype(np.int64),
        "smiles": smiles,
        "meta_json": json.dumps(dict(meta or {}), sort_keys=True),
    }
    if g.with_pos:
        arrays["pos"] = pieces(g.pos, (n_atoms, *g.pos[0].shape[1:]))
        arrays["z"] = pieces(g.zs, (n_atoms, *g.zs[0].shape[1:]))
    arrays["rows"] = np.array(g.rows, dtype=np.int64)
    with atomic_output(path, "wb") as fh:
        _savez(fh, arrays)
    return summary


def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for each (s, n), without a Python loop (int64)."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths  # where each range starts in the output
    return np.repeat(starts - offsets, lengths) + np.arange(total, dtype=np.int64)


class GraphSelection(NamedTuple):
    """Where the rows of some graphs lie in a :class:`CollatedGraphs` (see :meth:`CollatedGraphs.select`).

    Attributes:
        index: ``(B,)`` int64 the selected graphs, in order.
        node_sel, edge_sel: int64 tensors, positions of their node rows / edges in the storage.
        node_ptr, edge_ptr: ``(B + 1,)`` int64 numpy offsets of each selected graph's nodes /
            edges in the gathered rows.
        num_nodes, num_edges: ``(B,)`` int64 numpy counts per selected graph.
    """

    index: np.ndarray
    node_sel: "torch.Tensor"
    edge_sel: "torch.Tensor"
    node_ptr: np.ndarray
    edge_ptr: np.ndarray
    num_nodes: np.ndarray
    num_edges: np.ndarray


class CollatedGraphs(Sequence["Data"]):
    """A read-only sequence of graphs stored as concatenated tensors, with declared fields.

    Args:
        x, edge_attr, pos, z: the molecule fields (levels node, edge, node, node), or ``None``.
        edge_index: ``(2, total_edges)`` integer, node indices local to each graph.
        atom_ptr, edge_ptr: ``(num_graphs + 1,)`` int64 offsets of each graph's nodes / edges.
        smiles: one string per graph (an id for graphs that are not molecules).
        meta: free JSON-serializable metadata (featurizer config, source file, units, ...).
        rows: ``(num_graphs,)`` int64 position of each graph's molecule in its input, or ``None``.
        fields: further fields, ``name -> (level, tensor)``; each tensor's first dimension must
            be its level's count (nodes, edges or graphs). See the module doc.

    Attributes:
        fields: name -> level of every field (``x``, ``edge_attr``, ``pos``, ``z`` included when
            present), in storage order. Each field is also an attribute (``graphs.forces``).
        x: ``(total_atoms, atom_dim)`` or ``None``; ``edge_attr``: ``(total_edges, bond_dim)`` or
            ``None``; ``pos``: ``(total_atoms, 3)`` angstrom or ``None``; ``z``: ``(total_atoms,)``
            atomic numbers or ``None``.

    Raises:
        ValueError: pointers that do not match the tensors, a field whose length is not its
            level's count, a bad field name or level (the message names the field).
    """

    def __init__(
        self,
        x: torch.Tensor | None,
        edge_index: torch.Tensor,
        edge_attr: torch.Tensor | None,
        atom_ptr: torch.Tensor,
        edge_ptr: torch.Tensor,
        smiles: list[str],
        pos: torch.Tensor | None = None,
        z: torch.Tensor | None = None,
        meta: dict[str, Any] | None = None,
        rows: torch.Tensor | None = None,
        *,
        fields: Mapping[str, tuple[str, torch.Tensor]] | None = None,
    ):
        if rows is not None and len(rows) != len(smiles):
            raise ValueError("rows needs one entry per graph")
        if len(atom_ptr) != len(smiles) + 1 or len(edge_ptr) != len(smiles) + 1:
            raise ValueError("atom_ptr and edge_ptr need num_graphs + 1 entries")
        if edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ValueError(f"edge_index must be (2, total_edges), got {tuple(edge_index.shape)}")
        if int(edge_ptr[-1]) != edge_index.shape[1]:
            raise ValueError("pointers do not match the concatenated tensors")
        self.edge_index = edge_index
        self.atom_ptr, self.edge_ptr = atom_ptr, edge_ptr
        self.smiles = list(smiles)
        self.meta = dict(meta or {})
        self.rows = rows
        # python ints: indexing a tensor element per __getitem__ would cost more than the slicing
        self._a = atom_ptr.tolist()
        self._e = edge_ptr.tolist()
        self._a_np = np.asarray(self._a, dtype=np.int64)  # for vectorized selections
        self._e_np = np.asarray(self._e, dtype=np.int64)
        self.fields: dict[str, str] = {}
        self._values: dict[str, torch.Tensor] = {}
        given = {"x": x, "edge_attr": edge_attr, "pos": pos, "z": z}
        for name, value in given.items():
            if value is not None:
                self.add_field(name, value, _LEGACY_LEVELS[name])
        for name, item in (fields or {}).items():
            if name in self.fields:
                raise ValueError(f"field {name!r} is given twice (as an argument and in fields)")
            if not (isinstance(item, tuple) and len(item) == 2):
                raise ValueError(f"fields[{name!r}] must be a (level, tensor) pair, got {type(item).__name__}")
            level, value = item
            self.add_field(name, value, level)

    # -- fields ----------------------------------------------------------------------------------
    def count(self, level: str) -> int:
        """Number of rows a field of ``level`` has: total nodes, total edges or graphs."""
        if level == "node":
            return self._a[-1]
        if level == "edge":
            return self._e[-1]
        if level == "graph":
            return len(self.smiles)
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")

    def add_field(self, name: str, value: torch.Tensor, level: str) -> "CollatedGraphs":
        """Store (or replace) field ``name`` of ``level``; returns ``self``.

        Raises:
            ValueError: bad name or level, or ``value``'s first dimension is not the level's count.
            TypeError: ``value`` is not a tensor.
        """
        import torch

        if name in _LEGACY_LEVELS:
            if level != _LEGACY_LEVELS[name]:
                raise ValueError(f"field {name!r} is {_LEGACY_LEVELS[name]}-level, got level {level!r}")
        else:
            check_field(name, level)
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"field {name!r} must be a torch.Tensor, got {type(value).__name__}")
        expected = self.count(level)
        if value.dim() == 0 or value.shape[0] != expected:
            raise ValueError(f"field {name!r} ({level} level) has shape {tuple(value.shape)}; "
                             f"its first dimension must be the number of {level}s, {expected}")
        self.fields[name] = level
        self._values[name] = value
        return self

    def field(self, name: str) -> torch.Tensor:
        """The tensor of field ``name`` (``KeyError`` listing the fields if absent)."""
        try:
            return self._values[name]
        except KeyError:
            raise KeyError(f"no field {name!r}; fields: {', '.join(self.fields) or '(none)'}") from None

    def field_names(self, level: str | None = None) -> tuple[str, ...]:
        """Names of the fields (of one level, if given), in storage order."""
        return tuple(n for n, lv in self.fields.items() if level is None or lv == level)

    def __getattr__(self, name: str) -> Any:
        # only reached when normal lookup fails: fields read as attributes (graphs.forces)
        values = self.__dict__.get("_values")
        if values is not None and name in values:
            return values[name]
        raise AttributeError(f"{type(self).__name__} has no attribute or field {name!r}")

    # x, edge_attr, pos and z always exist as attributes (None when absent), as before fields
    @property
    def x(self) -> torch.Tensor | None:
        return self._values.get("x")

    @property
    def edge_attr(self) -> torch.Tensor | None:
        return self._values.get("edge_attr")

    @property
    def pos(self) -> torch.Tensor | None:
        return self._values.get("pos")

    @property
    def z(self) -> torch.Tensor | None:
        return self._values.get("z")

    # -- building --------------------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        graphs: Iterable[GraphArrays],
        meta: dict[str, Any] | None = None,
        rows: Sequence[int] | None = None,
    ) -> "CollatedGraphs":
        """Concatenate featurized molecules (keeps the order); ``rows``: their input positions."""
        return CollatedArrays.from_arrays(graphs, meta=meta, rows=rows).to_graphs()

    # -- sequence protocol -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.smiles)

    def __getitem__(self, index: int) -> Data:  # type: ignore[override]
        if isinstance(index, slice):
            raise TypeError("slice a CollatedGraphs with .subset(indices)")
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"graph index {index} out of range for {n} graphs")
        a0, a1 = self._a[index], self._a[index + 1]
        e0, e1 = self._e[index], self._e[index + 1]
        bounds = {"node": (a0, a1), "edge": (e0, e1), "graph": (index, index + 1)}
        values = {}
        for name, level in self.fields.items():
            lo, hi = bounds[level]
            values[name] = self._values[name][lo:hi]
        data = (_Data or _data_class())(edge_index=self.edge_index[:, e0:e1], smiles=self.smiles[index], **values)
        if "x" not in self.fields:
            data.num_nodes = a1 - a0  # PyG would otherwise guess it from pos or the edges
        return data

    def __iter__(self) -> Iterator[Data]:
        return (self[i] for i in range(len(self)))

    @property
    def num_atoms(self) -> torch.Tensor:
        """Atoms (nodes) per graph, ``(num_graphs,)``."""
        return self.atom_ptr[1:] - self.atom_ptr[:-1]

    @property
    def num_edges(self) -> torch.Tensor:
        """Edges per graph, ``(num_graphs,)``."""
        return self.edge_ptr[1:] - self.edge_ptr[:-1]

    # -- gathering -------------------------------------------------------------------------------
    def select(self, indices: Sequence[int] | np.ndarray) -> GraphSelection:
        """Where graphs ``indices`` (in that order) lie in the storage: vectorized, no per-graph loop.

        Raises:
            IndexError: an index outside ``[0, len(self))`` (negative indices are refused too:
                they would silently wrap).
        """
        import torch

        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            bad = int(idx[(idx < 0) | (idx >= len(self))][0])
            raise IndexError(f"graph index {bad} out of range for {len(self)} graphs")
        a, e = self._a_np, self._e_np
        a0, n_nodes = a[idx], a[idx + 1] - a[idx]
        e0, n_edges = e[idx], e[idx + 1] - e[idx]
        zero = np.zeros(1, dtype=np.int64)
        return GraphSelection(
            index=idx,
            node_sel=torch.from_numpy(ranges(a0, n_nodes)),
            edge_sel=torch.from_numpy(ranges(e0, n_edges)),
            node_ptr=np.concatenate([zero, np.cumsum(n_nodes)]),
            edge_ptr=np.concatenate([zero, np.cumsum(n_edges)]),
            num_nodes=n_nodes,
            num_edges=n_edges,
        )

    def gather(self, name: str, selection: GraphSelection) -> torch.Tensor:
        """Rows of field ``name`` for the selected graphs, concatenated in selection order."""
        level = self.fields.get(name)
        if level is None:
            self.field(name)  # raises the KeyError listing the fields
        value = self._values[name]
        if level == "node":
            return value.index_select(0, selection.node_sel)
        if level == "edge":
            return value.index_select(0, selection.edge_sel)
        import torch

        return value.index_select(0, torch.from_numpy(selection.index))

    def subset(self, indices: Sequence[int] | np.ndarray) -> "CollatedGraphs":
        """A new :class:`CollatedGraphs` of graphs ``indices`` (in that order), every field kept.

        Edge indices stay local to each graph; ``rows`` and ``meta`` follow along.
        """
        import torch

        sel = self.select(indices)
        return CollatedGraphs(
            None, self.edge_index.index_select(1, sel.edge_sel), None,
            torch.from_numpy(sel.node_ptr), torch.from_numpy(sel.edge_ptr),
            [self.smiles[i] for i in sel.index.tolist()],
            meta=self.meta,
            rows=None if self.rows is None else self.rows.index_select(0, torch.from_numpy(sel.index)),
            fields={name: (level, self.gather(name, sel)) for name, level in self.fields.items()},
        )

    def validate(self) -> None:
        """Full consistency check (``O(edges)``): pointers ascend from 0 and every edge's nodes
        lie in its own graph. Raises ``ValueError`` naming the first bad graph."""
        a, e = self._a_np, self._e_np
        if a[0] != 0 or e[0] != 0 or (np.diff(a) < 0).any() or (np.diff(e) < 0).any():
            raise ValueError("atom_ptr and edge_ptr must start at 0 and never decrease")
        ei = self.edge_index.numpy() if hasattr(self.edge_index, "numpy") else np.asarray(self.edge_index)
        graph_of_edge = np.repeat(np.arange(len(self)), np.diff(e))
        n_nodes = np.diff(a)[graph_of_edge]
        bad = (ei < 0).any(axis=0) | (ei >= n_nodes).any(axis=0)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(f"graph {int(graph_of_edge[k])}: edge {k} joins local nodes {ei[:, k].tolist()}, "
                             f"but the graph has {int(n_nodes[k])} nodes")

    # -- files -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The file's content with tensors (format /1 or /2, see the module doc)."""
        return _file_members(self.edge_index, self.atom_ptr, self.edge_ptr, self.smiles, self.meta, self.rows,
                             self.fields, self._values)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CollatedGraphs":
        """Build from :meth:`to_dict` output, of either format."""
        fmt = d.get("format")
        meta = json.loads(d.get("meta_json", "{}"))
        if fmt == FORMAT:
            return cls(
                d["x"], d["edge_index"], d["edge_attr"], d["atom_ptr"], d["edge_ptr"], list(d["smiles"]),
                d.get("pos"), d.get("z"), meta, d.get("rows"),
            )
        if fmt == FORMAT_FIELDS:
            levels = json.loads(d["fields_json"])
            missing = [name for name in levels if name not in d]
            if missing:
                raise ValueError(f"graph file lists field(s) {missing} in fields_json but does not hold them")
            return cls(None, d["edge_index"], None, d["atom_ptr"], d["edge_ptr"], list(d["smiles"]), meta=meta,
                       rows=d.get("rows"), fields={name: (level, d[name]) for name, level in levels.items()})
        raise ValueError(f"not a molgraph graph file (format {fmt!r}, expected {FORMAT!r} or {FORMAT_FIELDS!r})")

    def save(self, path: str | Path) -> Path:
        """Write atomically to ``.pt`` (torch, weights-only loadable) or ``.npz``, every field kept."""
        return _write_graph_file(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "CollatedGraphs":
        """Read a file written by :meth:`save` (either format); never unpickles code."""
        import torch

        path = Path(path)
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                d = {k: f[k] for k in f.files}
            # numbers and booleans become tensors; the strings (format, JSON, smiles) stay text
            d = {k: (torch.from_numpy(v) if v.dtype.kind in "biufc" else v) for k, v in d.items()}
            for key in ("format", "meta_json", "fields_json"):
                if key in d:
                    d[key] = str(d[key])
            d.setdefault("meta_json", "{}")
            d["smiles"] = [str(s) for s in d["smiles"]]
            return cls.from_dict(d)
        return cls.from_dict(torch.load(path, weights_only=True))

    def to_compact(self, prefix: str = "") -> dict[str, np.ndarray]:
        """The graphs in the compact layout: a dict of numpy arrays for ``np.savez``.

        Members: ``layout`` (a JSON string: format, counts, field levels, meta and each array's
        codec, see :func:`encode_array`), ``atom_counts``/``edge_counts`` (the CSR offsets as
        per-graph counts), ``edge_index``, ``rows``, ``field.<name>`` per field, and the SMILES
        as ``smiles_utf8`` (UTF-8 bytes) with ``smiles_nbytes``; a ``rows``-coded array adds
        ``<member>.table``. Every member name starts with ``prefix``, so the graphs can share a
        file with other members. :meth:`from_compact` gives back equal tensors, dtypes included.
        """
        return _compact_members(self.edge_index, self.atom_ptr, self.edge_ptr, self.smiles, self.meta, self.rows,
                                self.fields, self._values, prefix)

    @classmethod
    def from_compact(cls, members: Mapping[str, Any], prefix: str = "") -> "CollatedGraphs":
        """Build from :meth:`to_compact` members: a dict, or an open ``np.load`` file (members are
        read as needed).

        Raises:
            ValueError: not a compact layout, an unknown codec, or arrays that do not fit together.
        """
        import torch

        d = _compact_decode(members, prefix)
        t = torch.from_numpy
        return cls(None, t(d["edge_index"]), None, t(d["atom_ptr"]), t(d["edge_ptr"]), d["smiles"], meta=d["meta"],
                   rows=None if d["rows"] is None else t(d["rows"]),
                   fields={name: (level, t(value)) for name, (level, value) in d["fields"].items()})

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}:{lv}" for n, lv in self.fields.items())
        return f"CollatedGraphs({len(self)} graphs, {self._a[-1]} nodes, {self._e[-1]} edges; fields {shown})"


_Data: type | None = None  # torch_geometric.data.Data, imported on first indexing


def _data_class() -> type:
    global _Data
    from torch_geometric.data import Data

    _Data = Data
    return Data


# -- compact storage -------------------------------------------------------------------------------
# A graph file keeps tensors as they are in memory: a float32 one-hot matrix costs 4 bytes per 0/1
# entry, int64 indices 8 bytes for values below 256. The compact layout stores each array with the
# cheapest of a few exact codecs and restores the very same dtype, shape and bits on reading. It is
# what the featurization cache writes (``molgraph.data.csv_dataset``): HIV's first 10k molecules
# with the ``multihot`` featurizer take ~2 MB instead of 104 MB.

COMPACT_FORMAT = "molgraph.collated_graphs_compact/1"
CODECS = ("raw", "int", "bits", "rows")

# Integer dtypes from the narrowest: the first whose range holds every value stores the array.
_NARROW_INTS = tuple(np.dtype(t) for t in ("u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8"))
# The rows codec hashes each row 8 bytes at a time (one numpy pass per word); rows longer than this
# are left to the other codecs (such wide, repetitive rows do not occur in molecule features).
_ROWS_MAX_WORDS = 256
# Rows are hashed and checked this many at a time: the block's words stay in the CPU cache (a
# column-by-column pass over all rows takes ~5x longer on 233k rows of 72 floats).
_ROWS_BLOCK = 8192


def narrow_int_dtype(lo: int, hi: int) -> np.dtype:
    """The smallest integer dtype holding every value in ``[lo, hi]`` (unsigned preferred at equal size)."""
    for dtype in _NARROW_INTS:
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return dtype
    raise ValueError(f"no integer dtype holds the range [{lo}, {hi}]")


def _as_numpy(value: Any) -> np.ndarray:
    """A C-contiguous numpy array of ``value`` (a tensor or array), sharing memory where possible."""
    if not isinstance(value, np.ndarray) and hasattr(value, "numpy"):
        try:
            value = value.detach().cpu().numpy()
        except TypeError as exc:  # bfloat16 and other dtypes numpy lacks
            raise TypeError(f"compact storage needs a numpy dtype, got a tensor of {value.dtype}") from exc
    return np.ascontiguousarray(value)


def _is_zero_one(a: np.ndarray) -> bool:
    """Whether every element is exactly 0 or 1 (floats compared by bits: -0.0 is not 0 here)."""
    if a.dtype.kind == "b":
        return True
    if a.dtype.kind in "iu":
        return bool(((a == 0) | (a == 1)).all())
    bits = a.view(f"u{a.dtype.itemsize}")
    one = np.array(1, dtype=a.dtype).view(bits.dtype)
    return bool(((bits == 0) | (bits == one)).all())


def _unique_rows(a: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(first, inverse)``: the first occurrence of each distinct row of ``a`` (rows compared by
    their bytes, so NaN payloads and -0.0 stay distinct) in order of appearance, and each row's
    position among them; ``None`` when the rows are too wide or mostly distinct.

    Rows are hashed to 64 bits and the hashes sorted (a lexicographic ``np.unique(axis=0)`` takes
    6 s on 233k rows of 72 floats; this takes ~80 ms); the grouping is then checked against the
    bytes themselves, so a hash collision only means ``None``, never a wrong row.
    """
    n = a.shape[0] if a.ndim else 0
    if n < 2:
        return None
    raw = a.reshape(n, -1).view(np.uint8)
    if raw.shape[1] == 0:
        return None
    if raw.shape[1] % 8:
        raw = np.concatenate([raw, np.zeros((n, 8 - raw.shape[1] % 8), dtype=np.uint8)], axis=1)
    words = raw.view(np.uint64)
    if words.shape[1] > _ROWS_MAX_WORDS:
        return None
    # a linear hash modulo 2**64 with fixed odd random weights (uint64 arithmetic wraps)
    weights = np.random.default_rng(0).integers(0, 2**63, size=words.shape[1], dtype=np.uint64)
    weights = weights * np.uint64(2) + np.uint64(1)
    h = np.empty(n, dtype=np.uint64)
    for lo in range(0, n, _ROWS_BLOCK):
        np.sum(words[lo:lo + _ROWS_BLOCK] * weights, axis=1, out=h[lo:lo + _ROWS_BLOCK])
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    if len(first) > n // 2:
        return None  # codes plus a table this large save little
    inverse = inverse.reshape(-1)
    order = np.argsort(first, kind="stable")  # table in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    first, inverse = first[order], rank[inverse]
    table = words[first]
    for lo in range(0, n, _ROWS_BLOCK):
        if not np.array_equal(table[inverse[lo:lo + _ROWS_BLOCK]], words[lo:lo + _ROWS_BLOCK]):
            return None  # two distinct rows share a hash
    return first, inverse


def encode_array(name: str, value: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Encode one array (numpy or tensor) with the codec that stores it in the fewest bytes.

    Codecs (all exact: :func:`decode_array` gives back the same dtype, shape and bits):

    * ``"raw"``: the array itself;
    * ``"int"``: an integer array in the narrowest dtype that holds its values
      (:func:`narrow_int_dtype`; OGB-style index features and local edge indices fit ``uint8``);
    * ``"bits"``: an array of only 0s and 1s (one-hot floats, bools), 8 values per byte;
    * ``"rows"``: a table of the distinct rows (first dimension) in the original dtype, and one
      narrow unsigned code per row (atoms and bonds repeat a few hundred feature rows).

    Returns:
        ``(spec, members)``: ``spec`` is JSON-serializable (``codec``, ``dtype``, ``shape``);
        ``members`` maps member names (``name``, and ``name + ".table"`` for ``"rows"``) to arrays.

    Raises:
        TypeError: a dtype other than bool, integer or float.
    """
    a = _as_numpy(value)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"compact storage holds bool, integer and float arrays; {name!r} is {a.dtype}")
    spec = {"dtype": a.dtype.str, "shape": list(a.shape)}
    # (codec, bytes stored, members): the first of the smallest wins, so raw wins ties
    options: list[tuple[str, int, Any]] = [("raw", a.nbytes, lambda: {name: a})]
    if a.size and a.dtype.kind in "iu":
        narrow = narrow_int_dtype(int(a.min()), int(a.max()))
        if narrow.itemsize < a.dtype.itemsize:
            options.append(("int", a.size * narrow.itemsize, lambda: {name: a.astype(narrow)}))
    if a.size and a.dtype.itemsize > 0 and _is_zero_one(a):
        options.append(("bits", (a.size + 7) // 8, lambda: {name: np.packbits(a.reshape(-1) != 0)}))
    found = _unique_rows(a) if a.size else None
    if found is not None:
        first, inverse = found
        code_dtype = narrow_int_dtype(0, len(first) - 1)
        table_bytes = len(first) * (a.nbytes // a.shape[0])
        options.append(("rows", table_bytes + a.shape[0] * code_dtype.itemsize,
                        lambda: {name: inverse.astype(code_dtype), name + ".table": a[first]}))
    codec, _, members = min(options, key=lambda o: o[1])
    return {"codec": codec, **spec}, members()


def decode_array(name: str, spec: Mapping[str, Any], members: Mapping[str, Any]) -> np.ndarray:
    """The array :func:`encode_array` encoded under ``name`` (``members``: e.g. an open ``.npz``).

    Raises:
        ValueError: an unknown codec, or members that do not decode to ``spec``'s dtype and shape.
    """
    dtype, shape, codec = np.dtype(spec["dtype"]), tuple(spec["shape"]), spec.get("codec")
    if codec == "raw":
        out = np.asarray(members[name])
    elif codec == "int":
        out = np.asarray(members[name]).astype(dtype)
    elif codec == "bits":
        size = int(np.prod(shape, dtype=np.int64))
        out = np.unpackbits(members[name], count=size).reshape(shape).astype(dtype)
    elif codec == "rows":
        table = np.asarray(members[name + ".table"])
        out = table.take(np.asarray(members[name]).astype(np.intp), axis=0)
    else:
        raise ValueError(f"member {name!r}: unknown codec {codec!r} (known: {', '.join(CODECS)})")
    if out.dtype != dtype or out.shape != shape:
        raise ValueError(f"member {name!r} decodes to {out.dtype} {out.shape}, its layout says {dtype} {shape}")
    return out


def _compact_members(
    edge_index: Any, atom_ptr: Any, edge_ptr: Any, smiles: Sequence[str], meta: Mapping[str, Any],
    rows: Any, levels: Mapping[str, str], values: Mapping[str, Any], prefix: str,
) -> dict[str, np.ndarray]:
    """Members of the compact layout (see :meth:`CollatedGraphs.to_compact`)."""
    members: dict[str, np.ndarray] = {}
    specs: dict[str, Any] = {}

    def put(name: str, value: Any) -> None:
        spec, parts = encode_array(prefix + name, value)
        specs[name] = spec
        members.update(parts)

    atom_ptr, edge_ptr = _as_numpy(atom_ptr), _as_numpy(edge_ptr)
    # CSR offsets are stored as per-graph counts: small numbers that narrow to one or two bytes
    put("atom_counts", np.diff(atom_ptr))
    put("edge_counts", np.diff(edge_ptr))
    put("edge_index", edge_index)
    if rows is not None:
        put("rows", rows)
    for name in levels:
        put("field." + name, values[name])
    # SMILES as one UTF-8 blob plus byte lengths: far cheaper to read than a list of str objects
    encoded = [s.encode("utf-8", "surrogatepass") for s in smiles]
    members[prefix + "smiles_utf8"] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    put("smiles_nbytes", np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)))
    layout = {
        "format": COMPACT_FORMAT,
        "num_graphs": len(encoded),
        "ptr": {"dtype": [atom_ptr.dtype.str, edge_ptr.dtype.str], "start": [int(atom_ptr[0]), int(edge_ptr[0])]},
        "fields": dict(levels),
        "meta": dict(meta),
        "arrays": specs,
    }
    members[prefix + "layout"] = np.array(json.dumps(layout, sort_keys=True))
    return members


def _compact_decode(members: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The pieces of a :class:`CollatedGraphs` from compact members (inverse of :func:`_compact_members`)."""
    try:
        layout = json.loads(str(members[prefix + "layout"]))
    except KeyError:
        raise ValueError(f"no compact graph layout (member {prefix + 'layout'!r} is missing)") from None
    if layout.get("format") != COMPACT_FORMAT:
        raise ValueError(f"compact graph layout of format {layout.get('format')!r}, expected {COMPACT_FORMAT!r}")
    specs = layout["arrays"]

    def get(name: str) -> np.ndarray:
        return decode_array(prefix + name, specs[name], members)

    ptrs = []
    for which, dtype, start in zip(("atom_counts", "edge_counts"), layout["ptr"]["dtype"], layout["ptr"]["start"]):
        counts = get(which)
        ptr = np.empty(len(counts) + 1, dtype=np.dtype(dtype))
        ptr[0] = start
        np.cumsum(counts, out=ptr[1:])
        ptr[1:] += start
        ptrs.append(ptr)
    blob = np.asarray(members[prefix + "smiles_utf8"]).tobytes()
    ends = np.cumsum(get("smiles_nbytes")).tolist()
    starts = [0, *ends[:-1]]
    if blob.isascii():  # SMILES are ASCII: one decode, then str slices
        text = blob.decode("ascii")
        smiles = [text[a:b] for a, b in zip(starts, ends)]
    else:
        smiles = [blob[a:b].decode("utf-8", "surrogatepass") for a, b in zip(starts, ends)]
    if len(smiles) != layout["num_graphs"]:
        raise ValueError(f"compact layout says {layout['num_graphs']} graphs, its SMILES hold {len(smiles)}")
    return {
        "edge_index": get("edge_index"), "atom_ptr": ptrs[0], "edge_ptr": ptrs[1], "smiles": smiles,
        "meta": layout["meta"], "rows": get("rows") if "rows" in specs else None,
        "fields": {name: (level, get("field." + name)) for name, level in layout["fields"].items()},
    }
