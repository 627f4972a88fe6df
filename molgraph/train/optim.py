"""Optimizers and learning-rate schedules, by name.

Optimizers come from a small registry (``adam``, ``adamw``, ``sgd``, ``adamp``, ``sgdp``) that
later methods extend with :func:`register_optimizer`. ``adamp`` and ``sgdp`` (Heo et al., "AdamP:
Slowing Down the Slowdown for Momentum Optimizers on Scale-invariant Weights", ICLR 2021) are
Adam and SGD that, for a weight matrix whose gradient is (nearly) orthogonal to it channel-wise or
as a whole (the mark of a scale-invariant weight, e.g. a linear layer followed by a norm layer),
remove the radial component of the update and scale its weight decay by ``wd_ratio``; the
authors' ``adamp`` package implements both. Schedules are per-step multipliers on the optimizer's learning
rate (``max_lr``), so they resume exactly from a Lightning checkpoint:

- ``constant``: ``max_lr`` throughout.
- ``noam``: linear warm-up from ``init_lr`` to ``max_lr`` over ``warmup_epochs``, then exponential
  decay to ``final_lr`` at the last step (the schedule chemprop uses for D-MPNN, after the
  "Noam" warm-up of Vaswani et al. 2017).
- ``cosine``: the same warm-up, then half a cosine from ``max_lr`` down to ``final_lr``.
- ``linear``: the same warm-up, then a straight line from ``max_lr`` down to ``final_lr`` (with
  ``final_lr=0``, the linear decay of the GIN/GraphNorm graph-classification experiments).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import torch

from molgraph.registry import OPTIMIZERS, SCHEDULES

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "register_optimizer",
    "check_optimizer",
    "check_schedule",
    "build_optimizer",
    "lr_multiplier",
    "build_scheduler",
]

OptimizerFactory = Callable[..., torch.optim.Optimizer]


def _sgd(params: Iterable[Any], lr: float, weight_decay: float = 0.0, **kwargs: Any) -> torch.optim.Optimizer:
    kwargs.setdefault("momentum", 0.9)  # plain SGD without momentum is rarely what anyone wants
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, **kwargs)


def _adamp(params: Iterable[Any], lr: float, weight_decay: float = 0.0, **kwargs: Any) -> torch.optim.Optimizer:
    from adamp import AdamP

    return AdamP(params, lr=lr, weight_decay=weight_decay, **kwargs)


def _sgdp(params: Iterable[Any], lr: float, weight_decay: float = 0.0, **kwargs: Any) -> torch.optim.Optimizer:
    from adamp import SGDP

    kwargs.setdefault("momentum", 0.9)  # as ``sgd``
    return SGDP(params, lr=lr, weight_decay=weight_decay, **kwargs)


OPTIMIZERS.register("adam", torch.optim.Adam, help="Adam (Kingma & Ba 2015)")
OPTIMIZERS.register("adamw", torch.optim.AdamW, help="AdamW, decoupled weight decay (Loshchilov & Hutter 2019)")
OPTIMIZERS.register("sgd", _sgd, help="SGD with momentum 0.9")
OPTIMIZERS.register("adamp", _adamp, help="AdamP: Adam without the radial update of scale-invariant weights (Heo et al. 2021)")
OPTIMIZERS.register("sgdp", _sgdp, help="SGDP: SGD (momentum 0.9) without the radial update of scale-invariant weights")

for _name, _help in (
    ("constant", "max_lr throughout (after the warm-up)"),
    ("noam", "linear warm-up init_lr -> max_lr, then exponential decay to final_lr (chemprop's)"),
    ("cosine", "linear warm-up, then cosine decay to final_lr"),
    ("linear", "linear warm-up, then linear decay to final_lr"),
):
    SCHEDULES.register(_name, _name, help=_help)


def register_optimizer(name: str, factory: OptimizerFactory, *, overwrite: bool = False) -> None:
    """Make ``factory(params, lr=..., weight_decay=..., **kwargs)`` available as ``name``."""
    if name in OPTIMIZERS and not overwrite:
        raise ValueError(f"optimizer {name!r} is already registered")
    OPTIMIZERS.register(name, factory, overwrite=overwrite)


def check_optimizer(name: str) -> None:
    """Raise ValueError, naming the valid names, unless ``name`` is a registered optimizer.

    ``molgraph train`` calls this before it writes anything (:meth:`TrainConfig.validate`), so a
    misspelt name fails at once instead of when Lightning first builds the optimizer.
    """
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; optimizer must be one of {', '.join(OPTIMIZERS)}")


def check_schedule(schedule: str, *, init_lr: float, max_lr: float, final_lr: float) -> None:
    """Raise ValueError naming the setting unless ``schedule`` and its learning rates can run.

    The rules of :func:`lr_multiplier`, callable before training starts (see :func:`check_optimizer`).
    """
    if not isinstance(schedule, str) or schedule not in SCHEDULES:
        raise ValueError(f"unknown lr schedule {schedule!r}; schedule must be one of {', '.join(SCHEDULES)}")
    if not max_lr > 0:  # written so that NaN fails too
        raise ValueError(f"max_lr must be > 0, got {max_lr}")
    for name, value in (("init_lr", init_lr), ("final_lr", final_lr)):
        if not value >= 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if schedule == "noam" and final_lr <= 0:
        raise ValueError(f"the noam schedule decays exponentially and needs final_lr > 0, got {final_lr}")


def build_optimizer(
    name: str, params: Iterable[Any], lr: float, weight_decay: float = 0.0, **kwargs: Any
) -> torch.optim.Optimizer:
    """The optimizer registered as ``name`` over ``params``."""
    check_optimizer(name)
    return OPTIMIZERS[name](params, lr=lr, weight_decay=weight_decay, **kwargs)


def lr_multiplier(
    schedule: str,
    *,
    total_steps: int,
    warmup_steps: int,
    init_lr: float,
    max_lr: float,
    final_lr: float,
) -> Callable[[int], float]:
    """A function ``step -> lr(step) / max_lr`` for :class:`torch.optim.lr_scheduler.LambdaLR`."""
    check_schedule(schedule, init_lr=init_lr, max_lr=max_lr, final_lr=final_lr)
    if schedule == "constant":
        return _Constant()
    return _WarmupDecay(schedule, max(int(total_steps), 1), max(int(warmup_steps), 0), init_lr, max_lr, final_lr)


class _Constant:
    def __call__(self, step: int) -> float:
        return 1.0


class _WarmupDecay:
    """Picklable schedule object (LambdaLR stores its ``__dict__`` in checkpoints, not code)."""

    def __init__(self, kind: str, total: int, warmup: int, init_lr: float, max_lr: float, final_lr: float):
        self.kind, self.total, self.warmup = kind, total, min(warmup, total)
        self.init_lr, self.max_lr, self.final_lr = init_lr, max_lr, final_lr

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            lr = self.init_lr + (self.max_lr - self.init_lr) * step / self.warmup
        else:
            decay_steps = max(self.total - self.warmup, 1)
            frac = min((step - self.warmup) / decay_steps, 1.0)
            if self.kind == "noam":
                lr = self.max_lr * (self.final_lr / self.max_lr) ** frac
            elif self.kind == "linear":
                lr = self.max_lr + (self.final_lr - self.max_lr) * frac
            else:
                lr = self.final_lr + 0.5 * (self.max_lr - self.final_lr) * (1.0 + math.cos(math.pi * frac))
        return lr / self.max_lr


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    schedule: str,
    *,
    total_steps: int,
    warmup_steps: int,
    init_lr: float,
    max_lr: float,
    final_lr: float,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step LambdaLR; the optimizer must have been built with ``lr=max_lr``."""
    fn = lr_multiplier(
        schedule, total_steps=total_steps, warmup_steps=warmup_steps, init_lr=init_lr, max_lr=max_lr, final_lr=final_lr
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)
