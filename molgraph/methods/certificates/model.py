"""The smoothed classifier's base network: a GCN over sparse binary node attributes.

Kipf & Welling's two-layer GCN as the sparse-smoothing experiments use it (Bojchevski et al.,
ICML 2020, section 5: hidden 64, dropout 0.5)::

    H   = relu(Â X W1 + b1)            Â = D^-1/2 (A + I) D^-1/2, recomputed for every noisy graph
    out = Â dropout(H) W2 + b2         (N, C) logits

``X`` arrives as the COO indices of its 1-entries, so a noisy copy with ~10^5 ones costs a
sparse-dense product, never an ``(N, D)`` dense matrix. Several noisy copies of one graph are
classified in one call as one disjoint graph
(:func:`~molgraph.methods.certificates.smoothing.sample_votes`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["SparseGCN"]


def _normalized_adjacency(edge_index: Tensor, n_nodes: int) -> Tensor:
    """``D^-1/2 (A + I) D^-1/2`` as a sparse ``(n, n)`` COO tensor (edges given in both directions)."""
    loops = torch.arange(n_nodes, device=edge_index.device)
    row = torch.cat([edge_index[0], loops])
    col = torch.cat([edge_index[1], loops])
    deg = torch.zeros(n_nodes, device=edge_index.device).index_add_(0, col, torch.ones_like(col, dtype=torch.float))
    norm = deg.rsqrt()
    values = norm[row] * norm[col]
    return torch.sparse_coo_tensor(torch.stack([col, row]), values, (n_nodes, n_nodes),
                                   check_invariants=False).coalesce()


class SparseGCN(nn.Module):
    """GCN over binary attributes given as indices (see the module docstring).

    Args:
        n_features: attribute columns ``D``.
        n_classes: output classes ``C``.
        hidden: hidden width (default 64, the paper's).
        n_layers: propagation steps (default 2); the certificates' receptive fields are
            ``n_layers`` hops, read from :attr:`n_layers`.
        dropout: dropout on the hidden layers (default 0.5).

    Forward: ``(attr_index (2, nnz) int64 (node, column) of the 1-entries, edge_index (2, E)
    int64 both directions, n_nodes) -> (n_nodes, C)`` logits.
    """

    def __init__(self, n_features: int, n_classes: int, hidden: int = 64, n_layers: int = 2, dropout: float = 0.5):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.config = {"n_features": int(n_features), "n_classes": int(n_classes), "hidden": int(hidden),
                       "n_layers": int(n_layers), "dropout": float(dropout)}
        self.n_layers = int(n_layers)
        self.dropout = float(dropout)
        widths = [int(n_features)] + [int(hidden)] * (n_layers - 1) + [int(n_classes)]
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(a, b)) for a, b in zip(widths[:-1], widths[1:]))
        self.biases = nn.ParameterList(nn.Parameter(torch.empty(b)) for b in widths[1:])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for w, b in zip(self.weights, self.biases):
            nn.init.xavier_uniform_(w)  # PyG GCNConv's (glorot) initialisation
            nn.init.zeros_(b)

    def forward(self, attr_index: Tensor, edge_index: Tensor, n_nodes: int) -> Tensor:
        a_hat = _normalized_adjacency(edge_index, n_nodes)
        w0 = self.weights[0]
        x = torch.sparse_coo_tensor(attr_index, torch.ones(attr_index.shape[1], dtype=w0.dtype, device=w0.device),
                                    (n_nodes, w0.shape[0]), check_invariants=False)
        h = torch.sparse.mm(x, w0)
        for k in range(self.n_layers):
            if k > 0:
                h = F.dropout(h, p=self.dropout, training=self.training) @ self.weights[k]
            h = torch.sparse.mm(a_hat, h) + self.biases[k]
            if k < self.n_layers - 1:
                h = F.relu(h)
        return h
