"""GIN with edge features (GINE), as in Hu et al. 2020.

Hu, Liu, Gomes, Zitnik, Liang, Pande, Leskovec, "Strategies for Pre-training Graph Neural
Networks", ICLR 2020 (arXiv:1905.12265). The convolution is PyG's ``GINEConv``:
``h_v' = MLP((1 + eps) h_v + sum_{u -> v} act(h_u + lin(e_uv)))``.
The GraphNorm reference's molecule GIN (Cai et al. 2021, lsj2408/GraphNorm ``ogbg_ws``) differs in
two places, both switchable here: its messages are ``h_u + e_uv`` without the activation, and its
last layer has no activation (as in Hu et al.'s own code).
"""

from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import GINEConv

from molgraph.nn.encoders import InputEncoder
from molgraph.nn.ffn import get_activation
from molgraph.nn.norm import NORMS, make_norm

__all__ = ["GINEEncoder", "LinearMessageGINEConv"]


class LinearMessageGINEConv(GINEConv):
    """``GINEConv`` whose messages are ``h_u + e_uv`` (no activation), the GraphNorm reference's GIN."""

    def message(self, x_j: Tensor, edge_attr: Tensor) -> Tensor:
        if self.lin is not None:
            edge_attr = self.lin(edge_attr)
        return x_j + edge_attr


