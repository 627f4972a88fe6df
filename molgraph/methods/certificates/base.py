"""Base certificates of sparse randomized smoothing on binary data (Bojchevski et al., ICML 2020).

The smoothed classifier ``g(x)_c = P(f(phi(x)) = c)`` classifies a noisy copy ``phi(x)`` of a
binary input: every 0 turns into 1 with probability ``p_plus``, every 1 into 0 with
probability ``p_minus``, all bits independently (:mod:`.smoothing` draws such copies). This
module turns a lower bound ``p_A`` on ``g(x)_A`` into per-node certificates: the radii
``(r_a, r_d)`` (``r_a`` bits switched on, ``r_d`` switched off) up to which no perturbed
input ``x~`` can make ``g(x~)`` leave class ``A``.

Regions and their directions
----------------------------
Only the ``r_a + r_d`` bits where ``x`` and ``x~`` differ matter (on every other bit both
inputs share the same noise distribution). On those bits let ``i`` be the number of the
``r_a`` addition bits (``x = 0``, ``x~ = 1``) that are 1 in the noisy copy, and ``j`` the number
of the ``r_d`` deletion bits (``x = 1``, ``x~ = 0``) that are 1. Then

* under ``x``:  ``i ~ Bin(r_a, p_plus)``      (the bit is 0 in ``x``, it is 1 iff it flipped up)
  and           ``j ~ Bin(r_d, 1 - p_minus)``  (the bit is 1 in ``x``, it is 1 iff it survived);
* under ``x~``: ``i ~ Bin(r_a, 1 - p_minus)``  and  ``j ~ Bin(r_d, p_plus)``;

``i`` and ``j`` independent. The probability of one noisy outcome ``z`` is
``p_x(z) = p+^i (1-p+)^(r_a-i) (1-p-)^j p-^(r_d-j)`` and
``p_x~(z) = (1-p-)^i p-^(r_a-i) p+^j (1-p+)^(r_d-j)``, so the likelihood ratio is
``p_x~(z) / p_x(z) = const * c^(i - j)`` with ``c = (1-p+)(1-p-) / (p+ p-)``: it is constant on the
regions ``q = i - j`` in ``[-r_d, r_a]`` and increases with ``q`` when ``p_plus + p_minus < 1``
(``c > 1``). The mass of region ``q`` under ``x`` is the convolution
``sum_{i - j = q} Bin(r_a, p+)(i) Bin(r_d, 1-p-)(j)``, likewise under ``x~``. Both are sums of
non-negative float64 terms (no cancellation), so no arbitrary precision is needed (the
reference builds them with an alternating-sign recursion at 1000 bits); the tests check them
against brute-force enumeration of all ``2^(r_a + r_d)`` outcomes.

Neyman–Pearson
--------------
Among all classifiers ``h`` with ``P_x(h = A) = p``, the smallest ``P_x~(h = A)`` belongs to the
one that votes ``A`` on the outcomes where ``x~`` is least likely relative to ``x``: fill the
regions in increasing ``p_x~ / p_x`` (ascending ``q`` for ``p_plus + p_minus < 1``) until their
``x``-mass reaches ``p``, the last one fractionally; the ``x~``-mass collected is the worst case
``rho`` (:func:`worst_case_probability`). The best case for a runner-up class (an upper bound on
``P_x~(h = B)`` given ``P_x(h = B) <= p``) fills the same regions in the reverse order
(:func:`best_case_probability`).

Float64 error: every mass and every ``rho`` is accurate to a few ulp (about ``1e-15``
absolute); a verdict can only differ from exact arithmetic when ``rho`` lies that close to its
threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

__all__ = [
    "SmoothedCertificates",
    "best_case_probability",
    "certification_thresholds",
    "certified_grid",
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "max_certified_radii",
    "regions",
    "smoothed_certificates",
    "worst_case_probability",
]


# ----------------------------------------------------------------------------- confidence bounds


def _check_counts(k: ArrayLike, n: ArrayLike, alpha: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    k_arr = np.asarray(k, dtype=np.float64)
    n_arr = np.asarray(n, dtype=np.float64)
    if np.any(k_arr < 0) or np.any(k_arr > n_arr) or np.any(n_arr < 1):
        raise ValueError("counts must satisfy 0 <= k <= n and n >= 1")
    return np.broadcast_arrays(k_arr, n_arr)  # type: ignore[return-value]


def clopper_pearson_lower(k: ArrayLike, n: ArrayLike, alpha: float) -> NDArray[np.float64]:
    """One-sided Clopper–Pearson lower confidence bound on a binomial success probability.

    ``P(p >= bound) >= 1 - alpha`` for ``k`` successes in ``n`` trials: the ``alpha`` quantile of
    ``Beta(k, n - k + 1)``. This equals the lower end of the reference's two-sided interval at
    level ``2 alpha`` (``proportion_confint(k, n, alpha=2*alpha, method="beta")[0]``).

    Args:
        k: successes, any shape (broadcast against ``n``).
        n: trials, ``>= 1``.
        alpha: one-sided error level in ``(0, 1)``.

    Returns:
        float64 array of the broadcast shape; exactly 0 where ``k = 0``
        (``alpha^(1/n)`` where ``k = n``).
    """
    k_arr, n_arr = _check_counts(k, n, alpha)
    out = np.zeros(k_arr.shape, dtype=np.float64)
    pos = k_arr > 0
    # Beta(0, .) is degenerate at 0: scipy returns nan there, the bound is exactly 0
    out[pos] = stats.beta.ppf(alpha, k_arr[pos], n_arr[pos] - k_arr[pos] + 1)
    return out


def clopper_pearson_upper(k: ArrayLike, n: ArrayLike, alpha: float) -> NDArray[np.float64]:
    """One-sided Clopper–Pearson upper confidence bound: the ``1 - alpha`` quantile of ``Beta(k + 1, n - k)``.

    Args:
        k: successes, any shape (broadcast against ``n``).
        n: trials, ``>= 1``.
        alpha: one-sided error level in ``(0, 1)``.

    Returns:
        float64 array of the broadcast shape; exactly 1 where ``k = n``
        (``1 - alpha^(1/n)`` where ``k = 0``).
    """
    k_arr, n_arr = _check_counts(k, n, alpha)
    out = np.ones(k_arr.shape, dtype=np.float64)
    below = k_arr < n_arr
    out[below] = stats.beta.ppf(1.0 - alpha, k_arr[below] + 1, n_arr[below] - k_arr[below])
    return out


# ----------------------------------------------------------------------------- regions


def _check_flip(p_plus: float, p_minus: float) -> None:
    for name, value in (("p_plus", p_plus), ("p_minus", p_minus)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")


def _check_radius(r_a: int, r_d: int) -> None:
    if r_a < 0 or r_d < 0 or int(r_a) != r_a or int(r_d) != r_d:
        raise ValueError(f"radii must be non-negative integers, got r_a={r_a}, r_d={r_d}")


def regions(r_a: int, r_d: int, p_plus: float, p_minus: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Masses of the constant-likelihood-ratio regions under ``x`` and under ``x~``.

    ``x~`` has ``r_a`` more 1-bits and ``r_d`` fewer than ``x`` (the directions of the binomials
    are in the module docstring). Region ``q = i - j`` runs over ``-r_d .. r_a``.

    Args:
        r_a: bits switched on (``x = 0``, ``x~ = 1``), ``>= 0``.
        r_d: bits switched off (``x = 1``, ``x~ = 0``), ``>= 0``.
        p_plus: probability that a 0 becomes 1 in the noise, in ``[0, 1]``.
        p_minus: probability that a 1 becomes 0, in ``[0, 1]``.

    Returns:
        ``(x_mass, xt_mass)``, each ``(r_a + r_d + 1,)`` float64 summing to 1 (up to rounding),
        in **increasing** order of the ratio ``xt_mass / x_mass`` (the order that is worst for
        class ``A``): ascending ``q`` when ``p_plus + p_minus <= 1``, descending ``q`` when it is
        above 1 (then the noise inverts bits and ``c < 1``). A region may have zero mass under
        one of the two (``p_plus = 0`` or ``p_minus = 0``, or float64 underflow at radii of
        several hundred); its ratio is then 0 or infinite and its place in the order still
        right, since ``q`` orders the ratio in the limit too.
    """
    _check_radius(r_a, r_d)
    _check_flip(p_plus, p_minus)
    add_x = stats.binom.pmf(np.arange(r_a + 1), r_a, p_plus)
    add_xt = stats.binom.pmf(np.arange(r_a + 1), r_a, 1.0 - p_minus)
    del_x = stats.binom.pmf(np.arange(r_d + 1), r_d, 1.0 - p_minus)
    del_xt = stats.binom.pmf(np.arange(r_d + 1), r_d, p_plus)
    # convolving with the reversed deletion pmf puts i - j = q at index q + r_d
    x_mass = np.convolve(add_x, del_x[::-1])
    xt_mass = np.convolve(add_xt, del_xt[::-1])
    if p_plus + p_minus > 1.0:
        x_mass, xt_mass = x_mass[::-1].copy(), xt_mass[::-1].copy()
    return x_mass, xt_mass


