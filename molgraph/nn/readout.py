"""Graph readout: atom embeddings -> one vector per graph."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool
from torch_geometric.nn.aggr import AttentionalAggregation

from molgraph.nn.hopfield import HopfieldPooling
from molgraph.registry import READOUTS

__all__ = ["READOUTS", "Readout"]

#: Readout kinds. ``"norm"`` is chemprop v2's default aggregation: the sum divided by 100.
for _name, _help in (
    ("sum", "sum of the node embeddings"),
    ("mean", "mean of the node embeddings"),
    ("max", "elementwise maximum"),
    ("attention", "attention-weighted sum (one learned gate per node)"),
    ("norm", "sum / 100, chemprop's default"),
    ("hopfield", "modern Hopfield pooling: learned queries retrieve from the nodes (Ramsauer et al. 2021)"),
):
    READOUTS.register(_name, _name, help=_help)

_NORM = 100.0


class Readout(nn.Module):
    """Pools ``(N, d)`` node embeddings into ``(B, d)`` graph embeddings.

    Args:
        kind: ``"sum"``, ``"mean"``, ``"max"``, ``"attention"`` (softmax-gated sum, gate
            ``Linear(hidden_dim, 1)``, via PyG's ``AttentionalAggregation``) or ``"norm"``
            (sum / 100, chemprop v2's default) or ``"hopfield"`` (:class:`HopfieldPooling`: learned
            queries retrieve from the graph's nodes).
        hidden_dim: embedding width; required for ``"attention"`` and ``"hopfield"``.
        options: keyword arguments of :class:`HopfieldPooling` (``num_queries``, ``beta``, ``steps``,
            ``key_dim``) for ``"hopfield"``; no other kind takes any.

    Raises:
        ValueError: unknown ``kind`` (the message lists the allowed ones), or ``"attention"``
            without ``hidden_dim``.
    """

    def __init__(self, kind: str = "mean", hidden_dim: int | None = None, **options: Any):
        super().__init__()
        if kind not in READOUTS:
            raise ValueError(f"unknown readout {kind!r}; choose one of {list(READOUTS)}")
        if options and kind != "hopfield":
            raise ValueError(f"the {kind!r} readout takes no options, got {sorted(options)}")
        self.kind = kind
        self.hidden_dim = hidden_dim
        self.attention: AttentionalAggregation | None = None
        self.hopfield: HopfieldPooling | None = None
        if kind in ("attention", "hopfield") and hidden_dim is None:
            raise ValueError(f"the {kind!r} readout needs hidden_dim")
        if kind == "attention":
            self.attention = AttentionalAggregation(gate_nn=nn.Linear(hidden_dim, 1))
        if kind == "hopfield":
            self.hopfield = HopfieldPooling(hidden_dim, **options)

    def reset_parameters(self) -> None:
        for part in (self.attention, self.hopfield):
            if part is not None:
                part.reset_parameters()

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
        if self.hopfield is not None:
            return self.hopfield(h, batch, num_graphs)
        return self.attention(h, index=batch, dim_size=num_graphs)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"
