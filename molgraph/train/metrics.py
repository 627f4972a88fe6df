"""Evaluation metrics and the masked training loss for multi-task molecular property prediction.

Conventions:

* Predictions and targets are ``(N, T)`` arrays (``N`` molecules, ``T`` tasks); a 1-D array is one
  task, ``(N,) -> (N, 1)``. NumPy arrays and torch tensors are both accepted.
* A missing label is ``NaN`` in ``targets``. Each task is scored only on the rows where it has a
  label, so a NaN row never changes a result.
* Regression predictions are on the target scale. Classification is binary per task: for
  :func:`compute_metrics` predictions are probabilities in ``[0, 1]`` and targets are 0/1; for
  :func:`masked_loss` predictions are logits.

The metric computations themselves come from :mod:`torchmetrics.functional`; this module adds the
per-task masking, the definedness rules and the averaging over tasks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.functional import mean_absolute_error, mean_squared_error, r2_score
from torchmetrics.functional.classification import (
    binary_accuracy,
    binary_auroc,
    binary_average_precision,
)

from molgraph.registry import METRICS, TASK_TYPES

__all__ = [
    "METRICS",
    "TASK_TYPES",
    "MetricSpec",
    "compute_metrics",
    "default_metrics",
    "higher_is_better",
    "masked_loss",
    "primary_metric",
]

TASK_TYPES.register("regression", "regression", help="real-valued targets (MSE loss on standardized targets)")
TASK_TYPES.register("classification", "classification", help="binary targets, one per task (BCE loss)")

# A metric function takes the labelled rows of one task, 1-D float64 (preds, targets), and
# returns a 0-d tensor. The definedness checks are done before it is called.
MetricFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class MetricSpec:
    """One named metric.

    Attributes:
        name: registry key, also the key in :func:`compute_metrics` output.
        fn: ``fn(preds (n,), targets (n,)) -> 0-d tensor`` on the labelled rows of one task.
        higher_is_better: direction for model selection / early stopping.
        task_types: the task types (from :data:`TASK_TYPES`) the metric applies to.
    """

    name: str
    fn: MetricFn
    higher_is_better: bool
    task_types: tuple[str, ...]


def _rmse(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return mean_squared_error(p, t, squared=False)


def _mse(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return mean_squared_error(p, t, squared=True)


def _mae(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return mean_absolute_error(p, t)


def _r2(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return r2_score(p, t)


def _roc_auc(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    # thresholds=None: exact AUC (same as sklearn), not a binned approximation.
    return binary_auroc(p, t.long(), thresholds=None)


def _prc_auc(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    # Average precision (step-wise sum, as sklearn's average_precision_score), not the
    # trapezoidal area under the PR curve, which is optimistic.
    return binary_average_precision(p, t.long(), thresholds=None)


def _accuracy(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    # torchmetrics predicts the positive class when p > 0.5 (strictly).
    return binary_accuracy(p, t.long(), threshold=0.5)


_REG = ("regression",)
_CLS = ("classification",)

for _spec in (
        MetricSpec("rmse", _rmse, higher_is_better=False, task_types=_REG),
        MetricSpec("mse", _mse, higher_is_better=False, task_types=_REG),
        MetricSpec("mae", _mae, higher_is_better=False, task_types=_REG),
        MetricSpec("r2", _r2, higher_is_better=True, task_types=_REG),
        MetricSpec("roc_auc", _roc_auc, higher_is_better=True, task_types=_CLS),
        MetricSpec("prc_auc", _prc_auc, higher_is_better=True, task_types=_CLS),
        MetricSpec("accuracy", _accuracy, higher_is_better=True, task_types=_CLS),
):
    METRICS.register(_spec.name, _spec, help=f"{_spec.name} ({', '.join(_spec.task_types)})")

_DEFAULTS: dict[str, tuple[str, ...]] = {
    "regression": ("rmse", "mae", "r2"),
    "classification": ("roc_auc", "prc_auc", "accuracy"),
}


def _check_task_type(task_type: str) -> str:
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task type {task_type!r}; allowed: {list(TASK_TYPES)}")
    return task_type


def _spec(name: str) -> MetricSpec:
    try:
        return METRICS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown metric {name!r}; allowed: {sorted(METRICS)}") from None


def default_metrics(task_type: str) -> list[str]:
    """Metric names reported by default for ``task_type``; the first is the primary metric."""
    return list(_DEFAULTS[_check_task_type(task_type)])


def primary_metric(task_type: str) -> str:
    """The metric used for model selection: ``"rmse"`` (regression) or ``"roc_auc"``."""
    return _DEFAULTS[_check_task_type(task_type)][0]


def higher_is_better(name: str) -> bool:
    """Whether a larger value of metric ``name`` is better (``False`` for errors like rmse)."""
    return _spec(name).higher_is_better


def _as_2d_float64(x: Any, what: str) -> torch.Tensor:
    """NumPy array / tensor / nested list -> detached CPU float64 tensor of shape (N, T)."""
    if isinstance(x, torch.Tensor):
        t = x.detach().to(device="cpu", dtype=torch.float64)
    else:
        t = torch.from_numpy(np.asarray(x, dtype=np.float64).copy())
    if t.ndim == 1:
        t = t.unsqueeze(1)
    if t.ndim != 2:
        raise ValueError(f"{what} must be 1-D (N,) or 2-D (N, T), got shape {tuple(t.shape)}")
    return t


def _task_defined(name: str, n: int, t: torch.Tensor) -> bool:
    """Whether metric ``name`` is defined on one task's labelled targets ``t`` (n,)."""
    if n == 0:
        return False
    if name == "r2":
        return n >= 2
    if name in ("roc_auc", "prc_auc"):
        # AUC needs both classes; torchmetrics would return 0 with a warning otherwise.
        return bool(t.min() != t.max())
    return True


