"""Modern Hopfield layers (Ramsauer et al., "Hopfield Networks is All You Need", ICLR 2021).

The modern (continuous) Hopfield update retrieves from stored patterns ``Y`` with a state
(query) pattern ``xi``::

    xi_new = softmax(beta * xi K^T) K,     K = Y W_K                    (paper eq. 3, in key space)

and a layer reads the retrieved pattern out through values ``V = Y W_V``. Two uses:

* :class:`HopfieldPooling`: the stored patterns are one graph's node states and the state
  patterns are learned queries, so each query retrieves a weighted mix of the graph's nodes: a
  graph readout (``readout="hopfield"``), invariant to node order. ``steps > 1`` iterates the
  update before reading out.
* :class:`HopfieldLayer`: the stored patterns are learned (a memory of ``n_patterns`` vectors)
  and the states are the inputs: a lookup of each input in a trained associative memory.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter, softmax

__all__ = ["HopfieldPooling", "HopfieldLayer"]


class HopfieldPooling(nn.Module):
    """Pools ``(N, dim)`` node states into ``(B, dim)`` with ``num_queries`` learned state patterns.

    Args:
        dim: node state width (and output width).
        num_queries: learned state patterns S; their retrievals are concatenated, then projected to ``dim``.
        key_dim: width of the associative space (default ``dim``).
        beta: inverse temperature (default ``1 / sqrt(key_dim)``, the paper's choice for its
            pooling layers); large beta retrieves single nodes, small beta averages.
        steps: Hopfield updates of the queries before the read-out (1 = one retrieval, as attention).
    """

    def __init__(self, dim: int, num_queries: int = 1, key_dim: int | None = None, beta: float | None = None,
                 steps: int = 1) -> None:
        super().__init__()
        if num_queries < 1 or steps < 1:
            raise ValueError(f"num_queries and steps must be >= 1, got {num_queries} and {steps}")
        self.dim, self.num_queries, self.steps = int(dim), int(num_queries), int(steps)
        self.key_dim = int(key_dim or dim)
        self.beta = float(beta) if beta is not None else 1.0 / math.sqrt(self.key_dim)
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {beta}")
        self.norm = nn.LayerNorm(self.dim)
        self.queries = nn.Parameter(torch.empty(self.num_queries, self.key_dim))
        self.key = nn.Linear(self.dim, self.key_dim, bias=False)
        self.value = nn.Linear(self.dim, self.key_dim, bias=False)
        # no bias: a graph without nodes must pool to zeros, as the other readouts do
        self.out = nn.Linear(self.num_queries * self.key_dim, self.dim, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.norm.reset_parameters()
        nn.init.normal_(self.queries, std=1.0 / math.sqrt(self.key_dim))
        for lin in (self.key, self.value, self.out):
            lin.reset_parameters()

    def attention(self, h: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        """``(N, S)`` retrieval weights: per graph and query, a softmax over the graph's nodes."""
        keys = self.key(self.norm(h))  # (N, key_dim)
        logits = self.beta * keys @ self.queries.t()  # (N, S)
        alpha = softmax(logits, batch, num_nodes=h.size(0), dim=0)
        for _ in range(self.steps - 1):
            xi = scatter(alpha.unsqueeze(-1) * keys.unsqueeze(1), batch, dim=0, dim_size=num_graphs)  # (B, S, k)
            logits = self.beta * (keys.unsqueeze(1) * xi[batch]).sum(-1)
            alpha = softmax(logits, batch, num_nodes=h.size(0), dim=0)
        return alpha

    def forward(self, h: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        """``h`` ``(N, dim)``, ``batch`` ``(N,)`` sorted graph index -> ``(B, dim)``."""
        alpha = self.attention(h, batch, num_graphs)
        values = self.value(self.norm(h))  # (N, key_dim)
        pooled = scatter(alpha.unsqueeze(-1) * values.unsqueeze(1), batch, dim=0, dim_size=num_graphs)
        return self.out(pooled.reshape(num_graphs, -1))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_queries={self.num_queries}, beta={self.beta:.4g}, steps={self.steps}"


class HopfieldLayer(nn.Module):
    """Looks each ``(N, in_dim)`` input up in ``n_patterns`` learned stored patterns -> ``(N, out_dim)``.

    ``out = softmax(beta * (x W_Q) (P W_K)^T) (P W_V)`` with ``P`` the ``(n_patterns, pattern_dim)``
    memory; ``steps > 1`` first iterates the state ``xi <- softmax(beta xi K^T) K`` in key space.
    """

    def __init__(self, in_dim: int, out_dim: int, n_patterns: int, pattern_dim: int | None = None,
                 key_dim: int | None = None, beta: float | None = None, steps: int = 1) -> None:
        super().__init__()
        if n_patterns < 1 or steps < 1:
            raise ValueError(f"n_patterns and steps must be >= 1, got {n_patterns} and {steps}")
        self.pattern_dim = int(pattern_dim or in_dim)
        self.key_dim = int(key_dim or in_dim)
        self.beta = float(beta) if beta is not None else 1.0 / math.sqrt(self.key_dim)
        self.steps = int(steps)
        self.patterns = nn.Parameter(torch.empty(int(n_patterns), self.pattern_dim))
        self.query = nn.Linear(in_dim, self.key_dim, bias=False)
        self.key = nn.Linear(self.pattern_dim, self.key_dim, bias=False)
        self.value = nn.Linear(self.pattern_dim, out_dim, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.patterns, std=1.0)
        for lin in (self.query, self.key, self.value):
            lin.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        keys = self.key(self.patterns)  # (P, key_dim)
        xi = self.query(x)  # (N, key_dim)
        for _ in range(self.steps - 1):
            xi = torch.softmax(self.beta * xi @ keys.t(), dim=-1) @ keys
        return torch.softmax(self.beta * xi @ keys.t(), dim=-1) @ self.value(self.patterns)
