"""Lightning tasks: the one place that owns loss, metrics, target scaling and the optimizer.

Models stay plain ``torch.nn.Module``s (PyG-style ``forward(batch)``); a :class:`Task` wraps one
for training. Later methods (flows, equivariant models, certificates' smoothed classifiers)
subclass :class:`Task` and override :meth:`Task.compute_loss` / :meth:`Task.predict_step_values`.
"""

from __future__ import annotations

from typing import Any, Sequence

import lightning as L
import numpy as np
import torch

from molgraph.train.metrics import compute_metrics, default_metrics, masked_loss
from molgraph.train.optim import build_optimizer, build_scheduler
from molgraph.train.scaling import StandardScaler

__all__ = ["Task", "PropertyTask", "step_seed"]


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


class PropertyTask(Task):
    """Molecular property prediction: regression or binary (multi-task) classification.

    Targets may be NaN (missing label): masked out of the loss and the metrics. For regression,
    the model learns standardized targets (``target_scaler`` fitted on the training set) and
    every reported number is in the original units.

    Args:
        model: network returning ``(B, T)`` (scaled values or logits).
        task_type: ``regression`` | ``classification``.
        target_names: ``T`` names (for per-task metrics).
        target_scaler: fitted scaler for regression targets (``None``: no scaling).
        metrics: metric names (default per task type; the first is the primary one).
        **kwargs: :class:`Task` settings.

    Logged per epoch: ``train_loss``, ``val_loss`` (on the training scale) and ``val_<metric>``
    (mean over tasks) for every metric.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        task_type: str,
        target_names: Sequence[str],
        target_scaler: StandardScaler | None = None,
        metrics: Sequence[str] | None = None,
        **kwargs: Any,
    ):
        super().__init__(model, **kwargs)
        if task_type not in ("regression", "classification"):
            raise ValueError(f"task_type must be 'regression' or 'classification', got {task_type!r}")
        self.task_type = task_type
        self.target_names = list(target_names)
        self.metrics = list(metrics) if metrics else default_metrics(task_type)
        self.target_scaler = target_scaler
        self._val_outputs: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []

    # -- scaling ---------------------------------------------------------------------------------
    def scale_targets(self, y: torch.Tensor) -> torch.Tensor:
        if self.task_type == "regression" and self.target_scaler is not None:
            return self.target_scaler.transform(y)
        return y

    def to_values(self, out: torch.Tensor) -> torch.Tensor:
        """Raw model outputs -> predictions in user units (probabilities for classification)."""
        if self.task_type == "classification":
            return torch.sigmoid(out)
        if self.target_scaler is not None:
            return self.target_scaler.inverse_transform(out)
        return out

    def compute_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return masked_loss(out, self.scale_targets(y), self.task_type)

    # -- steps -----------------------------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self.compute_loss(self.model(batch), batch.y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=batch.num_graphs, sync_dist=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_outputs, self._val_targets = [], []

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        out = self.model(batch)
        self._val_outputs.append(out.detach().float().cpu())
        self._val_targets.append(batch.y.detach().float().cpu())

    def on_validation_epoch_end(self) -> None:
        if not self._val_outputs:
            return
        out = torch.cat(self._val_outputs)
        y = torch.cat(self._val_targets)
        # every process evaluates the whole validation set (see the data module), so these
        # numbers are identical on all ranks and need no synchronisation
        self.log("val_loss", self.compute_loss(out, y).item(), prog_bar=True)
        values = self.to_values(out).numpy()
        scores = compute_metrics(values, y.numpy(), self.task_type, self.metrics, self.target_names)
        for name in self.metrics:
            score = scores[name]
            self.log(f"val_{name}", float(score) if np.isfinite(score) else float("nan"))
        self._val_outputs, self._val_targets = [], []