def compute_metrics(
    preds: Any,
    targets: Any,
    task_type: str,
    metrics: Sequence[str] | str | None = None,
    target_names: Sequence[str] | None = None,
) -> dict[str, float]:
    """Compute metrics per task on the labelled rows, and their mean over tasks.

    Args:
        preds: ``(N, T)`` or ``(N,)`` predictions (NumPy or torch). Classification: probabilities
            in ``[0, 1]``.
        targets: same shape as ``preds``; ``NaN`` marks a missing label. Classification: 0/1.
        task_type: ``"regression"`` or ``"classification"``.
        metrics: metric names (see :data:`METRICS`); default :func:`default_metrics`.
        target_names: ``T`` task names used in the keys; default ``task_0 .. task_{T-1}``.

    Returns:
        ``{"<metric>": mean over defined tasks, "<metric>/<target_name>": per-task value}`` as
        plain floats. A task's value is ``NaN`` (and left out of the mean) when the task has no
        labelled row, for ``roc_auc``/``prc_auc`` when its labels hold one class only, and for
        ``r2`` with fewer than 2 labelled rows. The mean is ``NaN`` when no task is defined.
        Non-finite predictions on labelled rows are not "undefined": they give a NaN task value
        that is *kept* in the mean, so a diverged model shows up as a NaN score rather than
        being averaged away.

    Raises:
        ValueError: unknown task type or metric, a metric for the other task type, mismatched
            shapes or names, classification targets other than 0/1 or probabilities outside
            ``[0, 1]`` (torchmetrics would silently apply a sigmoid to those).
    """
    _check_task_type(task_type)
    if metrics is None:
        names = default_metrics(task_type)
    elif isinstance(metrics, str):
        names = [metrics]
    else:
        names = list(metrics)
    for name in names:
        spec = _spec(name)
        if task_type not in spec.task_types:
            allowed = [m for m, s in METRICS.items() if task_type in s.task_types]
            raise ValueError(f"metric {name!r} does not apply to {task_type}; allowed: {allowed}")

    p_all = _as_2d_float64(preds, "preds")
    t_all = _as_2d_float64(targets, "targets")
    if p_all.shape != t_all.shape:
        raise ValueError(
            f"preds and targets must have the same shape, got {tuple(p_all.shape)} "
            f"and {tuple(t_all.shape)}"
        )
    n_tasks = p_all.shape[1]
    if target_names is None:
        task_names = [f"task_{j}" for j in range(n_tasks)]
    else:
        task_names = [str(n) for n in target_names]
        if len(task_names) != n_tasks:
            raise ValueError(f"got {len(task_names)} target_names for {n_tasks} tasks")

    labelled = ~torch.isnan(t_all)
    if task_type == "classification":
        lab_t = t_all[labelled]
        if not bool(((lab_t == 0) | (lab_t == 1)).all()):
            raise ValueError("classification targets must be 0, 1 or NaN (missing)")
        lab_p = p_all[labelled]
        finite_p = lab_p[torch.isfinite(lab_p)]
        if finite_p.numel() and (finite_p.min() < 0 or finite_p.max() > 1):
            raise ValueError(
                "classification preds must be probabilities in [0, 1] (apply a sigmoid to logits)"
            )

    out: dict[str, float] = {}
    per_metric: dict[str, list[float]] = {name: [] for name in names}
    for j, task in enumerate(task_names):
        mask = labelled[:, j]
        p, t = p_all[mask, j], t_all[mask, j]
        n = int(mask.sum())
        p_finite = bool(torch.isfinite(p).all())
        for name in names:
            key = f"{name}/{task}"
            if not _task_defined(name, n, t):
                out[key] = math.nan
                continue
            # torchmetrics' binary metrics reject NaN preds; report NaN ourselves instead.
            value = float(METRICS[name].fn(p, t)) if p_finite else math.nan
            out[key] = value
            per_metric[name].append(value)
    for name in names:
        vals = per_metric[name]
        out[name] = float(np.mean(vals)) if vals else math.nan
    # Means first, then the per-task keys: easier to read when printed.
    return {**{n: out[n] for n in names}, **{k: v for k, v in out.items() if "/" in k}}


