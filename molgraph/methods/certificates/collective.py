"""Collective robustness certificates (Schuchardt et al., ICLR 2021) solved with scipy's HiGHS.

A *base certificate* says, per node, which perturbation sizes cannot change its prediction: a
bool grid ``grid[n, r_1, ..., r_D]`` over ``D`` perturbation types (attribute additions, attribute
deletions, edge deletions, ...). Applied one node at a time (the *naive* certificate), every node
must withstand the whole global budget. The *collective* certificate uses the fact that one
adversary must split a single budget over the whole graph, and that each node only perceives the
perturbations inside its receptive field (:mod:`molgraph.methods.certificates.receptive`): it
bounds the number of target nodes the adversary can attack *simultaneously*, and every other
target is certified.

Problem (one LP or MILP, all parts ``scipy.sparse``):

* **Pareto points.** Per node, the minimal non-certified grid points (:func:`pareto_points`); the
  grid is padded with "not certified" one step beyond its edge, so a perturbation larger than the
  grid never counts as certified. A node not certified at the origin is *attacked for free*.
* **Allocation** ``alloc_d[k] >= 0`` per unit ``k`` (a node for attribute types, an edge for edge
  deletions) and type ``d``: ``<= cap`` (1 for an edge), ``<= local budget`` (per unit, or per
  group of units, e.g. the edges at a node), ``sum_k alloc_d[k] <= budget_d``.
* **Perception** of target ``n``: ``perceived[n, d] <= mask_d[n] . alloc_d``.
* **Reaching a Pareto point** ``q`` of ``n``: ``q_d * s_q <= perceived[n, d]`` for every ``d``
  with ``q_d > 0``, ``0 <= s_q <= 1``. (The paper's per-dimension indicators ``y_(q,d)`` with
  ``s_q <= y_(q,d) <= 1`` and ``q_d * y_(q,d) <= perceived`` project onto exactly these
  constraints, so they are eliminated: same optimum, fewer variables.)
* **Attacked** ``a_n <= sum_(q in P_n) s_q``, ``a_n <= 1``; maximise ``sum_(n in targets) a_n``.
* **Attacker nodes** (optional, ``n_attackers``): ``z_v in [0, 1]``, ``sum_v z_v <= A``; a unit
  may be perturbed only through an attacker among its owners (``alloc_d[k] <= ub_k * sum_(v owns
  k) z_v``; an edge is owned by its two endpoints, a node's attributes by the node).

Mode ``"lp"`` solves the relaxation (all continuous, as the reference code does): its optimum
over-estimates the worst case, so ``certified = |targets| - floor(opt)`` is a sound lower bound on
the number of robust targets. Mode ``"milp"`` makes allocations and indicators integral (``a``,
``s``, ``z`` binary): the optimum is the exact worst case of this threat model; under a time limit
only the solver's **dual bound** is sound, never its incumbent (reported alongside).

Soundness details that differ from the reference implementation:

* only targets get ``a_n`` variables and only targets count: with a target subset the reference
  counted every non-target node as robust (its ``idx_test`` bug);
* Pareto points no allocation can reach (``q_d`` above the budget, or above what the node's
  field can hold: at most one deletion per edge) are dropped before solving. This is exact for the
  integral problem and keeps the LP from "fractionally" reaching them, which makes the collective
  certificate never weaker than the naive one;
* the floor uses a small relative tolerance *upwards* (``floor(opt + 1e-6 * max(1, opt))``) so an
  optimum of 358.9999999 (HiGHS tolerances) counts as 359 attacked, not 358.

Budgets and perturbation sizes are counts (integers): attribute bits flipped, edges deleted.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import NamedTuple, Sequence

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from molgraph.methods.certificates.receptive import incidence_matrix

__all__ = [
    "PerturbationType",
    "CollectiveResult",
    "CurveRow",
    "attribute_perturbation",
    "edge_deletion_perturbation",
    "pareto_points",
    "naive_certificate",
    "collective_certificate",
    "certified_ratio_curve",
    "CollectiveProblem",
    "collective_problem",
]

# relative slack added before flooring an attacked-count bound (see the module doc)
_FLOOR_TOL = 1e-6
# slack when comparing a Pareto coordinate with the most a node can perceive (both are counts)
_REACH_TOL = 1e-9


@dataclass(frozen=True, eq=False)
class PerturbationType:
    """One perturbation type: one trailing dimension of the base-certificate grid.

    Attributes:
        name: e.g. ``"attr_add"``, ``"attr_del"``, ``"adj_del"`` (a label; nothing is inferred
            from it).
        mask: ``(N, K)`` sparse 0/1 receptive-field mask: ``mask[n, k]`` when node ``n``
            perceives unit ``k`` (``K = N`` nodes for attribute types, ``K = E`` undirected edges
            for edge deletions).
        budget: global budget (a count ``>= 0``): the adversary's total over all units.
        cap: per-unit upper bound intrinsic to the type (1 for an edge deletion), or ``None``.
        local_budget: the threat model's local budget: a scalar or ``(K,)`` bound per unit, or,
            with ``local_groups``, a scalar or ``(M,)`` bound per group; ``None`` for none.
        local_groups: ``(M, K)`` sparse 0/1: ``local_budget`` bounds the sum of each row's units
            (e.g. the incidence matrix, to bound edge deletions touching each node).
        owners: ``(K, N)`` sparse 0/1: the nodes through which unit ``k`` can be perturbed
            (needed only with ``n_attackers``).
    """

    name: str
    mask: sp.spmatrix
    budget: int
    cap: float | None = None
    local_budget: float | np.ndarray | None = None
    local_groups: sp.spmatrix | None = None
    owners: sp.spmatrix | None = None

    @property
    def n_units(self) -> int:
        return int(self.mask.shape[1])

    def with_budget(self, budget: int) -> "PerturbationType":
        """A copy with another global budget."""
        return replace(self, budget=budget)


def attribute_perturbation(name: str, node_fields: sp.spmatrix, budget: int,
                           local_budget: float | np.ndarray | None = None) -> PerturbationType:
    """A per-node attribute perturbation type (additions or deletions of binary attributes).

    Args:
        name: ``"attr_add"`` or ``"attr_del"`` (any label).
        node_fields: ``(N, N)`` bool receptive fields
            (:func:`~molgraph.methods.certificates.receptive.node_receptive_fields`).
        budget: global number of attribute flips of this kind.
        local_budget: most flips at one node (scalar or ``(N,)``), or ``None``.
    """
    n = node_fields.shape[0]
    return PerturbationType(name, sp.csr_matrix(node_fields, dtype=bool), budget, None, local_budget, None,
                            sp.identity(n, dtype=bool, format="csr"))


def edge_deletion_perturbation(edge_fields: sp.spmatrix, edges: np.ndarray, budget: int,
                               local_budget: float | np.ndarray | None = None,
                               name: str = "adj_del") -> PerturbationType:
    """An edge-deletion perturbation type: each undirected edge is deleted at most once.

    Args:
        edge_fields: ``(N, E)`` bool
            (:func:`~molgraph.methods.certificates.receptive.edge_receptive_fields`).
        edges: ``(2, E)`` the undirected edges, in the column order of ``edge_fields``.
        budget: global number of deleted edges.
        local_budget: most deleted edges touching one node (scalar or ``(N,)``), or ``None``.
        name: label.
    """
    n, n_edges = edge_fields.shape
    inc = incidence_matrix(edges, n)
    if inc.shape[1] != n_edges:
        raise ValueError(f"edge_fields has {n_edges} columns for {inc.shape[1]} edges")
    return PerturbationType(name, sp.csr_matrix(edge_fields, dtype=bool), budget, 1.0, local_budget,
                            inc if local_budget is not None else None, inc.T.tocsr())


@dataclass(frozen=True)
class CollectiveResult:
    """Outcome of :func:`collective_certificate`.

    Attributes:
        n_targets: number of (distinct) target nodes.
        certified: targets certified robust (sound lower bound).
        certified_ratio: ``certified / n_targets`` (0 for no targets).
        attacked_bound: upper bound on simultaneously attacked targets that ``certified`` is
            derived from: the LP optimum (``"lp"``) or the MILP dual bound (``"milp"``), free
            attacks included; ``certified = n_targets - min(n_targets, floor(bound + tol))``.
        naive_certified: targets certified by the naive certificate at the same budgets.
        status: ``"optimal"``, ``"time_limit"``, ``"trivial"`` (nothing left to solve), or
            ``"failed: ..."`` (then ``certified`` falls back to the naive count, which is sound).
        solve_seconds: wall time of the HiGHS call (0 when nothing was solved).
        mode: ``"lp"`` or ``"milp"``.
        attacked_incumbent: MILP only: attacked targets of the best attack found (a lower bound on
            the worst case; never used to certify), else ``None``.
        attacked_free: targets not certified even without perturbation.
        n_points: Pareto points left in the problem (reachable, of targets not attacked for free).
        budgets: the global budget of each type, by name.
    """

    n_targets: int
    certified: int
    certified_ratio: float
    attacked_bound: float
    naive_certified: int
    status: str
    solve_seconds: float
    mode: str
    attacked_incumbent: float | None = None
    attacked_free: int = 0
    n_points: int = 0
    budgets: dict[str, int] = field(default_factory=dict)


class CurveRow(NamedTuple):
    """One radius of :func:`certified_ratio_curve`: ratios of targets certified, LP/MILP seconds."""

    radius: int
    naive_ratio: float
    collective_ratio: float
    solve_seconds: float


@dataclass(frozen=True, eq=False)
class CollectiveProblem:
    """The collective certificate's LP/MILP in matrix form, exactly as :func:`collective_certificate` solves it.

    ``minimise c @ x`` subject to ``constraint_lb <= A @ x <= constraint_ub``, ``lb <= x <= ub``,
    and ``x[i]`` integral where ``integrality[i]`` is 1 (only in mode ``"milp"``). Any solver that
    reaches the optimum of this problem gives the same certificate: the adversary attacks at most
    ``attacked_bound(optimum) = n_free - optimum`` targets, and :meth:`certified` floors that as
    :func:`collective_certificate` does. For a MILP only a *dual bound* of the optimum is sound.

    Attributes:
        c: ``(V,)`` objective (``-1`` on the attacked indicators, 0 elsewhere).
        A: ``(C, V)`` sparse CSR constraint matrix.
        constraint_lb, constraint_ub: ``(C,)`` row bounds (``-inf`` where unbounded).
        lb, ub: ``(V,)`` variable bounds.
        integrality: ``(V,)`` int8, 1 for integral variables (all 0 in mode ``"lp"``).
        n_targets: number of distinct targets.
        n_free: targets attacked for free (not certified at the origin; not in ``x``).
        naive_certified: targets certified by the naive certificate at the same budgets.
        n_points: Pareto points in the problem.
        attacked: columns of the attacked indicators ``a_n`` in ``x``.
        mode: ``"lp"`` or ``"milp"``.
        budgets: the global budget of each type, by name.

    With no variables (``V = 0``: nothing is reachable) the optimum is 0.
    """

    c: np.ndarray
    A: sp.csr_matrix
    constraint_lb: np.ndarray
    constraint_ub: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    integrality: np.ndarray
    n_targets: int
    n_free: int
    naive_certified: int
    n_points: int
    attacked: slice
    mode: str
    budgets: dict[str, int] = field(default_factory=dict)

    @property
    def n_vars(self) -> int:
        return int(self.c.size)

    def attacked_bound(self, optimum: float) -> float:
        """Upper bound on attacked targets from the optimum (or a MILP dual bound) of ``c @ x``."""
        return self.n_free - float(optimum)

    def certified(self, optimum: float) -> int:
        """Certified targets from the optimum (or a MILP dual bound): ``n_targets - floor(bound)``."""
        return self.n_targets - min(self.n_targets, _floor_count(self.attacked_bound(optimum)))


# ---------------------------------------------------------------------------------------------
# Pareto points


def _check_grid(grid: np.ndarray) -> np.ndarray:
    g = np.asarray(grid)
    if g.dtype != np.bool_:
        if not np.issubdtype(g.dtype, np.integer):
            raise TypeError(f"base-certificate grid must be bool (or 0/1 integers), got {g.dtype}")
        g = g != 0
    if g.ndim < 2:
        raise ValueError(f"grid must be (N, r_1, ..., r_D) with D >= 1, got shape {g.shape}")
    return g


@dataclass(frozen=True, eq=False)
class _ParetoTable:
    """Pareto points of all nodes of one grid, flat.

    ``node (P,)`` int64 owner of each point (ascending); ``points (P, D)`` int64 coordinates;
    ``below (N, r_1 + 1, ..., r_D + 1)`` bool: some non-certified point lies at or below each
    padded grid point (answers the naive certificate); ``shape``: the grid's trailing sizes.
    """

    node: np.ndarray
    points: np.ndarray
    below: np.ndarray
    shape: tuple[int, ...]

    @property
    def n_nodes(self) -> int:
        return int(self.below.shape[0])


def _pareto_table(grid: np.ndarray) -> _ParetoTable:
    g = _check_grid(grid)
    nd = g.ndim
    # pad one "not certified" step beyond every perturbation axis (never along the node axis)
    noncert = ~np.pad(g, [(0, 0)] + [(0, 1)] * (nd - 1), constant_values=False)
    # below[n, p] = some non-certified q <= p (componentwise): cumulative OR along each axis
    below = noncert
    for ax in range(1, nd):
        below = np.logical_or.accumulate(below, axis=ax)
    # p is minimal iff non-certified and no non-certified q <= p with q != p; any such q lies at
    # or below p - e_d for a d with q_d < p_d, so checking the D immediate predecessors suffices
    # (exact also for grids that are not monotone)
    minimal = noncert.copy()
    for ax in range(1, nd):
        dst = [slice(None)] * nd
        src = [slice(None)] * nd
        dst[ax], src[ax] = slice(1, None), slice(None, -1)
        minimal[tuple(dst)] &= ~below[tuple(src)]
    idx = np.nonzero(minimal)  # C order: sorted by node, then coordinates
    node = idx[0].astype(np.int64)
    points = np.stack(idx[1:], axis=1).astype(np.int64)
    return _ParetoTable(node, points, below, tuple(g.shape[1:]))


def pareto_points(grid: np.ndarray) -> list[np.ndarray]:
    """Per node, the minimal non-certified points of its base-certificate grid.

    Args:
        grid: ``(N, r_1, ..., r_D)`` bool; ``grid[n, p]`` when node ``n`` is certified for a
            perturbation of size ``p`` (one count per type).

    Returns:
        ``N`` int64 arrays of shape ``(P_n, D)``, rows in lexicographic order: node ``n`` is
        attacked by a perturbation ``x`` iff ``x >= q`` componentwise for some row ``q`` (exact for
        monotone grids, an over-approximation otherwise). The grid counts as "not certified" just
        beyond its edge, so coordinate ``r_d`` (one past the last index) appears when a node is
        certified up to the edge. A node not certified at the origin has the single point
        ``(0, ..., 0)``: it is attacked for free.
    """
    table = _pareto_table(grid)
    cuts = np.searchsorted(table.node, np.arange(1, table.n_nodes))
    return np.split(table.points, cuts)


# ---------------------------------------------------------------------------------------------
# naive certificate


def _targets(targets: np.ndarray | Sequence[int] | None, n_nodes: int) -> np.ndarray:
    if targets is None:
        return np.arange(n_nodes, dtype=np.int64)
    t = np.unique(np.asarray(targets, dtype=np.int64).reshape(-1))
    if t.size and (t[0] < 0 or t[-1] >= n_nodes):
        raise IndexError(f"target node out of range for {n_nodes} nodes")
    return t


def _budget_vector(budgets: Sequence[float], dims: int) -> np.ndarray:
    b = np.asarray(budgets, dtype=float).reshape(-1)
    if b.size != dims:
        raise ValueError(f"{b.size} budgets for a grid with {dims} perturbation dimension(s)")
    if np.any(b < 0) or np.any(b != np.floor(b)):
        raise ValueError(f"budgets must be non-negative integers (counts), got {b.tolist()}")
    return b.astype(np.int64)


def _naive_mask(table: _ParetoTable, budgets: np.ndarray, targets: np.ndarray) -> np.ndarray:
    # certified iff no non-certified point lies at or below the budget; a budget past the grid
    # lands on the padding, which is non-certified
    idx = tuple(np.minimum(budgets, np.asarray(table.shape)))
    return ~table.below[(targets, *idx)]


def naive_certificate(grid: np.ndarray, budgets: Sequence[int],
                      targets: np.ndarray | Sequence[int] | None = None) -> int:
    """Targets certified when each must withstand the whole budget vector on its own.

    Args:
        grid: ``(N, r_1, ..., r_D)`` bool base certificates.
        budgets: ``D`` global budgets (counts).
        targets: node ids (default: all nodes); duplicates count once.

    Returns:
        The number of targets whose grid certifies every perturbation ``<= budgets``
        componentwise (a budget beyond the grid's edge is not certified).
    """
    table = _pareto_table(grid)
    t = _targets(targets, table.n_nodes)
    return int(_naive_mask(table, _budget_vector(budgets, len(table.shape)), t).sum())


# ---------------------------------------------------------------------------------------------
# collective certificate


def _floor_count(bound: float) -> int:
    return int(math.floor(bound + _FLOOR_TOL * max(1.0, abs(bound))))


def _per_unit(value: float | np.ndarray | None, size: int, what: str) -> np.ndarray:
    if value is None:
        return np.full(size, np.inf)
    v = np.broadcast_to(np.asarray(value, dtype=float), (size,)) if np.ndim(value) == 0 else np.asarray(value, float)
    if v.shape != (size,):
        raise ValueError(f"{what} must be a scalar or have shape ({size},), got {v.shape}")
    if np.any(v < 0):
        raise ValueError(f"{what} must be >= 0")
    return v.astype(float)


class _TypeData(NamedTuple):
    """A validated type: unit upper bounds ``ub (K,)``, group matrix and bounds (or None)."""

    t: PerturbationType
    mask: sp.csr_matrix
    ub: np.ndarray
    groups: sp.csr_matrix | None
    group_ub: np.ndarray | None


def _prepare_type(t: PerturbationType, n_nodes: int) -> _TypeData:
    mask = sp.csr_matrix(t.mask, dtype=bool)
    if mask.shape[0] != n_nodes:
        raise ValueError(f"type {t.name!r}: mask has {mask.shape[0]} rows for {n_nodes} nodes")
    k = mask.shape[1]
    budget = float(_budget_vector([t.budget], 1)[0])
    # most one unit can take: the budget, the intrinsic cap, the per-unit local budget
    ub = np.full(k, budget)
    if t.cap is not None:
        ub = np.minimum(ub, float(t.cap))
    groups = group_ub = None
    if t.local_groups is None:
        ub = np.minimum(ub, _per_unit(t.local_budget, k, f"type {t.name!r} local_budget"))
    else:
        groups = sp.csr_matrix(t.local_groups, dtype=bool)
        if groups.shape[1] != k:
            raise ValueError(f"type {t.name!r}: local_groups has {groups.shape[1]} columns for {k} units")
        group_ub = _per_unit(t.local_budget, groups.shape[0], f"type {t.name!r} local_budget")
        # a unit never takes more than the tightest group it belongs to
        gt = groups.T.tocsr()
        vals = group_ub[gt.indices]
        has = np.diff(gt.indptr) > 0
        tight = np.full(k, np.inf)
        if vals.size:
            tight[has] = np.minimum.reduceat(vals, gt.indptr[:-1][has])
        ub = np.minimum(ub, tight)
    if t.owners is not None and t.owners.shape[0] != k:
        raise ValueError(f"type {t.name!r}: owners has {t.owners.shape[0]} rows for {k} units")
    return _TypeData(t, mask, ub, groups, group_ub)


class _Rows:
    """COO accumulator for ``lb <= A x <= ub`` rows."""

    def __init__(self) -> None:
        self.r: list[np.ndarray] = []
        self.c: list[np.ndarray] = []
        self.v: list[np.ndarray] = []
        self.lo: list[np.ndarray] = []
        self.hi: list[np.ndarray] = []
        self.n = 0

    def add(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_rows: int, hi: np.ndarray | float,
            lo: np.ndarray | float = -np.inf) -> None:
        self.r.append(np.asarray(rows, dtype=np.int64) + self.n)
        self.c.append(np.asarray(cols, dtype=np.int64))
        self.v.append(np.asarray(vals, dtype=float))
        self.lo.append(np.broadcast_to(np.asarray(lo, dtype=float), (n_rows,)))
        self.hi.append(np.broadcast_to(np.asarray(hi, dtype=float), (n_rows,)))
        self.n += n_rows

    def build(self, n_cols: int) -> LinearConstraint:
        a = sp.csr_matrix((np.concatenate(self.v), (np.concatenate(self.r), np.concatenate(self.c))),
                          shape=(self.n, n_cols))
        return LinearConstraint(a, np.concatenate(self.lo), np.concatenate(self.hi))


def _build(table: _ParetoTable, types: Sequence[PerturbationType], targets: np.ndarray, mode: str,
           n_attackers: int | None) -> CollectiveProblem:
    if mode not in ("lp", "milp"):
        raise ValueError(f"mode must be 'lp' or 'milp', got {mode!r}")
    n_dims = len(table.shape)
    if len(types) != n_dims:
        raise ValueError(f"{len(types)} perturbation types for a grid with {n_dims} perturbation dimension(s)")
    n_nodes = table.n_nodes
    data = [_prepare_type(t, n_nodes) for t in types]
    budgets = _budget_vector([t.budget for t in types], n_dims)
    if n_attackers is not None:
        if n_attackers < 0:
            raise ValueError(f"n_attackers must be >= 0, got {n_attackers}")
        for t, b in zip(types, budgets):
            if b > 0 and t.owners is None:
                raise ValueError(f"type {t.name!r} has no owners: needed to limit the attacker nodes")
    n_t = int(targets.size)
    naive = int(_naive_mask(table, budgets, targets).sum())
    names = {t.name: int(b) for t, b in zip(types, budgets)}

    # --- points of targets that some allocation can reach -----------------------------------
    is_target = np.zeros(n_nodes, dtype=bool)
    is_target[targets] = True
    keep = is_target[table.node]
    node, points = table.node[keep], table.points[keep]
    # most each target can perceive per type: min(budget, sum of its units' upper bounds)
    reach = np.ones(node.size, dtype=bool)
    for d, td in enumerate(data):
        most = np.minimum(float(budgets[d]), td.mask.astype(float) @ td.ub)  # (N,) float
        reach &= points[:, d] <= most[node] + _REACH_TOL
    node, points = node[reach], points[reach]
    free_nodes = np.unique(node[~points.any(axis=1)])  # a point at the origin: attacked for free
    n_free = int(free_nodes.size)
    keep = ~np.isin(node, free_nodes)
    node, points = node[keep], points[keep]
    if node.size == 0:
        empty = np.zeros(0)
        return CollectiveProblem(empty, sp.csr_matrix((0, 0)), empty, empty, empty, empty, np.zeros(0, np.int8),
                                 n_t, n_free, naive, 0, slice(0, 0), mode, names)

    # --- variables: [alloc_d (pruned units) ... | perceived | s | attacked | z] ---------------
    att_nodes, att_of_point = np.unique(node, return_inverse=True)
    n_att, n_pts = int(att_nodes.size), int(node.size)
    lb: list[np.ndarray] = []
    ub: list[np.ndarray] = []
    integral: list[np.ndarray] = []
    n_vars = 0

    def new_vars(lo: np.ndarray, hi: np.ndarray, integer: bool) -> int:
        nonlocal n_vars
        start = n_vars
        lb.append(lo)
        ub.append(hi)
        integral.append(np.full(lo.size, 1 if integer and mode == "milp" else 0, dtype=np.int8))
        n_vars += lo.size
        return start

    rows = _Rows()
    alloc_start: dict[int, int] = {}
    alloc_units: dict[int, np.ndarray] = {}
    perc_start: dict[int, int] = {}
    perc_pos: dict[int, np.ndarray] = {}  # attackable-node index -> row of perceived block (or -1)
    for d, td in enumerate(data):
        need = points[:, d] > 0
        if not need.any():
            continue  # no remaining point asks for this type: its allocation cannot matter
        pnodes = np.unique(node[need])
        sub = td.mask[pnodes]
        units = np.unique(sub.indices)  # units no attackable node perceives would be wasted budget
        sub = sub[:, units].astype(float).tocsr()
        a0 = new_vars(np.zeros(units.size), td.ub[units], True)
        alloc_start[d], alloc_units[d] = a0, units
        most = np.minimum(float(budgets[d]), sub @ td.ub[units])
        p0 = new_vars(np.zeros(pnodes.size), most, False)
        perc_start[d] = p0
        pos = np.full(n_att, -1, dtype=np.int64)
        pos[np.searchsorted(att_nodes, pnodes)] = np.arange(pnodes.size)
        perc_pos[d] = pos
        # global budget: sum_k alloc_d[k] <= budget_d
        rows.add(np.zeros(units.size), a0 + np.arange(units.size), np.ones(units.size), 1, float(budgets[d]))
        # local budgets over groups of units
        if td.groups is not None:
            g = td.groups[:, units].tocoo()
            used = np.unique(g.row)
            if used.size:
                rmap = np.full(td.groups.shape[0], -1, dtype=np.int64)
                rmap[used] = np.arange(used.size)
                rows.add(rmap[g.row], a0 + g.col, np.ones(g.nnz), used.size, td.group_ub[used])
        # perception: perceived[n, d] - mask_d[n] . alloc_d <= 0
        sc = sub.tocoo()
        rows.add(np.concatenate([np.arange(pnodes.size), sc.row]),
                 np.concatenate([p0 + np.arange(pnodes.size), a0 + sc.col]),
                 np.concatenate([np.ones(pnodes.size), -np.ones(sc.nnz)]), pnodes.size, 0.0)

    s0 = new_vars(np.zeros(n_pts), np.ones(n_pts), True)
    at0 = new_vars(np.zeros(n_att), np.ones(n_att), True)
    for d in perc_start:
        # reaching point q: q_d * s_q - perceived[n(q), d] <= 0 for q_d > 0
        qs = np.flatnonzero(points[:, d] > 0)
        pv = perc_start[d] + perc_pos[d][att_of_point[qs]]
        ar = np.arange(qs.size)
        rows.add(np.concatenate([ar, ar]), np.concatenate([s0 + qs, pv]),
                 np.concatenate([points[qs, d].astype(float), -np.ones(qs.size)]), qs.size, 0.0)
    # attacked: a_n - sum_(q in P_n) s_q <= 0
    rows.add(np.concatenate([np.arange(n_att), att_of_point]),
             np.concatenate([at0 + np.arange(n_att), s0 + np.arange(n_pts)]),
             np.concatenate([np.ones(n_att), -np.ones(n_pts)]), n_att, 0.0)
    if n_attackers is not None:
        z0 = new_vars(np.zeros(n_nodes), np.ones(n_nodes), True)
        rows.add(np.zeros(n_nodes), z0 + np.arange(n_nodes), np.ones(n_nodes), 1, float(n_attackers))
        for d, units in alloc_units.items():
            own = sp.csr_matrix(data[d].t.owners, dtype=bool)[units].tocoo()
            # alloc_d[k] <= ub_k * sum_(v owns k) z_v: a unit moves only through an attacker
            ubk = data[d].ub[units]
            ar = np.arange(units.size)
            rows.add(np.concatenate([ar, own.row]), np.concatenate([alloc_start[d] + ar, z0 + own.col]),
                     np.concatenate([np.ones(units.size), -ubk[own.row]]), units.size, 0.0)

    c = np.zeros(n_vars)
    c[at0:at0 + n_att] = -1.0  # maximise the attacked targets
    constraints = rows.build(n_vars)
    return CollectiveProblem(c, constraints.A, constraints.lb, constraints.ub, np.concatenate(lb), np.concatenate(ub),
                             np.concatenate(integral), n_t, n_free, naive, n_pts, slice(at0, at0 + n_att), mode,
                             names)


def _certify(table: _ParetoTable, types: Sequence[PerturbationType], targets: np.ndarray, mode: str,
             time_limit: float | None, n_attackers: int | None) -> CollectiveResult:
    prob = _build(table, types, targets, mode, n_attackers)
    n_t, naive, n_free, n_pts = prob.n_targets, prob.naive_certified, prob.n_free, prob.n_points

    def result(attacked_bound: float, status: str, seconds: float = 0.0, incumbent: float | None = None,
               free: int = 0, n_points: int = 0) -> CollectiveResult:
        if status.startswith("failed"):
            certified = naive  # the naive certificate is sound on its own
        else:
            certified = n_t - min(n_t, _floor_count(attacked_bound))
        return CollectiveResult(n_t, certified, certified / n_t if n_t else 0.0, float(attacked_bound), naive,
                                status, seconds, mode, incumbent, free, n_points, dict(prob.budgets))

    if prob.n_vars == 0:
        return result(float(n_free), "trivial", free=n_free)
    at0, at1 = prob.attacked.start, prob.attacked.stop
    n_att = at1 - at0
    options: dict[str, object] = {"disp": False, "presolve": True}
    if time_limit is not None:
        options["time_limit"] = float(time_limit)
    t0 = time.perf_counter()
    res = milp(prob.c, integrality=prob.integrality, bounds=Bounds(prob.lb, prob.ub),
               constraints=LinearConstraint(prob.A, prob.constraint_lb, prob.constraint_ub), options=options)
    seconds = time.perf_counter() - t0

    incumbent = None
    if mode == "milp" and res.x is not None:
        incumbent = n_free + float(np.round(res.x[at0:at1]).sum())
    if mode == "lp":
        if res.status != 0 or res.fun is None:
            return result(float(n_t), f"failed: {res.message}", seconds, None, n_free, n_pts)
        return result(n_free - float(res.fun), "optimal", seconds, None, n_free, n_pts)
    # MILP: certify from the dual bound (an upper bound on the attacked count), never the incumbent
    dual = res.mip_dual_bound
    if res.status == 0 and dual is None:
        dual = res.fun
    if dual is None or not np.isfinite(dual):
        return result(float(n_t), f"failed: no dual bound ({res.message})", seconds, incumbent, n_free, n_pts)
    bound = n_free - float(dual)
    status = "optimal" if res.status == 0 else ("time_limit" if res.status == 1 else f"failed: {res.message}")
    if status.startswith("failed"):
        return result(float(n_t), status, seconds, incumbent, n_free, n_pts)
    return result(min(bound, float(n_free + n_att)), status, seconds, incumbent, n_free, n_pts)


def collective_certificate(
    grid: np.ndarray,
    types: Sequence[PerturbationType],
    targets: np.ndarray | Sequence[int] | None = None,
    mode: str = "lp",
    time_limit: float | None = None,
    *,
    n_attackers: int | None = None,
) -> CollectiveResult:
    """Certify how many targets stay robust against one adversary with global budgets.

    Args:
        grid: ``(N, r_1, ..., r_D)`` bool base certificates; axis ``d + 1`` belongs to
            ``types[d]``.
        types: ``D`` :class:`PerturbationType` (receptive-field masks, caps, budgets).
        targets: node ids the adversary attacks and that may be certified (default all nodes);
            other nodes never count.
        mode: ``"lp"`` (relaxation, as the paper's released code) or ``"milp"`` (exact; under a
            time limit its dual bound is used).
        time_limit: HiGHS time limit in seconds (``None``: no limit). An LP stopped early
            certifies only the naive count.
        n_attackers: most nodes the adversary controls (``None``: every node); each type needs
            ``owners``.

    Returns:
        :class:`CollectiveResult`; ``certified`` is a sound lower bound on the robust targets.
    """
    table = _pareto_table(grid)
    return _certify(table, list(types), _targets(targets, table.n_nodes), mode, time_limit, n_attackers)


def collective_problem(
    grid: np.ndarray,
    types: Sequence[PerturbationType],
    targets: np.ndarray | Sequence[int] | None = None,
    mode: str = "lp",
    *,
    n_attackers: int | None = None,
) -> CollectiveProblem:
    """The LP/MILP that :func:`collective_certificate` solves, as matrices, for another solver.

    Same arguments as :func:`collective_certificate` (no time limit: nothing is solved). The
    matrices are the ones handed to HiGHS (Pareto points already pruned, free attacks taken out),
    so a second solver's optimum gives the same certificate through
    :meth:`CollectiveProblem.certified`.
    """
    table = _pareto_table(grid)
    return _build(table, list(types), _targets(targets, table.n_nodes), mode, n_attackers)


def certified_ratio_curve(
    grid: np.ndarray,
    types: PerturbationType | Sequence[PerturbationType],
    radii: Sequence[int],
    targets: np.ndarray | Sequence[int] | None = None,
    mode: str = "lp",
    *,
    sweep: int | str = 0,
    time_limit: float | None = None,
    n_attackers: int | None = None,
) -> list[CurveRow]:
    """Naive and collective certified ratios while one type's budget sweeps over ``radii``.

    The other types keep their budgets (e.g. a 2-D ``(N, adds, dels)`` grid with the additions'
    budget 0 gives the deletions curve, which equals sweeping ``grid[:, 0, :]`` alone).

    Args:
        grid: ``(N, r_1, ..., r_D)`` bool base certificates.
        types: one :class:`PerturbationType` (for ``D = 1``) or ``D`` of them.
        radii: budgets of the swept type.
        targets: node ids (default all).
        mode: ``"lp"`` or ``"milp"``.
        sweep: index or name of the swept type.
        time_limit: per solve, seconds.
        n_attackers: see :func:`collective_certificate`.

    Returns:
        One :class:`CurveRow` per radius, in the order given.
    """
    tlist = [types] if isinstance(types, PerturbationType) else list(types)
    if isinstance(sweep, str):
        names = [t.name for t in tlist]
        if sweep not in names:
            raise KeyError(f"no perturbation type named {sweep!r} (types: {', '.join(names)})")
        sweep = names.index(sweep)
    table = _pareto_table(grid)  # once for the whole curve
    tgt = _targets(targets, table.n_nodes)
    out = []
    for r in radii:
        swept = [t.with_budget(int(r)) if i == sweep else t for i, t in enumerate(tlist)]
        res = _certify(table, swept, tgt, mode, time_limit, n_attackers)
        n = max(res.n_targets, 1)
        out.append(CurveRow(int(r), res.naive_certified / n, res.certified_ratio, res.solve_seconds))
    return out
