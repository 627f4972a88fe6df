"""Invertible layers of GraphCNF: ActNorm, invertible 1x1 convolution, mixture-of-logistics CDF coupling.

Every layer maps a tensor of entries ``(..., D)`` (the node latents of padded graphs ``(B, N, Dn)``,
or the packed latents of a step's pairs ``(M, De)``) and returns the log-determinant of its
Jacobian **per entry**, weighted by ``w`` (0 on padding); the flow sums them per graph. Entries
outside ``mask`` pass through unchanged. The latents of one step are a :class:`Latents`.
GraphCNF carries the latents in float64 between layers (the networks that compute the coupling
parameters run in float32): float32 latents lose about 1e-3 through a dozen mixture-CDF inversions
where a component is steep.

The coupling transforms half of the channels given the other half (alternating halves from block
to block, with 1x1 convolutions between them) by a mixture-of-logistics CDF (Flow++, Ho et al.
2019): ``y = (logit(F(x)) + b) * exp(a)`` with ``F(x) = sum_k pi_k sigmoid((x - mu_k) / s_k)``; the
parameters come from a graph network of the conditioning half. It is computed in float64 and
inverted by bisection in float64 (``logit(F)`` is monotone, and evaluated through log-sigmoids
so it stays exact far in the tails). :attr:`MixtureCDF.reg` holds a penalty on ``|logit F(x)|``
beyond ``log(10**3.5)`` (``F`` outside ``[10**-3.5, 1 - 10**-3.5]``), which keeps the inversion
accurate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["Latents", "ActNorm", "InvConv1x1", "MixtureCDF", "logistic_logpdf", "CDF_LOGIT_BOUND"]

# |logit F| above this is penalised: F outside [10^-3.5, 1 - 10^-3.5]
CDF_LOGIT_BOUND = 3.5 * math.log(10.0)
BISECTION_STEPS = 60  # float64: the bracket shrinks below 1e-12 of its width


def logistic_logpdf(x: torch.Tensor) -> torch.Tensor:
    """Elementwise log density of the standard logistic distribution."""
    return -x - 2.0 * F.softplus(-x)


@dataclass
class Latents:
    """The state a flow step maps.

    Attributes:
        zn: ``(B, N, Dn)`` node latents.
        node_mask: ``(B, N)`` bool, real atoms.
        ze: ``(M, De)`` latents of the step's pairs (bonds in step 2, every pair of real atoms in
            step 3), or ``None`` (step 1).
        edges: ``(M, 3)`` int64 ``(graph, i, j)`` of those pairs, ``i < j``.
        adj: ``(B, N, N)`` int64 typed adjacency (0-3), the conditioning graph of step 1.
    """

    zn: torch.Tensor
    node_mask: torch.Tensor
    ze: torch.Tensor | None = None
    edges: torch.Tensor | None = None
    adj: torch.Tensor | None = None

    @property
    def node_w(self) -> torch.Tensor:
        return self.node_mask.to(self.zn.dtype)

    def with_(self, **changes: torch.Tensor) -> "Latents":
        return replace(self, **changes)


def _masked_stats(x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std over the entries with weight 1 (``x`` ``(..., D)``, ``w`` ``(...)``)."""
    flat = x.reshape(-1, x.shape[-1])
    ww = w.reshape(-1, 1)
    n = ww.sum().clamp_min(1.0)
    mean = (flat * ww).sum(0) / n
    var = (((flat - mean) ** 2) * ww).sum(0) / n
    return mean, var.clamp_min(1e-6).sqrt()


