"""Batches straight from stored data, through one ``DataLoader`` path for every kind of data.

**The collate protocol** (:class:`Collate`). :func:`graph_loader` accepts any object with

* ``__call__(indices: np.ndarray) -> batch``: the batch of the items at ``indices`` (a 1-D
  int64 array, in loader order), built with vectorized gathers;
* ``__len__() -> int``: how many items it serves (valid indices are ``0 .. len - 1``).

Graphs (:class:`GraphBatcher`), nodes of one large graph
(:class:`molgraph.data.node_graph.NodeBatcher`) and temporal event queries
(:class:`molgraph.data.temporal.EventBatcher`) all implement it, so they share the sampler,
shuffling, distributed sharding and worker handling of :func:`graph_loader`. The loader hands
each batch's indices to the collate object as one array (:meth:`IndexDataset.__getitems__`), so
no Python code runs per item.

**Graph batches.** PyG's ``Batch.from_data_list`` builds one ``Data`` per molecule and
concatenates them field by field in Python; for small molecules that dominates a training step
on CPU. :class:`GraphBatcher` computes node and edge positions with numpy from the graphs'
offsets, then does one ``index_select`` per field.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torch_geometric.data import Batch

from molgraph.data.collated import CollatedGraphs, ranges

__all__ = ["Collate", "GraphBatch", "GraphBatcher", "IndexDataset", "graph_loader"]

_ranges = ranges  # the old private name, kept for callers that imported it


@runtime_checkable
class Collate(Protocol):
    """What :func:`graph_loader` batches with: indices in, one batch out (see the module doc).

    ``__call__`` receives a 1-D int64 ``np.ndarray`` of item indices (every one in
    ``[0, len(self))``) and returns the batch; ``__len__`` is the number of items.
    """

    def __call__(self, indices: np.ndarray) -> Any: ...

    def __len__(self) -> int: ...


class GraphBatcher:
    """:class:`Collate` of graphs: a list of graph indices -> a PyG ``Batch`` with every field.

    Args:
        graphs: the stored graphs.
        y: ``(num_graphs, num_tasks)`` targets (NaN = missing), or ``None``.
        extra: ``(num_graphs, extra_dim)`` float molecule-level features, or ``None``.
        fields: names of the stored fields to gather (default: all of ``graphs.fields``).

    The batch has ``edge_index`` (offset to batch numbering), ``batch`` (graph of each node,
    ``(N,)``), ``ptr`` (``(B + 1,)`` node offsets), ``index`` (the graphs' indices, ``(B,)``),
    every selected field gathered by its level (node fields ``(N, ...)``, edge fields
    ``(E, ...)``, graph fields ``(B, ...)``) and ``y``/``extra`` when given. Each graph's edges
    stay contiguous and in stored order, so for featurized molecules (even edge count, reverse
    of edge ``e`` at ``e ^ 1``) the reverse of edge ``e`` is still ``e ^ 1``. The batch also
    records PyG's slice and increment tables, so ``batch.get_example(k)`` and
    ``batch.to_data_list()`` give back the graphs.
    """

    def __init__(
        self,
        graphs: CollatedGraphs,
        y: torch.Tensor | None = None,
        extra: torch.Tensor | None = None,
        *,
        fields: Sequence[str] | None = None,
    ):
        n = len(graphs)
        for name, t in (("y", y), ("extra", extra)):
            if t is not None and t.shape[0] != n:
                raise ValueError(f"{name} has {t.shape[0]} rows for {n} graphs")
            if t is not None and name in graphs.fields:
                raise ValueError(f"{name} is given, but the graphs already have a field {name!r}")
        names = tuple(graphs.fields) if fields is None else tuple(fields)
        for name in names:
            graphs.field(name)  # KeyError naming the missing field
        self.graphs, self.y, self.extra = graphs, y, extra
        self.fields = names
        # level of every per-graph-sliced key of a batch (for GraphBatch's slice tables)
        self._levels = {"index": "graph", **{name: graphs.fields[name] for name in names}, "y": "graph",
                        "extra": "graph"}

    def __len__(self) -> int:
        return len(self.graphs)

    def __call__(self, indices: Sequence[int] | np.ndarray) -> Batch:
        g = self.graphs
        sel = g.select(indices)
        batch_size = len(sel.index)
        shift = torch.from_numpy(np.repeat(sel.node_ptr[:-1], sel.num_edges))
        values: dict[str, Any] = {
            "edge_index": g.edge_index.index_select(1, sel.edge_sel) + shift,
            **{name: g.gather(name, sel) for name in self.fields},
            "batch": torch.from_numpy(np.repeat(np.arange(batch_size, dtype=np.int64), sel.num_nodes)),
            "ptr": torch.from_numpy(sel.node_ptr),
            "index": torch.from_numpy(sel.index),
        }
        t_idx = values["index"]
        if self.y is not None:
            values["y"] = self.y.index_select(0, t_idx)
        if self.extra is not None:
            values["extra"] = self.extra.index_select(0, t_idx)
        batch = _new_batch(values)
        batch.__dict__["_graph_levels"] = (self._levels, sel.edge_ptr)
        return batch


class GraphBatch(Batch):
    """The PyG ``Batch`` :class:`GraphBatcher` returns.

    A plain ``Batch`` in use; its slice and increment tables (what ``get_example`` and
    ``to_data_list`` read) are built on first access from the fields' levels, instead of for
    every batch (building them cost about 15 % of a small-molecule batch).
    """

    def _graph_tables(self) -> tuple[dict[str, Any], dict[str, Any]]:
        tables = self.__dict__.get("_graph_tables_built")
        if tables is None:
            levels, edge_ptr = self.__dict__["_graph_levels"]
            node_slices = self.ptr
            slices = {"node": node_slices, "edge": torch.from_numpy(edge_ptr),
                      "graph": torch.arange(node_slices.numel())}
            slice_dict = {"edge_index": slices["edge"], **{k: slices[lv] for k, lv in levels.items() if k in self}}
            inc_dict: dict[str, Any] = dict.fromkeys(slice_dict)
            inc_dict["edge_index"] = node_slices[:-1]  # edge_index was offset by each graph's first node
            tables = self.__dict__["_graph_tables_built"] = (slice_dict, inc_dict)
        return tables

    @property
    def _slice_dict(self) -> dict[str, Any]:
        return self.__dict__.get("_slice_dict_set") or self._graph_tables()[0]

    @_slice_dict.setter
    def _slice_dict(self, value: dict[str, Any]) -> None:
        self.__dict__["_slice_dict_set"] = value

    @property
    def _inc_dict(self) -> dict[str, Any]:
        return self.__dict__.get("_inc_dict_set") or self._graph_tables()[1]

    @_inc_dict.setter
    def _inc_dict(self, value: dict[str, Any]) -> None:
        self.__dict__["_inc_dict_set"] = value


_BATCH_CLASS: type | None = None


def _new_batch(values: dict[str, Any]) -> GraphBatch:
    """``GraphBatch(**values)`` without PyG's per-call class resolution.

    ``Batch(...)`` goes through a metaclass that resolves the batch class and inspects
    ``Data.__init__``'s signature on every call (about 25 us, as much as gathering a small batch);
    the class it resolves is always the same, so it is resolved once and instantiated directly.
    """
    global _BATCH_CLASS
    if _BATCH_CLASS is None:
        _BATCH_CLASS = type(GraphBatch())
    return type.__call__(_BATCH_CLASS, **values)


class IndexDataset(Dataset):
    """Positions ``indices[0..n)``: the loader yields item indices, the collate object gathers them.

    :meth:`__getitems__` (which ``DataLoader`` calls once per batch when it exists) returns a
    batch's indices as one int64 array, so no Python code runs per item.
    """

    def __init__(self, indices: Sequence[int]):
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> int:
        return int(self.indices[i])

    def __getitems__(self, positions: list[int]) -> np.ndarray:
        return self.indices[np.asarray(positions, dtype=np.int64)]


class _ArrayCollate:
    """``collate_fn`` handing a batch's indices to a :class:`Collate` as an int64 array (picklable)."""

    def __init__(self, collate: Collate):
        self.collate = collate

    def __call__(self, items: np.ndarray | Sequence[int]) -> Any:
        return self.collate(np.asarray(items, dtype=np.int64))


def graph_loader(
    collate: Collate,
    indices: Sequence[int] | np.ndarray | None = None,
    *,
    batch_size: int = 64,
    sampler: Sampler | None = None,
    shuffle: bool = False,
    num_workers: int = 0,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """A ``DataLoader`` over ``indices`` yielding ``collate(batch_indices)``.

    Args:
        collate: any :class:`Collate` (a :class:`GraphBatcher`, a node or event batcher, ...).
        indices: item indices to iterate (default: all ``range(len(collate))``).
        batch_size: items per batch.
        sampler: draws positions ``0 .. len(indices) - 1`` (e.g. a ``DistributedSampler``);
            overrides ``shuffle``.
        shuffle: reshuffle every epoch (with ``generator``, reproducibly).
        num_workers, generator, drop_last: as for ``DataLoader``.

    Raises:
        ValueError: ``batch_size < 1``, or an index outside ``[0, len(collate))`` (named).
        TypeError: ``collate`` is not callable or has no length.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not callable(collate) or not hasattr(collate, "__len__"):
        raise TypeError(f"collate must be callable with a length (the Collate protocol), got {type(collate).__name__}")
    n = len(collate)
    positions = np.arange(n, dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
    if positions.size and (positions.min() < 0 or positions.max() >= n):
        bad = int(positions[(positions < 0) | (positions >= n)][0])
        raise ValueError(f"index {bad} is out of range for {type(collate).__name__} of {n} items")
    return DataLoader(
        IndexDataset(positions),
        batch_size=batch_size,
        sampler=sampler,
        shuffle=shuffle if sampler is None else False,
        num_workers=num_workers,
        collate_fn=_ArrayCollate(collate),
        generator=generator,
        drop_last=drop_last,
        persistent_workers=num_workers > 0,
    )
