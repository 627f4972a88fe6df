"""Time-biased causal walks on a time-sorted CSR neighbour store (CAW-N's sampler, vectorized).

The store wraps a :class:`~molgraph.data.temporal.TemporalNeighbors` (per node, entries sorted
by ``(t, edge_id)``) and adds, per entry ``k`` of node ``u``'s list, in float64:

* ``log_cum[k] = logsumexp_{j <= k} (alpha * (t_j - t0))``: the running log-normaliser of the
  time-bias weights ``w_j = exp(alpha * t_j)`` over ``u``'s entries up to ``k``;
* ``log_p[k] = alpha * (t_k - t0) - log_cum[k]``: the reference's per-edge "binary" acceptance
  probability ``p_k = w_k / sum_{j<=k} w_j``, here in log space.

``t0`` is the store's earliest time: shifting all times by a constant changes neither
distribution and keeps ``alpha * (t - t0)`` small enough that float64 resolves differences
between neighbouring entries (UCI uses unix time, ~1.1e9 s). The reference computes
``exp(alpha * (t - t_max)) / cumsum(...)``, which underflows to 0/0 = NaN once
``alpha * span > ~745`` (Enron at alpha = 1e-5: ~1,137); the log-space form stays finite.

Sampling one hop from node ``u`` before a cut time ``c`` picks an entry ``k`` among those with
``t_k < c`` (indices ``start .. K``) with probability
``w_k / sum_{j <= K} w_j = exp(alpha * (t_k - c)) / sum_j exp(alpha * (t_j - c))``.
The reference draws it by scanning backwards from ``K`` and accepting with ``p_k`` (expected
cost short at large alpha, O(degree) at alpha -> 0). Here the same distribution comes from the
inverse CDF: with ``r ~ U(0, 1)``, the smallest ``k`` with ``log_cum[k] >= log r + log_cum[K]``.
``log_cum`` increases along each list, so a galloping search from the newest entry finds it in
``O(log(K - k))`` vectorized numpy steps: independent of the degree at large ``alpha`` (the pick
is among the newest entries), ``O(log degree)`` at ``alpha = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from molgraph.data.temporal import TemporalEvents, TemporalNeighbors

__all__ = ["WalkStore", "Walks", "segment_logcumsumexp"]


def segment_logcumsumexp(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Running ``logsumexp`` of ``values`` restarted at every segment ``indptr[i]:indptr[i+1]``.

    Args:
        values: ``(M,)`` float64; indptr: ``(S + 1,)`` int64 segment offsets (CSR).

    Returns:
        ``(M,)`` float64, finite wherever ``values`` is: ``np.logaddexp.accumulate`` never forms
        ``exp`` of a large number.
    """
    out = np.empty_like(values, dtype=np.float64)
    starts, stops = indptr[:-1], indptr[1:]
    # one ufunc call per non-empty node: O(N) Python steps (9,227 for Wikipedia, milliseconds),
    # O(M) work; append-only updates use :meth:`WalkStore.append_log_cum`'s one logaddexp instead
    for s, e in zip(starts[stops > starts].tolist(), stops[stops > starts].tolist()):
        np.logaddexp.accumulate(values[s:e], out=out[s:e])
    return out


@dataclass
class Walks:
    """``W`` causal walks of ``L`` hops each, from their start nodes backwards in time.

    Step 0 is the start node at the query (cut) time; step ``k >= 1`` is the node reached by
    the ``k``-th hop, through event ``edge_id[:, k]`` at time ``t[:, k]``. A walk that finds no
    earlier event stops; its later steps are padding (``node = edge_id = -1``, ``t`` = the last valid
    step's time, ``mask = False``).

    Attributes:
        node: ``(W, L + 1)`` int64; edge_id: ``(W, L + 1)`` int64 (``-1`` at step 0);
        t: ``(W, L + 1)`` float64 seconds; mask: ``(W, L + 1)`` bool (``mask[:, 0]`` is True).
    """

    node: np.ndarray
    edge_id: np.ndarray
    t: np.ndarray
    mask: np.ndarray

    @property
    def length(self) -> np.ndarray:
        """``(W,)`` int64 valid steps per walk (1 .. L + 1)."""
        return self.mask.sum(1).astype(np.int64)


