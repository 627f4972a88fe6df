"""Normalization layers for node features, and one switch to choose among them.

:class:`GraphNorm` is the layer of Cai, Luo, Xu, He, Liu, Wang, "GraphNorm: A Principled Approach
to Accelerating Graph Neural Network Training", ICML 2021 (arXiv:2009.03294). For graph ``G``
with ``n`` nodes and feature column ``j``::

    mu_j     = (1/n) sum_i h_ij
    s_ij     = h_ij - alpha_j * mu_j                  (alpha: the learnable shift, init 1)
    var_j    = (1/n) sum_i s_ij ** 2                  (biased variance of the shifted values)
    out_ij   = gamma_j * s_ij / sqrt(var_j + eps) + beta_j

There are no running statistics, so training and evaluation compute the same function. With
``learn_shift=False`` (alpha fixed at 1) it is instance normalization with an affine map.

:func:`make_norm` builds ``"graph" | "batch" | "layer" | "instance" | "none"`` behind one call
signature, ``norm(x, batch, batch_size)``, so every block of the package can take ``norm=``.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

__all__ = ["NORMS", "GraphNorm", "NodeNorm", "make_norm"]

NORMS = ("graph", "batch", "layer", "instance", "none")
NormName = Literal["graph", "batch", "layer", "instance", "none"]


def _graph_sum(values: Tensor, batch: Tensor, batch_size: int) -> Tensor:
    """Per-graph sum of node rows, ``(batch_size, F)``."""
    return values.new_zeros(batch_size, values.size(1)).index_add_(0, batch, values)


class _GraphNormFunction(torch.autograd.Function):
    """GraphNorm forward and a hand-derived backward.

    Autograd through the dozen elementwise/scatter ops of the forward would record each one and
    replay its backward; the closed-form backward below needs 2 scatters, 2 gathers and a few
    elementwise passes over the ``(N, F)`` nodes, which keeps the layer close to BatchNorm's cost.
    With ``s = x - alpha * mu_g``, ``r_g = (var_g + eps)^-1/2``, ``y = gamma * s * r_g + beta``
    and ``g = dL/dy``::

        P_g     = sum_{i in g} g_i * s_i
        dgamma  = sum_g r_g * P_g                 dbeta = sum_i g_i
        dvar_g  = -0.5 * gamma * r_g^3 * P_g
        ds_i    = gamma * r_g * g_i + 2 * s_i * dvar_g / n_g
        Q_g     = sum_{i in g} ds_i
        dx_i    = ds_i - alpha * Q_g / n_g        dalpha = -sum_g mu_g * Q_g
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, batch: Tensor, batch_size: int, weight: Tensor, bias: Tensor,
                mean_scale: Tensor, eps: float) -> Tensor:
        counts = torch.bincount(batch, minlength=batch_size).clamp_(min=1).to(x.dtype).unsqueeze(1)
        inv_counts = counts.reciprocal()
        mean = _graph_sum(x, batch, batch_size) * inv_counts  # (B, F)
        shifted = x - (mean * mean_scale).index_select(0, batch)
        var = _graph_sum(shifted * shifted, batch, batch_size) * inv_counts
        rstd = torch.rsqrt(var + eps)  # (B, F)
        out = torch.addcmul(bias, shifted, (rstd * weight).index_select(0, batch))
        ctx.save_for_backward(batch, shifted, mean, rstd, inv_counts, weight, mean_scale)
        ctx.batch_size = batch_size
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        batch, shifted, mean, rstd, inv_counts, weight, mean_scale = ctx.saved_tensors
        b = ctx.batch_size
        p = _graph_sum(grad * shifted, batch, b)  # (B, F)
        grad_weight = (rstd * p).sum(0)
        grad_bias = grad.sum(0)
        dvar_over_n = (-0.5 * weight) * rstd.pow(3) * p * inv_counts  # dvar_g / n_g
        ds = torch.addcmul(grad * (rstd * weight).index_select(0, batch), shifted,
                           (2.0 * dvar_over_n).index_select(0, batch))
        q = _graph_sum(ds, batch, b)
        grad_x = ds - (q * inv_counts * mean_scale).index_select(0, batch)
        grad_mean_scale = -(mean * q).sum(0)
        return grad_x, None, None, grad_weight, grad_bias, grad_mean_scale, None


