"""Graph classification (multi-class) through the shared Lightning trainer, with per-epoch curves.

:class:`GraphClassificationTask` is a :class:`~molgraph.train.task.Task` (same optimizers,
schedules and per-batch reseeding) with a cross-entropy loss. :func:`fit_graph_classifier`
trains one model on one split and returns the learning curves the GraphNorm experiments need:
per epoch, the training loss and accuracy (averaged over the epoch's batches, in training mode,
as the paper's curves) and, for every named evaluation set (e.g. ``val`` and ``test``), loss and
accuracy in evaluation mode.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import lightning as L
import numpy as np
import torch
from torch.nn import functional as F

from molgraph.data.collated import CollatedGraphs
from molgraph.data.loader import GraphBatcher, graph_loader
from molgraph.train.task import Task

__all__ = ["GraphClassificationTask", "LearningCurves", "fit_graph_classifier"]


class GraphClassificationTask(Task):
    """Multi-class graph classification: ``model(batch) -> (B, C)`` logits, ``batch.y`` class indices.

    ``batch.y`` may be ``(B,)`` or ``(B, 1)``, integer or float (class index as a number).
    Logged per epoch: ``train_loss`` and ``train_acc``; evaluation sets are scored by
    :func:`evaluate` (called from :class:`_CurveRecorder`).
    """

    def __init__(self, model: torch.nn.Module, **kwargs: Any):
        super().__init__(model, **kwargs)
        self._epoch_loss = self._epoch_correct = 0.0
        self._epoch_seen = 0

    @staticmethod
    def labels(batch: Any) -> torch.Tensor:
        return batch.y.view(-1).long()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        out = self.model(batch)
        y = self.labels(batch)
        loss = F.cross_entropy(out, y)
        n = int(y.numel())
        self._epoch_loss += float(loss.detach()) * n
        self._epoch_correct += float((out.detach().argmax(1) == y).sum())
        self._epoch_seen += n
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=n)
        return loss

    def on_train_epoch_start(self) -> None:
        self._epoch_loss = self._epoch_correct = 0.0
        self._epoch_seen = 0

    def epoch_train_metrics(self) -> tuple[float, float]:
        """(loss, accuracy) over the training batches of the epoch just finished."""
        n = max(self._epoch_seen, 1)
        return self._epoch_loss / n, self._epoch_correct / n

    @torch.no_grad()
    def evaluate(self, loader: Any) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) of the model in evaluation mode over ``loader``."""
        was_training = self.model.training
        self.model.eval()
        loss_sum = correct = 0.0
        seen = 0
        for batch in loader:
            batch = batch.to(self.device)
            out = self.model(batch)
            y = self.labels(batch)
            loss_sum += float(F.cross_entropy(out, y, reduction="sum"))
            correct += float((out.argmax(1) == y).sum())
            seen += int(y.numel())
        self.model.train(was_training)
        return loss_sum / max(seen, 1), correct / max(seen, 1)


