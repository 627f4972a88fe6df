"""CAW-N's time-biased causal walk sampler: exact pick distribution, causality, large alpha * span."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from molgraph.data.temporal import TemporalEvents, TemporalNeighbors
from molgraph.methods.caw.store import WalkStore, segment_logcumsumexp


def _star(times: np.ndarray) -> TemporalNeighbors:
    """Node 0 with one event to each of nodes 1..n at ``times``."""
    n = times.size
    return TemporalNeighbors.from_arrays(np.zeros(n, int), np.arange(1, n + 1), times, n + 1)


def test_log_weights_exact_small_case():
    store = WalkStore(_star(np.array([0.0, 1.0, 1.0, 3.0])), alpha=0.5)
    a = 0.5 * np.array([0.0, 1.0, 1.0, 3.0])
    seg = slice(store.nbrs.indptr[0], store.nbrs.indptr[1])
    expected_cum = np.log(np.cumsum(np.exp(a)))
    np.testing.assert_allclose(store.log_cum[seg], expected_cum, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.exp(store.log_p[seg]), np.exp(a) / np.cumsum(np.exp(a)), atol=1e-12)
    # the O(1) append agrees with the batch build
    assert store.append_log_cum(store.log_cum[seg][2], 3.0) == pytest.approx(store.log_cum[seg][3], abs=1e-12)
    # a leaf's only entry has p = 1
    leaf = slice(store.nbrs.indptr[1], store.nbrs.indptr[2])
    np.testing.assert_allclose(store.log_p[leaf], 0.0, atol=1e-12)


def test_segment_logcumsumexp_restarts_per_segment():
    v = np.array([1.0, 2.0, 0.0, 5.0, 5.0])
    out = segment_logcumsumexp(v, np.array([0, 2, 2, 5]))
    np.testing.assert_allclose(out, [1.0, np.logaddexp(1, 2), 0.0, np.logaddexp(0, 5), np.log(np.exp(0) + 2 * np.exp(5))])


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_pick_frequencies_match_softmax_chi_square(alpha):
    times = np.array([0.0, 1.0, 2.0, 2.0, 3.5, 4.0, 6.0, 9.0])
    store = WalkStore(_star(times), alpha=alpha)
    cut = 7.0  # the entry at t = 9 is not eligible
    walks = store.walks(np.zeros(40_000, int), np.full(40_000, cut), n_walks=1, length=1,
                        rng=np.random.default_rng(1))
    eligible = times < cut
    probs = np.exp(alpha * times[eligible])
    probs /= probs.sum()
    counts = np.bincount(walks.node[:, 1] - 1, minlength=times.size)
    assert counts[~eligible].sum() == 0
    chi2, p = stats.chisquare(counts[eligible], probs * counts.sum())
    assert p > 1e-3, (chi2, counts, probs)


def test_pick_binary_search_matches_inverse_cdf_exactly():
    times = np.array([0.0, 1.0, 1.0, 2.0, 5.0])
    store = WalkStore(_star(times), alpha=0.7)
    cdf = np.cumsum(np.exp(0.7 * times))
    cdf /= cdf[-1]
    r = np.random.default_rng(5).random(1000)
    got = store.pick(np.zeros(1000, int), np.full(1000, 5), np.random.default_rng(5))
    np.testing.assert_array_equal(got, np.searchsorted(cdf, r, side="left"))


def _random_stream(seed: int, n_events: int = 3000, n_nodes: int = 60, span: float = 1e8, ties: int = 200):
    rng = np.random.default_rng(seed)
    src, dst = rng.integers(0, n_nodes, n_events), rng.integers(0, n_nodes, n_events)
    t = np.sort(rng.choice(np.sort(rng.uniform(0, span, ties)), n_events))  # many simultaneous events, as Enron
    return TemporalEvents.from_arrays("toy", src, dst, t)


def test_no_walk_uses_an_event_at_or_after_its_cut():
    ev = _random_stream(0)
    store = WalkStore.from_events(ev, alpha=1e-6)
    q = np.arange(1000, 3000, 7)
    for nodes in (ev.src[q], ev.dst[q]):
        w = store.walks(nodes, ev.t[q], n_walks=16, length=3, rng=np.random.default_rng(0))
        cut = np.repeat(ev.t[q], 16)
        valid = w.mask[:, 1:]
        hop_t = w.t[:, 1:]
        prev_t = np.concatenate([cut[:, None], w.t[:, 1:-1]], axis=1)
        assert (hop_t[valid] < prev_t[valid]).all()  # strictly causal, hop by hop
        eids = w.edge_id[:, 1:][valid]
        assert (ev.t[eids] < np.broadcast_to(cut[:, None], valid.shape)[valid]).all()
        query_ids = np.repeat(q, 16)[:, None].repeat(3, 1)[valid]
        assert not (eids == query_ids).any()  # the query event itself is never walked
        # each hop follows an event that touches the previous node and lands on its other end
        prev_node = w.node[:, :-1][valid]
        nxt = w.node[:, 1:][valid]
        ok = ((ev.src[eids] == prev_node) & (ev.dst[eids] == nxt)) | ((ev.dst[eids] == prev_node) & (ev.src[eids] == nxt))
        assert ok.all()
        # a walk stops only when no earlier event exists, and padding stays padding
        assert (~w.mask[:, 2:] | w.mask[:, 1:-1]).all()


def test_large_alpha_times_span_stays_finite_and_greedy():
    ev = _random_stream(1, span=1.14e8)  # Enron's span in seconds
    store = WalkStore.from_events(ev, alpha=1e-5)  # alpha * span ~ 1,140 > 745: the reference's NaN regime
    assert np.isfinite(store.log_cum).all() and np.isfinite(store.log_p).all()
    assert (store.log_p <= 1e-12).all()
    q = np.arange(2000, 3000)
    w = store.walks(ev.src[q], ev.t[q], n_walks=8, length=1, rng=np.random.default_rng(2))
    # at this alpha the most recent earlier time wins nearly always (mean gap between times ~5.7e5 s)
    start, stop = store.nbrs.before(np.repeat(ev.src[q], 8), np.repeat(ev.t[q], 8))
    has = stop > start
    latest = store.nbrs.t[np.maximum(stop - 1, 0)]
    assert (w.t[has, 1] <= latest[has]).all() and (w.t[has, 1] == latest[has]).mean() > 0.9
    # ...and an alpha large enough to overflow exp() in float64 outright
    huge = WalkStore.from_events(ev, alpha=1e-2)
    assert np.isfinite(huge.log_cum).all()
    w2 = huge.walks(ev.src[q], ev.t[q], n_walks=2, length=2, rng=np.random.default_rng(3))
    assert np.isfinite(w2.t).all()


def test_isolated_start_gives_single_step_walks():
    ev = TemporalEvents.from_arrays("toy", [0, 1], [1, 2], [1.0, 2.0])
    store = WalkStore.from_events(ev, alpha=0.1)
    w = store.walks(np.array([0, 2]), np.array([1.0, 2.0]), n_walks=3, length=2, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(w.length, [1, 1, 1, 1, 1, 1])  # nothing strictly before the cut
    w = store.walks(np.array([2]), np.array([5.0]), n_walks=2, length=2, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(w.node, [[2, 1, 0], [2, 1, 0]])
    np.testing.assert_array_equal(w.t, [[5.0, 2.0, 1.0]] * 2)


@pytest.mark.parametrize("alpha", [0.0, 1e-6, 1e-4, 1e-2])
def test_galloping_pick_equals_brute_force_inverse_cdf_on_many_ranges(alpha):
    ev = _random_stream(4, n_events=4000, n_nodes=30, span=1e6, ties=500)
    store = WalkStore.from_events(ev, alpha=alpha)
    rng = np.random.default_rng(9)
    nodes = rng.integers(0, 30, 3000)
    start, stop = store.nbrs.before(nodes, rng.uniform(0, 1.1e6, 3000))
    keep = stop > start
    start, stop = start[keep], stop[keep]
    got = store.pick(start, stop, np.random.default_rng(11))
    r = np.random.default_rng(11).random(start.size)
    for i in range(start.size):
        w = np.exp(alpha * (store.nbrs.t[start[i]:stop[i]] - store.nbrs.t[start[i]:stop[i]].max()))
        cdf = np.cumsum(w) / w.sum()
        # tolerance-free where r is not within rounding of a CDF step
        k = int(np.searchsorted(cdf, r[i], side="left"))
        if np.min(np.abs(cdf - r[i])) > 1e-9:
            assert got[i] == start[i] + k, (i, alpha)


def test_enron_store_is_finite_where_the_reference_formula_is_nan(data_root):
    from molgraph.data.temporal import load_temporal

    ev = load_temporal("enron")
    store = WalkStore.from_events(ev, alpha=1e-5)  # alpha * span = 1,137
    assert np.isfinite(store.log_cum).all() and np.isfinite(store.log_p).all()
    a, nan = 1e-5 * store.nbrs.t, 0
    with np.errstate(all="ignore"):
        for u in range(ev.num_nodes):  # the reference: exp(alpha (t - t_max)) / cumsum(...)
            seg = slice(store.nbrs.indptr[u], store.nbrs.indptr[u + 1])
            w = np.exp(a[seg] - a[seg].max(initial=0.0))
            nan += int(np.isnan(w / np.cumsum(w)).sum())
    assert nan > 1000  # 3,475 of 234,060 entries measured
