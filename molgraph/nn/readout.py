"""Graph readout: atom embeddings -> one vector per graph."""

from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool
from torch_geometric.nn.aggr import AttentionalAggregation

from molgraph.registry import READOUTS

__all__ = ["READOUTS", "Readout"]

#: Readout kinds. ``"norm"`` is chemprop v2's default aggregation: the sum divided by 100.
for _name, _help in (
    ("sum", "sum of the node embeddings"),
    ("mean", "mean of the node embeddings"),
    ("max", "elementwise maximum"),
    ("attention", "attention-weighted sum (one learned gate per node)"),
    ("norm", "sum / 100, chemprop's default"),
):
    READOUTS.register(_name, _name, help=_help)

_NORM = 100.0


class Readout(nn.Module):
    """Pools ``(N, d)`` node embeddings into ``(B, d)`` graph embeddings.

    Args:
        kind: ``"sum"``, ``"mean"``, ``"max"``, ``"attention"`` (softmax-gated sum, gate
            ``Linear(hidden_dim, 1)``, via PyG's ``AttentionalAggregation``) or ``"norm"``
            (sum / 100, chemprop v2's default).
        hidden_dim: embedding width; required for ``"attention"``.

    Raises:
        ValueError: unknown ``kind`` (the message lists the allowed ones), or ``"attention"``
            without ``hidden_dim``.
    """

    def __init__(self, kind: str = "mean", hidden_dim: int | None = None):
        super().__init__()
        if kind not in READOUTS:
            raise ValueError(f"unknown readout {kind!r}; choose one of {list(READOUTS)}")
        self.kind = kind
        self.hidden_dim = hidden_dim
        self.attention: AttentionalAggregation | None = None
        if kind == "attention":
            if hidden_dim is None:
                raise ValueError("the 'attention' readout needs hidden_dim")
            self.attention = AttentionalAggregation(gate_nn=nn.Linear(hidden_dim, 1))

    def reset_parameters(self) -> None:
        if self.attention is not None:
            self.attention.reset_parameters()

    def forward(self, h: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        """Pool node embeddings.

        Args:
            h: ``(N, d)`` node embeddings.
            batch: ``(N,)`` int64 graph index of every node (sorted, as PyG batches are).
            num_graphs: ``B`` (passed explicitly so trailing empty graphs still get a row and no
                device sync is needed to find it).

        Returns:
            ``(B, d)``; a graph without nodes gets a row of zeros, whatever the kind.
        """
        if self.kind == "sum":
            return global_add_pool(h, batch, num_graphs)
        if self.kind == "mean":
            return global_mean_pool(h, batch, num_graphs)
        if self.kind == "max":
            return global_max_pool(h, batch, num_graphs)
        if self.kind == "norm":
            return global_add_pool(h, batch, num_graphs) / _NORM
        return self.attention(h, index=batch, dim_size=num_graphs)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"