def _fill(p: NDArray[np.float64], x_mass: NDArray[np.float64], xt_mass: NDArray[np.float64]) -> NDArray[np.float64]:
    """``x~``-mass collected by filling regions in the given order until the ``x``-mass is ``p``.

    Regions without ``x``-mass are skipped: a classifier constrained only on ``x`` may leave
    them out at no cost, so the minimiser never collects their ``x~``-mass.

    For ``p > 1/2`` the fill is computed as "everything but the last ``1 - p`` of ``x``-mass",
    from sums taken from the end: near ``p = 1`` (where large radii are decided) the stopping
    region is in the tail, whose tiny ``x``-masses a running sum from the front would round
    away, each lost ulp multiplied by the region's large ratio.
    """
    keep = x_mass > 0
    xs, ys = x_mass[keep], xt_mass[keep]
    front = _partial_fill(p, xs, ys)
    total_y = ys[::-1].sum()
    back = total_y - _partial_fill(1.0 - p, xs[::-1], ys[::-1])
    return np.where(p > 0.5, back, front)


def _partial_fill(p: NDArray[np.float64], xs: NDArray[np.float64], ys: NDArray[np.float64]) -> NDArray[np.float64]:
    """The ``y``-mass of the first regions (all ``xs > 0``) up to an ``x``-mass of ``p``, the last fractionally."""
    cum_x = np.concatenate(([0.0], np.cumsum(xs)))
    cum_y = np.concatenate(([0.0], np.cumsum(ys)))
    # the region in which the fill stops: the first whose cumulative x-mass reaches p (a
    # searchsorted instead of np.interp, whose slopes break on the flat steps that tiny
    # regions leave in the cumulative sum)
    k = np.searchsorted(cum_x[1:], p, side="left")
    k = np.minimum(k, xs.size - 1)  # p above the rounded total: fill everything
    part = np.clip(p - cum_x[k], 0.0, xs[k])
    return cum_y[k] + part * (ys[k] / xs[k])


