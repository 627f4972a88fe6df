"""Collective robustness certificates: receptive fields, Pareto points, the LP/MILP certificate.

The soundness checks compare against brute force: every integer allocation of a small budget on
graphs of at most 8 nodes, and a real two-layer GCN whose output must not move when an edge outside
a node's receptive field is deleted. The Cora-ML reproduction of the shared notes' stage 1 is
marked slow.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
import scipy.sparse as sp

from molgraph.methods.certificates.collective import (
    PerturbationType,
    attribute_perturbation,
    certified_ratio_curve,
    collective_certificate,
    edge_deletion_perturbation,
    naive_certificate,
    pareto_points,
)
from molgraph.methods.certificates.receptive import (
    edge_receptive_fields,
    incidence_matrix,
    node_receptive_fields,
    undirected_edges,
)

# ----------------------------------------------------------------------------------- helpers


def _random_graph(rng: np.random.Generator, n: int, extra: int) -> sp.csr_matrix:
    """A connected graph: a random tree plus ``extra`` random edges (long paths, some cycles)."""
    a = np.zeros((n, n), dtype=np.float32)
    for v in range(1, n):
        u = int(rng.integers(0, v))
        a[u, v] = a[v, u] = 1
    for _ in range(extra):
        u, v = rng.choice(n, size=2, replace=False)
        a[u, v] = a[v, u] = 1
    return sp.csr_matrix(a)


def _dense_gnn(adj: np.ndarray, x: np.ndarray, weights: list[np.ndarray], normalized: bool, act) -> np.ndarray:
    """Dense GCN (``D^-1/2 (A + I) D^-1/2``, as GCNConv) or sum aggregation over ``A + I``."""
    a = adj + np.eye(adj.shape[0])
    if normalized:
        d = a.sum(axis=1)
        a = a / np.sqrt(np.outer(d, d))
    h = x
    for i, w in enumerate(weights):
        h = a @ h @ w
        if i < len(weights) - 1:
            h = act(h)
    return h


def _monotone_grids(rng: np.random.Generator, n: int, sizes: tuple[int, int], p_free: float = 0.1) -> np.ndarray:
    """Random down-closed (monotone) bool grids ``(n, sizes[0], sizes[1])`` as staircases."""
    a_size, d_size = sizes
    grid = np.zeros((n, a_size, d_size), dtype=bool)
    for v in range(n):
        if rng.random() < p_free:
            continue  # not certified even at the origin
        top = int(rng.integers(0, d_size))  # certified deletions at 0 additions: 0..top
        for a in range(a_size):
            grid[v, a, : top + 1] = True
            top -= int(rng.integers(0, 3))
            if top < 0:
                break
    return grid


def _allocations(n_units: int, budget: int):
    """Every integer vector of length ``n_units`` with sum <= budget."""
    for k in range(budget + 1):
        for combo in itertools.combinations_with_replacement(range(n_units), k):
            yield np.bincount(np.asarray(combo, dtype=np.int64), minlength=n_units)


def _edge_sets(n_edges: int, budget: int):
    for k in range(budget + 1):
        for combo in itertools.combinations(range(n_edges), k):
            v = np.zeros(n_edges, dtype=np.int64)
            v[list(combo)] = 1
            yield v


def _min_attackers(attr_alloc: np.ndarray, edge_alloc: np.ndarray, edges: np.ndarray) -> int:
    """Fewest nodes that can carry out an allocation: every perturbed node, plus a vertex cover of
    the deleted edges not already touching one (brute force; at most a few edges)."""
    s = set(np.flatnonzero(attr_alloc).tolist())
    left = [tuple(edges[:, e]) for e in np.flatnonzero(edge_alloc) if not (set(edges[:, e]) & s)]
    cand = sorted({v for e in left for v in e})
    for k in range(len(cand) + 1):
        for extra in itertools.combinations(cand, k):
            if all(set(e) & set(extra) for e in left):
                return len(s) + k
    raise AssertionError("unreachable")


def _exhaustive_max(grid: np.ndarray, attr_mask: np.ndarray, edge_mask: np.ndarray, edges: np.ndarray,
                    budgets: tuple[int, int], targets: np.ndarray, local: tuple[int, int] | None = None,
                    n_attackers: int | None = None) -> int:
    """Most targets any integer attack can flip (perceived size outside the certified grid)."""
    n = grid.shape[0]
    padded = np.pad(grid, [(0, 0), (0, 1), (0, 1)], constant_values=False)
    sizes = np.asarray(grid.shape[1:])
    inc = incidence_matrix(edges, n).toarray().astype(np.int64)
    attrs = [a for a in _allocations(n, budgets[0]) if local is None or a.max(initial=0) <= local[0]]
    dels = [e for e in _edge_sets(edges.shape[1], budgets[1]) if local is None or (inc @ e).max(initial=0) <= local[1]]
    pa = np.stack(attrs) @ attr_mask.T  # (Ma, N) perceived additions
    pe = np.stack(dels) @ edge_mask.T  # (Me, N) perceived deletions
    ia = np.minimum(pa, sizes[0])[:, None, :]
    ie = np.minimum(pe, sizes[1])[None, :, :]
    attacked = ~padded[np.arange(n)[None, None, :], ia, ie]  # (Ma, Me, N)
    counts = attacked[:, :, targets].sum(axis=2)
    if n_attackers is None:
        return int(counts.max())
    for flat in np.argsort(-counts, axis=None, kind="stable"):  # best attack first
        i, j = np.unravel_index(flat, counts.shape)
        if _min_attackers(attrs[i], dels[j], edges) <= n_attackers:
            return int(counts[i, j])
    raise AssertionError("the empty attack needs no attacker")


# ---------------------------------------------------------------------------- receptive fields


@pytest.mark.parametrize("seed", range(4))
def test_node_fields_equal_dense_powers(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 25
    dense = (rng.random((n, n)) < 0.08).astype(float)
    dense = np.triu(dense, 1)
    dense = dense + dense.T
    for layers in range(5):
        expected = np.linalg.matrix_power(np.eye(n) + dense, layers) > 0
        got = node_receptive_fields(sp.csr_matrix(dense), layers)
        assert got.dtype == bool and got.shape == (n, n)
        np.testing.assert_array_equal(got.toarray(), expected)


def test_edge_list_and_incidence() -> None:
    adj = sp.csr_matrix(np.array([[0, 1, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]]))  # one direction is enough
    edges = undirected_edges(adj)
    np.testing.assert_array_equal(edges, [[0, 0, 1], [1, 2, 3]])
    inc = incidence_matrix(edges, 4).toarray()
    np.testing.assert_array_equal(inc.sum(axis=0), [2, 2, 2])
    np.testing.assert_array_equal(inc.sum(axis=1), [2, 2, 1, 1])


@pytest.mark.parametrize("seed", range(3))
def test_edge_fields_gcn_sound_and_tight(seed: int) -> None:
    """Deleting an edge outside a node's field leaves a real 2-layer GCN's output there bit-identical;
    every edge inside the field moves it (the rule is exact, not just an over-approximation)."""
    rng = np.random.default_rng(100 + seed)
    n, layers = 14, 2
    adj = _random_graph(rng, n, extra=4)
    dense = adj.toarray().astype(np.float64)
    edges = undirected_edges(adj)
    x = rng.normal(size=(n, 5))
    weights = [rng.normal(size=(5, 8)), rng.normal(size=(8, 3))]
    fields = edge_receptive_fields(adj, layers, edges).toarray()
    reference_rule = edge_receptive_fields(adj, layers, edges, degree_normalized=False).toarray()
    for act in (lambda h: np.maximum(h, 0.0), np.tanh):  # ReLU: soundness; tanh: tightness as well
        out = _dense_gnn(dense, x, weights, True, act)
        missed_by_reference = 0
        for e in range(edges.shape[1]):
            cut = dense.copy()
            u, v = edges[:, e]
            cut[u, v] = cut[v, u] = 0
            moved = np.any(_dense_gnn(cut, x, weights, True, act) != out, axis=1)
            assert not np.any(moved & ~fields[:, e]), f"edge {e}: output moved outside its receptive field"
            if act is np.tanh:
                np.testing.assert_array_equal(moved, fields[:, e])
            missed_by_reference += int(np.sum(moved & ~reference_rule[:, e]))
        # the computation-graph rule (endpoint within L-1 hops) misses the degree-normalisation effect
        assert missed_by_reference > 0


def test_edge_fields_sum_aggregation_use_computation_graph() -> None:
    rng = np.random.default_rng(7)
    n, layers = 14, 2
    adj = _random_graph(rng, n, extra=4)
    dense = adj.toarray().astype(np.float64)
    edges = undirected_edges(adj)
    x = rng.normal(size=(n, 4))
    weights = [rng.normal(size=(4, 8)), rng.normal(size=(8, 2))]
    fields = edge_receptive_fields(adj, layers, edges, degree_normalized=False).toarray()
    out = _dense_gnn(dense, x, weights, False, np.tanh)
    for e in range(edges.shape[1]):
        cut = dense.copy()
        u, v = edges[:, e]
        cut[u, v] = cut[v, u] = 0
        moved = np.any(_dense_gnn(cut, x, weights, False, np.tanh) != out, axis=1)
        np.testing.assert_array_equal(moved, fields[:, e])
    assert edge_receptive_fields(adj, 0, edges).nnz == 0
    # the GCN rule is a superset of the computation-graph rule
    gcn = edge_receptive_fields(adj, layers, edges).toarray()
    assert np.all(gcn >= fields) and gcn.sum() > fields.sum()


# ------------------------------------------------------------------------------- Pareto points


def test_pareto_points_hand_made() -> None:
    t, f = True, False
    grid = np.array([
        [[t, t, t, t], [t, t, f, f], [f, f, f, f]],  # staircase
        [[f, f, f, f], [f, f, f, f], [f, f, f, f]],  # attacked for free
        [[t, t, t, t], [t, t, t, t], [t, t, t, t]],  # certified on the whole grid: points past the edge
        [[t, t, f, t], [f, f, f, f], [f, f, f, f]],  # not monotone: the first gap counts
    ])
    pts = pareto_points(grid)
    assert len(pts) == 4 and all(p.dtype == np.int64 for p in pts)
    np.testing.assert_array_equal(pts[0], [[0, 4], [1, 2], [2, 0]])
    np.testing.assert_array_equal(pts[1], [[0, 0]])
    np.testing.assert_array_equal(pts[2], [[0, 4], [3, 0]])
    np.testing.assert_array_equal(pts[3], [[0, 2], [1, 0]])
    one_d = pareto_points(np.array([[t, t, t, f, f], [t, t, t, t, t], [f, t, t, t, t]]))
    assert [p.tolist() for p in one_d] == [[[3]], [[5]], [[0]]]


def test_naive_certificate_counts_grid_edge_as_uncertified() -> None:
    grid = np.array([[True, True, True], [True, False, False], [False, False, False]])
    assert naive_certificate(grid, [0]) == 2
    assert naive_certificate(grid, [2]) == 1
    assert naive_certificate(grid, [3]) == 0  # past the grid: not certified
    assert naive_certificate(grid, [0], targets=[1, 2, 2]) == 1


# ------------------------------------------------------------------------ collective certificate


def test_full_fields_collective_equals_naive() -> None:
    """When every node perceives every unit, the adversary loses nothing by being one: collective
    = naive (LP and MILP)."""
    rng = np.random.default_rng(3)
    n = 30
    grid = _monotone_grids(rng, n, (4, 6))
    full = sp.csr_matrix(np.ones((n, n), dtype=bool))
    for ba, bd in [(0, 0), (1, 2), (2, 5), (3, 6), (5, 1)]:
        types = [attribute_perturbation("attr_add", full, ba), attribute_perturbation("attr_del", full, bd)]
        naive = naive_certificate(grid, [ba, bd])
        for mode in ("lp", "milp"):
            res = collective_certificate(grid, types, mode=mode)
            assert res.certified == naive == res.naive_certified, (ba, bd, mode)


def test_isolated_nodes_collective_is_a_knapsack() -> None:
    """With self-only fields the adversary must pay each node's cheapest attack from one budget:
    the worst case attacks the cheapest nodes first (and the LP's floor finds exactly that)."""
    rng = np.random.default_rng(5)
    n, size = 40, 8
    first_gap = rng.integers(0, size + 1, size=n)  # certified for radii < first_gap
    grid = np.arange(size)[None, :] < first_gap[:, None]
    eye = sp.identity(n, dtype=bool, format="csr")
    costs = np.sort(first_gap)
    for budget in [0, 1, 3, 7, 12, 30, 200]:
        attacked = int(np.searchsorted(np.cumsum(costs), budget, side="right"))
        for mode in ("lp", "milp"):
            res = collective_certificate(grid, [attribute_perturbation("attr_del", eye, budget)], mode=mode)
            assert res.certified == n - attacked, (budget, mode)
            assert res.certified >= res.naive_certified


@pytest.mark.parametrize("seed", range(12))
def test_exhaustive_attack_soundness(seed: int) -> None:
    """LP floor >= true worst case; the MILP (no limit) finds it exactly, with and without local
    budgets and a limited number of attacker nodes."""
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(5, 9))
    adj = _random_graph(rng, n, extra=int(rng.integers(0, 3)))
    edges = undirected_edges(adj)
    layers = int(rng.integers(1, 3))
    nf = node_receptive_fields(adj, layers)
    ef = edge_receptive_fields(adj, layers, edges)
    grid = _monotone_grids(rng, n, (3, 3))
    budgets = (int(rng.integers(0, 4)), int(rng.integers(0, 3)))
    targets = np.sort(rng.choice(n, size=int(rng.integers(3, n + 1)), replace=False))
    variants = [dict(), dict(local=(1, 1)), dict(local=(2, 1), n_attackers=1), dict(n_attackers=2)]
    for var in variants:
        local = var.get("local")
        types = [attribute_perturbation("attr_add", nf, budgets[0], None if local is None else local[0]),
                 edge_deletion_perturbation(ef, edges, budgets[1], None if local is None else local[1])]
        truth = _exhaustive_max(grid, nf.toarray().astype(np.int64), ef.toarray().astype(np.int64), edges, budgets,
                                targets, local, var.get("n_attackers"))
        lp = collective_certificate(grid, types, targets, "lp", n_attackers=var.get("n_attackers"))
        mi = collective_certificate(grid, types, targets, "milp", n_attackers=var.get("n_attackers"))
        assert lp.status in ("optimal", "trivial") and mi.status in ("optimal", "trivial")
        assert lp.certified <= len(targets) - truth, (var, lp, truth)
        assert np.floor(lp.attacked_bound + 1e-6) >= truth
        assert mi.certified == len(targets) - truth, (var, mi, truth)
        if mi.status == "optimal":
            assert mi.attacked_incumbent == truth
        assert lp.naive_certified <= lp.certified <= mi.certified


