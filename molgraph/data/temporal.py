"""Temporal event streams for link prediction (UCI messages, Enron e-mails, Wikipedia edits).

A :class:`TemporalEvents` is a stream of ``E`` timestamped interactions between ``N`` nodes,
sorted by time (ties keep their file order; an event's id is its position in the stream):

* ``src``, ``dst``: ``(E,)`` int64 node ids ``0 .. N-1`` (file ids relabelled densely in
  ascending order; ``node_ids[k]`` is node ``k``'s id in the file);
* ``t``: ``(E,)`` float64 seconds (UCI: unix time; Enron, Wikipedia: seconds from the first
  event), non-decreasing;
* ``edge_feat``: ``(E, d)`` float32 edge features (``d = 0``: none of the three files has any;
  CAW-N and DyGLib use zero vectors then);
* ``label``: ``(E,)`` int64 per-event label or ``None`` (Wikipedia: JODIE's state label, 1 when
  the user was banned after the edit);
* ``file_row``: ``(E,)`` int64 data row of each event in the source file.

:class:`TemporalNeighbors` is the per-node, time-sorted neighbour store in CSR form (arrays
``indptr``, ``neighbor``, ``edge_id``, ``t``) that temporal GNNs and causal anonymous walks
sample from; :meth:`TemporalNeighbors.before` answers "neighbours of ``u`` strictly before
``t``" for many queries at once by binary search. Strictly: events at the query time itself are
excluded, so a positive event never sees itself or simultaneous events (Enron has 125,235 events
at only 22,632 distinct times). :class:`EventBatcher` is a
:class:`~molgraph.data.loader.Collate` of events for :func:`~molgraph.data.loader.graph_loader`.

Self loops (``src == dst``; Enron has 16,410) are kept by default and appear once in their
node's list; ``load_temporal(..., self_loops="drop")`` removes them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np

from molgraph.data.registry import dataset_path
from molgraph.data.sources import sha256_file_cached

__all__ = ["TEMPORAL_SETS", "TemporalEvents", "TemporalNeighbors", "EventBatcher", "load_temporal"]

# name -> (column names as read, whether the file has a header row, field separator)
TEMPORAL_SETS: Mapping[str, tuple[tuple[str, ...], bool, str]] = {
    "uci": (("src", "dst", "t"), False, " "),
    "enron": (("src", "dst", "t"), False, " "),
    "wikipedia": (("u", "i", "ts", "label"), True, ","),
}


def _int_array(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ValueError(f"{name} must be a 1-D integer array, got {arr.dtype} {arr.shape}")
    return arr.astype(np.int64, copy=False)


@dataclass(frozen=True, eq=False)
class TemporalEvents:
    """A time-sorted stream of events (shapes and units in the module doc).

    Raises:
        ValueError: arrays of different lengths, times out of order or not finite, node ids
            outside ``0 .. num_nodes - 1`` (the message names the first bad event).
    """

    name: str
    src: np.ndarray
    dst: np.ndarray
    t: np.ndarray
    node_ids: np.ndarray
    edge_feat: np.ndarray | None = None
    label: np.ndarray | None = None
    file_row: np.ndarray | None = None
    provenance: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        src, dst = _int_array(self.src, "src"), _int_array(self.dst, "dst")
        t = np.asarray(self.t, dtype=np.float64)
        n = src.size
        feat = np.zeros((n, 0), dtype=np.float32) if self.edge_feat is None else np.asarray(self.edge_feat, np.float32)
        rows = np.arange(n, dtype=np.int64) if self.file_row is None else _int_array(self.file_row, "file_row")
        for what, arr in (("dst", dst), ("t", t), ("edge_feat", feat), ("file_row", rows),
                          ("label", self.label if self.label is not None else dst)):
            if len(arr) != n:
                raise ValueError(f"{self.name}: {what} has {len(arr)} rows for {n} events")
        if not np.isfinite(t).all():
            raise ValueError(f"{self.name}: event {int(np.flatnonzero(~np.isfinite(t))[0])} has a non-finite time")
        if n and (np.diff(t) < 0).any():
            k = int(np.flatnonzero(np.diff(t) < 0)[0]) + 1
            raise ValueError(f"{self.name}: events must be sorted by time; event {k} (t={t[k]}) comes after "
                             f"t={t[k - 1]}")
        n_nodes = len(self.node_ids)
        for what, arr in (("src", src), ("dst", dst)):
            bad = (arr < 0) | (arr >= n_nodes)
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise ValueError(f"{self.name}: event {k} has {what} node {int(arr[k])}, outside 0..{n_nodes - 1}")
        object.__setattr__(self, "src", src)
        object.__setattr__(self, "dst", dst)
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "edge_feat", feat)
        object.__setattr__(self, "file_row", rows)
        object.__setattr__(self, "node_ids", _int_array(self.node_ids, "node_ids"))
        if self.label is not None:
            object.__setattr__(self, "label", _int_array(self.label, "label"))

    @classmethod
    def from_arrays(cls, name: str, src: Any, dst: Any, t: Any, *, label: Any = None, edge_feat: Any = None,
                    provenance: Mapping[str, str] | None = None) -> "TemporalEvents":
        """Sort events by time (stable) and relabel the node ids densely (ascending file ids).

        ``file_row`` records each event's input position.
        """
        src_in, dst_in = _int_array(src, "src"), _int_array(dst, "dst")
        t_in = np.asarray(t, dtype=np.float64)
        if not (src_in.size == dst_in.size == t_in.size):
            raise ValueError(f"{name}: src, dst and t have {src_in.size}, {dst_in.size} and {t_in.size} rows")
        order = np.argsort(t_in, kind="stable")
        node_ids = np.unique(np.concatenate([src_in, dst_in]))
        return cls(
            name=name, src=np.searchsorted(node_ids, src_in[order]), dst=np.searchsorted(node_ids, dst_in[order]),
            t=t_in[order], node_ids=node_ids,
            edge_feat=None if edge_feat is None else np.asarray(edge_feat)[order],
            label=None if label is None else np.asarray(label)[order],
            file_row=order.astype(np.int64), provenance=dict(provenance or {}),
        )

    @property
    def num_events(self) -> int:
        return int(self.src.size)

    @property
    def num_nodes(self) -> int:
        return int(self.node_ids.size)

    @property
    def num_self_loops(self) -> int:
        return int((self.src == self.dst).sum())

    def subset(self, events: Sequence[int] | np.ndarray) -> "TemporalEvents":
        """The events at ``events`` (sorted ascending, so still in time order); nodes unchanged."""
        idx = np.sort(np.asarray(events, dtype=np.int64))
        return replace(self, src=self.src[idx], dst=self.dst[idx], t=self.t[idx], edge_feat=self.edge_feat[idx],
                       label=None if self.label is None else self.label[idx], file_row=self.file_row[idx])

    def neighbors(self, events: Sequence[int] | np.ndarray | None = None, *,
                  directed: bool = False) -> "TemporalNeighbors":
        """The neighbour store of these events (or of the event ids ``events`` only, e.g. train + val)."""
        return TemporalNeighbors.from_events(self, events, directed=directed)

    def __repr__(self) -> str:
        span = (self.t[-1] - self.t[0]) / 86400 if self.num_events else 0.0
        return (f"TemporalEvents({self.name}: {self.num_events} events, {self.num_nodes} nodes, "
                f"{span:.1f} days, edge_feat dim {self.edge_feat.shape[1]})")


class TemporalNeighbors:
    """Per-node time-sorted neighbour lists in CSR form.

    Node ``u``'s entries are ``indptr[u]:indptr[u+1]`` of the arrays ``neighbor`` (the other
    endpoint), ``edge_id`` (the event's id) and ``t`` (its time), sorted by ``(t, edge_id)``. An
    undirected store (default) lists each event under both endpoints (a self loop once); a
    directed one under its source only.

    Attributes:
        indptr: ``(N + 1,)`` int64; neighbor, edge_id: ``(M,)`` int64; t: ``(M,)`` float64.
    """

    def __init__(self, indptr: np.ndarray, neighbor: np.ndarray, edge_id: np.ndarray, t: np.ndarray,
                 directed: bool):
        self.indptr, self.neighbor, self.edge_id, self.t = indptr, neighbor, edge_id, t
        self.directed = directed
        owner = np.repeat(np.arange(indptr.size - 1, dtype=np.int64), np.diff(indptr))
        # One sorted int64 key per entry, (owner, rank of t among the distinct times): a single
        # searchsorted then finds, for many (node, time) queries at once, each node's first entry
        # at or after the query time (integer ranks: no float rounding in the key).
        self._times = np.unique(t)
        self._stride = np.int64(self._times.size + 1)
        self._key = owner * self._stride + np.searchsorted(self._times, t)

    @classmethod
    def from_arrays(cls, src: Any, dst: Any, t: Any, num_nodes: int, edge_id: Any = None, *,
                    directed: bool = False) -> "TemporalNeighbors":
        """Build from events ``(src, dst, t)`` (any order); ``edge_id`` defaults to ``0 .. E-1``."""
        src_a, dst_a = _int_array(src, "src"), _int_array(dst, "dst")
        t_a = np.asarray(t, dtype=np.float64)
        ids = np.arange(src_a.size, dtype=np.int64) if edge_id is None else _int_array(edge_id, "edge_id")
        if directed:
            owner, other, eid, times = src_a, dst_a, ids, t_a
        else:
            keep = src_a != dst_a  # a self loop is listed once, not twice, under its node
            owner = np.concatenate([src_a, dst_a[keep]])
            other = np.concatenate([dst_a, src_a[keep]])
            eid = np.concatenate([ids, ids[keep]])
            times = np.concatenate([t_a, t_a[keep]])
        if owner.size and (owner.min() < 0 or max(owner.max(), other.max()) >= num_nodes):
            raise ValueError(f"node ids must lie in 0..{num_nodes - 1}")
        order = np.lexsort((eid, times, owner))
        indptr = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=num_nodes))]).astype(np.int64)
        return cls(indptr, other[order], eid[order], times[order], directed)

    @classmethod
    def from_events(cls, events: TemporalEvents, subset: Sequence[int] | np.ndarray | None = None, *,
                    directed: bool = False) -> "TemporalNeighbors":
        """The store of ``events`` (or of the event ids ``subset``); edge ids are stream positions."""
        ids = np.arange(events.num_events, dtype=np.int64) if subset is None else np.asarray(subset, np.int64)
        return cls.from_arrays(events.src[ids], events.dst[ids], events.t[ids], events.num_nodes, ids,
                               directed=directed)

    @property
    def num_nodes(self) -> int:
        return int(self.indptr.size - 1)

    def degree(self) -> np.ndarray:
        """``(N,)`` int64 number of entries per node (all times)."""
        return np.diff(self.indptr)

    def before(self, nodes: Any, times: Any) -> tuple[np.ndarray, np.ndarray]:
        """Entry ranges of ``nodes``' neighbours strictly before ``times`` (vectorized binary search).

        Args:
            nodes: node ids, any shape; times: query times, broadcast against ``nodes``.

        Returns:
            ``(start, stop)`` int64 arrays of the broadcast shape: the entries
            ``start:stop`` of :attr:`neighbor`/:attr:`edge_id`/:attr:`t` are the node's events
            with ``t < time``, oldest first (so ``stop - 1`` is the most recent).
        """
        u, q = np.broadcast_arrays(np.asarray(nodes, dtype=np.int64), np.asarray(times, dtype=np.float64))
        if u.size and (u.min() < 0 or u.max() >= self.num_nodes):
            raise IndexError(f"node {int(u[(u < 0) | (u >= self.num_nodes)].flat[0])} out of range for "
                             f"{self.num_nodes} nodes")
        if np.isnan(q).any():
            raise ValueError("query times must not be NaN")
        rank = np.searchsorted(self._times, q, side="left")  # distinct times < q
        stop = np.searchsorted(self._key, u * self._stride + rank, side="left")
        return self.indptr[u], stop

    def neighbors_before(self, node: int, time: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(neighbor, edge_id, t)`` of ``node``'s events strictly before ``time``, oldest first (views)."""
        start, stop = self.before(node, time)
        s = slice(int(start), int(stop))
        return self.neighbor[s], self.edge_id[s], self.t[s]

    def last_k(self, nodes: Any, times: Any, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The ``k`` most recent neighbours strictly before each query (TGAT/CAW "recent" sampling).

        Returns:
            ``(neighbor, edge_id, t, mask)``, each ``(Q, k)`` for ``Q`` queries (1-D ``nodes``),
            most recent first; where a node has fewer than ``k`` earlier events the rest is
            padding: ``neighbor = edge_id = -1``, ``t = 0.0``, ``mask = False``.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        start, stop = self.before(np.asarray(nodes).reshape(-1), np.asarray(times).reshape(-1))
        pos = stop[:, None] - 1 - np.arange(k)[None, :]  # most recent first
        mask = pos >= start[:, None]
        safe = np.where(mask, pos, 0)
        return (np.where(mask, self.neighbor[safe], -1), np.where(mask, self.edge_id[safe], -1),
                np.where(mask, self.t[safe], 0.0), mask)


def load_temporal(
    name: str = "wikipedia",
    root: str | os.PathLike[str] | None = None,
    *,
    self_loops: str = "keep",
) -> TemporalEvents:
    """Load an event stream from the data root (``graphs/<name>/``), sha256-checked.

    Args:
        name: ``"uci"`` (59,835 events, 1,899 nodes), ``"enron"`` (125,235 events, 184 nodes,
            16,410 self loops) or ``"wikipedia"`` (157,474 events, 9,227 nodes: users then pages,
            with state labels).
        root: data root (else ``$MOLGRAPH_DATA``, else the user cache).
        self_loops: ``"keep"`` (the source's events) or ``"drop"`` (events with ``src == dst``).

    Raises:
        KeyError: unknown name. ValueError: bad ``self_loops`` or a malformed file.
        FileNotFoundError / ChecksumError: as :func:`~molgraph.data.registry.dataset_path`.
    """
    import pandas as pd

    key = name.strip().lower()
    if key not in TEMPORAL_SETS:
        raise KeyError(f"unknown temporal dataset {name!r}; choose from {', '.join(TEMPORAL_SETS)}")
    if self_loops not in ("keep", "drop"):
        raise ValueError(f"self_loops must be 'keep' or 'drop', got {self_loops!r}")
    columns, header, sep = TEMPORAL_SETS[key]
    path = dataset_path(key, root=root)
    frame = pd.read_csv(path, sep=sep, header=0 if header else None, names=None if header else list(columns))
    if list(frame.columns) != list(columns):
        raise ValueError(f"{path}: columns {list(frame.columns)}, expected {list(columns)}")
    src, dst, t = (frame[c].to_numpy() for c in columns[:3])
    label = frame["label"].to_numpy() if "label" in frame.columns else None
    events = TemporalEvents.from_arrays(key, src, dst, t, label=label,
                                        provenance={str(path): sha256_file_cached(path)})
    if self_loops == "drop":
        events = events.subset(np.flatnonzero(events.src != events.dst))
    return events


class EventBatcher:
    """:class:`~molgraph.data.loader.Collate` of events: event ids -> a dict of tensors.

    The batch holds ``edge_id`` (the ``(B,)`` event ids, in loader order), ``src``, ``dst``
    (int64), ``t`` (float64 seconds), ``edge_feat`` (``(B, d)`` float32) and ``label`` when the
    stream has labels. Models add negatives and neighbourhoods from a
    :class:`TemporalNeighbors` built on the events they may see.
    """

    def __init__(self, events: TemporalEvents):
        import torch

        self.events = events
        self._tensors = {"src": torch.from_numpy(events.src), "dst": torch.from_numpy(events.dst),
                         "t": torch.from_numpy(events.t), "edge_feat": torch.from_numpy(events.edge_feat)}
        if events.label is not None:
            self._tensors["label"] = torch.from_numpy(events.label)

    def __len__(self) -> int:
        return self.events.num_events

    def __call__(self, indices: np.ndarray) -> dict[str, Any]:
        import torch

        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"event {int(idx[(idx < 0) | (idx >= len(self))][0])} out of range for {len(self)} events")
        sel = torch.from_numpy(idx)
        return {"edge_id": sel, **{k: v.index_select(0, sel) for k, v in self._tensors.items()}}
