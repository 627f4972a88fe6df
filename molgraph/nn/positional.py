"""Structural encodings of small graphs, computed per batch on dense padded adjacency.

Molecules have a few dozen atoms, so each graph of a PyG batch is laid out as a dense
``(L, L)`` block (``L`` = the largest graph in the batch) and everything below is batched matrix
algebra over ``(B, L, L)``; the data pipeline stays untouched.

* :func:`dense_adjacency`: ``edge_index``/``batch`` -> ``(B, L, L)`` 0/1 adjacency, node mask,
  and each node's position in its graph.
* :func:`shortest_path_distances`: hop distances (BFS by boolean matrix products).
* :func:`random_walk_pe`: landing probabilities ``diag((D^-1 A)^k)``, ``k = 1..K`` (Dwivedi et
  al. 2022, "Graph Neural Networks with Learnable Structural and Positional Representations";
  the quantity PyG's ``AddRandomWalkPE`` computes).
* :func:`laplacian_pe`: eigenvectors of the symmetric normalized Laplacian
  ``I - D^-1/2 A D^-1/2`` for the ``K`` smallest eigenvalues after the first (the quantity PyG's
  ``AddLaplacianEigenvectorPE`` computes with ``normalization="sym"``), zero-padded for graphs
  with fewer than ``K + 1`` atoms.

All functions are deterministic and carry no gradient.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["dense_adjacency", "shortest_path_distances", "random_walk_pe", "laplacian_pe", "UNREACHABLE"]

UNREACHABLE = -1  # shortest_path_distances' value for pairs in different connected components
# Padded rows of the Laplacian get this diagonal value: above the spectrum of any real block
# (the symmetric normalized Laplacian's eigenvalues lie in [0, 2]), so eigh sorts every padded
# eigenvector after the real ones and the real block's eigenvectors stay on the real nodes.
_PAD_EIGENVALUE = 10.0


def dense_adjacency(edge_index: Tensor, batch: Tensor, batch_size: int) -> tuple[Tensor, Tensor, Tensor]:
    """Dense per-graph adjacency of a PyG batch.

    Args:
        edge_index: ``(2, E)`` int64, directed edges (a bond appears once per direction).
        batch: ``(N,)`` int64 graph index of each node, non-decreasing (PyG's layout).
        batch_size: number of graphs ``B`` (graphs without nodes are allowed).

    Returns:
        ``adj`` ``(B, L, L)`` float32 with ``adj[b, i, j] = 1`` when graph ``b`` has an edge from
        its ``i``-th to its ``j``-th node; ``mask`` ``(B, L)`` bool, True for real nodes;
        ``pos`` ``(N,)`` int64, each node's index inside its graph. ``L`` is the largest graph's
        node count (at least 1).

    Raises:
        ValueError: ``batch`` is not sorted, or an edge joins two graphs.
    """
    n = batch.numel()
    if n and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError("batch must be non-decreasing (nodes grouped by graph, as PyG batches them)")
    counts = torch.bincount(batch, minlength=batch_size) if n else torch.zeros(batch_size, dtype=torch.long, device=batch.device)
    if counts.numel() > batch_size:
        raise ValueError(f"batch names graph {int(batch.max())} but batch_size is {batch_size}")
    ptr = torch.zeros(batch_size + 1, dtype=torch.long, device=batch.device)
    ptr[1:] = torch.cumsum(counts, 0)
    pos = torch.arange(n, device=batch.device) - ptr[batch]
    size = max(int(counts.max()) if batch_size else 0, 1)
    mask = torch.arange(size, device=batch.device)[None, :] < counts[:, None]
    adj = torch.zeros(batch_size, size, size, device=batch.device)
    if edge_index.numel():
        src, dst = edge_index
        if bool((batch[src] != batch[dst]).any()):
            raise ValueError("edge_index has an edge between two different graphs of the batch")
        adj[batch[src], pos[src], pos[dst]] = 1.0
    return adj, mask, pos


@torch.no_grad()
def shortest_path_distances(adj: Tensor, mask: Tensor) -> Tensor:
    """Hop distances between the nodes of each graph.

    Args:
        adj: ``(B, L, L)`` 0/1 adjacency (:func:`dense_adjacency`); treated as undirected only if
            it is symmetric (distances follow edge directions).
        mask: ``(B, L)`` real nodes.

    Returns:
        ``(B, L, L)`` int64: 0 on the diagonal of real nodes, the number of edges on a shortest
        path, :data:`UNREACHABLE` (-1) between components and for every pair involving padding.
    """
    b, size, _ = adj.shape
    pair = mask[:, :, None] & mask[:, None, :]
    eye = torch.eye(size, dtype=torch.bool, device=adj.device)[None] & pair
    dist = torch.full((b, size, size), UNREACHABLE, dtype=torch.long, device=adj.device)
    dist[eye] = 0
    reach = eye.clone()
    step = (adj > 0).to(torch.float32)
    # A breadth-first search in all graphs at once: the frontier after k products is the set of
    # pairs at distance k; at most L - 1 steps are ever needed.
    for k in range(1, size):
        new = (torch.bmm(reach.to(torch.float32), step) > 0) & pair & ~reach
        if not bool(new.any()):
            break
        dist[new] = k
        reach |= new
    return dist


@torch.no_grad()
def random_walk_pe(adj: Tensor, mask: Tensor, steps: int) -> Tensor:
    """Random-walk landing probabilities: ``pe[b, i, k-1] = ((D^-1 A)^k)[i, i]``, ``k = 1..steps``.

    Args:
        adj: ``(B, L, L)`` 0/1 adjacency; mask: ``(B, L)`` real nodes; steps: ``K >= 1``.

    Returns:
        ``(B, L, K)`` float32; 0 for isolated atoms and padding.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    deg = adj.sum(-1, keepdim=True)
    walk = adj / deg.clamp(min=1.0)  # rows of isolated nodes stay 0
    out = []
    power = walk
    for _ in range(steps):
        out.append(torch.diagonal(power, dim1=-2, dim2=-1))
        power = torch.bmm(power, walk)
    return torch.stack(out, -1) * mask[..., None]


@torch.no_grad()
def laplacian_pe(adj: Tensor, mask: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Laplacian eigenvector encodings of each graph (symmetric normalized Laplacian).

    The eigenvectors of the ``k`` smallest eigenvalues after the first (the constant-like
    ``D^1/2 1`` direction of a connected graph) are used. Each eigenvector's sign, and the basis
    of a repeated eigenvalue, is arbitrary: callers flip signs at random while training or
    process them sign-invariantly (:class:`molgraph.nn.graph_transformer.GraphTransformerEncoder`).

    Args:
        adj: ``(B, L, L)`` symmetric 0/1 adjacency; mask: ``(B, L)`` real nodes; k: ``K >= 1``.

    Returns:
        ``vectors`` ``(B, L, K)`` float32 (unit-norm columns on the real nodes; a zero column
        where the graph has fewer than ``j + 2`` nodes) and ``values`` ``(B, K)`` (0 where the
        column is zero).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    b, size, _ = adj.shape
    a = adj.to(torch.float64)
    deg = a.sum(-1)
    inv_sqrt = torch.where(deg > 0, deg.clamp(min=1.0).rsqrt(), torch.zeros_like(deg))
    lap = -inv_sqrt[:, :, None] * a * inv_sqrt[:, None, :]
    diag = torch.where(mask, torch.ones_like(deg), torch.full_like(deg, _PAD_EIGENVALUE))
    lap = lap + torch.diag_embed(diag)
    values, vectors = torch.linalg.eigh(lap)
    # Skip the smallest eigenvalue; keep the next k (pad when the batch's largest graph is small).
    vectors, values = vectors[:, :, 1 : k + 1], values[:, 1 : k + 1]
    have = mask.sum(-1)  # a graph with n nodes has n - 1 usable eigenvectors after the first
    keep = torch.arange(values.shape[1], device=adj.device)[None, :] < (have[:, None] - 1)
    vectors = vectors * keep[:, None, :] * mask[:, :, None]
    values = values * keep
    if vectors.shape[-1] < k:
        vectors = torch.nn.functional.pad(vectors, (0, k - vectors.shape[-1]))
        values = torch.nn.functional.pad(values, (0, k - values.shape[-1]))
    return vectors.to(torch.float32), values.to(torch.float32)