class GraphNorm(nn.Module):
    """GraphNorm (Cai et al. 2021): per-graph normalization with a learnable mean shift.

    The interface is torch_geometric's ``GraphNorm``: the same constructor, ``forward`` and
    parameter names, so models switch between the two without edits.

    Args:
        in_channels: feature width ``F``.
        eps: added to the variance inside the square root (PyG's default 1e-5; the paper's TU
            code used 1e-6).
        learn_shift: learn ``alpha`` (``mean_scale``); ``False`` fixes it at 1 (instance norm +
            affine, the paper's ablation).

    Parameters:
        weight: ``gamma``, ``(F,)``, init 1.
        bias: ``beta``, ``(F,)``, init 0.
        mean_scale: ``alpha``, ``(F,)``, init 1 (a buffer when ``learn_shift=False``).
    """

    def __init__(self, in_channels: int, eps: float = 1e-5, learn_shift: bool = True):
        super().__init__()
        self.in_channels = int(in_channels)
        self.eps = float(eps)
        self.learn_shift = bool(learn_shift)
        self.weight = nn.Parameter(torch.empty(self.in_channels))
        self.bias = nn.Parameter(torch.empty(self.in_channels))
        if self.learn_shift:
            self.mean_scale = nn.Parameter(torch.empty(self.in_channels))
        else:
            self.register_buffer("mean_scale", torch.empty(self.in_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.fill_(1.0)
            self.bias.zero_()
            self.mean_scale.fill_(1.0)

    def forward(self, x: Tensor, batch: Tensor | None = None, batch_size: int | None = None) -> Tensor:
        """Normalize node features graph by graph.

        Args:
            x: ``(N, F)`` node features.
            batch: ``(N,)`` int64 graph index of each node (``None``: all nodes form one graph).
            batch_size: number of graphs ``B``. Pass it: otherwise it is read as
                ``batch.max() + 1``, which waits for the device (a host sync per call).

        Returns:
            ``(N, F)``, same dtype as ``x``.
        """
        if batch is None:
            # one graph: plain column statistics, no scatter needed
            shifted = x - self.mean_scale * x.mean(dim=0, keepdim=True)
            var = shifted.pow(2).mean(dim=0, keepdim=True)
            return self.weight * shifted * torch.rsqrt(var + self.eps) + self.bias
        if batch_size is None:
            batch_size = int(batch.max()) + 1 if batch.numel() else 0
        return _GraphNormFunction.apply(x, batch, int(batch_size), self.weight, self.bias, self.mean_scale,
                                        self.eps)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, eps={self.eps}, learn_shift={self.learn_shift}"


class NodeNorm(nn.Module):
    """One of :data:`NORMS` behind the call ``norm(x, batch=None, batch_size=None)``.

    * ``graph``: :class:`GraphNorm` (per graph, learnable shift).
    * ``instance``: :class:`GraphNorm` with ``learn_shift=False`` (per graph, per feature, affine).
    * ``batch``: ``torch.nn.BatchNorm1d`` over all nodes of the batch (running statistics).
    * ``layer``: ``torch.nn.LayerNorm`` over each node's features.
    * ``none``: identity.

    Args:
        kind: the name.
        channels: feature width.
        eps: for ``graph``/``instance``/``layer``/``batch`` (each layer's usual default when ``None``).
    """

    def __init__(self, kind: NormName, channels: int, eps: float | None = None):
        super().__init__()
        if kind not in NORMS:
            raise ValueError(f"unknown norm {kind!r}; choose one of {list(NORMS)}")
        self.kind = kind
        self.channels = int(channels)
        self.per_graph = kind in ("graph", "instance")
        eps = 1e-5 if eps is None else eps  # every layer's usual default
        self.inner: nn.Module
        if kind in ("graph", "instance"):
            self.inner = GraphNorm(channels, eps=eps, learn_shift=kind == "graph")
        elif kind == "batch":
            self.inner = nn.BatchNorm1d(channels, eps=eps)
        elif kind == "layer":
            self.inner = nn.LayerNorm(channels, eps=eps)
        else:
            self.inner = nn.Identity()

    def reset_parameters(self) -> None:
        if hasattr(self.inner, "reset_parameters"):
            self.inner.reset_parameters()
        if isinstance(self.inner, nn.BatchNorm1d):
            self.inner.reset_running_stats()

    def forward(self, x: Tensor, batch: Tensor | None = None, batch_size: int | None = None) -> Tensor:
        """``(N, F) -> (N, F)``; ``batch``/``batch_size`` matter for the per-graph kinds only."""
        if self.per_graph:
            return self.inner(x, batch, batch_size)
        return self.inner(x)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"


def make_norm(kind: NormName | None, channels: int, eps: float | None = None) -> NodeNorm:
    """:class:`NodeNorm` for ``kind`` (``None`` means ``"none"``)."""
    return NodeNorm("none" if kind is None else kind, channels, eps)
