"""Uncertainty heads of the property model and their losses: MVE, evidential regression, Dirichlet classification.

A head says how the network's last layer is read. Its raw output is ``(B, k * T)`` for ``T``
tasks, laid out in ``k`` blocks of ``T`` columns (block ``j`` holds parameter ``j`` of every task),
and :func:`head_parameters` turns it into the distribution's parameters:

=============== === ====================================================================================
head            k   parameters (per task; regression ones on the training scale of the targets)
=============== === ====================================================================================
``point``       1   the value (regression) or the logit (classification)
``mve``         2   mean ``mu`` and variance ``var > 0`` of a Gaussian (Nix & Weigend 1994)
``evidential``  4   ``gamma, nu > 0, alpha > 1, beta > 0`` of a Normal-Inverse-Gamma (Amini et al. 2020)
``dirichlet``   2   ``alpha_1, alpha_0 >= 1``: a Beta (binary Dirichlet) on the class-1 probability
                    (Sensoy et al. 2018)
=============== === ====================================================================================

Predictive moments, from :func:`head_moments` (regression: in training units; the caller
unscales):

* MVE: mean ``mu``, variance ``var``;
* evidential: mean ``gamma``, variance ``beta (1 + nu) / (nu (alpha - 1))``, the variance of the
  Student-t predictive distribution (aleatoric ``beta / (alpha - 1)`` plus epistemic
  ``beta / (nu (alpha - 1))``);
* Dirichlet: probability ``p = alpha_1 / S`` with ``S = alpha_1 + alpha_0``, variance of the Beta
  ``p (1 - p) / (S + 1)``.

The losses are masked (``NaN`` targets take no part) and averaged over the labelled entries.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "HEADS",
    "UNCERTAINTY_METHODS",
    "head_for",
    "head_width",
    "head_parameters",
    "head_moments",
    "head_loss",
    "gaussian_nll",
    "evidential_loss",
    "dirichlet_loss",
]

# per head: parameters per task; which task types it serves
HEADS: dict[str, tuple[int, tuple[str, ...]]] = {
    "point": (1, ("regression", "classification")),
    "mve": (2, ("regression",)),
    "evidential": (4, ("regression",)),
    "dirichlet": (2, ("classification",)),
}

# ``--uncertainty`` values; "evidential" on a classification task is the Dirichlet head (Sensoy et
# al. call it evidential deep learning; chemprop v2 names both "dirichlet" and "evidential")
UNCERTAINTY_METHODS = ("none", "ensemble", "mc-dropout", "mve", "evidential", "dirichlet")

# variances below this (training units) are clamped: a zero variance makes the NLL infinite
_MIN_VAR = 1e-6


def head_for(uncertainty: str, task_type: str) -> str:
    """The head an uncertainty method trains: ``mve``, ``evidential``, ``dirichlet`` or ``point``.

    Raises:
        ValueError: the method does not apply to the task type (MVE on classification, Dirichlet
            on regression), or is unknown.
    """
    if uncertainty not in UNCERTAINTY_METHODS:
        raise ValueError(f"uncertainty must be one of {', '.join(UNCERTAINTY_METHODS)}; got {uncertainty!r}")
    if uncertainty in ("none", "ensemble", "mc-dropout"):
        return "point"
    if uncertainty == "mve":
        if task_type != "regression":
            raise ValueError("uncertainty = mve applies to regression; for classification use dirichlet "
                             "(or evidential, the same head)")
        return "mve"
    if uncertainty == "dirichlet" and task_type != "classification":
        raise ValueError("uncertainty = dirichlet applies to classification; for regression use evidential or mve")
    return "evidential" if task_type == "regression" else "dirichlet"


def head_width(head: str) -> int:
    """Parameters per task of ``head``."""
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    return HEADS[head][0]


def head_parameters(raw: Tensor, head: str, num_tasks: int) -> tuple[Tensor, ...]:
    """Raw outputs ``(B, k * T)`` -> the head's ``k`` parameters, each ``(B, T)`` (see the module table).

    Positivity comes from softplus (plus 1 where the parameter must exceed 1), as in chemprop v2's
    heads; ``mve`` adds a floor of 1e-6 to the variance.
    """
    k = head_width(head)
    if raw.shape[-1] != k * num_tasks:
        raise ValueError(f"head {head!r} of {num_tasks} task(s) needs {k * num_tasks} outputs, got {raw.shape[-1]}")
    if head == "point":
        return (raw,)
    blocks = raw.split(num_tasks, dim=-1)
    if head == "mve":
        return blocks[0], F.softplus(blocks[1]) + _MIN_VAR
    if head == "evidential":
        return blocks[0], F.softplus(blocks[1]), F.softplus(blocks[2]) + 1.0, F.softplus(blocks[3])
    # dirichlet: evidence >= 0 for class 1 and class 0, alpha = evidence + 1
    return F.softplus(blocks[0]) + 1.0, F.softplus(blocks[1]) + 1.0


def head_moments(raw: Tensor, head: str, num_tasks: int) -> tuple[Tensor, Tensor | None]:
    """Predictive mean and variance ``(B, T)`` each (variance ``None`` for the point head).

    Regression: mean and variance on the training scale. Classification: the probability of
    class 1 (sigmoid of the logit for the point head) and, for Dirichlet, the Beta's variance.
    """
    params = head_parameters(raw, head, num_tasks)
    if head == "point":
        return params[0], None
    if head == "mve":
        return params[0], params[1]
    if head == "evidential":
        gamma, nu, alpha, beta = params
        return gamma, beta * (1.0 + nu) / (nu * (alpha - 1.0)).clamp_min(1e-12)
    a1, a0 = params
    s = a1 + a0
    p = a1 / s
    return p, p * (1.0 - p) / (s + 1.0)


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    if not bool(mask.any()):
        return values.sum() * 0.0  # keeps the graph (a batch without labels contributes nothing)
    return values[mask].mean()


def gaussian_nll(mean: Tensor, var: Tensor, y: Tensor) -> Tensor:
    """Masked Gaussian negative log-likelihood, mean over labelled entries (nats).

    ``0.5 * (log(2 pi var) + (y - mean)^2 / var)``; ``y`` may hold NaN (missing).
    """
    mask = ~torch.isnan(y)
    yz = torch.where(mask, y, mean.detach())
    nll = 0.5 * (torch.log(2 * math.pi * var) + (yz - mean) ** 2 / var)
    return _masked_mean(nll, mask)


def evidential_loss(gamma: Tensor, nu: Tensor, alpha: Tensor, beta: Tensor, y: Tensor, lam: float) -> Tensor:
    """Amini et al. (2020), eqs. 8-10: the Student-t NLL of the NIG evidence plus ``lam`` times the
    evidence regularizer ``|y - gamma| (2 nu + alpha)``; masked mean over labelled entries.
    """
    mask = ~torch.isnan(y)
    yz = torch.where(mask, y, gamma.detach())
    omega = 2.0 * beta * (1.0 + nu)
    nll = (0.5 * torch.log(math.pi / nu) - alpha * torch.log(omega)
           + (alpha + 0.5) * torch.log(nu * (yz - gamma) ** 2 + omega)
           + torch.lgamma(alpha) - torch.lgamma(alpha + 0.5))
    reg = (yz - gamma).abs() * (2.0 * nu + alpha)
    return _masked_mean(nll + lam * reg, mask)


def _kl_beta_to_uniform(a1: Tensor, a0: Tensor) -> Tensor:
    """KL( Beta(a1, a0) || Beta(1, 1) ), elementwise (the binary case of Sensoy et al.'s eq. 5 term)."""
    s = a1 + a0
    return (torch.lgamma(s) - torch.lgamma(a1) - torch.lgamma(a0)
            + (a1 - 1.0) * (torch.digamma(a1) - torch.digamma(s))
            + (a0 - 1.0) * (torch.digamma(a0) - torch.digamma(s)))


def dirichlet_loss(a1: Tensor, a0: Tensor, y: Tensor, lam: float) -> Tensor:
    """Sensoy et al. (2018), eq. 5 for two classes: the expected squared error of the class
    probabilities under the Beta, plus ``lam`` times the KL divergence of the misleading evidence
    (the Beta with the true class's evidence removed) from the uniform Beta; masked mean.
    """
    mask = ~torch.isnan(y)
    yz = torch.where(mask, y, torch.zeros_like(y))
    s = a1 + a0
    p1, p0 = a1 / s, a0 / s
    err = (yz - p1) ** 2 + ((1.0 - yz) - p0) ** 2 + (p1 * (1.0 - p1) + p0 * (1.0 - p0)) / (s + 1.0)
    # keep only the evidence of the wrong class: alpha_tilde = y + (1 - y) * alpha
    t1 = yz + (1.0 - yz) * a1
    t0 = (1.0 - yz) + yz * a0
    return _masked_mean(err + lam * _kl_beta_to_uniform(t1, t0), mask)


def head_loss(raw: Tensor, y: Tensor, head: str, task_type: str, num_tasks: int, lam: float = 0.2) -> Tensor:
    """The training loss of ``head`` on raw outputs ``(B, k T)`` and targets ``(B, T)`` (NaN: missing).

    ``point`` is the library's masked MSE / BCE (:func:`molgraph.train.metrics.masked_loss`);
    regression targets are on the training scale.
    """
    if head == "point":
        from molgraph.train.metrics import masked_loss

        return masked_loss(raw, y, task_type)
    params = head_parameters(raw, head, num_tasks)
    if head == "mve":
        return gaussian_nll(params[0], params[1], y)
    if head == "evidential":
        return evidential_loss(*params, y, lam)
    return dirichlet_loss(params[0], params[1], y, lam)