class WalkStore:
    """A neighbour store with CAW-N's time-bias log-weights, and its walk sampler.

    Args:
        neighbors: the per-node time-sorted store (undirected for CAW-N: a walk may follow an
            event from either endpoint).
        alpha: time-bias rate in 1/seconds (``0`` = uniform among earlier events).
        t0: reference time subtracted before scaling (default: the store's earliest time).

    Attributes:
        log_cum, log_p: ``(M,)`` float64 per entry (see the module doc).
    """

    def __init__(self, neighbors: TemporalNeighbors, alpha: float, t0: float | None = None):
        if not np.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
        self.nbrs = neighbors
        self.alpha = float(alpha)
        self.t0 = float(neighbors.t.min()) if t0 is None and neighbors.t.size else float(t0 or 0.0)
        scaled = self.alpha * (neighbors.t - self.t0)
        self.log_cum = segment_logcumsumexp(scaled, neighbors.indptr)
        self.log_p = scaled - self.log_cum

    @classmethod
    def from_events(cls, events: TemporalEvents, alpha: float, subset: np.ndarray | None = None) -> "WalkStore":
        """The undirected store of ``events`` (or of the event ids ``subset``: train + val only, say)."""
        nbrs = TemporalNeighbors.from_events(events, subset, directed=False)
        return cls(nbrs, alpha, t0=float(events.t[0]) if events.num_events else 0.0)

    @property
    def num_nodes(self) -> int:
        return self.nbrs.num_nodes

    def append_log_cum(self, previous_log_cum: float, t: float) -> float:
        """``log_cum`` of an entry appended after one with ``previous_log_cum`` (O(1) insertion)."""
        return float(np.logaddexp(previous_log_cum, self.alpha * (t - self.t0)))

    def pick(self, start: np.ndarray, stop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One time-biased draw per range: entry indices in ``[start, stop)`` (ranges non-empty).

        ``P(k) = exp(alpha t_k) / sum_{start <= j < stop} exp(alpha t_j)`` exactly: the inverse
        CDF, the smallest ``k`` with ``log_cum[k] >= log r + log_cum[K]`` (``K = stop - 1``; see
        the module doc). The search gallops backwards from ``K`` (probes ``K - 1, K - 2, K - 4,
        ...``), then bisects the bracket: ``O(log(K - k))`` steps, so at large alpha, where the
        pick is one of the newest entries, the cost does not grow with the degree, and at
        ``alpha = 0`` it is ``O(log degree)``. All draws advance together (numpy), each round on
        the draws still searching.
        """
        start = np.asarray(start, dtype=np.int64)
        last = np.asarray(stop, dtype=np.int64) - 1
        if start.size and (last < start).any():
            raise ValueError("pick needs non-empty ranges")
        # log_cum restarts at every node's first entry, so the range [start, K] of one node
        # has normaliser log_cum[K]; the target is a fraction r of it (log r <= 0: K qualifies)
        target = np.log(rng.random(start.size)) + self.log_cum[last]
        lo, hi = start.copy(), last.copy()
        rows = np.flatnonzero(last > start)
        step = 1
        while rows.size:  # gallop: shrink [lo, hi] from the newest end
            probe = np.maximum(last[rows] - step, start[rows])
            ge = self.log_cum[probe] >= target[rows]
            hi[rows[ge]] = probe[ge]
            lo[rows[~ge]] = probe[~ge] + 1
            rows = rows[ge & (probe > start[rows])]
            step *= 2
        rows = np.flatnonzero(lo < hi)
        while rows.size:  # bisect: the smallest k in [lo, hi] with log_cum[k] >= target
            mid = (lo[rows] + hi[rows]) // 2
            left = self.log_cum[mid] >= target[rows]
            hi[rows[left]] = mid[left]
            lo[rows[~left]] = mid[~left] + 1
            rows = rows[lo[rows] < hi[rows]]
        return lo

    def walks(self, nodes: np.ndarray, times: np.ndarray, n_walks: int, length: int,
              rng: np.random.Generator) -> Walks:
        """``n_walks`` causal walks of ``length`` hops from each ``(node, time)``.

        Args:
            nodes: ``(Q,)`` start nodes; times: ``(Q,)`` cut times in seconds.
            n_walks: ``M`` walks per start; length: ``L`` hops per walk.

        Returns:
            :class:`Walks` with ``W = Q * M`` rows, query-major (rows ``q*M .. q*M + M - 1``).
            Hop 1 uses events strictly before the cut (so the query event itself and every event
            at the same time are never seen); hop ``k + 1`` events strictly before hop ``k``'s time.
        """
        nodes = np.asarray(nodes, dtype=np.int64).reshape(-1)
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        if nodes.shape != times.shape:
            raise ValueError(f"nodes {nodes.shape} and times {times.shape} differ")
        if n_walks < 1 or length < 0:
            raise ValueError(f"need n_walks >= 1 and length >= 0, got {n_walks}, {length}")
        w = nodes.size * n_walks
        node = np.full((w, length + 1), -1, dtype=np.int64)
        edge = np.full((w, length + 1), -1, dtype=np.int64)
        t = np.repeat(times, n_walks)[:, None].repeat(length + 1, axis=1)
        mask = np.zeros((w, length + 1), dtype=bool)
        node[:, 0] = np.repeat(nodes, n_walks)
        mask[:, 0] = True
        alive = np.ones(w, dtype=bool)
        for k in range(1, length + 1):
            rows = np.flatnonzero(alive)
            if rows.size == 0:
                break
            start, stop = self.nbrs.before(node[rows, k - 1], t[rows, k - 1])
            has = stop > start
            alive[rows[~has]] = False
            rows, start, stop = rows[has], start[has], stop[has]
            if rows.size == 0:
                break
            entry = self.pick(start, stop, rng)
            node[rows, k] = self.nbrs.neighbor[entry]
            edge[rows, k] = self.nbrs.edge_id[entry]
            t[rows, k] = self.nbrs.t[entry]
            mask[rows, k] = True
        # padding steps keep the last valid time so that Delta t stays >= 0 and bounded
        for k in range(1, length + 1):
            t[:, k] = np.where(mask[:, k], t[:, k], t[:, k - 1])
        return Walks(node, edge, t, mask)