@dataclass
class LearningCurves:
    """Per-epoch metrics of one training run (lists of length ``epochs``).

    Attributes:
        train_loss, train_acc: training-mode averages over each epoch's batches.
        eval: ``{set name: {"loss": [...], "acc": [...]}}`` in evaluation mode after each epoch.
        seconds_per_epoch: wall time of each epoch's training batches (evaluation excluded).
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    eval: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    seconds_per_epoch: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"train_loss": self.train_loss, "train_acc": self.train_acc, "eval": self.eval,
                "seconds_per_epoch": self.seconds_per_epoch}


class _CurveRecorder(L.Callback):
    def __init__(self, curves: LearningCurves, loaders: Mapping[str, Any]):
        import time

        self._time = time.perf_counter
        self.curves, self.loaders = curves, dict(loaders)
        for name in self.loaders:
            curves.eval[name] = {"loss": [], "acc": []}
        self._t0 = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = self._time()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        assert isinstance(pl_module, GraphClassificationTask)
        self.curves.seconds_per_epoch.append(self._time() - self._t0)
        loss, acc = pl_module.epoch_train_metrics()
        self.curves.train_loss.append(loss)
        self.curves.train_acc.append(acc)
        for name, loader in self.loaders.items():
            e_loss, e_acc = pl_module.evaluate(loader)
            self.curves.eval[name]["loss"].append(e_loss)
            self.curves.eval[name]["acc"].append(e_acc)


def fit_graph_classifier(
    model: torch.nn.Module,
    graphs: CollatedGraphs,
    labels: Sequence[int] | np.ndarray,
    train_idx: Sequence[int],
    eval_idx: Mapping[str, Sequence[int]] | None = None,
    *,
    epochs: int = 400,
    batch_size: int = 128,
    lr: float = 1e-2,
    schedule: str = "linear",
    final_lr: float = 0.0,
    weight_decay: float = 0.0,
    optimizer: str = "adam",
    seed: int = 0,
    data_seed: int = 0,
    accelerator: str = "cpu",
) -> LearningCurves:
    """Train ``model`` on ``train_idx`` for ``epochs`` epochs and record the learning curves.

    Args:
        model: ``batch -> (B, C)`` logits (e.g. :class:`molgraph.methods.graph_classification.GraphClassifier`).
        graphs: all graphs (:meth:`molgraph.data.tu.TUGraphs.to_collated`).
        labels: ``(N,)`` class index per graph.
        train_idx: positions trained on; shuffled per epoch with ``data_seed``.
        eval_idx: named position lists scored after every epoch (e.g. ``{"val": ..., "test": ...}``).
        epochs, batch_size: per the protocol (400 and 128 in the GraphNorm TU experiments).
        lr, schedule, final_lr: Adam at ``lr`` decayed by ``schedule`` to ``final_lr`` (linear to 0 there).
        weight_decay, optimizer: optimizer settings (registry names, :mod:`molgraph.train.optim`).
        seed: model seed (initialization and dropout; each batch reseeds from it).
        data_seed: batch-order seed.
        accelerator: Lightning accelerator.

    Returns:
        :class:`LearningCurves`.
    """
    y = torch.as_tensor(np.asarray(labels), dtype=torch.float32).view(-1, 1)
    batcher = GraphBatcher(graphs, y)
    gen = torch.Generator().manual_seed(int(data_seed))
    train_loader = graph_loader(batcher, train_idx, batch_size=batch_size, shuffle=True, generator=gen)
    loaders = {name: graph_loader(batcher, idx, batch_size=max(batch_size, 512))
               for name, idx in (eval_idx or {}).items()}
    torch.manual_seed(int(seed))
    if hasattr(model, "reset_parameters"):
        model.reset_parameters()  # initialization depends on the model seed only
    task = GraphClassificationTask(model, optimizer=optimizer, weight_decay=weight_decay, schedule=schedule,
                                   warmup_epochs=0.0, init_lr=lr, max_lr=lr, final_lr=final_lr, seed=seed)
    curves = LearningCurves()
    trainer = L.Trainer(
        max_epochs=int(epochs), accelerator=accelerator, devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
        callbacks=[_CurveRecorder(curves, loaders)],
    )
    pl_log = logging.getLogger("lightning.pytorch")
    level = pl_log.level
    try:
        with warnings.catch_warnings():
            # tiny TU sets give Lightning's "few batches" and "num_workers" hints on every run
            warnings.filterwarnings("ignore", message=".*(does not have many workers|number of training batches).*")
            warnings.filterwarnings("ignore", message=".*treespec, LeafSpec.*")  # Lightning vs torch 2.13
            pl_log.setLevel(logging.WARNING)  # no "GPU available" banner per fold; restored below
            trainer.fit(task, train_dataloaders=train_loader)
    finally:
        pl_log.setLevel(level)
    return curves
