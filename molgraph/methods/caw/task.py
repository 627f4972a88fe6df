"""Training CAW-N through the shared trainer, and its evaluation.

A training batch is a set of positive events (from :class:`~molgraph.data.temporal.EventBatcher`).
Each positive ``(u, v, t)`` gets one negative ``(u, v', t)``: same source, same cut time, ``v'``
drawn uniformly from the destinations of the events the model may see (the reference's
``RandEdgeSampler``). Walks come from the store of the training events (train + val events in
the inductive setting, where masked nodes are absent from it; every event in the transductive
setting: the strict "before the cut" rule alone keeps the future out). Loss: BCE on the
positives' and negatives' logits.

The walks and negatives draw from a numpy generator seeded from torch's global RNG, which
:class:`~molgraph.train.task.Task` reseeds before every batch, so a run (and a resumed run)
repeats exactly. Validation uses generators seeded by the run's seed and the batch number,
the same every epoch, and logs **global** AUC and AP over the whole validation set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from molgraph.data.temporal import TemporalEvents
from molgraph.methods.caw.model import pair_inputs
from molgraph.methods.caw.store import WalkStore
from molgraph.train.task import Task

__all__ = ["WalkContext", "CAWTask", "score_pairs", "evaluate_events", "link_metrics"]


@dataclass
class WalkContext:
    """What walks and negatives may use at one stage.

    Attributes:
        store: the neighbour store; events: the whole stream (features, endpoints, times);
        negatives: ``(K,)`` int64 candidate destinations of negative pairs;
        n_walks, length: ``M`` walks of ``L`` hops per endpoint.
    """

    store: WalkStore
    events: TemporalEvents
    negatives: np.ndarray
    n_walks: int
    length: int


def _to(inputs: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in inputs.items()}


def score_pairs(model: torch.nn.Module, ctx: WalkContext, u: np.ndarray, v: np.ndarray, t: np.ndarray,
                rng: np.random.Generator, *, neg: np.ndarray | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits ``(Q,)`` of the pairs ``(u, v)`` at ``t`` and, given ``neg``, of ``(u, neg)`` (same source walks)."""
    device = next(model.parameters()).device
    pos_in = pair_inputs(ctx.store, ctx.events, u, v, t, ctx.n_walks, ctx.length, rng)
    pos = model(_to(pos_in, device))
    if neg is None:
        return pos, None
    neg_in = pair_inputs(ctx.store, ctx.events, u, neg, t, ctx.n_walks, ctx.length, rng, walks_u=pos_in["walks_u"])
    return pos, model(_to(neg_in, device))


def link_metrics(pos: np.ndarray, neg: np.ndarray, *, chunk: int = 30) -> dict[str, float]:
    """Global AUC/AP of positive vs negative scores, and the reference's batch-averaged ones.

    ``batch_avg_*`` average the metrics over consecutive chunks of ``chunk`` positives and their
    negatives, as the reference's evaluation does (batches of 30): for comparability only.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    if pos.size == 0:
        return {"n": 0}
    y = np.r_[np.ones(pos.size), np.zeros(neg.size)]
    s = np.r_[pos, neg]
    out = {"auc": float(roc_auc_score(y, s)), "ap": float(average_precision_score(y, s)), "n": int(pos.size)}
    aucs, aps = [], []
    for i in range(0, pos.size, chunk):
        p, n = pos[i:i + chunk], neg[i:i + chunk]
        yy = np.r_[np.ones(p.size), np.zeros(n.size)]
        aucs.append(roc_auc_score(yy, np.r_[p, n]))
        aps.append(average_precision_score(yy, np.r_[p, n]))
    out["batch_avg_auc"], out["batch_avg_ap"] = float(np.mean(aucs)), float(np.mean(aps))
    return out


@torch.no_grad()
def evaluate_events(model: torch.nn.Module, ctx: WalkContext, event_ids: np.ndarray, seed: int,
                    batch_size: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """``(pos, neg)`` logits of the events ``event_ids`` and one negative each (seeded, in event order)."""
    was = model.training
    model.eval()
    ev = ctx.events
    rng = np.random.default_rng(seed)
    pos_all, neg_all = [], []
    for i in range(0, len(event_ids), batch_size):
        ids = np.asarray(event_ids[i:i + batch_size], np.int64)
        neg = ctx.negatives[rng.integers(0, ctx.negatives.size, ids.size)]
        p, n = score_pairs(model, ctx, ev.src[ids], ev.dst[ids], ev.t[ids], rng, neg=neg)
        pos_all.append(p.float().cpu().numpy())
        neg_all.append(n.float().cpu().numpy())
    model.train(was)
    if not pos_all:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(pos_all), np.concatenate(neg_all)


class CAWTask(Task):
    """BCE of positives vs one negative each (see the module doc).

    Args:
        model: a :class:`~molgraph.methods.caw.model.CAWModel`.
        train_ctx: walks and negatives for training; val_ctx: for validation.
        val_seed: seed of the validation walks and negatives.
        **kwargs: :class:`~molgraph.train.task.Task`'s (optimizer, schedule, seed).
    """

    def __init__(self, model: torch.nn.Module, train_ctx: WalkContext, val_ctx: WalkContext, *, val_seed: int = 0,
                 **kwargs: Any):
        super().__init__(model, **kwargs)
        self.train_ctx, self.val_ctx = train_ctx, val_ctx
        self.val_seed = int(val_seed)
        self._val_pos: list[np.ndarray] = []
        self._val_neg: list[np.ndarray] = []

    def _loss(self, ctx: WalkContext, batch: dict[str, torch.Tensor], rng: np.random.Generator
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        u, v, t = (batch[k].cpu().numpy() for k in ("src", "dst", "t"))
        neg = ctx.negatives[rng.integers(0, ctx.negatives.size, u.size)]
        pos, negl = score_pairs(self.model, ctx, u, v, t, rng, neg=neg)
        loss = F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos)) + \
            F.binary_cross_entropy_with_logits(negl, torch.zeros_like(negl))
        return loss, pos, negl

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        loss, pos, neg = self._loss(self.train_ctx, batch, rng)
        n = int(pos.numel())
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=n)
        acc = ((pos > 0).float().mean() + (neg <= 0).float().mean()) / 2
        self.log("train_acc", acc, on_step=False, on_epoch=True, batch_size=n)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        rng = np.random.default_rng([self.val_seed, batch_idx])
        loss, pos, neg = self._loss(self.val_ctx, batch, rng)
        self.log("val_loss", loss, on_step=False, on_epoch=True, batch_size=int(pos.numel()))
        self._val_pos.append(pos.detach().float().cpu().numpy())
        self._val_neg.append(neg.detach().float().cpu().numpy())

    def on_validation_epoch_end(self) -> None:
        if self._val_pos:
            m = link_metrics(np.concatenate(self._val_pos), np.concatenate(self._val_neg))
            self.log("val_auc", m["auc"])
            self.log("val_ap", m["ap"])
        self._val_pos, self._val_neg = [], []