def test_certified_count_monotone_in_budget() -> None:
    rng = np.random.default_rng(11)
    n = 60
    adj = _random_graph(rng, n, extra=25)
    edges = undirected_edges(adj)
    nf, ef = node_receptive_fields(adj, 2), edge_receptive_fields(adj, 2, edges)
    grid = _monotone_grids(rng, n, (4, 6), p_free=0.05)
    types = [attribute_perturbation("attr_add", nf, 0), edge_deletion_perturbation(ef, edges, 0)]
    previous = n + 1
    for ba, bd in [(0, 0), (0, 1), (1, 1), (1, 3), (2, 3), (2, 5), (3, 8), (6, 12), (10, 40)]:
        res = collective_certificate(grid, [types[0].with_budget(ba), types[1].with_budget(bd)])
        assert res.certified <= previous and res.certified >= res.naive_certified
        previous = res.certified
    assert previous < n  # the sweep actually certified less in the end
    rows = certified_ratio_curve(grid, types, [0, 2, 4, 8, 16], sweep="adj_del")
    ratios = [r.collective_ratio for r in rows]
    assert ratios == sorted(ratios, reverse=True)
    assert all(r.collective_ratio >= r.naive_ratio for r in rows)
    direct = collective_certificate(grid, [types[0], types[1].with_budget(4)])
    assert rows[2].collective_ratio == direct.certified_ratio and rows[2].radius == 4


