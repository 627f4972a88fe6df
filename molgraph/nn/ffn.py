"""Feed-forward head and the activation-name lookup shared by the layers in this package."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from molgraph.registry import ACTIVATIONS

__all__ = ["ACTIVATIONS", "FFN", "get_activation"]

# Names accepted wherever a layer takes ``activation=``. LeakyReLU uses chemprop's slope (0.1).
for _name, _factory in (
    ("relu", nn.ReLU),
    ("leakyrelu", lambda: nn.LeakyReLU(0.1)),
    ("prelu", nn.PReLU),
    ("tanh", nn.Tanh),
    ("elu", nn.ELU),
    ("selu", nn.SELU),
    ("gelu", nn.GELU),
    ("silu", nn.SiLU),
):
    ACTIVATIONS.register(_name, _factory, help=_name)


def get_activation(name: str) -> nn.Module:
    """A fresh activation module for ``name`` (case-insensitive; see :data:`ACTIVATIONS`).

    Raises:
        ValueError: unknown name (the message lists the allowed ones).
    """
    key = str(name).lower().replace("_", "")
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[key]()


class FFN(nn.Module):
    """Multilayer perceptron head: ``(B, in_dim) -> (B, out_dim)``.

    ``num_layers`` hidden blocks ``[Dropout, Linear, act]`` then ``[Dropout, Linear(out_dim)]``
    (chemprop v1 ordering); ``num_layers=0`` is a single ``Linear(in_dim, out_dim)``.

    Args:
        in_dim: input width.
        out_dim: output width (number of tasks).
        hidden_dim: width of each hidden layer.
        num_layers: number of hidden layers (>= 0).
        dropout: dropout probability before every Linear.
        activation: activation name (see :func:`get_activation`).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden_dim: int = 300,
        num_layers: int = 1,
        dropout: float = 0.0,
        activation: str = "relu",
    ):
        super().__init__()
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}")
        layers: list[nn.Module] = []
        width = in_dim
        for _ in range(num_layers):
            layers += [nn.Dropout(dropout), nn.Linear(width, hidden_dim), get_activation(activation)]
            width = hidden_dim
        if num_layers == 0:
            layers.append(nn.Linear(width, out_dim))
        else:
            layers += [nn.Dropout(dropout), nn.Linear(width, out_dim)]
        self.layers = nn.Sequential(*layers)

    def reset_parameters(self) -> None:
        for module in self.layers:
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``(B, in_dim)`` -> ``(B, out_dim)``."""
        return self.layers(x)
