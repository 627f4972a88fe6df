"""GIN with edge features (GINE), as in Hu et al. 2020.

Hu, Liu, Gomes, Zitnik, Liang, Pande, Leskovec, "Strategies for Pre-training Graph Neural
Networks", ICLR 2020 (arXiv:1905.12265). The convolution is PyG's ``GINEConv``:
``h_v' = MLP((1 + eps) h_v + sum_{u -> v} act(h_u + lin(e_uv)))``.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import GINEConv

from molgraph.nn.ffn import get_activation

__all__ = ["GINEEncoder"]


class GINEEncoder(nn.Module):
    """Stack of ``GINEConv`` layers: atom and bond features -> ``(N, hidden_dim)`` embeddings.

    ``Linear(atom_dim, hidden_dim)``, then per layer::

        h = GINEConv(MLP)(h, edge_index, edge_attr)     MLP = Linear(d, 2d)-BN-act-Linear(2d, d)
        h = dropout(act(BN(h)))                           (+ h_in if residual)

    The MLP is twice as wide inside, as in Hu et al.; ``GINEConv(edge_dim=bond_dim)`` projects the
    bond features to ``hidden_dim`` itself, so bonds need no separate encoder.

    Args:
        atom_dim: atom feature width (float input).
        bond_dim: bond feature width (float input).
        hidden_dim: embedding width.
        depth: number of GINE layers (>= 1).
        dropout: dropout probability after each layer.
        batch_norm: batch normalization after each layer and inside each MLP (off: identity).
        activation: activation name (see :func:`molgraph.nn.ffn.get_activation`).
        train_eps: learn GIN's ``eps`` (initialized at 0).
        residual: add each layer's input to its output (off in Hu et al.).
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
    ):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.atom_dim = int(atom_dim)
        self.bond_dim = int(bond_dim)
        self.hidden_dim = int(hidden_dim)
        self.depth = int(depth)
        self.residual = bool(residual)

        def norm(width: int) -> nn.Module:
            return nn.BatchNorm1d(width) if batch_norm else nn.Identity()

        self.input = nn.Linear(self.atom_dim, self.hidden_dim)
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for _ in range(self.depth):
            mlp = nn.Sequential(
                nn.Linear(self.hidden_dim, 2 * self.hidden_dim),
                norm(2 * self.hidden_dim),
                get_activation(activation),
                nn.Linear(2 * self.hidden_dim, self.hidden_dim),
            )
            self.convs.append(GINEConv(mlp, train_eps=train_eps, edge_dim=self.bond_dim))
            self.norms.append(norm(self.hidden_dim))
        self.act = get_activation(activation)
        self.dropout = nn.Dropout(dropout)

    @property
    def output_dim(self) -> int:
        return self.hidden_dim

    def reset_parameters(self) -> None:
        self.input.reset_parameters()
        for conv, norm in zip(self.convs, self.norms):
            conv.reset_parameters()  # its MLP (incl. batch norm), edge projection and eps
            if hasattr(norm, "reset_parameters"):
                norm.reset_parameters()
        if hasattr(self.act, "reset_parameters"):  # PReLU
            self.act.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        """Atom embeddings.

        Args:
            x: ``(N, atom_dim)`` float atom features.
            edge_index: ``(2, E)`` int64.
            edge_attr: ``(E, bond_dim)`` float bond features.

        Returns:
            ``(N, hidden_dim)``.
        """
        h = self.input(x)
        for conv, norm in zip(self.convs, self.norms):
            out = self.dropout(self.act(norm(conv(h, edge_index, edge_attr))))
            h = out + h if self.residual else out
        return h

    def extra_repr(self) -> str:
        return (
            f"atom_dim={self.atom_dim}, bond_dim={self.bond_dim}, hidden_dim={self.hidden_dim}, "
            f"depth={self.depth}, residual={self.residual}"
        )
