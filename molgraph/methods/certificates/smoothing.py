"""Sparse randomized smoothing noise for binary attributes and graphs (Bojchevski et al., ICML 2020).

The noise ``phi(x)`` turns every 0 of a binary matrix into 1 with probability ``p_plus`` and every
1 into 0 with probability ``p_minus``, all cells independently. Binary node attributes and the
adjacency are sparse, so both are handled as the COO index of their 1-entries and the ``N x D``
(or ``n x n``) dense matrix is never built: the surviving 1s are one Bernoulli draw each; the
new 1s are a Binomial count placed uniformly, without replacement, on the cells that were 0
(conditioned on their number, the set of cells that flip up under independent flips is a
uniformly random subset of that size, so this is the same distribution, exactly).

Placement draws cells uniformly at random with replacement and keeps, in draw order, the first
ones that are 0-cells and not drawn before (redrawing while too few): the first ``k`` distinct
values of an i.i.d. uniform sequence are a uniformly random ``k``-subset. The reference sampler
instead places additions with replacement and patches collisions, and runs only on CUDA; this
one runs on any device, with every random draw taken from an explicit ``torch.Generator``.

:func:`sample_votes` counts the classes a base classifier predicts for every node over many
noisy copies: the votes that :func:`molgraph.methods.certificates.base.smoothed_certificates`
turns into certificates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

__all__ = ["Predict", "SmoothingParams", "perturb_attributes", "perturb_edges", "sample_votes"]

#: ``predict(attr_index, edge_index, n_nodes) -> (n_nodes,)`` int64 classes: the base classifier
#: on one noisy graph (or the disjoint union of several, see :func:`sample_votes`).
Predict = Callable[[Tensor, Tensor, int], Tensor]


@dataclass(frozen=True)
class SmoothingParams:
    """Flip probabilities of the smoothing noise, for the attributes and for the adjacency.

    Attributes:
        p_plus: a 0-attribute becomes 1 (reference default 0.01).
        p_minus: a 1-attribute becomes 0 (reference default 0.6).
        p_plus_adj: an absent edge appears (default 0: the graph is not perturbed).
        p_minus_adj: an edge disappears.

    Each must lie in ``[0, 1)``: at 1 every cell of the kind flips and the sample carries
    nothing about it (and ``p_plus = 1`` would fill the whole dense matrix). Each pair must have
    ``p_plus + p_minus < 1``: a noisy 1 must be more likely on a 1-cell (``1 - p_minus``) than on
    a 0-cell (``p_plus``); at equality the noisy copy is independent of the input, beyond it the
    noise inverts the input (the certificate maths in :mod:`.base` copes with both, but as
    settings they are swapped or pointless).
    """

    p_plus: float = 0.01
    p_minus: float = 0.6
    p_plus_adj: float = 0.0
    p_minus_adj: float = 0.0

    def __post_init__(self) -> None:
        for name in ("p_plus", "p_minus", "p_plus_adj", "p_minus_adj"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
                raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
        for plus, minus in (("p_plus", "p_minus"), ("p_plus_adj", "p_minus_adj")):
            if getattr(self, plus) + getattr(self, minus) >= 1.0:
                raise ValueError(
                    f"{plus} + {minus} must be < 1 (got {getattr(self, plus)} + {getattr(self, minus)}): "
                    "otherwise the noisy copy says nothing about the input or inverts it"
                )

    @property
    def perturbs_edges(self) -> bool:
        """Whether the adjacency is noised at all."""
        return self.p_plus_adj > 0.0 or self.p_minus_adj > 0.0


def _check_p(p_plus: float, p_minus: float) -> None:
    for name, value in (("p_plus", p_plus), ("p_minus", p_minus)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value}")


def _binomial(count: int, prob: float, generator: torch.Generator | None, device: torch.device) -> int:
    """One draw of Binomial(count, prob); float64 so counts up to 2^53 are exact."""
    if count == 0 or prob == 0.0:
        return 0
    n = torch.tensor([float(count)], dtype=torch.float64, device=device)
    p = torch.tensor([prob], dtype=torch.float64, device=device)
    return int(torch.binomial(n, p, generator=generator).item())


def _sample_new_cells(
    occupied: Tensor,
    n_rows: int,
    n_cols: int,
    k: int,
    upper_triangle: bool,
    generator: torch.Generator | None,
    device: torch.device,
) -> Tensor:
    """``k`` distinct cells drawn uniformly from the free cells of an ``n_rows x n_cols`` grid.

    Args:
        occupied: ``(m,)`` flat keys ``row * n_cols + col`` of the cells that may not be drawn.
        n_rows, n_cols: the grid.
        k: how many cells; at most the number of free cells.
        upper_triangle: only cells with ``row < col`` are free (the adjacency's upper half).
        generator: the random source (on ``device``).
        device: where to draw.

    Returns:
        ``(k,)`` int64 flat keys, in draw order (not sorted).
    """
    chosen = torch.empty(0, dtype=torch.long, device=device)
    if k == 0:
        return chosen
    total = n_rows * n_cols
    free = (n_rows * (n_rows - 1) // 2 if upper_triangle else total) - occupied.numel()
    # expected fraction of uniform draws that land on a free cell; the 1.1 and +64 make a
    # second round rare without drawing much more than needed
    hit_rate = max(free, 1) / total
    while chosen.numel() < k:
        need = k - chosen.numel()
        m = int(math.ceil(need / hit_rate * 1.1)) + 64
        cand = torch.randint(0, total, (m,), generator=generator, device=device)
        taken = torch.cat([occupied, chosen])
        # One stable sort finds both the occupied cells and the repeats: with the taken cells
        # placed before the draws, a draw that starts its run of equal keys is neither taken
        # nor drawn before. Keeping the draws in draw order and taking the first `need` of
        # them is what makes the set a uniform subset (the smallest keys would not be).
        keys_sorted, perm = torch.sort(torch.cat([taken, cand]), stable=True)
        starts_run = torch.ones_like(keys_sorted, dtype=torch.bool)
        starts_run[1:] = keys_sorted[1:] != keys_sorted[:-1]
        fresh = perm[starts_run & (perm >= taken.numel())] - taken.numel()
        accept = torch.zeros(m, dtype=torch.bool, device=device)
        accept[fresh] = True
        if upper_triangle:
            accept &= cand // n_cols < cand % n_cols
        chosen = torch.cat([chosen, cand[accept][:need]])
    return chosen


def perturb_attributes(
    index: Tensor,
    shape: tuple[int, int],
    p_plus: float,
    p_minus: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One noisy copy of a sparse binary ``(N, D)`` matrix.

    Args:
        index: ``(2, nnz)`` int64 row/column indices of the 1-entries (duplicates allowed,
            counted once).
        shape: ``(N, D)``.
        p_plus: probability that a 0 becomes 1, in ``[0, 1)``.
        p_minus: probability that a 1 becomes 0, in ``[0, 1)``.
        generator: random source on ``index``'s device (None: torch's default one).

    Returns:
        ``(2, nnz')`` int64 on ``index``'s device: the 1-entries of the noisy copy, coalesced
        and sorted row-major. About ``nnz (1 - p_minus) + (N D - nnz) p_plus`` entries.
    """
    _check_p(p_plus, p_minus)
    n_rows, n_cols = int(shape[0]), int(shape[1])
    if index.ndim != 2 or index.shape[0] != 2:
        raise ValueError(f"index must be (2, nnz), got {tuple(index.shape)}")
    device = index.device
    index = index.long()
    if index.numel() and (
        index.min() < 0 or index[0].max() >= n_rows or index[1].max() >= n_cols
    ):
        raise ValueError(f"index out of range for shape {(n_rows, n_cols)}")
    keys = torch.unique(index[0] * n_cols + index[1])
    survive = torch.rand(keys.numel(), dtype=torch.float64, generator=generator, device=device) >= p_minus
    n_new = _binomial(n_rows * n_cols - keys.numel(), p_plus, generator, device)
    new = _sample_new_cells(keys, n_rows, n_cols, n_new, False, generator, device)
    out, _ = torch.sort(torch.cat([keys[survive], new]))
    return torch.stack([out // n_cols, out % n_cols])


def perturb_edges(
    edge_index: Tensor,
    n_nodes: int,
    p_plus: float,
    p_minus: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One noisy copy of an undirected graph without self loops.

    The noise acts on the upper triangle of the adjacency (each unordered pair once; the
    diagonal is never touched), and the result is mirrored.

    Args:
        edge_index: ``(2, E)`` int64 edges; each undirected edge in one or both directions.
            Self loops are rejected (add them inside the model).
        n_nodes: number of nodes ``n``.
        p_plus: probability that an absent edge appears, in ``[0, 1)``.
        p_minus: probability that an edge disappears, in ``[0, 1)``.
        generator: random source on ``edge_index``'s device.

    Returns:
        ``(2, 2 E')`` int64 on ``edge_index``'s device: every noisy edge in both directions,
        sorted row-major, no duplicates, no self loops.
    """
    _check_p(p_plus, p_minus)
    if edge_index.ndim != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must be (2, E), got {tuple(edge_index.shape)}")
    device = edge_index.device
    edge_index = edge_index.long()
    if edge_index.numel():
        if edge_index.min() < 0 or edge_index.max() >= n_nodes:
            raise ValueError(f"edge_index out of range for {n_nodes} nodes")
        if bool((edge_index[0] == edge_index[1]).any()):
            raise ValueError("edge_index has self loops; the noise perturbs only pairs of distinct nodes")
    lo = torch.minimum(edge_index[0], edge_index[1])
    hi = torch.maximum(edge_index[0], edge_index[1])
    keys = torch.unique(lo * n_nodes + hi)
    survive = torch.rand(keys.numel(), dtype=torch.float64, generator=generator, device=device) >= p_minus
    n_pairs = n_nodes * (n_nodes - 1) // 2
    n_new = _binomial(n_pairs - keys.numel(), p_plus, generator, device)
    new = _sample_new_cells(keys, n_nodes, n_nodes, n_new, True, generator, device)
    upper = torch.cat([keys[survive], new])
    rows, cols = upper // n_nodes, upper % n_nodes
    both = torch.cat([rows * n_nodes + cols, cols * n_nodes + rows])
    both, _ = torch.sort(both)
    return torch.stack([both // n_nodes, both % n_nodes])


def sample_votes(
    predict: Predict,
    attr_index: Tensor,
    shape: tuple[int, int],
    edge_index: Tensor,
    n_nodes: int,
    params: SmoothingParams,
    n_samples: int,
    n_classes: int,
    batch: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Class counts of the base classifier on ``n_samples`` independent noisy copies of a graph.

    With ``batch = 1`` ``predict`` sees one noisy graph per call. With ``batch = b > 1`` it
    sees the disjoint union of ``b`` independent copies (node ``i`` of copy ``k`` is node
    ``k * N + i``; attributes ``(b N, D)``; no edges between copies) and must return
    ``(b N,)`` classes: fewer, larger calls, which is what keeps a GPU busy. For a message-passing
    model the union gives each copy exactly its own prediction. The attribute noise of the
    union is drawn in one call (independent cells are independent copies); the edge noise copy
    by copy, so that no edge joins two copies. The adjacency is left as given when
    ``params.perturbs_edges`` is False.

    ``predict`` runs under ``torch.no_grad()``; put the model in eval mode beforehand if it
    has dropout (the smoothed classifier is the noise, not dropout).

    Args:
        predict: ``predict(attr_index, edge_index, n_nodes) -> (n_nodes,)`` int64 classes.
        attr_index: ``(2, nnz)`` 1-entries of the binary ``(N, D)`` attributes.
        shape: ``(N, D)``.
        edge_index: ``(2, E)`` undirected edges (see :func:`perturb_edges`).
        n_nodes: ``N``.
        params: the flip probabilities.
        n_samples: noisy copies to classify.
        n_classes: ``C``; every prediction must lie in ``[0, C)``.
        batch: copies per ``predict`` call (the last call may get fewer).
        generator: random source on ``attr_index``'s device; the same seed gives the same votes.

    Returns:
        ``(N, C)`` int64 on ``attr_index``'s device; every row sums to ``n_samples``.
    """
    if int(shape[0]) != n_nodes:
        raise ValueError(f"shape[0] = {shape[0]} but n_nodes = {n_nodes}")
    if n_samples < 0 or batch < 1 or n_classes < 1:
        raise ValueError(f"need n_samples >= 0, batch >= 1, n_classes >= 1; got {n_samples}, {batch}, {n_classes}")
    device = attr_index.device
    n_attr = int(shape[1])
    votes = torch.zeros(n_nodes * n_classes, dtype=torch.long, device=device)
    attr_index = attr_index.long()
    edge_index = edge_index.long().to(device)
    done = 0
    with torch.no_grad():
        while done < n_samples:
            b = min(batch, n_samples - done)
            offsets = torch.arange(b, device=device).repeat_interleave(attr_index.shape[1]) * n_nodes
            stacked = attr_index.repeat(1, b)
            stacked = torch.stack([stacked[0] + offsets, stacked[1]])
            noisy_attr = perturb_attributes(stacked, (b * n_nodes, n_attr), params.p_plus, params.p_minus, generator)
            copies = []
            for k in range(b):
                edges = edge_index
                if params.perturbs_edges:
                    edges = perturb_edges(edge_index, n_nodes, params.p_plus_adj, params.p_minus_adj, generator)
                copies.append(edges + k * n_nodes)
            noisy_edges = torch.cat(copies, dim=1)
            pred = predict(noisy_attr, noisy_edges, b * n_nodes)
            pred = torch.as_tensor(pred, device=device).long().reshape(-1)
            if pred.numel() != b * n_nodes:
                raise ValueError(f"predict returned {pred.numel()} classes for {b * n_nodes} nodes")
            if pred.numel() and (pred.min() < 0 or pred.max() >= n_classes):
                raise ValueError(f"predict returned a class outside [0, {n_classes})")
            node = torch.arange(n_nodes, device=device).repeat(b)
            votes += torch.bincount(node * n_classes + pred, minlength=n_nodes * n_classes)
            done += b
    return votes.view(n_nodes, n_classes)