def worst_case_probability(
    p_a_lower: ArrayLike, r_a: int, r_d: int, p_plus: float, p_minus: float
) -> NDArray[np.float64]:
    """Neyman–Pearson lower bound ``rho`` on ``g(x~)_A`` for every ``x~`` at radius ``(r_a, r_d)``.

    Args:
        p_a_lower: lower bound(s) on ``g(x)_A`` in ``[0, 1]``, any shape.
        r_a: additions, ``r_d``: deletions (exactly these many; :func:`certified_grid` turns
            them into "at most").
        p_plus, p_minus: the noise's flip probabilities.

    Returns:
        float64 array of ``p_a_lower``'s shape: the smallest ``P_x~(h = A)`` over all
        classifiers ``h`` with ``P_x(h = A) = p_a_lower`` (non-decreasing in ``p_a_lower``).
        At radius ``(0, 0)`` it is ``p_a_lower`` itself.
    """
    p = np.asarray(p_a_lower, dtype=np.float64)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("probabilities must lie in [0, 1]")
    x_mass, xt_mass = regions(r_a, r_d, p_plus, p_minus)
    return np.clip(_fill(p, x_mass, xt_mass), 0.0, 1.0)


def best_case_probability(
    p_b_upper: ArrayLike, r_a: int, r_d: int, p_plus: float, p_minus: float
) -> NDArray[np.float64]:
    """Upper bound on ``g(x~)_B`` for a class with ``g(x)_B <= p_b_upper``, ``x~`` at radius ``(r_a, r_d)``.

    The regions are filled in decreasing ``p_x~ / p_x`` (the reverse of
    :func:`worst_case_probability`); regions without ``x``-mass but with ``x~``-mass (ratio
    infinite) are collected for free.

    Args:
        p_b_upper: upper bound(s) on ``g(x)_B`` in ``[0, 1]``, any shape.
        r_a, r_d, p_plus, p_minus: as in :func:`worst_case_probability`.

    Returns:
        float64 array of ``p_b_upper``'s shape, in ``[0, 1]``.
    """
    p = np.asarray(p_b_upper, dtype=np.float64)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("probabilities must lie in [0, 1]")
    x_mass, xt_mass = regions(r_a, r_d, p_plus, p_minus)
    free = xt_mass[x_mass <= 0].sum()
    return np.clip(free + _fill(p, x_mass[::-1], xt_mass[::-1]), 0.0, 1.0)