def test_only_targets_count() -> None:
    rng = np.random.default_rng(21)
    n = 30
    adj = _random_graph(rng, n, extra=10)
    nf = node_receptive_fields(adj, 2)
    grid = _monotone_grids(rng, n, (3, 5), p_free=0.0)
    targets = np.arange(0, n, 3)
    types = [attribute_perturbation("attr_add", nf, 1), attribute_perturbation("attr_del", nf, 3)]
    base = collective_certificate(grid, types, targets)
    assert base.n_targets == targets.size and base.certified <= targets.size
    # non-targets' own certificates do not matter: make them all attackable for free
    other = grid.copy()
    other[np.setdiff1d(np.arange(n), targets)] = False
    again = collective_certificate(other, types, targets)
    assert (again.certified, again.attacked_bound, again.attacked_free) == (base.certified, base.attacked_bound, 0)
    # all targets attacked for free, every other node robust: nothing is certified
    flipped = np.ones_like(grid)
    flipped[targets] = False
    res = collective_certificate(flipped, types, targets)
    assert res.certified == 0 and res.attacked_free == targets.size and res.status == "trivial"
    assert collective_certificate(flipped, types).certified == n - targets.size


def test_stopped_solves_certify_from_the_dual_bound_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A MILP stopped by its limit certifies from the dual bound, not the incumbent; an LP stopped
    early falls back to the naive count."""
    import molgraph.methods.certificates.collective as collective

    rng = np.random.default_rng(31)
    n = 20
    adj = _random_graph(rng, n, extra=6)
    nf = node_receptive_fields(adj, 1)
    grid = _monotone_grids(rng, n, (3, 5), p_free=0.0)
    types = [attribute_perturbation("attr_add", nf, 1), attribute_perturbation("attr_del", nf, 3)]
    exact = collective_certificate(grid, types, mode="milp")
    assert exact.status == "optimal" and exact.attacked_incumbent == exact.attacked_bound
    real_milp = collective.milp

    def stopped(*args, **kwargs):  # as if HiGHS hit its time limit with a gap of 2.5 targets
        res = real_milp(*args, **kwargs)
        res.status, res.success = 1, False
        if res.mip_dual_bound is not None:
            res.mip_dual_bound = res.fun - 2.5
        return res

    monkeypatch.setattr(collective, "milp", stopped)
    mi = collective_certificate(grid, types, mode="milp", time_limit=1)
    assert mi.status == "time_limit" and mi.attacked_incumbent == exact.attacked_incumbent
    assert mi.attacked_bound == pytest.approx(exact.attacked_bound + 2.5)
    assert mi.certified == n - int(np.floor(exact.attacked_bound + 2.5)) < exact.certified
    lp = collective_certificate(grid, types, mode="lp", time_limit=1)
    assert lp.status.startswith("failed") and lp.certified == lp.naive_certified


def test_inputs_are_checked() -> None:
    n = 4
    eye = sp.identity(n, dtype=bool, format="csr")
    grid = np.ones((n, 3), dtype=bool)
    with pytest.raises(ValueError, match="perturbation type"):
        collective_certificate(grid, [attribute_perturbation("a", eye, 1)] * 2)
    with pytest.raises(ValueError, match="integers"):
        collective_certificate(grid, [attribute_perturbation("a", eye, 1.5)])
    with pytest.raises(ValueError, match="owners"):
        collective_certificate(grid, [PerturbationType("a", eye, 2)], n_attackers=1)
    with pytest.raises(IndexError):
        collective_certificate(grid, [attribute_perturbation("a", eye, 1)], targets=[n])
    with pytest.raises(ValueError, match="mode"):
        collective_certificate(grid, [attribute_perturbation("a", eye, 1)], mode="exact")


# ------------------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_fields_scale_to_pubmed_size() -> None:
    """20k nodes, ~44k edges (PubMed's size): 2-layer node and edge fields in seconds, sparse."""
    rng = np.random.default_rng(0)
    n, m = 20_000, 44_000
    u, v = rng.integers(0, n, m), rng.integers(0, n, m)
    adj = sp.csr_matrix((np.ones(m), (u, v)), shape=(n, n))
    t0 = time.perf_counter()
    nf = node_receptive_fields(adj, 2)
    ef = edge_receptive_fields(adj, 2)
    elapsed = time.perf_counter() - t0
    assert nf.shape == (n, n) and ef.shape[0] == n and elapsed < 60
    assert nf.nnz < 0.01 * n * n


@pytest.mark.slow
def test_stage1_cora_ml_reproduction(data_root) -> None:
    """The shared notes' stage 1 on the reference Cora-ML attribute grid with 2-hop fields."""
    from molgraph.data.node_graph import load_base_certificates, load_node_graph

    try:
        grids = load_base_certificates("cora_ml", root=data_root)
        graph = load_node_graph("cora_ml", root=data_root, lcc=True)
    except FileNotFoundError as exc:
        pytest.skip(f"Cora-ML collective-robustness files not in the data root: {exc}")
    grid, dims = grids["attr_grid"]
    assert dims == ("node", "attr_add", "attr_del") and grid.shape[0] == graph.num_nodes == 2810
    nf = node_receptive_fields(graph.adj, 2)
    add, dele = attribute_perturbation("attr_add", nf, 0), attribute_perturbation("attr_del", nf, 0)

    res = collective_certificate(grid, [add, dele.with_budget(20)])
    assert (round(res.naive_certified / res.n_targets, 3), round(res.certified_ratio, 3)) == (0.432, 0.774)
    res = collective_certificate(grid, [add.with_budget(4), dele])
    assert (round(res.naive_certified / res.n_targets, 3), round(res.certified_ratio, 3)) == (0.432, 0.831)
    # collective beats naive at every radius > 0
    rows = certified_ratio_curve(grid, [add, dele], [4, 12, 24], sweep="attr_del")
    assert all(r.collective_ratio > r.naive_ratio for r in rows)

    lp = collective_certificate(grid, [add, dele.with_budget(8)])
    mi = collective_certificate(grid, [add, dele.with_budget(8)], mode="milp", time_limit=20)
    assert mi.attacked_incumbent is not None
    assert lp.attacked_bound >= mi.attacked_bound - 1e-6 >= mi.attacked_incumbent - 2e-6
    assert mi.certified == mi.n_targets - int(np.floor(mi.attacked_bound + 1e-3)) >= lp.certified