class GINEEncoder(nn.Module):
    """Stack of ``GINEConv`` layers: atom and bond features -> ``(N, hidden_dim)`` embeddings.

    ``Linear(atom_dim, hidden_dim)``, then per layer::

        a = (1 + eps) h + sum_{u -> v} relu(h_u + lin(e_uv))     (GINEConv's aggregation)
        h = Linear(2d, d)(act(Norm(Linear(d, 2d)(a))))         the GIN MLP, twice as wide inside
        h = dropout(act(Norm(h)))                               (+ h_in if residual)

    With ``message_activation=False`` the messages are ``h_u + lin(e_uv)``; with
    ``last_activation=False`` the last layer's ``act`` after ``Norm`` is left out.

    ``Norm`` is chosen by ``norm`` (:mod:`molgraph.nn.norm`): after each linear map and before
    the activation, the placement of Hu et al. (batch norm) and of Cai et al. 2021 (GraphNorm).
    The bond term ``lin(e_uv)`` is each layer's own encoder of the raw bond features: a Linear
    for float features, summed embedding tables for index-encoded ones (OGB's ``BondEncoder`` per
    layer, as in Hu et al.'s code); atoms are embedded once the same way. Index input is thus
    never widened to ``hidden_dim`` and projected again per layer, which over ``E ~ 2N`` bond rows
    would cost more than the layer's own MLP input.

    Args:
        atom_dim: atom feature columns.
        bond_dim: bond feature columns.
        hidden_dim: embedding width.
        depth: number of GINE layers (>= 1).
        dropout: dropout probability after each layer.
        batch_norm: used when ``norm`` is ``None``: ``True`` means ``"batch"``, ``False`` ``"none"``.
        norm: ``"graph" | "batch" | "layer" | "instance" | "none"`` (see :mod:`molgraph.nn.norm`).
        activation: activation name (see :func:`molgraph.nn.ffn.get_activation`).
        train_eps: learn GIN's ``eps`` (initialized at 0).
        residual: add each layer's input to its output (off in Hu et al.).
        atom_cardinalities, bond_cardinalities: per-column vocabulary sizes of index-encoded
            (int64) atom/bond features; ``None``: float features.
        norm_eps: the norms' ``eps`` (``None``: each norm's default, 1e-5).
        message_activation: apply ``act`` (ReLU) to each message ``h_u + lin(e_uv)`` (GINEConv, Hu
            et al.); ``False``: sum the messages as they are (the GraphNorm reference's GIN).
        last_activation: apply ``act`` after the last layer's ``Norm`` too; ``False``: the last layer
            ends at its norm (Hu et al.'s code and the GraphNorm reference's).
    """

    def __init__(
        self,
        atom_dim: int,
        bond_dim: int,
        hidden_dim: int = 300,
        depth: int = 5,
        dropout: float = 0.0,
        batch_norm: bool = True,
        activation: str = "relu",
        train_eps: bool = True,
        residual: bool = False,
        norm: str | None = None,
        atom_cardinalities: list[int] | None = None,
        bond_cardinalities: list[int] | None = None,
        norm_eps: float | None = None,
        message_activation: bool = True,
        last_activation: bool = True,
    ):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if norm is None:
            norm = "batch" if batch_norm else "none"
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; choose one of {list(NORMS)}")
        self.norm = norm
        self.atom_dim = int(atom_dim)
        self.bond_dim = int(bond_dim)
        self.hidden_dim = int(hidden_dim)
        self.depth = int(depth)
        self.residual = bool(residual)
        self.message_activation = bool(message_activation)
        self.last_activation = bool(last_activation)

        self.input = InputEncoder(self.atom_dim, self.hidden_dim, atom_cardinalities)
        self.bond_encoders = nn.ModuleList(
            InputEncoder(self.bond_dim, self.hidden_dim, bond_cardinalities) for _ in range(self.depth)
        )
        self.convs = nn.ModuleList()  # GINEConv with nn = the MLP's first Linear (d -> 2d)
        self.inner_norms = nn.ModuleList()
        self.outs = nn.ModuleList()  # the MLP's second Linear (2d -> d)
        self.norms = nn.ModuleList()
        conv_cls = GINEConv if self.message_activation else LinearMessageGINEConv
        for _ in range(self.depth):
            # the MLP is split at its norm, which needs the batch vector that GINEConv cannot pass
            first = nn.Linear(self.hidden_dim, 2 * self.hidden_dim)
            self.convs.append(conv_cls(first, train_eps=train_eps))  # bonds come encoded (bond_encoders)
            self.inner_norms.append(make_norm(norm, 2 * self.hidden_dim, norm_eps))
            self.outs.append(nn.Linear(2 * self.hidden_dim, self.hidden_dim))
            self.norms.append(make_norm(norm, self.hidden_dim, norm_eps))
        self.act = get_activation(activation)
        self.dropout = nn.Dropout(dropout)

    @property
    def output_dim(self) -> int:
        return self.hidden_dim

    def reset_parameters(self) -> None:
        self.input.reset_parameters()
        for bond_encoder in self.bond_encoders:
            bond_encoder.reset_parameters()
        for conv, inner, out, norm in zip(self.convs, self.inner_norms, self.outs, self.norms):
            conv.reset_parameters()  # its first Linear and eps
            inner.reset_parameters()
            out.reset_parameters()
            norm.reset_parameters()
        if hasattr(self.act, "reset_parameters"):  # PReLU
            self.act.reset_parameters()

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor | None = None,
        batch_size: int | None = None,
    ) -> Tensor:
        """Atom embeddings.

        Args:
            x: ``(N, atom_dim)`` atom features (int64 when built with cardinalities, else float).
            edge_index: ``(2, E)`` int64.
            edge_attr: ``(E, bond_dim)`` bond features (likewise).
            batch: ``(N,)`` graph index per atom (needed by the per-graph norms; ``None``: one graph).
            batch_size: number of graphs (saves the per-graph norms a host sync).

        Returns:
            ``(N, hidden_dim)``.
        """
        h = self.input(x)
        layers = zip(self.bond_encoders, self.convs, self.inner_norms, self.outs, self.norms)
        for i, (bond_encoder, conv, inner, lin, norm) in enumerate(layers):
            a = self.act(inner(conv(h, edge_index, bond_encoder(edge_attr)), batch, batch_size))
            out = norm(lin(a), batch, batch_size)
            if self.last_activation or i < self.depth - 1:
                out = self.act(out)
            out = self.dropout(out)
            h = out + h if self.residual else out
        return h

    def extra_repr(self) -> str:
        return (
            f"atom_dim={self.atom_dim}, bond_dim={self.bond_dim}, hidden_dim={self.hidden_dim}, "
            f"depth={self.depth}, norm={self.norm!r}, residual={self.residual}, index_input={self.input.is_index}, "
            f"message_activation={self.message_activation}, last_activation={self.last_activation}"
        )
