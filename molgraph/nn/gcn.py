"""GCN with bond features, the molecule GCN of the OGB baselines (Hu et al. 2020, "Open Graph
Benchmark", NeurIPS 2020) on which Cai et al. 2021 compare GraphNorm with BatchNorm.

Kipf & Welling's propagation ``D^-1/2 (A + I) D^-1/2 H W`` with the bond features entering the
messages. For atom ``v`` with ``d_v`` = in-degree + 1 (the self loop)::

    m_uv  = relu(W h_u + lin_e(e_uv)) / sqrt(d_u d_v)              over bonds u -> v
    h'_v  = sum_u m_uv + relu(W h_v + r) / d_v                      (r: learned self-loop embedding)

The self loop carries no bond, so it gets its own learned vector ``r``.

:class:`MeanBondConv` is the other propagation on offer (``GCNEncoder(propagation="mean")``): the
molecule "GCN" of the GraphNorm reference (Cai et al. 2021, lsj2408/GraphNorm, ``ogbg_ws``), on
which the paper's ogbg-molhiv number (test ROC-AUC 0.788) was measured::

    h'_v = W ((1 + eps) h_v + mean_{u -> v} (h_u + e_uv)) + b

The mean replaces the degree weights, no ReLU sits inside the messages, and the one linear map
comes after the aggregation, so the norm that follows sees a dense linear output. (With the
ReLU inside the messages, many of a molecule's features are zero on all but a few atoms, and a
per-graph norm blows their tiny values up to unit size; see ``benchmarks/graphnorm.py``.)

Index-encoded (OGB-style) features are embedded the way the OGB baseline does it: the atoms once
(``AtomEncoder``: one table per column, summed, straight to ``hidden_dim``), the bonds in every
layer by the layer's own tables (``BondEncoder`` per layer). Besides matching the baseline this
keeps the bond term a gather: a ``Linear(hidden, hidden)`` over all ``E ~ 2N`` bond rows per layer
costs twice the atoms' own matmul.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import degree

from molgraph.nn.encoders import InputEncoder
from molgraph.nn.ffn import get_activation
from molgraph.nn.norm import NORMS, make_norm
from molgraph.registry import PROPAGATIONS

__all__ = ["PROPAGATIONS", "BondGCNConv", "GCNEncoder", "MeanBondConv"]

#: ``GCNEncoder(propagation=)``: Kipf & Welling's symmetric weights, or the GraphNorm reference's mean.
PROPAGATIONS.register("symmetric", "symmetric", help="Kipf & Welling weights, the OGB baseline")
PROPAGATIONS.register("mean", "mean", help="mean over neighbours, the GraphNorm reference's molecule GCN")


class BondGCNConv(MessagePassing):
    """One GCN propagation with bond features in the messages (see the module docstring).

    Args:
        channels: input and output width ``d``.
        edge_dim: bond feature columns.
        edge_cardinalities: per-column vocabulary sizes when the bond features are index-encoded
            (int64; this layer's own embedding tables, summed, give ``lin_e``); ``None``: float
            features, ``lin_e`` is a Linear.
    """

    def __init__(self, channels: int, edge_dim: int, edge_cardinalities: list[int] | None = None):
        super().__init__(aggr="add")
        self.channels = int(channels)
        self.lin = nn.Linear(channels, channels)
        self.edge_encoder = InputEncoder(edge_dim, channels, edge_cardinalities)
        self.root = nn.Parameter(torch.empty(1, channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()
        self.edge_encoder.reset_parameters()
        nn.init.zeros_(self.root)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        """``(N, d), (2, E), (E, edge_dim) -> (N, d)`` (``edge_attr`` int64 when index-encoded)."""
        h = self.lin(x)
        src, dst = edge_index
        deg = degree(dst, h.size(0), dtype=h.dtype) + 1.0
        inv_sqrt = deg.rsqrt()
        weight = inv_sqrt[src] * inv_sqrt[dst]
        out = self.propagate(edge_index, x=h, edge_attr=self.edge_encoder(edge_attr), weight=weight)
        return out + torch.relu(h + self.root) / deg.unsqueeze(1)

    def message(self, x_j: Tensor, edge_attr: Tensor, weight: Tensor) -> Tensor:
        return weight.unsqueeze(1) * torch.relu(x_j + edge_attr)


class MeanBondConv(MessagePassing):
    """Mean aggregation of ``h_u + e_uv``, the atom's own ``(1 + eps) h_v``, then one linear map.

    ``h'_v = Linear((1 + eps) h_v + mean_{u -> v}(h_u + lin_e(e_uv)))``; an atom without bonds
    gets ``Linear((1 + eps) h_v)``. See the module docstring.

    Args:
        channels: input and output width ``d``.
        edge_dim: bond feature columns.
        edge_cardinalities: as in :class:`BondGCNConv` (this layer's own bond embedding tables).
        eps: initial value of ``eps`` (the reference: 0).
        train_eps: learn ``eps`` (the reference: fixed).
    """

    def __init__(self, channels: int, edge_dim: int, edge_cardinalities: list[int] | None = None,
                 eps: float = 0.0, train_eps: bool = False):
        super().__init__(aggr="mean")
        self.channels = int(channels)
        self.initial_eps = float(eps)
        self.lin = nn.Linear(channels, channels)
        self.edge_encoder = InputEncoder(edge_dim, channels, edge_cardinalities)
        if train_eps:
            self.eps = nn.Parameter(torch.empty(1))
        else:
            self.register_buffer("eps", torch.empty(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()
        self.edge_encoder.reset_parameters()
        self.eps.data.fill_(self.initial_eps)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        """``(N, d), (2, E), (E, edge_dim) -> (N, d)`` (``edge_attr`` int64 when index-encoded)."""
        neigh = self.propagate(edge_index, x=x, edge_attr=self.edge_encoder(edge_attr))
        return self.lin((1.0 + self.eps) * x + neigh)

    def message(self, x_j: Tensor, edge_attr: Tensor) -> Tensor:
        return x_j + edge_attr


class GCNEncoder(nn.Module):
    """Stack of :class:`BondGCNConv` (or :class:`MeanBondConv`): atom and bond features -> ``(N, hidden_dim)``.

    The input map (``Linear(atom_dim, hidden_dim)``, or summed embedding tables for index-encoded
    atoms), then per layer ``h = dropout(act(Norm(conv(h))))`` (the
    norm after the linear map of the convolution, before the activation; no activation after the
    last layer, as in the OGB baseline), ``+ h_in`` if ``residual``.

    Args:
        atom_dim, bond_dim: input feature columns.
        hidden_dim: embedding width.
        depth: number of layers (>= 1).
        dropout: dropout probability after each layer.
        norm: ``"graph" | "batch" | "layer" | "instance" | "none"`` (:mod:`molgraph.nn.norm`).
        activation: activation name.
        residual: add each layer's input to its output.
        atom_cardinalities, bond_cardinalities: per-column vocabulary sizes of index-encoded
            (int64) atom/bond features, embedded as in the OGB baseline (module docstring);
            ``None``: float features.
        norm_eps: the norms' ``eps`` (``None``: each norm's default, 1e-5).
        propagation: ``"symmetric"`` (:class:`BondGCNConv`, the OGB baseline) or ``"mean"``
            (:class:`MeanBondConv`, the GraphNorm reference's molecule GCN).
    """

    def __init__(self, atom_dim: int, bond_dim: int, hidden_dim: int = 300, depth: int = 5, dropout: float = 0.0,
                 norm: str = "batch", activation: str = "relu", residual: bool = False,
                 atom_cardinalities: list[int] | None = None, bond_cardinalities: list[int] | None = None,
                 norm_eps: float | None = None, propagation: str = "symmetric"):
        super().__init__()
        if propagation not in PROPAGATIONS:
            raise ValueError(f"unknown propagation {propagation!r}; choose one of {list(PROPAGATIONS)}")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; choose one of {list(NORMS)}")
        self.atom_dim, self.bond_dim = int(atom_dim), int(bond_dim)
        self.hidden_dim, self.depth, self.norm = int(hidden_dim), int(depth), norm
        self.residual = bool(residual)
        self.propagation = propagation
        self.input = InputEncoder(self.atom_dim, self.hidden_dim, atom_cardinalities)
        conv_cls = BondGCNConv if propagation == "symmetric" else MeanBondConv
        self.convs = nn.ModuleList(conv_cls(self.hidden_dim, self.bond_dim, bond_cardinalities)
                                   for _ in range(self.depth))
        self.norms = nn.ModuleList(make_norm(norm, self.hidden_dim, norm_eps) for _ in range(self.depth))
        self.act = get_activation(activation)
        self.dropout = nn.Dropout(dropout)

    @property
    def output_dim(self) -> int:
        return self.hidden_dim

    def reset_parameters(self) -> None:
        self.input.reset_parameters()
        for conv, norm in zip(self.convs, self.norms):
            conv.reset_parameters()
            norm.reset_parameters()
        if hasattr(self.act, "reset_parameters"):
            self.act.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor | None = None,
                batch_size: int | None = None) -> Tensor:
        """Atom embeddings ``(N, hidden_dim)``; ``batch``/``batch_size`` as in :class:`GINEEncoder`.

        ``x``/``edge_attr`` are int64 where the encoder was built with cardinalities.
        """
        h = self.input(x)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            out = norm(conv(h, edge_index, edge_attr), batch, batch_size)
            if i < self.depth - 1:
                out = self.act(out)
            out = self.dropout(out)
            h = out + h if self.residual else out
        return h

    def extra_repr(self) -> str:
        return (f"atom_dim={self.atom_dim}, bond_dim={self.bond_dim}, hidden_dim={self.hidden_dim}, "
                f"depth={self.depth}, propagation={self.propagation!r}, norm={self.norm!r}, residual={self.residual}, "
                f"index_input={self.input.is_index}")
