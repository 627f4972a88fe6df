"""The base Lightning task of every method: optimizer, schedule, per-batch reseeding.

Models stay plain ``torch.nn.Module``s (PyG-style ``forward(batch)``); a :class:`Task` wraps one
for training. Later methods (flows, equivariant models, certificates' smoothed classifiers)
subclass :class:`Task` and override :meth:`Task.compute_loss` / :meth:`Task.predict_step_values`.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from molgraph.train.optim import build_optimizer, build_scheduler

__all__ = ["Task", "step_seed"]


def step_seed(seed: int, epoch: int, batch_idx: int, rank: int = 0) -> int:
    """The RNG seed for one training batch of one process.

    Reseeding before every batch (instead of relying on the RNG state carried over from earlier
    steps) is what makes a resumed run draw the same dropout masks as an uninterrupted one: the
    RNG state is not in Lightning checkpoints and other code (DataLoader iterators, Lightning's
    restore) may draw from it at different moments; the epoch and batch numbers are fixed.
    """
    return (int(seed) * 1_000_003 + int(epoch) * 7_919 * 65_537 + int(batch_idx) * 7_919 + int(rank) * 104_729) % (
        2**63 - 1
    )


class Task(L.LightningModule):
    """Base task: optimizer/schedule from settings, per-epoch reseeding, epoch-level metrics.

    Args:
        model: the network; ``model(batch)`` returns ``(B, num_tasks)``.
        optimizer: registry name (see :mod:`molgraph.train.optim`).
        weight_decay: optimizer weight decay.
        schedule: ``constant`` | ``noam`` | ``cosine``.
        warmup_epochs, init_lr, max_lr, final_lr: schedule settings (learning rates in 1/step
            units of the optimizer; the optimizer runs at ``max_lr`` times the multiplier).
        seed: model seed; each training batch reseeds torch's RNG from it (see :func:`step_seed`).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        optimizer: str = "adam",
        weight_decay: float = 0.0,
        schedule: str = "noam",
        warmup_epochs: float = 2.0,
        init_lr: float = 1e-4,
        max_lr: float = 1e-3,
        final_lr: float = 1e-4,
        seed: int = 0,
    ):
        super().__init__()
        self.model = model
        self.optimizer_name = optimizer
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.warmup_epochs = warmup_epochs
        self.init_lr, self.max_lr, self.final_lr = init_lr, max_lr, final_lr
        self.seed = seed

    def forward(self, batch: Any) -> torch.Tensor:
        return self.model(batch)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        torch.manual_seed(step_seed(self.seed, self.current_epoch, batch_idx, self.global_rank))

    def configure_optimizers(self) -> Any:
        opt = build_optimizer(self.optimizer_name, self.parameters(), lr=self.max_lr, weight_decay=self.weight_decay)
        total = int(self.trainer.estimated_stepping_batches)
        max_epochs = max(int(self.trainer.max_epochs or 1), 1)
        warmup = int(round(self.warmup_epochs * total / max_epochs))
        sched = build_scheduler(
            opt,
            self.schedule,
            total_steps=total,
            warmup_steps=warmup,
            init_lr=self.init_lr,
            max_lr=self.max_lr,
            final_lr=self.final_lr,
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