class ActNorm(nn.Module):
    """``y = (x + bias) * exp(log_scale)`` per channel, initialised from the first training batch
    to zero mean and unit variance (Kingma & Dhariwal 2018)."""

    def __init__(self, dim: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, w: torch.Tensor, reverse: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` ``(..., D)``, ``mask`` and ``w`` ``(...)``; returns ``(y, ldj)`` with ``ldj`` per entry ``(...)``."""
        if not reverse and self.training and not bool(self.initialized):
            with torch.no_grad():
                mean, std = _masked_stats(x, w)
                self.bias.copy_(-mean)
                self.log_scale.copy_(-torch.log(std))
                self.initialized.fill_(1)
        ldj = self.log_scale.sum() * w
        if reverse:
            y = x * torch.exp(-self.log_scale) - self.bias
            ldj = -ldj
        else:
            y = (x + self.bias) * torch.exp(self.log_scale)
        return torch.where(mask[..., None], y, x), ldj


class InvConv1x1(nn.Module):
    """``y = W x`` per entry with an invertible ``W`` ``(D, D)`` (initialised as a random rotation)."""

    def __init__(self, dim: int):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(dim, dim))
        self.weight = nn.Parameter(q)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, w: torch.Tensor, reverse: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = torch.linalg.slogdet(self.weight.double())[1].to(x.dtype)
        if reverse:
            inv = torch.linalg.inv(self.weight.double()).to(x.dtype)
            y = x @ inv.T
            ldj = -logdet * w
        else:
            y = x @ self.weight.to(x.dtype).T
            ldj = logdet * w
        return torch.where(mask[..., None], y, x), ldj


class MixtureCDF(nn.Module):
    """The elementwise mixture-of-logistics CDF transform of a coupling layer.

    ``raw`` ``(..., 3K + 2)`` per transformed entry: mixture logits, means, log-scales, and the
    outer log-scale ``a`` and shift ``b``. Log-scales are bounded by ``tanh`` (inner: |log s| <= 4;
    outer: |a| <= a learned factor per channel), so a step cannot blow up.

    Args:
        channels: transformed channels (for the outer scale factor).
        mixtures: ``K``.
    """

    def __init__(self, channels: int, mixtures: int):
        super().__init__()
        self.K = int(mixtures)
        self.a_factor = nn.Parameter(torch.full((channels,), 0.5))
        self.reg = torch.zeros(())

    @property
    def raw_dim(self) -> int:
        return 3 * self.K + 2

    def init_bias(self, bias: torch.Tensor, channels: int) -> None:
        """Initial network output bias (``channels * raw_dim``): spread means so the components differ
        (with equal parameters they would get equal gradients forever)."""
        with torch.no_grad():
            b = bias.view(channels, self.raw_dim)
            b.zero_()
            b[:, self.K:2 * self.K] = torch.linspace(-2.0, 2.0, self.K)

    def _params(self, raw: torch.Tensor) -> tuple[torch.Tensor, ...]:
        K = self.K
        raw = raw.double()
        logpi = torch.log_softmax(raw[..., :K], dim=-1)
        mu = raw[..., K:2 * K]
        log_s = 4.0 * torch.tanh(raw[..., 2 * K:3 * K] / 4.0)
        a = torch.tanh(raw[..., 3 * K]) * self.a_factor.double()
        b = raw[..., 3 * K + 1]
        return logpi, mu, log_s, a, b

    @staticmethod
    def _logit_cdf(x: torch.Tensor, logpi: torch.Tensor, mu: torch.Tensor, log_s: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log F, log(1 - F), log f)`` at ``x`` (``(...)``; parameters ``(..., K)``)."""
        t = (x[..., None] - mu) * torch.exp(-log_s)
        ls_pos, ls_neg = F.logsigmoid(t), F.logsigmoid(-t)
        log_f = torch.logsumexp(logpi + ls_pos, dim=-1)
        log_1mf = torch.logsumexp(logpi + ls_neg, dim=-1)
        log_pdf = torch.logsumexp(logpi + ls_pos + ls_neg - log_s, dim=-1)
        return log_f, log_1mf, log_pdf

    def forward(self, x: torch.Tensor, raw: torch.Tensor, w: torch.Tensor, reverse: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` ``(..., C)``, ``raw`` ``(..., C, 3K + 2)``, ``w`` ``(...)`` counting weights.

        Returns ``(y, ldj)`` with ``ldj`` per entry ``(...)``; sets :attr:`reg` ``(...)`` (forward only).
        """
        logpi, mu, log_s, a, b = self._params(raw)
        wd = w.double()
        if not reverse:
            xd = x.double()
            log_f, log_1mf, log_pdf = self._logit_cdf(xd, logpi, mu, log_s)
            u = log_f - log_1mf
            y = (u + b) * torch.exp(a)
            ldj_el = log_pdf - log_f - log_1mf + a
            ldj = ldj_el.sum(-1) * wd
            self.reg = (F.relu(u.abs() - CDF_LOGIT_BOUND).sum(-1) * wd).to(x.dtype)
            return y.to(x.dtype), ldj.to(x.dtype)
        yd = x.double()
        u = yd * torch.exp(-a) - b
        s_max = torch.exp(log_s).amax(-1)
        lo = mu.amin(-1) - (u.abs() + 5.0) * s_max
        hi = mu.amax(-1) + (u.abs() + 5.0) * s_max
        for _ in range(BISECTION_STEPS):
            mid = 0.5 * (lo + hi)
            lf, l1mf, _ = self._logit_cdf(mid, logpi, mu, log_s)
            above = (lf - l1mf) > u
            hi = torch.where(above, mid, hi)
            lo = torch.where(above, lo, mid)
        xr = 0.5 * (lo + hi)
        log_f, log_1mf, log_pdf = self._logit_cdf(xr, logpi, mu, log_s)
        ldj = -(log_pdf - log_f - log_1mf + a).sum(-1) * wd
        return xr.to(x.dtype), ldj.to(x.dtype)