# ----------------------------------------------------------------------------- grids


def certification_thresholds(max_ra: int, max_rd: int, p_plus: float, p_minus: float) -> NDArray[np.float64]:
    """The binary-class thresholds: ``g(x)_A >= p`` certifies radius ``(r_a, r_d)`` iff ``p > t[r_a, r_d]``.

    ``t = sup {p in [0, 1] : rho(p) <= 1/2}`` with ``rho`` = :func:`worst_case_probability`;
    ``rho`` is continuous and non-decreasing in ``p``, so ``rho(p) > 1/2`` exactly when
    ``p > t``. ``t = 1`` where no ``p`` certifies the radius; ``t[0, 0] = 1/2``. Since
    ``rho(p) <= p`` (the worst case collects the low-ratio regions first) ``t >= 1/2``, so ``t``
    is computed from the tail, as the ``x``-mass ``1 - t`` that the worst case leaves out (see
    ``_fill``).

    Args:
        max_ra, max_rd: the largest radii.
        p_plus, p_minus: the noise's flip probabilities.

    Returns:
        ``(max_ra + 1, max_rd + 1)`` float64 (this is exactly-at-radius: the threshold of the
        single perturbation size ``(r_a, r_d)``).
    """
    _check_radius(max_ra, max_rd)
    out = np.ones((max_ra + 1, max_rd + 1), dtype=np.float64)
    for ra in range(max_ra + 1):
        for rd in range(max_rd + 1):
            x_mass, xt_mass = regions(ra, rd, p_plus, p_minus)
            keep = x_mass > 0
            # the regions from the end (highest ratio first): rho(p) > 1/2 iff the x~-mass
            # left out with the last 1 - p of x-mass is below total - 1/2
            xs, ys = x_mass[keep][::-1], xt_mass[keep][::-1]
            target = ys.sum() - 0.5
            if target <= 0:
                continue  # even p = 1 leaves rho <= 1/2
            tail_x = np.concatenate(([0.0], np.cumsum(xs)))
            tail_y = np.concatenate(([0.0], np.cumsum(ys)))
            # the first region whose inclusion reaches the target; tail_y[k] < target there,
            # so ys[k] > 0 and the division is safe
            k = min(int(np.searchsorted(tail_y[1:], target, side="left")), xs.size - 1)
            left_out = tail_x[k] + (target - tail_y[k]) * xs[k] / ys[k]
            out[ra, rd] = min(1.0, max(0.0, 1.0 - left_out))
    return out


