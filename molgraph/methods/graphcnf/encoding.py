"""Categorical encodings of GraphCNF: categories to continuous latents and back.

:class:`MixtureEncoding`: each category ``c`` is one logistic component in ``R^D``,
``z = mu_c + exp(log_s_c) * eps`` with ``eps ~ Logistic(0, 1)^D``. Its per-variable term of the
log-likelihood is ``beta * log p(c | z) - log q(z | c)``, where ``p(c | z)`` is the exact Bayes
posterior over every category with the data frequencies as prior (the variable's own term uses
the density at the drawn ``eps``, exact to the last bit). Decoding is the posterior's argmax.

:class:`VirtualEdgeEncoding`: the single "no bond" category of step 3 (term ``-log q(z)``), and
:class:`EdgeDecoder`: the learned ``p(bond | z)`` of a pair latent (an MLP whose logits start at the
data's bond share), whose ``beta``-weighted log-likelihood joins the objective.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from molgraph.methods.graphcnf.flows import logistic_logpdf

__all__ = ["MixtureEncoding", "VirtualEdgeEncoding", "EdgeDecoder", "logistic_noise"]


def logistic_noise(shape: tuple[int, ...], generator: torch.Generator | None = None,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard logistic samples (``logit`` of uniforms kept off 0 and 1)."""
    u = torch.rand(shape, generator=generator, dtype=torch.float64).clamp(1e-7, 1 - 1e-7)
    return torch.logit(u).to(dtype)


def _spread_means(categories: int, dim: int) -> torch.Tensor:
    """Initial component means: evenly on a circle for ``dim == 2``, else random with spread 3;
    far apart relative to the initial scale ``exp(-1)``, so decoding is exact from the start."""
    if dim == 2:
        ang = 2 * math.pi * torch.arange(categories, dtype=torch.float32) / max(categories, 1)
        return 3.0 * torch.stack([torch.cos(ang), torch.sin(ang)], dim=-1)
    return 3.0 * torch.randn(categories, dim)


class MixtureEncoding(nn.Module):
    """Logistic-mixture encoding of one categorical vocabulary.

    With ``separation`` set, every scale is bounded by its category's spacing: ``s_c,d =
    (Delta_c / separation) * exp(-softplus(r_c,d))``, ``Delta_c`` the L1 distance from ``mu_c`` to
    the nearest other mean. Scaling all means and scales together changes nothing (the next
    ActNorm undoes it), so this bounds the one thing that matters, the overlap of the
    components, and the encoder's entropy term now pushes the means apart instead of the
    components into each other. ``separation = None`` keeps free scales (the paper's encoding).

    Args:
        categories: number of categories ``C``.
        dim: latent width ``D``.
        frequencies: ``(C,)`` prior ``p(c)`` (data frequencies; zeros are floored at 1e-6).
        separation: the least L1 distance to another mean, in units of a category's scale
            (``None``: unbounded).
    """

    def __init__(self, categories: int, dim: int, frequencies: np.ndarray | torch.Tensor,
                 separation: float | None = None):
        super().__init__()
        self.C, self.D = int(categories), int(dim)
        self.separation = None if separation is None or self.C < 2 else float(separation)
        if self.separation is not None and self.separation <= 0:
            raise ValueError(f"separation must be positive, got {separation}")
        self.mu = nn.Parameter(_spread_means(self.C, self.D))
        if self.separation is None:
            self.log_s = nn.Parameter(torch.full((self.C, self.D), -1.0))
        else:
            # start at half the bound: softplus(0) = log 2
            self.raw_s = nn.Parameter(torch.zeros(self.C, self.D))
        freq = torch.as_tensor(np.asarray(frequencies, dtype=np.float64)).clamp_min(1e-6)
        if freq.numel() != self.C:
            raise ValueError(f"frequencies has {freq.numel()} entries for {self.C} categories")
        self.register_buffer("log_prior", torch.log(freq / freq.sum()).float())

    def nearest_distance(self) -> torch.Tensor:
        """``(C,)`` L1 distance from each mean to the nearest other mean."""
        d = (self.mu[:, None, :] - self.mu[None, :, :]).abs().sum(-1)
        return (d + torch.diag(torch.full((self.C,), float("inf"), device=d.device))).amin(1)

    def log_scales(self) -> torch.Tensor:
        """``(C, D)`` log-scales of the components."""
        if self.separation is None:
            return self.log_s
        bound = torch.log(self.nearest_distance() / self.separation)
        return bound[:, None] - nn.functional.softplus(self.raw_s)

    def log_posterior(self, z: torch.Tensor, own: torch.Tensor | None = None,
                      own_logq: torch.Tensor | None = None) -> torch.Tensor:
        """``(..., C)`` log p(c | z) for ``z`` ``(..., D)``; with ``own``/``own_logq``, the density
        of the own category is the given (exact) one."""
        log_s = self.log_scales()
        logq = (logistic_logpdf((z[..., None, :] - self.mu) / torch.exp(log_s)) - log_s).sum(-1)
        if own is not None:
            logq = logq.scatter(-1, own[..., None], own_logq[..., None])
        return torch.log_softmax(logq + self.log_prior, dim=-1)

    def encode(self, c: torch.Tensor, eps: torch.Tensor, w: torch.Tensor, beta: float
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """``c`` ``(...)`` categories, ``eps`` ``(..., D)`` logistic noise, ``w`` ``(...)`` counting
        weights; returns ``z`` ``(..., D)`` and the weighted term per entry ``(...)``."""
        ls = self.log_scales()[c]
        z = self.mu[c] + torch.exp(ls) * eps
        own_logq = (logistic_logpdf(eps) - ls).sum(-1)
        log_post = self.log_posterior(z, c, own_logq).gather(-1, c[..., None])[..., 0]
        return z, (beta * log_post - own_logq) * w

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The most probable category ``(...)`` of each latent ``z`` ``(..., D)``."""
        return self.log_posterior(z).argmax(-1)


class VirtualEdgeEncoding(nn.Module):
    """The one-category encoding of "no bond" pairs (step 3): a learned logistic in ``R^D``."""

    def __init__(self, dim: int):
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(dim))
        self.log_s = nn.Parameter(torch.full((dim,), -1.0))

    def encode(self, eps: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``eps`` ``(..., D)``; returns ``z`` and ``-log q(z)`` per entry ``(...)``, times ``w``."""
        z = self.mu + torch.exp(self.log_s) * eps
        logq = (logistic_logpdf(eps) - self.log_s).sum(-1)
        return z, -logq * w


class EdgeDecoder(nn.Module):
    """``log p(no bond / bond | z)`` ``(..., 2)`` of a pair latent ``z`` ``(..., D)``.

    Args:
        dim: latent width; hidden: MLP width; bond_share: the data's share of bonded pairs (the
            initial output bias).
    """

    def __init__(self, dim: int, hidden: int, bond_share: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, 2))
        p = min(max(float(bond_share), 1e-4), 1 - 1e-4)
        with torch.no_grad():
            self.net[-1].bias.copy_(torch.tensor([math.log(1 - p), math.log(p)]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.net(z), dim=-1)
