"""Calibration of predicted uncertainties, fitted on the validation split and stored in a model file.

Regression (a mean ``mu`` and a standard deviation ``sigma`` per molecule and task):

* ``zscale``: one factor ``s`` per task, ``sigma' = s * sigma`` with ``s^2 = mean(((y - mu) / sigma)^2)``
  on the validation set, the factor that minimizes the Gaussian NLL there (Levi et al. 2022's
  "z-scaling"; chemprop v2's ``ZScalingCalibrator`` fits the same factor);
* ``isotonic``: ``sigma'^2 = g(sigma^2)`` with ``g`` the increasing (isotonic) regression of the
  squared validation errors ``(y - mu)^2`` on the predicted variances: the calibrated variance
  is the mean squared error of the validation molecules with a similar predicted variance. A
  floor (the smallest positive fitted value) keeps it above zero.

Classification (a probability ``p`` of class 1 per molecule and task):

* ``platt``: ``p' = sigmoid(a * logit(p) + b)`` with ``a >= 0`` (Platt 1999, fitted by maximum
  likelihood on the validation labels);
* ``isotonic``: ``p' = g(p)`` with ``g`` the isotonic regression of the labels on ``p``
  (Zadrozny & Elkan 2002), clipped to ``[0, 1]``.

Every map is monotone non-decreasing in its input (the tests check it). A :class:`Calibrator`
serializes to plain lists and floats (:meth:`Calibrator.to_dict`), so it travels in the model file
without pickled code. Missing labels (``NaN``) take no part in the fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["CALIBRATIONS", "Calibrator", "fit_calibrator"]

CALIBRATIONS: dict[str, tuple[str, ...]] = {
    "regression": ("zscale", "isotonic"),
    "classification": ("platt", "isotonic"),
}

_EPS = 1e-7


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _fit_isotonic(x: np.ndarray, y: np.ndarray, y_min: float | None, y_max: float | None) -> tuple[list, list]:
    """Breakpoints ``(xs, ys)`` of the increasing isotonic regression of ``y`` on ``x`` (applied with
    linear interpolation between them, constant beyond the ends)."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(increasing=True, out_of_bounds="clip", y_min=y_min, y_max=y_max)
    iso.fit(x, y)
    return [float(v) for v in iso.X_thresholds_], [float(v) for v in iso.y_thresholds_]


