"""The two pieces of the N-gram graph (Liu, Demirel, Liang, NeurIPS 2019) that are tensor maths.

* :func:`neighbour_sum` / :func:`ngram_walk_sums`: the training-free "graph embedding" step.
  With vertex embeddings ``F = X W`` (``(N, r)``), ``h_1 = F`` and ``h_k = (A h_{k-1}) * F``
  (element-wise), ``f_k = sum over a graph's atoms of h_k``. ``A`` is the plain 0/1 adjacency
  without self-loops, so ``f_k`` sums, over every walk of ``k`` vertices (backtracking allowed,
  each walk once per direction), the element-wise product of its vertices' embeddings. With
  ``r = 1`` and ``F = 1``, ``f_k = 1^T A^(k-1) 1`` is the number of such walks.
* :class:`CBoWVertexEmbedding`: the CBoW-style model that learns ``W``: the embedding of the sum
  of an atom's neighbours' vectors, ``W^T sum_j x_j``, must predict the atom's own attribute in
  each segment of its vector through one small softmax head per segment. Only ``W`` is kept.

Everything runs on many graphs at once through PyG scatter sums over a concatenated
``edge_index`` (PyG batch layout), so no dense padded adjacency is ever built.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter

__all__ = ["CBoWVertexEmbedding", "neighbour_sum", "ngram_walk_sums"]


def neighbour_sum(h: Tensor, edge_index: Tensor, num_nodes: int) -> Tensor:
    """``A h``: for every node, the sum of its neighbours' rows.

    Args:
        h: ``(N, d)`` node rows.
        edge_index: ``(2, E)`` directed edges ``src -> dst`` (both directions of every bond, as
            :class:`~molgraph.featurizers.MolGraphFeaturizer` writes them).
        num_nodes: ``N`` (isolated trailing nodes still get a zero row).

    Returns:
        ``(N, d)``, row ``i`` = sum of ``h[j]`` over edges ``j -> i``.
    """
    return scatter(h[edge_index[0]], edge_index[1], dim=0, dim_size=num_nodes, reduce="sum")


def ngram_walk_sums(
    f: Tensor,
    edge_index: Tensor,
    batch: Tensor,
    num_graphs: int,
    n_grams: int,
    *,
    self_loops: bool = False,
) -> Tensor:
    """The N-gram graph embedding of every graph in a batch.

    Args:
        f: ``(N, r)`` vertex embeddings ``X W``.
        edge_index: ``(2, E)`` edges, node indices global to the batch.
        batch: ``(N,)`` graph index of every node.
        num_graphs: ``B``.
        n_grams: ``T``, the longest walk, in vertices.
        self_loops: use ``A + I`` instead of ``A`` (the later re-implementation's variant; the
            NeurIPS method has none).

    Returns:
        ``(B, T, r)``: ``[:, k - 1]`` is ``f_k``, the sum over ``k``-vertex walks. Same dtype as
        ``f``; a graph without atoms gets zeros.
    """
    if n_grams < 1:
        raise ValueError(f"n_grams must be >= 1, got {n_grams}")
    num_nodes = f.shape[0]
    h = f
    out = [scatter(h, batch, dim=0, dim_size=num_graphs, reduce="sum")]
    for _ in range(1, n_grams):
        walked = neighbour_sum(h, edge_index, num_nodes)
        if self_loops:
            walked = walked + h
        h = walked * f
        out.append(scatter(h, batch, dim=0, dim_size=num_graphs, reduce="sum"))
    return torch.stack(out, dim=1)


class CBoWVertexEmbedding(nn.Module):
    """CBoW-style vertex embedding: context ``c`` -> ``z = W^T c`` -> one softmax head per segment.

    Each head is ``Linear(r, hidden) -> ReLU -> Linear(hidden, classes_s)``. The ``S`` heads run
    as one batched computation (first layers stacked into one ``Linear(r, S * hidden)``, second
    layers as an ``(S, hidden, max_classes)`` tensor with the padding classes masked out): the
    same maths and initialisation as ``S`` separate modules at a third of the cost per step,
    which is what CBoW training time is made of on a CPU.

    Args:
        in_dim: ``D``, width of the atom vectors.
        dim: ``r``, the embedding width.
        segment_classes: number of classes of each segment of the atom vector (a 0/1 flag has 2).
        hidden_dim: width of each head's hidden layer.
    """

    def __init__(self, in_dim: int, dim: int, segment_classes: Sequence[int], hidden_dim: int = 20):
        super().__init__()
        classes = [int(n) for n in segment_classes]
        if not classes or min(classes) < 2:
            raise ValueError(f"every segment needs at least 2 classes, got {classes}")
        self.segment_classes = classes
        self.hidden_dim = hidden_dim
        n_seg, width = len(classes), max(classes)
        self.W = nn.Linear(in_dim, dim, bias=False)
        self.hidden = nn.Linear(dim, n_seg * hidden_dim)
        self.out_weight = nn.Parameter(torch.empty(n_seg, hidden_dim, width))
        self.out_bias = nn.Parameter(torch.empty(n_seg, width))
        valid = torch.arange(width)[None, :] < torch.tensor(classes)[:, None]
        self.register_buffer("valid", valid, persistent=False)
        # nn.Linear(hidden_dim, classes)'s default initialisation, per head
        bound = 1.0 / hidden_dim**0.5
        nn.init.uniform_(self.out_weight, -bound, bound)
        nn.init.uniform_(self.out_bias, -bound, bound)

    @property
    def weight(self) -> Tensor:
        """``W`` as ``(D, r)`` (so that vertex embeddings are ``X @ weight``)."""
        return self.W.weight.t()

    def logits(self, context: Tensor) -> Tensor:
        """``(B, S, max_classes)`` logits from ``(B, D)`` context sums; padding classes are -inf."""
        z = self.W(context)
        h = torch.relu(self.hidden(z)).view(z.shape[0], len(self.segment_classes), self.hidden_dim)
        out = torch.einsum("bsh,shc->bsc", h, self.out_weight) + self.out_bias
        return out.masked_fill(~self.valid, float("-inf"))

    def loss(self, context: Tensor, targets: Tensor) -> Tensor:
        """Sum over segments of the mean cross-entropy; ``targets`` is ``(B, S)`` int64 classes."""
        logits = self.logits(context)
        ce = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum")
        return ce / context.shape[0]

    @torch.no_grad()
    def accuracy(self, context: Tensor, targets: Tensor) -> Tensor:
        """``(S,)`` fraction of rows whose class each head predicts right."""
        return (self.logits(context).argmax(-1) == targets).double().mean(0)
