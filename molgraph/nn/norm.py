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

Two implementations compute it: on the CPU, batches whose nodes are grouped by graph (every PyG
``Batch``) go through fused numba kernels (:mod:`molgraph.nn.graphnorm_cpu`); other inputs (GPU,
unsorted ``batch``, half precision, ``torch.compile`` tracing) through :class:`_GraphNormFunction`,
scatters and gathers with a hand-derived backward.

:func:`make_norm` builds ``"graph" | "batch" | "layer" | "instance" | "none"`` behind one call
signature, ``norm(x, batch, batch_size)``, so every block of the package can take ``norm=``.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

from molgraph.nn import graphnorm_cpu
from molgraph.registry import NORMS

__all__ = ["NORMS", "GraphNorm", "NodeNorm", "make_norm"]

for _name, _help in (
    ("graph", "GraphNorm (Cai et al. 2021): per-graph mean shift with a learned fraction, per-graph scale"),
    ("batch", "batch normalization over the nodes of the batch"),
    ("layer", "layer normalization per node"),
    ("instance", "per-graph normalization of each feature (instance norm)"),
    ("none", "no normalization"),
):
    NORMS.register(_name, _name, help=_help)
NormName = Literal["graph", "batch", "layer", "instance", "none"]
KERNELS = ("auto", "torch", "numba")
KernelName = Literal["auto", "torch", "numba"]


def _is_compiling() -> bool:
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and hasattr(compiler, "is_compiling") and compiler.is_compiling())


def _graph_sum(values: Tensor, batch: Tensor, batch_size: int) -> Tensor:
    """Per-graph sum of node rows, ``(batch_size, F)``."""
    return values.new_zeros(batch_size, values.size(1)).index_add_(0, batch, values)


class _Scratch:
    """Two reusable ``(N, F)`` work buffers of one GraphNorm layer (CPU only).

    On a CPU every fresh node-sized tensor costs page faults comparable to the arithmetic done on
    it (it is larger than malloc's mmap threshold), so the layer keeps its temporaries here
    instead of allocating them per op. Not module state: copies of the layer start empty.
    """

    def __init__(self) -> None:
        self._bufs: list[Tensor | None] = [None, None]

    def get(self, i: int, like: Tensor) -> Tensor:
        n, f = like.shape
        buf = self._bufs[i]
        if buf is None or buf.numel() < n * f or buf.dtype != like.dtype or buf.device != like.device:
            buf = self._bufs[i] = torch.empty(n * f, dtype=like.dtype, device=like.device)
        return buf[: n * f].view(n, f)

    def clear(self) -> None:
        self._bufs = [None, None]

    def __deepcopy__(self, memo: dict) -> "_Scratch":
        return _Scratch()

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self._bufs = [None, None]


def _shifted(x: Tensor, shift: Tensor, batch: Tensor, scratch: _Scratch | None) -> tuple[Tensor, Tensor]:
    """``x - shift[batch]`` and a second ``(N, F)`` work buffer (both from ``scratch`` if given)."""
    if scratch is None:
        shifted, work = torch.index_select(shift, 0, batch), torch.empty_like(x)
    else:
        shifted, work = torch.index_select(shift, 0, batch, out=scratch.get(0, x)), scratch.get(1, x)
    return torch.sub(x, shifted, out=shifted), work