def masked_loss(
    preds: torch.Tensor,
    targets: torch.Tensor,
    task_type: str,
    reduction: Literal["mean", "sum", "none"] = "mean",
) -> torch.Tensor:
    """Training loss over the labelled entries only; differentiable, no per-task Python loop.

    Args:
        preds: ``(N, T)`` or ``(N,)`` float tensor. Regression: values on whatever scale the
            targets use (typically standardized). Classification: **logits**.
        targets: same shape; ``NaN`` = missing label. Classification: 0/1 (soft labels in
            ``[0, 1]`` also work; not checked, to avoid a device sync on every step).
        task_type: ``"regression"`` (squared error) or ``"classification"`` (binary
            cross-entropy with logits).
        reduction: ``"mean"`` over labelled entries (``0.0`` with a grad path when there are
            none, never NaN), ``"sum"`` over labelled entries, or ``"none"`` for the ``(N, T)``
            elementwise loss with zeros at missing labels.

    Returns:
        0-d tensor (``"mean"``/``"sum"``) or a tensor shaped like ``preds`` (``"none"``).
    """
    _check_task_type(task_type)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"unknown reduction {reduction!r}; allowed: ['mean', 'sum', 'none']")
    targets = torch.as_tensor(targets, dtype=preds.dtype, device=preds.device)
    if targets.shape != preds.shape:
        raise ValueError(
            f"preds and targets must have the same shape, got {tuple(preds.shape)} "
            f"and {tuple(targets.shape)}"
        )
    mask = ~torch.isnan(targets)
    # Replace missing targets before the loss so no NaN ever enters the graph: a NaN in the
    # unselected branch of torch.where would still poison the gradient of the elementwise loss.
    safe_targets = torch.where(mask, targets, torch.zeros_like(targets))
    if task_type == "regression":
        elementwise = F.mse_loss(preds, safe_targets, reduction="none")
    else:
        elementwise = F.binary_cross_entropy_with_logits(preds, safe_targets, reduction="none")
    elementwise = torch.where(mask, elementwise, torch.zeros_like(elementwise))
    if reduction == "none":
        return elementwise
    total = elementwise.sum()
    if reduction == "sum":
        return total
    # clamp(min=1): with no labels the sum is 0 (still attached to preds), so the mean is 0.
    return total / mask.sum().clamp(min=1).to(total.dtype)