def certified_grid(
    p_lower: ArrayLike,
    max_ra: int,
    max_rd: int,
    p_plus: float,
    p_minus: float,
    p_upper_runner_up: ArrayLike | None = None,
) -> NDArray[np.bool_]:
    """Which radii every node is certified for.

    ``grid[n, a, d]`` is True when node ``n``'s smoothed prediction provably stays the same for
    **every** perturbation with at most ``a`` additions and at most ``d`` deletions: the
    exact-radius verdicts are AND-ed over all ``(a' <= a, d' <= d)``. (The exact-radius
    thresholds are monotone anyway, tested; the AND makes the "at most" reading hold by
    construction, which the collective certificate's Pareto points rely on.)

    Criteria at exact radius ``(a, d)``:

    * binary (``p_upper_runner_up is None``): ``rho_A > 1/2`` with ``rho_A`` =
      :func:`worst_case_probability` of ``p_lower``; evaluated through
      :func:`certification_thresholds` (one threshold per radius, then one comparison of all
      nodes);
    * multi-class: ``rho_A(p_lower) > best_B(p_upper_runner_up)`` with ``best_B`` =
      :func:`best_case_probability` (the runner-up at its best, the regions in reverse order).
      Sound when ``p_upper_runner_up`` bounds every class other than the top one (as
      :func:`smoothed_certificates` makes it).

    ``grid[n, 0, 0]`` is ``p_lower > 1/2`` (resp. ``p_lower > p_upper_runner_up``).

    Args:
        p_lower: ``(N,)`` lower bounds on the top class's smoothed probability.
        max_ra, max_rd: the largest radii of the grid.
        p_plus, p_minus: the noise's flip probabilities.
        p_upper_runner_up: ``(N,)`` upper bounds on the probability of any class other than
            the top one, or None.

    Returns:
        bool ``(N, max_ra + 1, max_rd + 1)``.
    """
    _check_radius(max_ra, max_rd)
    p_a = np.asarray(p_lower, dtype=np.float64).reshape(-1)
    if p_upper_runner_up is None:
        thresholds = certification_thresholds(max_ra, max_rd, p_plus, p_minus)
        grid = p_a[:, None, None] > thresholds[None]
    else:
        p_b = np.asarray(p_upper_runner_up, dtype=np.float64).reshape(-1)
        if p_b.shape != p_a.shape:
            raise ValueError(f"p_upper_runner_up has shape {p_b.shape}, p_lower {p_a.shape}")
        grid = np.zeros((p_a.size, max_ra + 1, max_rd + 1), dtype=bool)
        for ra in range(max_ra + 1):
            for rd in range(max_rd + 1):
                low = worst_case_probability(p_a, ra, rd, p_plus, p_minus)
                high = best_case_probability(p_b, ra, rd, p_plus, p_minus)
                grid[:, ra, rd] = low > high
    grid = np.logical_and.accumulate(grid, axis=1)
    return np.logical_and.accumulate(grid, axis=2)


def max_certified_radii(p_lower: float, p_plus: float, p_minus: float, limit: int = 1000) -> tuple[int, int]:
    """The largest certified ``r_a`` (at ``r_d = 0``) and ``r_d`` (at ``r_a = 0``) for one ``p_lower``.

    Binary criterion. Certification shrinks with the radius, so each is found by a walk up to
    the first failing radius (cheap: regions cost ``O(r)``).

    Args:
        p_lower: lower bound on the top class's smoothed probability.
        p_plus, p_minus: the noise's flip probabilities.
        limit: the largest radius tried; reaching it raises (the noise certifies "everything").

    Returns:
        ``(max_ra, max_rd)``; ``-1`` where even radius 0 fails (``p_lower <= 1/2``).
    """
    radii = []
    for which in ("a", "d"):
        r = 0
        while True:
            ra, rd = (r, 0) if which == "a" else (0, r)
            if not worst_case_probability(p_lower, ra, rd, p_plus, p_minus) > 0.5:
                radii.append(r - 1)
                break
            r += 1
            if r > limit:
                raise ValueError(f"radius above limit={limit} certified; the noise ignores the input?")
    return radii[0], radii[1]


# ----------------------------------------------------------------------------- from votes


