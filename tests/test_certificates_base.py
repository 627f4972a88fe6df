"""Sparse randomized smoothing: the samplers and the base certificate, against brute force.

Every certificate quantity is checked against an independent computation: region masses
against enumeration of all noise outcomes of the differing bits, the Neyman–Pearson bound
against a linear program over all outcomes of a small input, and the certified grid against the
exact smoothed classifier of an 8-bit input under every possible perturbation.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import optimize, stats

from molgraph.methods.certificates.base import (
    best_case_probability,
    certification_thresholds,
    certified_grid,
    clopper_pearson_lower,
    clopper_pearson_upper,
    max_certified_radii,
    regions,
    smoothed_certificates,
    worst_case_probability,
)
from molgraph.methods.certificates.smoothing import (
    SmoothingParams,
    perturb_attributes,
    perturb_edges,
    sample_votes,
)

# ----------------------------------------------------------------------------- helpers


def _noise_matrix(d: int, p_plus: float, p_minus: float) -> np.ndarray:
    """``P[y, z]`` = probability that input ``y`` becomes ``z`` (bit k of an index = bit k of the vector)."""
    flip = np.array([[1 - p_plus, p_plus], [p_minus, 1 - p_minus]])
    out = np.ones((1, 1))
    for _ in range(d):
        out = np.kron(flip, out)  # the new factor is the highest bit
    return out


def _bits(d: int) -> np.ndarray:
    """``(2^d, d)`` the binary vectors, row ``v`` = bits of ``v``."""
    return (np.arange(2**d)[:, None] >> np.arange(d)[None, :]) & 1


def _outcome_probs(x: np.ndarray, p_plus: float, p_minus: float) -> np.ndarray:
    """Probability of every noisy outcome of the binary vector ``x``, straight from the definition."""
    z = _bits(x.size)
    per_bit = np.where(x == 1, np.where(z == 1, 1 - p_minus, p_minus), np.where(z == 1, p_plus, 1 - p_plus))
    return per_bit.prod(axis=1)


# ----------------------------------------------------------------------------- regions


@pytest.mark.parametrize(
    "r_a, r_d, p_plus, p_minus",
    [
        (0, 0, 0.01, 0.6),
        (1, 0, 0.01, 0.6),
        (0, 1, 0.01, 0.6),
        (2, 3, 0.01, 0.6),
        (3, 2, 0.2, 0.3),
        (4, 4, 0.1, 0.5),
        (3, 3, 0.0, 0.4),
        (2, 3, 0.3, 0.0),
        (3, 2, 0.7, 0.6),  # p_plus + p_minus > 1: the order reverses
    ],
)
def test_regions_equal_enumeration(r_a: int, r_d: int, p_plus: float, p_minus: float) -> None:
    x_mass, xt_mass = regions(r_a, r_d, p_plus, p_minus)
    assert x_mass.shape == xt_mass.shape == (r_a + r_d + 1,)
    assert x_mass.sum() == pytest.approx(1.0, abs=1e-12)
    assert xt_mass.sum() == pytest.approx(1.0, abs=1e-12)
    # the differing bits: first r_a are additions (x = 0, x~ = 1), then r_d deletions
    x = np.array([0] * r_a + [1] * r_d)
    px = _outcome_probs(x, p_plus, p_minus)
    pxt = _outcome_probs(1 - x, p_plus, p_minus)
    z = _bits(r_a + r_d)
    q = z[:, :r_a].sum(axis=1) - z[:, r_a:].sum(axis=1)
    position = q + r_d if p_plus + p_minus <= 1 else r_a - q  # the documented order
    brute_x = np.bincount(position, weights=px, minlength=r_a + r_d + 1)
    brute_xt = np.bincount(position, weights=pxt, minlength=r_a + r_d + 1)
    np.testing.assert_allclose(x_mass, brute_x, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(xt_mass, brute_xt, rtol=1e-12, atol=1e-300)
    # the order is by increasing likelihood ratio p_x~ / p_x, outcome by outcome
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(px > 0, pxt / px, np.inf)
    live = (px > 0) | (pxt > 0)
    order = np.argsort(position[live], kind="stable")
    r_sorted = ratio[live][order]
    assert np.all(r_sorted[1:] >= r_sorted[:-1] * (1 - 1e-12))  # (inf >= inf where p_x = 0)


# ----------------------------------------------------------------------------- Neyman–Pearson vs LP


def _lp_bound(px: np.ndarray, pxt: np.ndarray, p: float, worst: bool) -> float:
    """min (worst) / max (best) of sum h pxt over 0 <= h <= 1 with sum h px = p (worst) or <= p (best)."""
    c = pxt if worst else -pxt
    if worst:
        res = optimize.linprog(c, A_eq=px[None], b_eq=[p], bounds=(0, 1), method="highs")
    else:
        res = optimize.linprog(c, A_ub=px[None], b_ub=[p], bounds=(0, 1), method="highs")
    assert res.status == 0
    return float(res.fun if worst else -res.fun)


@pytest.mark.parametrize("p_plus, p_minus", [(0.01, 0.6), (0.15, 0.35), (0.0, 0.5)])
def test_worst_and_best_case_equal_linear_program(p_plus: float, p_minus: float) -> None:
    rng = np.random.default_rng(7)
    d = 5
    for _ in range(5):
        x = rng.integers(0, 2, d)
        xt = rng.integers(0, 2, d)
        r_a = int(((x == 0) & (xt == 1)).sum())
        r_d = int(((x == 1) & (xt == 0)).sum())
        px = _outcome_probs(x, p_plus, p_minus)
        pxt = _outcome_probs(xt, p_plus, p_minus)
        for p in (0.05, 0.5, 0.7, 0.93, 0.999):
            np.testing.assert_allclose(
                worst_case_probability(p, r_a, r_d, p_plus, p_minus), _lp_bound(px, pxt, p, True), atol=1e-9
            )
            np.testing.assert_allclose(
                best_case_probability(p, r_a, r_d, p_plus, p_minus), _lp_bound(px, pxt, p, False), atol=1e-9
            )


def test_worst_case_is_vectorised_and_identity_at_radius_zero() -> None:
    p = np.array([0.0, 0.2, 0.51, 1.0])
    np.testing.assert_allclose(worst_case_probability(p, 0, 0, 0.01, 0.6), p)
    many = worst_case_probability(p, 2, 3, 0.01, 0.6)
    one_by_one = [float(worst_case_probability(v, 2, 3, 0.01, 0.6)) for v in p]
    np.testing.assert_allclose(many, one_by_one)
    assert many[0] == 0.0 and np.all(np.diff(many) >= 0)


# ----------------------------------------------------------------------------- exhaustive attack


def _exact_smoothed(d: int, p_plus: float, p_minus: float, classify: np.ndarray, n_classes: int) -> np.ndarray:
    """``(2^d, C)`` exact smoothed class probabilities of every input."""
    noise = _noise_matrix(d, p_plus, p_minus)
    return noise @ np.eye(n_classes)[classify]


@pytest.mark.parametrize("p_plus, p_minus", [(0.1, 0.3), (0.05, 0.5), (0.01, 0.6)])
def test_exhaustive_attack_never_breaks_a_certified_input(p_plus: float, p_minus: float) -> None:
    d = 8
    z = _bits(d)
    w = np.array([3.0, 2.0, 2.0, 1.0, -1.0, -1.5, -2.0, 0.5])
    binary = (z @ w >= 2.5).astype(int)  # an arbitrary fixed base classifier
    rng = np.random.default_rng(3)
    weights = rng.normal(size=(d, 3))
    three = (z @ weights + np.array([0.3, 0.0, -0.3])).argmax(axis=1)
    n_certified_beyond_zero = 0
    for classify, n_classes in ((binary, 2), (three, 3)):
        g = _exact_smoothed(d, p_plus, p_minus, classify, n_classes)
        top = g.argmax(axis=1)
        p_a = g[np.arange(2**d), top]
        others = g.copy()
        others[np.arange(2**d), top] = -1.0
        p_b = others.max(axis=1)
        grid_bin = certified_grid(p_a, d, d, p_plus, p_minus)
        grid_multi = certified_grid(p_a, d, d, p_plus, p_minus, p_upper_runner_up=p_b)
        # every input as the centre, every other input as the attack
        add = ((z[:, None, :] == 0) & (z[None, :, :] == 1)).sum(axis=2)
        dele = ((z[:, None, :] == 1) & (z[None, :, :] == 0)).sum(axis=2)
        centre = np.repeat(np.arange(2**d)[:, None], 2**d, axis=1)
        g_attacked_top = g[np.arange(2**d)[None, :], top[:, None]]  # [centre, attack]
        runner_at_attack = np.max(
            np.where(np.eye(n_classes, dtype=bool)[top][:, None, :], -1.0, g[None, :, :]), axis=2
        )
        cert_bin = grid_bin[centre, add, dele]
        cert_multi = grid_multi[centre, add, dele]
        assert np.all(g_attacked_top[cert_bin] > 0.5)
        assert np.all(g_attacked_top[cert_multi] > runner_at_attack[cert_multi])
        # the bounds themselves hold for every pair
        for a in range(d + 1):
            for r in range(d + 1):
                pair = (add == a) & (dele == r)
                if not pair.any():
                    continue
                rho = worst_case_probability(p_a, a, r, p_plus, p_minus)[centre[pair]]
                best = best_case_probability(p_b, a, r, p_plus, p_minus)[centre[pair]]
                assert np.all(g_attacked_top[pair] >= rho - 1e-12)
                assert np.all(runner_at_attack[pair] <= best + 1e-12)
        radius_zero = np.zeros_like(grid_bin)
        radius_zero[:, 0, 0] = True
        n_certified_beyond_zero += int((grid_bin & ~radius_zero).sum())
        np.testing.assert_array_equal(grid_bin[:, 0, 0], p_a > 0.5)
    assert n_certified_beyond_zero > 0


# ----------------------------------------------------------------------------- the reference demo


def _min_p_for(r_a: int, r_d: int, p_plus: float, p_minus: float) -> float:
    lo, hi = 0.5, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if worst_case_probability(mid, r_a, r_d, p_plus, p_minus) > 0.5:
            hi = mid
        else:
            lo = mid
    return hi


def test_reproduces_reference_demo_radii() -> None:
    p_a = float(clopper_pearson_lower(100_000, 100_000, 0.01))
    assert p_a == pytest.approx(0.01 ** (1 / 100_000), abs=1e-13)
    assert max_certified_radii(p_a, 0.01, 0.6) == (6, 18)
    grid = certified_grid(np.array([p_a]), 7, 19, 0.01, 0.6)[0]
    assert grid[6, 0] and not grid[7, 0]
    assert grid[0, 18] and not grid[0, 19]
    one_deletion = _min_p_for(0, 1, 0.01, 0.6)
    one_addition = _min_p_for(1, 0, 0.01, 0.6)
    assert round(one_deletion, 4) == 0.6970
    assert round(one_addition, 4) == 0.8250
    # closed forms: one deletion, regions (0.4, 0.01) then (0.6, 0.99); one addition, (0.99, 0.6)
    assert one_deletion == pytest.approx(0.4 + 0.49 * 0.6 / 0.99, abs=1e-12)
    assert one_addition == pytest.approx(0.5 * 0.99 / 0.6, abs=1e-12)
    thresholds = certification_thresholds(1, 1, 0.01, 0.6)
    assert thresholds[0, 0] == 0.5
    assert thresholds[0, 1] == pytest.approx(one_deletion, abs=1e-12)
    assert thresholds[1, 0] == pytest.approx(one_addition, abs=1e-12)


# ----------------------------------------------------------------------------- monotonicity


@pytest.mark.parametrize("p_plus, p_minus", [(0.01, 0.6), (0.1, 0.2), (0.0, 0.3), (0.2, 0.0)])
def test_thresholds_and_bounds_are_monotone_in_the_radius(p_plus: float, p_minus: float) -> None:
    t = certification_thresholds(8, 25, p_plus, p_minus)
    assert np.all(np.diff(t, axis=0) >= -1e-12) and np.all(np.diff(t, axis=1) >= -1e-12)
    p = np.linspace(0.3, 1.0, 15)
    low = np.stack([[worst_case_probability(p, a, r, p_plus, p_minus) for r in range(6)] for a in range(5)])
    high = np.stack([[best_case_probability(p, a, r, p_plus, p_minus) for r in range(6)] for a in range(5)])
    assert np.all(np.diff(low, axis=0) <= 1e-12) and np.all(np.diff(low, axis=1) <= 1e-12)
    assert np.all(np.diff(high, axis=0) >= -1e-12) and np.all(np.diff(high, axis=1) >= -1e-12)


def test_grid_is_monotone_and_agrees_with_rho() -> None:
    rng = np.random.default_rng(0)
    p_a = rng.uniform(0.4, 1.0, 300)
    p_b = np.minimum(1 - p_a, rng.uniform(0.0, 0.5, 300))
    for grid in (
        certified_grid(p_a, 6, 20, 0.01, 0.6),
        certified_grid(p_a, 6, 20, 0.01, 0.6, p_upper_runner_up=p_b),
    ):
        assert grid.shape == (300, 7, 21) and grid.dtype == bool
        for a, r in itertools.product(range(7), range(21)):
            below = grid[:, : a + 1, : r + 1].reshape(300, -1).all(axis=1)
            assert np.all(~grid[:, a, r] | below)
    grid = certified_grid(p_a, 6, 20, 0.01, 0.6)
    for a, r in ((0, 0), (1, 0), (0, 5), (3, 7), (6, 20)):
        exact = np.ones(300, dtype=bool)
        for a2, r2 in itertools.product(range(a + 1), range(r + 1)):
            exact &= worst_case_probability(p_a, a2, r2, 0.01, 0.6) > 0.5
        np.testing.assert_array_equal(grid[:, a, r], exact)


# ----------------------------------------------------------------------------- confidence bounds


def test_clopper_pearson_edges_and_coverage() -> None:
    n, alpha = 40, 0.05
    assert clopper_pearson_lower(0, n, alpha) == 0.0
    assert clopper_pearson_upper(n, n, alpha) == 1.0
    assert clopper_pearson_lower(n, n, alpha) == pytest.approx(alpha ** (1 / n), rel=1e-12)
    assert clopper_pearson_upper(0, n, alpha) == pytest.approx(1 - alpha ** (1 / n), rel=1e-12)
    k = np.arange(n + 1)
    low = clopper_pearson_lower(k, n, alpha)
    high = clopper_pearson_upper(k, n, alpha)
    assert np.all(np.diff(low) > 0) and np.all(np.diff(high) > 0) and np.all(low < high)
    # exact coverage: P(bound on the right side of p) >= 1 - alpha for every p
    for p in np.linspace(0.01, 0.99, 41):
        pmf = stats.binom.pmf(k, n, p)
        assert pmf[low <= p].sum() >= 1 - alpha - 1e-12
        assert pmf[high >= p].sum() >= 1 - alpha - 1e-12
    with pytest.raises(ValueError):
        clopper_pearson_lower(5, 4, alpha)


def test_smoothed_certificates_from_votes() -> None:
    pre = np.array([[1, 8, 1], [5, 5, 0], [0, 2, 8], [3, 3, 4]])
    votes = np.array([[10, 980, 10], [600, 300, 100], [150, 2, 848], [340, 330, 330]])
    out = smoothed_certificates(pre, votes, 0.01, 3, 5, 0.01, 0.6)
    np.testing.assert_array_equal(out.predicted, [1, 0, 2, 2])  # ties go to the lower index
    np.testing.assert_allclose(out.p_lower, clopper_pearson_lower(votes[np.arange(4), out.predicted], 1000, 0.01))
    np.testing.assert_array_equal(out.grid, certified_grid(out.p_lower, 3, 5, 0.01, 0.6))
    np.testing.assert_array_equal(out.abstain, [False, False, False, True])
    assert out.p_upper is None and out.runner_up is None
    multi = smoothed_certificates(pre, votes, 0.01, 3, 5, 0.01, 0.6, multiclass=True)
    # the bound must cover every other class: node 2's runner-up in pre_votes is class 1, but
    # class 0 has more estimation votes, so its (larger) upper bound is the one that counts
    np.testing.assert_array_equal(multi.runner_up, [0, 1, 0, 0])
    np.testing.assert_allclose(multi.p_lower, clopper_pearson_lower(votes[np.arange(4), multi.predicted], 1000, 0.01 / 3))
    np.testing.assert_allclose(multi.p_upper, clopper_pearson_upper([10, 300, 150, 340], 1000, 0.01 / 3))
    # node 3: 330 of 1000 for the top class vs 340 for another: not even radius 0
    assert multi.abstain.tolist() == [False, False, False, True]
    # edge deletions only: max_ra = 0
    edges = smoothed_certificates(pre, votes, 0.01, 0, 4, 0.0, 0.4)
    assert edges.grid.shape == (4, 1, 5)


# ----------------------------------------------------------------------------- samplers


def _random_binary(n: int, d: int, density: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    dense = torch.rand(n, d, generator=g) < density
    return dense.nonzero().t().contiguous()


def test_attribute_flip_rates_are_exact_in_expectation() -> None:
    n, d, p_plus, p_minus = 200, 300, 0.05, 0.3
    index = _random_binary(n, d, 0.1, 0)
    ones = torch.zeros(n, d, dtype=torch.bool)
    ones[index[0], index[1]] = True
    n_ones = int(ones.sum())
    n_zero = n * d - n_ones
    g = torch.Generator().manual_seed(1)
    kept, added, added_top, zero_top = 0, 0, 0, int((~ones[: n // 2]).sum())
    reps = 5
    for _ in range(reps):
        out = perturb_attributes(index, (n, d), p_plus, p_minus, g)
        keys = out[0] * d + out[1]
        assert torch.equal(keys, torch.unique(keys))  # sorted, no duplicates
        noisy = torch.zeros(n, d, dtype=torch.bool)
        noisy[out[0], out[1]] = True
        kept += int((noisy & ones).sum())
        added += int((noisy & ~ones).sum())
        added_top += int((noisy & ~ones)[: n // 2].sum())
    se_keep = np.sqrt(p_minus * (1 - p_minus) / (reps * n_ones))
    se_add = np.sqrt(p_plus * (1 - p_plus) / (reps * n_zero))
    se_top = np.sqrt(p_plus * (1 - p_plus) / (reps * zero_top))
    assert abs(kept / (reps * n_ones) - (1 - p_minus)) < 4 * se_keep
    assert abs(added / (reps * n_zero) - p_plus) < 4 * se_add
    # placement is uniform over the zero cells (a bias towards low keys would show here)
    assert abs(added_top / (reps * zero_top) - p_plus) < 4 * se_top


def test_dense_additions_resolve_collisions_exactly() -> None:
    # p_plus = 0.5 on a small matrix: nearly every addition collides with an earlier draw
    n, d, p_plus, p_minus, reps = 6, 7, 0.5, 0.25, 2000
    index = torch.tensor([[0, 0, 2, 5, 5], [0, 6, 3, 1, 2]])
    g = torch.Generator().manual_seed(5)
    freq = torch.zeros(n, d)
    for _ in range(reps):
        out = perturb_attributes(index, (n, d), p_plus, p_minus, g)
        assert out.shape[1] == torch.unique(out[0] * d + out[1]).numel()
        freq[out[0], out[1]] += 1
    freq /= reps
    expected = torch.full((n, d), p_plus)
    expected[index[0], index[1]] = 1 - p_minus
    se = torch.sqrt(expected * (1 - expected) / reps)
    assert torch.all((freq - expected).abs() < 4.5 * se)


def test_same_seed_same_sample() -> None:
    index = _random_binary(50, 40, 0.2, 2)
    a = perturb_attributes(index, (50, 40), 0.02, 0.5, torch.Generator().manual_seed(11))
    b = perturb_attributes(index, (50, 40), 0.02, 0.5, torch.Generator().manual_seed(11))
    c = perturb_attributes(index, (50, 40), 0.02, 0.5, torch.Generator().manual_seed(12))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert perturb_attributes(index, (50, 40), 0.0, 0.0).equal(index[:, torch.argsort(index[0] * 40 + index[1])])


def test_edges_symmetric_loop_free_and_flip_rates() -> None:
    n = 120
    upper = torch.triu(torch.rand(n, n, generator=torch.Generator().manual_seed(4)) < 0.05, diagonal=1)
    und = upper | upper.t()
    edge_index = und.nonzero().t().contiguous()
    p_plus, p_minus, reps = 0.02, 0.4, 6
    n_edges = int(upper.sum())
    n_free = n * (n - 1) // 2 - n_edges
    g = torch.Generator().manual_seed(9)
    kept = added = 0
    for _ in range(reps):
        out = perturb_edges(edge_index, n, p_plus, p_minus, g)
        assert not bool((out[0] == out[1]).any())
        keys = out[0] * n + out[1]
        assert torch.equal(keys, torch.unique(keys))
        adj = torch.zeros(n, n, dtype=torch.bool)
        adj[out[0], out[1]] = True
        assert torch.equal(adj, adj.t())
        new_upper = torch.triu(adj, diagonal=1)
        kept += int((new_upper & upper).sum())
        added += int((new_upper & ~upper).sum())
    se_keep = np.sqrt(p_minus * (1 - p_minus) / (reps * n_edges))
    se_add = np.sqrt(p_plus * (1 - p_plus) / (reps * n_free))
    assert abs(kept / (reps * n_edges) - (1 - p_minus)) < 4 * se_keep
    assert abs(added / (reps * n_free) - p_plus) < 4 * se_add
    # one direction only gives the same graph distribution as both directions
    one_way = edge_index[:, edge_index[0] < edge_index[1]]
    assert torch.equal(
        perturb_edges(one_way, n, p_plus, p_minus, torch.Generator().manual_seed(3)),
        perturb_edges(edge_index, n, p_plus, p_minus, torch.Generator().manual_seed(3)),
    )
    with pytest.raises(ValueError, match="self loops"):
        perturb_edges(torch.tensor([[0, 1], [0, 2]]), 3, 0.1, 0.1)


def test_sample_votes_counts_and_batches() -> None:
    n, d, n_classes = 30, 12, 2
    index = _random_binary(n, d, 0.3, 6)
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    params = SmoothingParams(p_plus=0.1, p_minus=0.3, p_plus_adj=0.05, p_minus_adj=0.2)
    calls: list[int] = []

    def predict(attr: torch.Tensor, edges: torch.Tensor, n_total: int) -> torch.Tensor:
        calls.append(n_total)
        assert torch.equal(edges[0] // n, edges[1] // n)  # no edge between two copies
        has_first = torch.zeros(n_total, dtype=torch.long)
        has_first[attr[0][attr[1] == 0]] = 1  # class 1 iff attribute 0 is on
        return has_first

    n_samples = 1000
    votes = sample_votes(predict, index, (n, d), edge_index, n, params, n_samples, n_classes,
                         batch=64, generator=torch.Generator().manual_seed(0))
    assert votes.shape == (n, n_classes) and votes.dtype == torch.long
    assert torch.all(votes.sum(1) == n_samples)
    assert calls == [64 * n] * 15 + [40 * n]
    on = torch.zeros(n, dtype=torch.bool)
    on[index[0][index[1] == 0]] = True
    p = torch.where(on, torch.tensor(1 - params.p_minus), torch.tensor(params.p_plus)).double()
    freq = votes[:, 1].double() / n_samples
    assert torch.all((freq - p).abs() < 4.5 * torch.sqrt(p * (1 - p) / n_samples))
    again = sample_votes(predict, index, (n, d), edge_index, n, params, n_samples, n_classes,
                         batch=64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(votes, again)
    with pytest.raises(ValueError, match="outside"):
        sample_votes(lambda a, e, m: torch.full((m,), 2), index, (n, d), edge_index, n, params, 3, 2)


@pytest.mark.parametrize(
    "kwargs, field",
    [({"p_plus": -0.1}, "p_plus"), ({"p_minus": 1.0}, "p_minus"), ({"p_minus_adj": 1.5}, "p_minus_adj"),
     ({"p_plus": 0.5, "p_minus": 0.5}, "p_plus \\+ p_minus"), ({"p_plus_adj": 0.6, "p_minus_adj": 0.6}, "p_plus_adj")],
)
def test_smoothing_params_validation(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SmoothingParams(**kwargs)
    assert not SmoothingParams().perturbs_edges and SmoothingParams(p_minus_adj=0.3).perturbs_edges
