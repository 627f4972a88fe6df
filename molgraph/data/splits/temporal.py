"""Splits of temporal event streams for link prediction (CAW-N, TGAT, TGN protocol).

Events are indexed by their position in the time-sorted stream (see
:class:`molgraph.data.temporal.TemporalEvents`). Two splits:

* :func:`chronological_split` (transductive): cut the stream at time quantiles. With the default
  sizes (0.70, 0.15, 0.15) the cut times are ``val_time = quantile(t, 0.70)`` and
  ``test_time = quantile(t, 0.85)`` (numpy's linear interpolation); train holds events with
  ``t <= val_time``, val those with ``val_time < t <= test_time``, test those with
  ``t > test_time``. Ties at a cut stay together, so the realised fractions may differ from the
  requested ones (Enron has 22,632 distinct times for 125,235 events).
* :func:`inductive_split`: the same cuts, plus a set of *masked* nodes drawn at random among the
  nodes that appear after ``val_time``; its size is ``int(mask_fraction * number of distinct
  nodes)``. Train and val keep only events touching no masked node; test keeps only the test
  events touching at least one masked node, so every test event involves a node never seen in
  training. :func:`inductive_test_subsets` divides test into "new-new" (both endpoints masked)
  and "new-old" events.

A model's neighbour store must follow the same rule: build it from the train (+ val) events
only while training (:meth:`molgraph.data.temporal.TemporalNeighbors.from_events` takes an
event subset), and from all events for testing.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from molgraph.data.splits.base import Split, _check_seed, check_sizes
from molgraph.registry import SPLITS

__all__ = ["TEMPORAL_SIZES", "chronological_split", "inductive_split", "inductive_test_subsets"]

TEMPORAL_SIZES: tuple[float, float, float] = (0.70, 0.15, 0.15)


def _times(t: Any) -> np.ndarray:
    arr = np.asarray(t)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"event times must be a non-empty 1-D array, got shape {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"event times must be numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"event time {arr[~np.isfinite(arr)][0]} at event {int(np.flatnonzero(~np.isfinite(arr))[0])} "
                         "is not finite")
    return arr


def _cuts(t: np.ndarray, sizes: Sequence[float]) -> tuple[tuple[float, float, float], float, float]:
    fractions = check_sizes(sizes)
    val_time, test_time = np.quantile(t, [fractions[0], min(1.0, fractions[0] + fractions[1])])
    return fractions, float(val_time), float(test_time)


def chronological_split(t: Any, sizes: Sequence[float] = TEMPORAL_SIZES) -> Split:
    """Cut events at the time quantiles ``sizes[0]`` and ``sizes[0] + sizes[1]`` (see the module doc).

    Args:
        t: ``(E,)`` event times (any unit; only their order and quantiles matter).
        sizes: (train, val, test) fractions of the events, as time quantiles.

    Returns:
        A :class:`Split` of event indices (``method="chronological"``, ``seed=None``); ``info``
        holds ``n_rows``, ``val_time`` and ``test_time``.
    """
    times = _times(t)
    fractions, val_time, test_time = _cuts(times, sizes)
    train = np.flatnonzero(times <= val_time)
    val = np.flatnonzero((times > val_time) & (times <= test_time))
    test = np.flatnonzero(times > test_time)
    info = {"n_rows": int(times.size), "val_time": val_time, "test_time": test_time}
    return Split(train, val, test, method="chronological", seed=None, sizes=fractions, info=info)


def _node_ids(values: Any, name: str, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have one node id per event ({n}), got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer node ids, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def inductive_split(
    src: Any,
    dst: Any,
    t: Any,
    sizes: Sequence[float] = TEMPORAL_SIZES,
    mask_fraction: float = 0.1,
    seed: int = 0,
) -> Split:
    """Chronological cut plus inductive node masking (CAW-N/TGAT protocol; see the module doc).

    Args:
        src, dst: ``(E,)`` integer endpoints of each event.
        t: ``(E,)`` event times.
        sizes: (train, val, test) time-quantile fractions.
        mask_fraction: masked nodes as a fraction of *all* distinct nodes (CAW-N: 0.1).
        seed: seed of the draw of masked nodes (``numpy.random.default_rng``).

    Returns:
        A :class:`Split` of event indices (``method="inductive"``); ``info`` holds ``n_rows``,
        ``val_time``, ``test_time``, ``mask_fraction``, ``masked_nodes`` (sorted node ids),
        ``n_test_new_new``, ``n_test_new_old`` and ``n_dropped`` (events in no part: train/val
        events touching a masked node, test events touching none).

    Raises:
        ValueError: more nodes must be masked than appear after ``val_time``, or bad inputs.
    """
    times = _times(t)
    src_arr = _node_ids(src, "src", times.size)
    dst_arr = _node_ids(dst, "dst", times.size)
    if isinstance(mask_fraction, bool) or not 0.0 <= float(mask_fraction) < 1.0:
        raise ValueError(f"mask_fraction must be in [0, 1), got {mask_fraction!r}")
    seed = _check_seed(seed)
    fractions, val_time, test_time = _cuts(times, sizes)
    n_nodes = np.unique(np.concatenate([src_arr, dst_arr])).size
    n_mask = int(float(mask_fraction) * n_nodes)
    late = times > val_time
    candidates = np.unique(np.concatenate([src_arr[late], dst_arr[late]]))
    if n_mask > candidates.size:
        raise ValueError(f"inductive_split: cannot mask {n_mask} nodes ({mask_fraction} of {n_nodes}); only "
                         f"{candidates.size} nodes appear after the train cut t = {val_time}")
    masked = np.sort(np.random.default_rng(seed).choice(candidates, size=n_mask, replace=False)).astype(np.int64)
    src_new, dst_new = np.isin(src_arr, masked), np.isin(dst_arr, masked)
    touches = src_new | dst_new
    train = np.flatnonzero((times <= val_time) & ~touches)
    val = np.flatnonzero(late & (times <= test_time) & ~touches)
    test = np.flatnonzero((times > test_time) & touches)
    new_new = int((src_new[test] & dst_new[test]).sum())
    info = {
        "n_rows": int(times.size), "val_time": val_time, "test_time": test_time,
        "mask_fraction": float(mask_fraction), "masked_nodes": masked,
        "n_test_new_new": new_new, "n_test_new_old": int(test.size - new_new),
        "n_dropped": int(times.size - train.size - val.size - test.size),
    }
    return Split(train, val, test, method="inductive", seed=seed, sizes=fractions, info=info)


def inductive_test_subsets(split: Split, src: Any, dst: Any) -> dict[str, np.ndarray]:
    """Test events of an :func:`inductive_split` by kind: ``new_new`` (both endpoints masked) and ``new_old``.

    Args:
        split: an inductive split (its ``info["masked_nodes"]`` is used).
        src, dst: the ``(E,)`` endpoints the split was made from.

    Returns:
        ``{"all": test, "new_new": ..., "new_old": ...}``: sorted int64 event indices.
    """
    if "masked_nodes" not in split.info:
        raise ValueError(f"split method {split.method!r} has no masked nodes; make it with inductive_split")
    masked = np.asarray(split.info["masked_nodes"], dtype=np.int64)
    src_arr, dst_arr = np.asarray(src), np.asarray(dst)
    both = np.isin(src_arr[split.test], masked) & np.isin(dst_arr[split.test], masked)
    return {"all": split.test, "new_new": split.test[both], "new_old": split.test[~both]}


SPLITS.register("chronological", chronological_split,
                help="temporal events: cut at time quantiles (default 70/85 %), transductive")
SPLITS.register("inductive", inductive_split,
                help="temporal events: chronological cut, nodes seen after the train cut masked from train/val")