@dataclass
class SmoothedCertificates:
    """Per-node base certificates from Monte-Carlo votes.

    Attributes:
        predicted: ``(N,)`` int64, the smoothed prediction (top class of the selection votes).
        p_lower: ``(N,)`` float64, the lower confidence bound on its probability.
        p_upper: ``(N,)`` float64 upper bound on the probability of every class other than
            ``predicted`` (multi-class), or None (binary criterion).
        runner_up: ``(N,)`` int64, the other class whose bound that is (multi-class), or None.
        grid: bool ``(N, max_ra + 1, max_rd + 1)``, see :func:`certified_grid`.
        abstain: ``(N,)`` bool, ``~grid[:, 0, 0]``: the prediction itself is not certified
            (Cohen et al.'s smoothed classifier abstains there).
        alpha: the overall error level; multi-class bounds use ``alpha / C`` each.
    """

    predicted: NDArray[np.int64]
    p_lower: NDArray[np.float64]
    p_upper: NDArray[np.float64] | None
    runner_up: NDArray[np.int64] | None
    grid: NDArray[np.bool_]
    abstain: NDArray[np.bool_]
    alpha: float


def smoothed_certificates(
    pre_votes: ArrayLike,
    votes: ArrayLike,
    alpha: float,
    max_ra: int,
    max_rd: int,
    p_plus: float,
    p_minus: float,
    multiclass: bool = False,
) -> SmoothedCertificates:
    """Base certificates of every node from selection and estimation votes.

    The top class (and the runner-up) come from ``pre_votes``; the bounds from the
    independent ``votes`` (choosing the class on the same samples that bound it would bias the
    bound). Ties in ``pre_votes`` go to the lower class index.

    * binary: ``p_lower`` = one-sided Clopper–Pearson lower bound of the top class's count at
      level ``alpha``;
    * multi-class: lower bound of the top class and an upper bound valid for **every** other
      class, from ``C`` one-sided bounds at ``alpha / C`` each (Bonferroni: all hold together
      with probability ``>= 1 - alpha``). The largest of the ``C - 1`` upper bounds belongs to
      the other class with the most estimation votes, reported as ``runner_up``. The
      reference bounds only the ``pre_votes`` runner-up at ``alpha / C``; that says nothing
      about a third class which, with few selection samples, may really be the second most
      likely one. Where the two runner-ups agree both give the same ``p_upper``; elsewhere
      this one is larger (more conservative).

    For edge-deletion certificates pass ``max_ra = 0`` and the adjacency's flip probabilities;
    ``grid[:, 0, :]`` is then the ``(N, max_rd + 1)`` grid over deleted edges.

    Args:
        pre_votes: ``(N, C)`` class counts of the selection samples.
        votes: ``(N, C)`` class counts of the estimation samples (every row sums to the
            number of samples ``n``).
        alpha: overall error level in ``(0, 1)``.
        max_ra, max_rd: the grid's largest radii.
        p_plus, p_minus: the noise's flip probabilities.
        multiclass: use the multi-class criterion.

    Returns:
        :class:`SmoothedCertificates`.
    """
    pre = np.asarray(pre_votes)
    est = np.asarray(votes)
    if pre.ndim != 2 or pre.shape != est.shape:
        raise ValueError(f"pre_votes {pre.shape} and votes {est.shape} must both be (N, C)")
    if np.any(pre < 0) or np.any(est < 0):
        raise ValueError("votes must be non-negative counts")
    n_nodes, n_classes = est.shape
    rows = np.arange(n_nodes)
    n = est.sum(axis=1)
    predicted = pre.argmax(axis=1).astype(np.int64)
    if not multiclass:
        p_lower = clopper_pearson_lower(est[rows, predicted], n, alpha)
        grid = certified_grid(p_lower, max_ra, max_rd, p_plus, p_minus)
        return SmoothedCertificates(predicted, p_lower, None, None, grid, ~grid[:, 0, 0], alpha)
    if n_classes < 2:
        raise ValueError("the multi-class certificate needs at least 2 classes")
    # the upper bound is monotone in the count, so the largest of the C - 1 upper bounds is
    # the one of the other class with the most estimation votes
    others = est.astype(np.float64)
    others[rows, predicted] = -np.inf
    runner_up = others.argmax(axis=1).astype(np.int64)
    p_lower = clopper_pearson_lower(est[rows, predicted], n, alpha / n_classes)
    p_upper = clopper_pearson_upper(est[rows, runner_up], n, alpha / n_classes)
    grid = certified_grid(p_lower, max_ra, max_rd, p_plus, p_minus, p_upper_runner_up=p_upper)
    return SmoothedCertificates(predicted, p_lower, p_upper, runner_up, grid, ~grid[:, 0, 0], alpha)