def _fit_platt(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``(a, b)`` maximizing the Bernoulli likelihood of ``y`` under ``sigmoid(a logit(p) + b)``, ``a >= 0``."""
    from scipy.optimize import minimize

    z = _logit(p)

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = theta
        t = a * z + b
        # log(1 + e^t) - y t, stable for both signs of t
        loss = np.logaddexp(0.0, t) - y * t
        q = 1.0 / (1.0 + np.exp(-t))
        g = q - y
        return float(loss.mean()), np.array([float((g * z).mean()), float(g.mean())])

    res = minimize(nll, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B", bounds=[(0.0, None), (None, None)])
    return float(res.x[0]), float(res.x[1])


@dataclass
class Calibrator:
    """A fitted calibration map per task.

    Attributes:
        method: ``zscale`` | ``isotonic`` | ``platt``.
        task_type: ``regression`` | ``classification``.
        params: one dict per task: ``{"scale": s}`` (zscale), ``{"x": [...], "y": [...]}``
            (isotonic breakpoints: variances for regression, probabilities for classification),
            ``{"a": a, "b": b}`` (platt); ``None`` for a task without validation labels (left as is).
    """

    method: str
    task_type: str
    params: list[dict[str, Any] | None] = field(default_factory=list)

    # -- applying ----------------------------------------------------------------------------------
    def apply_std(self, std: np.ndarray) -> np.ndarray:
        """Calibrated standard deviations ``(N, T)`` from predicted ones (regression)."""
        if self.task_type != "regression":
            raise ValueError(f"a {self.task_type} calibrator maps probabilities, not standard deviations")
        std = np.asarray(std, dtype=np.float64)
        out = std.copy()
        for t, prm in enumerate(self.params):
            if prm is None:
                continue
            if self.method == "zscale":
                out[:, t] = std[:, t] * prm["scale"]
            else:
                out[:, t] = np.sqrt(np.interp(std[:, t] ** 2, prm["x"], prm["y"]))
        return out

    def apply_prob(self, prob: np.ndarray) -> np.ndarray:
        """Calibrated probabilities ``(N, T)`` of class 1 from predicted ones (classification)."""
        if self.task_type != "classification":
            raise ValueError("a regression calibrator maps standard deviations, not probabilities")
        prob = np.asarray(prob, dtype=np.float64)
        out = prob.copy()
        for t, prm in enumerate(self.params):
            if prm is None:
                continue
            if self.method == "platt":
                out[:, t] = 1.0 / (1.0 + np.exp(-(prm["a"] * _logit(prob[:, t]) + prm["b"])))
            else:
                out[:, t] = np.interp(prob[:, t], prm["x"], prm["y"])
        return out

    # -- the model file ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "task_type": self.task_type, "params": [None if p is None else dict(p)
                                                                               for p in self.params]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Calibrator":
        """Inverse of :meth:`to_dict`; checks the method and the parameters' shapes."""
        method, task_type = data.get("method"), data.get("task_type")
        if task_type not in CALIBRATIONS or method not in CALIBRATIONS[task_type]:
            raise ValueError(f"calibrator: no {method!r} calibration for task type {task_type!r}")
        params = list(data.get("params") or [])
        for t, prm in enumerate(params):
            if prm is None:
                continue
            need = {"zscale": ("scale",), "isotonic": ("x", "y"), "platt": ("a", "b")}[method]
            missing = [k for k in need if k not in prm]
            if missing:
                raise ValueError(f"calibrator ({method}), task {t}: missing {missing}")
            if method == "isotonic" and (len(prm["x"]) != len(prm["y"]) or not prm["x"]):
                raise ValueError(f"calibrator (isotonic), task {t}: breakpoints x and y differ in length or are empty")
        return cls(method=method, task_type=task_type, params=params)


def fit_calibrator(
    method: str, task_type: str, y: np.ndarray, mean: np.ndarray, std: np.ndarray | None = None
) -> Calibrator:
    """Fit ``method`` on validation labels ``y`` ``(N, T)`` (NaN: missing) and predictions.

    Args:
        method: one of :data:`CALIBRATIONS` ``[task_type]``.
        y: labels in user units (0/1 for classification).
        mean: predicted means (regression) or probabilities of class 1 (classification), ``(N, T)``.
        std: predicted standard deviations ``(N, T)`` (regression; required there).

    Raises:
        ValueError: the method does not fit the task type, a regression calibration without
            ``std``, or shapes that differ.
    """
    if task_type not in CALIBRATIONS:
        raise ValueError(f"task_type must be one of {', '.join(CALIBRATIONS)}; got {task_type!r}")
    if method not in CALIBRATIONS[task_type]:
        raise ValueError(f"calibration {method!r} does not apply to {task_type}; choose one of "
                         f"{', '.join(CALIBRATIONS[task_type])}")
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    mean = np.asarray(mean, dtype=np.float64).reshape(y.shape)
    if task_type == "regression":
        if std is None:
            raise ValueError(f"calibration {method!r} of a regression model needs a predicted std: train with an "
                             "uncertainty (mve, evidential, ensemble or mc-dropout)")
        std = np.asarray(std, dtype=np.float64).reshape(y.shape)
    params: list[dict[str, Any] | None] = []
    for t in range(y.shape[1]):
        ok = ~np.isnan(y[:, t])
        if not ok.any():
            params.append(None)
            continue
        yt, mt = y[ok, t], mean[ok, t]
        if task_type == "regression":
            st = np.maximum(std[ok, t], 1e-12)
            if method == "zscale":
                params.append({"scale": float(np.sqrt(np.mean(((yt - mt) / st) ** 2)))})
            else:
                sq = (yt - mt) ** 2
                positive = sq[sq > 0]
                floor = float(positive.min()) if positive.size else 1e-12
                xs, ys = _fit_isotonic(st ** 2, sq, floor, None)
                params.append({"x": xs, "y": ys})
        elif method == "platt":
            a, b = _fit_platt(mt, yt)
            params.append({"a": a, "b": b})
        else:
            xs, ys = _fit_isotonic(mt, yt, 0.0, 1.0)
            params.append({"x": xs, "y": ys})
    return Calibrator(method=method, task_type=task_type, params=params)
