"""GIN without edge features (Xu et al. 2019), the graph-classification layout of the GraphNorm paper.

Xu, Hu, Leskovec, Jegelka, "How Powerful are Graph Neural Networks?", ICLR 2019; layout and
normalization placement of Cai et al., "GraphNorm", ICML 2021 (their TU experiments)::

    h_0 = x
    a   = (1 + eps) h + sum_{u -> v} h_u                (PyG's GINConv aggregation)
    h'  = act(Norm(Linear(act(Norm(Linear(a))))))       2-layer MLP, Norm after every linear map
    h'  = h' + h  for every layer after the first       (residual)

The graph embedding is the sum (or mean) over the nodes of the last layer only; a linear layer
with dropout maps it to class logits (:class:`molgraph.methods.graph_classification.GraphClassifier`).
"""

from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import GINConv

from molgraph.nn.ffn import get_activation
from molgraph.nn.norm import NORMS, make_norm

__all__ = ["GINEncoder"]


class GINEncoder(nn.Module):
    """Stack of GIN layers with a choice of normalization: ``(N, in_dim) -> (N, hidden_dim)``.

    Args:
        in_dim: node feature width.
        hidden_dim: layer width (64 in the GraphNorm TU experiments).
        num_layers: GIN layers (4 in those experiments: their "5 layers" count the input).
        norm: ``"graph" | "batch" | "layer" | "instance" | "none"`` (:mod:`molgraph.nn.norm`).
        activation: activation name.
        train_eps: learn GIN's ``eps`` (off in the GraphNorm TU code).
        residual: add each layer's input to its output for layers after the first.
        eps: GIN's ``eps``, or its initial value when learned (default 0). ``eps=1`` is GIN with a
            self-loop on every node, as in the GraphNorm reference's TU data (``--self_loop``).
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int = 64,
        num_layers: int = 4,
        norm: str = "graph",
        activation: str = "relu",
        train_eps: bool = False,
        residual: bool = True,
        eps: float = 0.0,
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; choose one of {list(NORMS)}")
        self.in_dim, self.hidden_dim, self.num_layers = int(in_dim), int(hidden_dim), int(num_layers)
        self.norm, self.residual = norm, bool(residual)
        self.convs = nn.ModuleList()  # GINConv whose nn is the MLP's first Linear
        self.mlp_norms = nn.ModuleList()
        self.mlp_out = nn.ModuleList()
        self.norms = nn.ModuleList()
        for layer in range(self.num_layers):
            width_in = self.in_dim if layer == 0 else self.hidden_dim
            # the MLP is split at its norm: GINConv cannot pass the batch vector a per-graph norm needs
            self.convs.append(GINConv(nn.Linear(width_in, self.hidden_dim), eps=float(eps), train_eps=train_eps))
            self.mlp_norms.append(make_norm(norm, self.hidden_dim))
            self.mlp_out.append(nn.Linear(self.hidden_dim, self.hidden_dim))
            self.norms.append(make_norm(norm, self.hidden_dim))
        self.act = get_activation(activation)

    @property
    def output_dim(self) -> int:
        return self.hidden_dim

    def reset_parameters(self) -> None:
        for conv, n1, lin, n2 in zip(self.convs, self.mlp_norms, self.mlp_out, self.norms):
            conv.reset_parameters()
            n1.reset_parameters()
            lin.reset_parameters()
            n2.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None, batch: Tensor | None = None,
                batch_size: int | None = None) -> Tensor:
        """Node embeddings of the last layer (the encoders' shared signature).

        Args:
            x: ``(N, in_dim)`` float node features.
            edge_index: ``(2, E)`` int64 (both directions for undirected graphs).
            edge_attr: ignored: this GIN has no edge features (the TU graphs have none).
            batch: ``(N,)`` graph index per node (``None``: one graph).
            batch_size: number of graphs (saves the per-graph norms a host sync).

        Returns:
            ``(N, hidden_dim)``.
        """
        h = x
        for layer, (conv, n1, lin, n2) in enumerate(zip(self.convs, self.mlp_norms, self.mlp_out, self.norms)):
            out = self.act(n1(conv(h, edge_index), batch, batch_size))
            out = self.act(n2(lin(out), batch, batch_size))
            h = out + h if self.residual and layer > 0 else out
        return h

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, hidden_dim={self.hidden_dim}, num_layers={self.num_layers}, norm={self.norm!r}"