class _GraphNormFunction(torch.autograd.Function):
    """GraphNorm forward and a hand-derived backward.

    Autograd through the dozen elementwise/scatter ops of the forward would record each one and
    replay its backward; here the forward takes 2 scatters and 2 gathers over the ``(N, F)``
    nodes, the closed-form backward 2 scatters and 4 gathers, and each pass allocates only its
    result (``out``, ``grad_x``), as BatchNorm does, which keeps the layer close to BatchNorm's cost. With ``s = x - alpha * mu_g``,
    ``r_g = (var_g + eps)^-1/2``, ``y = gamma * s * r_g + beta`` and ``g = dL/dy``::

        P_g     = sum_{i in g} g_i * s_i           G_g = sum_{i in g} g_i
        dgamma  = sum_g r_g * P_g                  dbeta = sum_g G_g
        a_g     = gamma * r_g                      b_g = -gamma * r_g^3 * P_g / n_g
        ds_i    = a_g * g_i + b_g * s_i            (the variance term folded into b_g)
        Q_g     = sum_{i in g} ds_i = a_g * G_g + b_g * n_g * mu_g * (1 - alpha)
        dx_i    = ds_i - alpha * Q_g / n_g         dalpha = -sum_g mu_g * Q_g

    ``s`` is not kept between the passes: the backward recomputes it from ``x`` and ``mu``
    (saving ``x`` costs no memory, it is alive anyway).
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, batch: Tensor, batch_size: int, weight: Tensor, bias: Tensor,
                mean_scale: Tensor, eps: float, scratch: _Scratch | None) -> Tensor:
        # a scatter of ones, not bincount: bincount reads batch.max() back to the host on a GPU
        counts = x.new_zeros(batch_size).index_add_(0, batch, x.new_ones(batch.numel())).clamp_(min=1).unsqueeze(1)
        inv_counts = counts.reciprocal()
        mean = _graph_sum(x, batch, batch_size) * inv_counts  # (B, F)
        shift = mean * mean_scale  # (B, F)
        shifted, sq = _shifted(x, shift, batch, scratch)
        torch.mul(shifted, shifted, out=sq)
        var = _graph_sum(sq, batch, batch_size) * inv_counts
        rstd = torch.rsqrt(var + eps)  # (B, F)
        out = torch.index_select(rstd * weight, 0, batch)
        torch.addcmul(bias, shifted, out, out=out)
        ctx.save_for_backward(x, batch, shift, mean, rstd, counts, inv_counts, weight, mean_scale)
        ctx.batch_size = batch_size
        ctx.scratch = scratch
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, batch, shift, mean, rstd, counts, inv_counts, weight, mean_scale = ctx.saved_tensors
        b, scratch = ctx.batch_size, ctx.scratch
        grad = grad.contiguous()
        shifted, tmp = _shifted(x, shift, batch, scratch)
        torch.mul(grad, shifted, out=tmp)
        p = _graph_sum(tmp, batch, b)  # (B, F)
        g_sum = _graph_sum(grad, batch, b)  # (B, F)
        a = rstd * weight
        b_coef = -a * rstd * rstd * p * inv_counts
        q = a * g_sum + b_coef * counts * mean * (1.0 - mean_scale)
        grad_x = torch.index_select(a, 0, batch)
        grad_x.mul_(grad)
        torch.index_select(b_coef, 0, batch, out=tmp)
        grad_x.addcmul_(tmp, shifted)
        torch.index_select(q * inv_counts * mean_scale, 0, batch, out=tmp)
        grad_x.sub_(tmp)
        return grad_x, None, None, (rstd * p).sum(0), g_sum.sum(0), -(mean * q).sum(0), None, None


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
        kernel: ``"auto"`` (default): on the CPU, float32/float64 inputs whose ``batch`` is sorted
            (as in every PyG ``Batch``) go through the fused numba kernels of
            :mod:`molgraph.nn.graphnorm_cpu` (one pass over memory instead of a dozen: about the cost
            of BatchNorm), everything else through the scatter/gather path; ``"torch"``: always
            the scatter/gather path; ``"numba"``: the fused kernels or an error saying why not.
            All three compute the same function.

    Parameters:
        weight: ``gamma``, ``(F,)``, init 1.
        bias: ``beta``, ``(F,)``, init 0.
        mean_scale: ``alpha``, ``(F,)``, init 1 (a buffer when ``learn_shift=False``).
    """

    def __init__(self, in_channels: int, eps: float = 1e-5, learn_shift: bool = True,
                 kernel: KernelName = "auto"):
        super().__init__()
        if kernel not in KERNELS:
            raise ValueError(f"unknown GraphNorm kernel {kernel!r}; choose one of {list(KERNELS)}")
        self.kernel = kernel
        self.in_channels = int(in_channels)
        self.eps = float(eps)
        self.learn_shift = bool(learn_shift)
        self._scratch = _Scratch()
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
        if self.kernel != "torch":
            reason = self._fused_unusable(x)
            if reason is None:
                ptr = graphnorm_cpu.segment_ptr(batch, int(batch_size))
                if ptr is not None:
                    return graphnorm_cpu.GraphNormCPUFunction.apply(x, ptr, self.weight, self.bias,
                                                                    self.mean_scale, self.eps)
                reason = "the batch vector is not sorted by graph"
            if self.kernel == "numba":
                raise ValueError(f"GraphNorm(kernel='numba') cannot run: {reason}")
        scratch = self._scratch if x.device.type == "cpu" else None
        return _GraphNormFunction.apply(x, batch, int(batch_size), self.weight, self.bias, self.mean_scale,
                                        self.eps, scratch)

    def _fused_unusable(self, x: Tensor) -> str | None:
        """Why the fused CPU kernels cannot take ``x`` (``None`` when they can)."""
        if x.device.type != "cpu":
            return f"x is on {x.device.type}, the fused kernels are CPU-only"
        if x.dtype not in (torch.float32, torch.float64) or x.dtype != self.weight.dtype:
            return f"x is {x.dtype} and the parameters {self.weight.dtype} (needs float32 or float64, both alike)"
        if _is_compiling():
            return "torch.compile is tracing the model"
        if not graphnorm_cpu.available():
            return "numba is not installed"
        return None

    def extra_repr(self) -> str:
        return f"{self.in_channels}, eps={self.eps}, learn_shift={self.learn_shift}, kernel={self.kernel!r}"


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
