"""Input encoders: raw atom/bond features -> dense vectors.

Index-encoded featurizer presets (``"ogb"``, ``"pyg"``) give one integer column per categorical
feature; those go through one embedding table per column, summed (OGB's ``AtomEncoder`` /
``BondEncoder``). Float presets (``"multihot"``) go through a single linear layer.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["InputEncoder"]


class InputEncoder(nn.Module):
    """Maps ``(n, in_dim)`` atom or bond features to ``(n, out_dim)`` float vectors.

    Args:
        in_dim: input columns.
        out_dim: output width.
        cardinalities: per-column vocabulary sizes for index-encoded (int64) input; one
            ``nn.Embedding(card, out_dim)`` per column, summed. ``None``: float input through
            ``nn.Linear(in_dim, out_dim)``.

    Raises:
        ValueError: ``len(cardinalities) != in_dim`` or a cardinality below 1.
    """

    def __init__(self, in_dim: int, out_dim: int, cardinalities: Sequence[int] | None = None):
        super().__init__()
        self.in_dim = int(in_dim)
        self.out_dim = int(out_dim)
        self.cardinalities = None if cardinalities is None else [int(c) for c in cardinalities]
        self.embeddings: nn.ModuleList | None = None
        self.linear: nn.Linear | None = None
        if self.cardinalities is not None:
            if len(self.cardinalities) != self.in_dim:
                raise ValueError(
                    f"got {len(self.cardinalities)} cardinalities for {self.in_dim} input columns"
                )
            if any(c < 1 for c in self.cardinalities):
                raise ValueError(f"cardinalities must be >= 1, got {self.cardinalities}")
            self.embeddings = nn.ModuleList(nn.Embedding(c, self.out_dim) for c in self.cardinalities)
        else:
            self.linear = nn.Linear(self.in_dim, self.out_dim)
        self.reset_parameters()

    @property
    def is_index(self) -> bool:
        """Whether this encoder expects index-encoded (integer) input."""
        return self.embeddings is not None

    def reset_parameters(self) -> None:
        if self.embeddings is not None:
            # Xavier (as OGB's encoders) rather than nn.Embedding's N(0, 1): a sum of ~9 unit-variance
            # rows would start the network with activations ~3x larger than a Linear layer gives.
            for emb in self.embeddings:
                nn.init.xavier_uniform_(emb.weight)
        else:
            self.linear.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``(n, in_dim)`` (int64 with cardinalities, float otherwise) -> ``(n, out_dim)``."""
        if self.embeddings is None:
            return self.linear(x)
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"expected index input of shape (n, {self.in_dim}), got {tuple(x.shape)}")
        if x.is_floating_point():
            raise TypeError("index-encoded input must be an integer tensor, got " + str(x.dtype))
        out = self.embeddings[0](x[:, 0])
        for i in range(1, len(self.embeddings)):
            out = out + self.embeddings[i](x[:, i])
        return out

    def extra_repr(self) -> str:
        kind = f"cardinalities={self.cardinalities}" if self.is_index else "linear"
        return f"in_dim={self.in_dim}, out_dim={self.out_dim}, {kind}"
