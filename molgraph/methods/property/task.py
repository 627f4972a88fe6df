"""The property method's Lightning task: masked losses, target scaling, per-epoch metrics."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from molgraph.train.metrics import compute_metrics, default_metrics, masked_loss
from molgraph.train.scaling import StandardScaler
from molgraph.train.task import Task

__all__ = ["PropertyTask"]


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
        head: how the model's outputs are read (:mod:`molgraph.methods.property.uncertainty`):
            ``point`` (MSE / BCE), ``mve`` (Gaussian NLL), ``evidential`` (Amini et al.'s loss) or
            ``dirichlet`` (Sensoy et al.'s loss).
        evidential_lambda: weight of the evidence regularizer of the evidential and Dirichlet losses.
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
        head: str = "point",
        evidential_lambda: float = 0.2,
        **kwargs: Any,
    ):
        super().__init__(model, **kwargs)
        if task_type not in ("regression", "classification"):
            raise ValueError(f"task_type must be 'regression' or 'classification', got {task_type!r}")
        self.task_type = task_type
        self.target_names = list(target_names)
        self.metrics = list(metrics) if metrics else default_metrics(task_type)
        self.target_scaler = target_scaler
        self.head = head
        self.evidential_lambda = float(evidential_lambda)
        self._val_outputs: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []

    # -- scaling ---------------------------------------------------------------------------------
    def scale_targets(self, y: torch.Tensor) -> torch.Tensor:
        if self.task_type == "regression" and self.target_scaler is not None:
            return self.target_scaler.transform(y)
        return y

    def to_values(self, out: torch.Tensor) -> torch.Tensor:
        """Raw model outputs -> predictions in user units (probabilities for classification)."""
        if self.head != "point":
            from molgraph.methods.property.uncertainty import head_moments

            mean, _ = head_moments(out, self.head, len(self.target_names))
            if self.task_type == "regression" and self.target_scaler is not None:
                return self.target_scaler.inverse_transform(mean)
            return mean
        if self.task_type == "classification":
            return torch.sigmoid(out)
        if self.target_scaler is not None:
            return self.target_scaler.inverse_transform(out)
        return out

    def compute_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.head == "point":
            return masked_loss(out, self.scale_targets(y), self.task_type)
        from molgraph.methods.property.uncertainty import head_loss

        return head_loss(out, self.scale_targets(y), self.head, self.task_type, len(self.target_names),
                         self.evidential_lambda)

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
