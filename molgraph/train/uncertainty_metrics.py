"""Metrics of predicted uncertainty: how well a predicted std (regression) or probability
(classification) matches the errors it should describe.

Regression (``y``, ``mean``, ``std``: ``(N, T)``, user units; ``NaN`` labels left out per task):

* ``nll``: the mean Gaussian negative log-likelihood ``0.5 log(2 pi std^2) + (y - mean)^2 / (2 std^2)``
  (nats; lower is better);
* ``miscalibration_area``: the area between the curve of observed against expected coverage of
  the Gaussian central intervals and the diagonal, ``int_0^1 |obs(p) - p| dp`` on 101 levels
  (Tran et al. 2020; 0 is perfect, 0.5 the worst);
* ``spearman``: Spearman's rank correlation of ``|y - mean|`` with ``std`` (torchmetrics).

Classification (``prob`` of class 1):

* ``ece``: expected calibration error on 15 equal-width bins (torchmetrics, L1);
* ``brier``: the mean of ``(prob - y)^2``;
* ``nll``: the mean binary log-loss.

Each function returns the mean over tasks of the per-task values (tasks without labels skipped),
and :func:`uncertainty_metrics` returns the set for a task type. :func:`calibration_curve` gives the
points of the calibration plot (:func:`molgraph.train.plots.plot_calibration`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.stats import norm
from torchmetrics.functional import spearman_corrcoef
from torchmetrics.functional.classification import binary_calibration_error

__all__ = [
    "gaussian_nll",
    "miscalibration_area",
    "spearman_error_std",
    "expected_calibration_error",
    "brier_score",
    "binary_nll",
    "calibration_curve",
    "uncertainty_metrics",
]

_LEVELS = np.linspace(0.0, 1.0, 101)


def _columns(*arrays: np.ndarray):
    """Yield the labelled rows of each task: ``(y_t, a_t, b_t, ...)`` 1-D float64."""
    arrs = [np.asarray(a, dtype=np.float64) for a in arrays]
    arrs = [a[:, None] if a.ndim == 1 else a for a in arrs]
    y = arrs[0]
    for a in arrs[1:]:
        if a.shape != y.shape:
            raise ValueError(f"shapes differ: labels {y.shape}, predictions {a.shape}")
    for t in range(y.shape[1]):
        ok = ~np.isnan(y[:, t])
        if ok.sum() >= 2:
            yield tuple(a[ok, t] for a in arrs)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def gaussian_nll(y: np.ndarray, mean: np.ndarray, std: np.ndarray) -> float:
    """Mean Gaussian NLL (nats) over labelled entries, averaged over tasks."""
    out = []
    for yt, mt, st in _columns(y, mean, std):
        var = np.maximum(st, 1e-12) ** 2
        out.append(float(np.mean(0.5 * np.log(2 * math.pi * var) + (yt - mt) ** 2 / (2 * var))))
    return _mean(out)


def coverage_curve(y: np.ndarray, mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expected and observed coverage of the Gaussian central intervals, one task's 1-D arrays.

    Returns ``(expected (101,), observed (101,))``: ``observed[i]`` is the fraction of molecules
    with ``|y - mean| <= std * Phi^-1((1 + p_i) / 2)``.
    """
    z = np.abs(y - mean) / np.maximum(std, 1e-12)
    half = norm.ppf((1.0 + _LEVELS) / 2.0)  # inf at p = 1: every error is inside
    observed = (z[None, :] <= half[:, None]).mean(axis=1)
    return _LEVELS.copy(), observed


def miscalibration_area(y: np.ndarray, mean: np.ndarray, std: np.ndarray) -> float:
    """Area between observed and expected coverage (trapezoid rule on 101 levels), mean over tasks."""
    out = []
    for yt, mt, st in _columns(y, mean, std):
        expected, observed = coverage_curve(yt, mt, st)
        out.append(float(np.trapezoid(np.abs(observed - expected), expected)))
    return _mean(out)


def spearman_error_std(y: np.ndarray, mean: np.ndarray, std: np.ndarray) -> float:
    """Spearman correlation of ``|y - mean|`` with ``std`` (torchmetrics), mean over tasks."""
    out = []
    for yt, mt, st in _columns(y, mean, std):
        if np.ptp(st) == 0 or np.ptp(np.abs(yt - mt)) == 0:
            continue  # a constant std ranks nothing: undefined
        out.append(float(spearman_corrcoef(torch.as_tensor(st), torch.as_tensor(np.abs(yt - mt)))))
    return _mean(out)


def expected_calibration_error(y: np.ndarray, prob: np.ndarray, n_bins: int = 15) -> float:
    """ECE (L1, equal-width bins; torchmetrics ``binary_calibration_error``), mean over tasks."""
    out = []
    for yt, pt in _columns(y, prob):
        out.append(float(binary_calibration_error(torch.as_tensor(pt), torch.as_tensor(yt).long(),
                                                  n_bins=n_bins, norm="l1")))
    return _mean(out)


def brier_score(y: np.ndarray, prob: np.ndarray) -> float:
    """Mean squared difference of the probability of class 1 and the 0/1 label, mean over tasks."""
    return _mean([float(np.mean((pt - yt) ** 2)) for yt, pt in _columns(y, prob)])


def binary_nll(y: np.ndarray, prob: np.ndarray) -> float:
    """Mean binary log-loss (nats), probabilities clipped to ``[1e-7, 1 - 1e-7]``; mean over tasks."""
    out = []
    for yt, pt in _columns(y, prob):
        p = np.clip(pt, 1e-7, 1 - 1e-7)
        out.append(float(-np.mean(yt * np.log(p) + (1 - yt) * np.log1p(-p))))
    return _mean(out)


def calibration_curve(y: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reliability diagram of one task: ``(mean prob, fraction positive, count)`` per non-empty bin."""
    y, prob = np.asarray(y, dtype=np.float64), np.asarray(prob, dtype=np.float64)
    ok = ~np.isnan(y)
    y, prob = y[ok], prob[ok]
    bins = np.minimum((prob * n_bins).astype(int), n_bins - 1)
    conf, acc, cnt = [], [], []
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            conf.append(prob[sel].mean())
            acc.append(y[sel].mean())
            cnt.append(int(sel.sum()))
    return np.asarray(conf), np.asarray(acc), np.asarray(cnt)


def uncertainty_metrics(task_type: str, y: np.ndarray, mean: np.ndarray, std: np.ndarray | None) -> dict[str, float]:
    """The uncertainty metrics of a task type: regression ``nll``, ``miscalibration_area``,
    ``spearman`` (empty without ``std``); classification ``ece``, ``brier``, ``nll`` (``mean``:
    the probabilities)."""
    if task_type == "regression":
        if std is None:
            return {}
        return {"nll": gaussian_nll(y, mean, std), "miscalibration_area": miscalibration_area(y, mean, std),
                "spearman": spearman_error_std(y, mean, std)}
    return {"ece": expected_calibration_error(y, mean), "brier": brier_score(y, mean), "nll": binary_nll(y, mean)}
