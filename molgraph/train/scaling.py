"""Per-column standardization of regression targets, aware of missing labels (``NaN``).

Regression models train on standardized targets, ``(y - mean) / scale``, so that tasks on very
different scales weigh alike in the loss; predictions are mapped back with
:meth:`StandardScaler.inverse_transform`. The fitted statistics serialize to a small dict
(:meth:`StandardScaler.to_dict`) for saving next to a checkpoint.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import torch

__all__ = ["StandardScaler"]

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


class StandardScaler:
    """NaN-aware per-column standard scaler for ``(N, T)`` targets.

    ``fit`` computes, per column over its non-NaN entries, the mean and the population standard
    deviation (``ddof=0``, as scikit-learn). A constant column (std 0) or one with no value at all
    gets ``scale = 1.0`` so it is only shifted, never divided by ~0; an all-NaN column gets
    ``mean = 0.0``. ``NaN`` entries stay ``NaN`` through ``transform``/``inverse_transform``.

    Statistics are stored as float64 NumPy arrays of shape ``(T,)``. The transforms accept NumPy
    arrays and torch tensors of shape ``(..., T)`` (or any shape when ``T == 1``), and return the
    same type, dtype and device; integer input comes back as float64 (NumPy) or the default
    torch float dtype. Torch transforms are differentiable.
    """

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    # ---------------------------------------------------------------- fitting
    def fit(self, array: Any) -> StandardScaler:
        """Fit on ``array`` of shape ``(N, T)`` (or ``(N,)`` = one column); returns ``self``.

        Raises:
            ValueError: not 1-D/2-D, or contains an infinite value.
        """
        x = _to_numpy64(array)
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2:
            raise ValueError(f"fit expects a (N, T) or (N,) array, got shape {x.shape}")
        if np.isinf(x).any():
            raise ValueError("cannot fit a StandardScaler on infinite values")
        present = ~np.isnan(x)
        count = present.sum(axis=0)
        filled = np.where(present, x, 0.0)
        # Explicit sums instead of np.nanmean/nanstd: no "Mean of empty slice" warnings for
        # all-NaN columns, which get mean 0 and scale 1 by definition.
        mean = np.divide(filled.sum(axis=0), count, out=np.zeros(x.shape[1]), where=count > 0)
        sq = np.where(present, (x - mean) ** 2, 0.0)
        std = np.sqrt(np.divide(sq.sum(axis=0), count, out=np.zeros(x.shape[1]), where=count > 0))
        # A column is constant iff max == min; testing that (rather than std == 0) also catches
        # constant columns whose computed std is a rounding residue like 1e-17, which would
        # otherwise blow values up by 1e17.
        lo = np.where(present, x, np.inf).min(axis=0)
        hi = np.where(present, x, -np.inf).max(axis=0)
        constant = (count == 0) | (lo == hi) | ~np.isfinite(std) | (std == 0)
        self.mean_ = mean
        self.scale_ = np.where(constant, 1.0, std)
        return self

    def fit_transform(self, array: ArrayT) -> ArrayT:
        """``fit(array)`` then ``transform(array)``."""
        return self.fit(array).transform(array)

    # ------------------------------------------------------------- transforms
    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`from_dict`) has set the statistics."""
        return self.mean_ is not None and self.scale_ is not None

    @property
    def n_features(self) -> int:
        """Number of columns ``T`` the scaler was fitted on."""
        return len(self._stats()[0])

    def _stats(self) -> tuple[np.ndarray, np.ndarray]:
        if self.mean_ is None or self.scale_ is None:
            raise RuntimeError("StandardScaler is not fitted; call fit() or from_dict() first")
        return self.mean_, self.scale_

    def _apply(self, x: ArrayT, op: str) -> ArrayT:
        mean, scale = self._stats()
        if not isinstance(x, torch.Tensor):
            x = np.asarray(x)
        if x.ndim == 0 or (x.shape[-1] != len(mean) and len(mean) != 1):
            raise ValueError(
                f"expected an array whose last dimension is {len(mean)} (the fitted columns), "
                f"got shape {tuple(x.shape)}"
            )
        if isinstance(x, torch.Tensor):
            dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
            xt = x.to(dtype)
            m = torch.as_tensor(mean, dtype=dtype, device=x.device)
            s = torch.as_tensor(scale, dtype=dtype, device=x.device)
        else:
            dtype_np = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
            xt = x.astype(dtype_np, copy=False)
            m, s = mean.astype(dtype_np), scale.astype(dtype_np)
        if op == "transform":
            return (xt - m) / s
        if op == "inverse":
            return xt * s + m
        return xt * s  # "std": a standard deviation only scales, it does not shift

    def transform(self, x: ArrayT) -> ArrayT:
        """``(x - mean) / scale`` for ``x`` of shape ``(..., T)``; NaN stays NaN."""
        return self._apply(x, "transform")

    def inverse_transform(self, x: ArrayT) -> ArrayT:
        """``x * scale + mean``: standardized values ``(..., T)`` back to the original scale."""
        return self._apply(x, "inverse")

    def inverse_transform_std(self, std: ArrayT) -> ArrayT:
        """``std * scale``: a predicted standard deviation ``(..., T)`` back to the original
        scale (a variance would need ``scale ** 2``)."""
        return self._apply(std, "std")

    # ---------------------------------------------------------- serialization
    def to_dict(self) -> dict[str, list[float]]:
        """``{"mean": [...], "scale": [...]}`` (plain floats, JSON-ready)."""
        mean, scale = self._stats()
        return {"mean": [float(v) for v in mean], "scale": [float(v) for v in scale]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StandardScaler:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: missing keys, lengths differ, or a scale that is not finite and > 0.
        """
        try:
            mean = np.asarray(data["mean"], dtype=np.float64)
            scale = np.asarray(data["scale"], dtype=np.float64)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"scaler dict needs 'mean' and 'scale' lists: {exc}") from None
        if mean.ndim != 1 or mean.shape != scale.shape:
            raise ValueError(
                f"scaler 'mean' and 'scale' must be lists of equal length, got shapes "
                f"{mean.shape} and {scale.shape}"
            )
        if not np.isfinite(mean).all() or not (np.isfinite(scale) & (scale > 0)).all():
            raise ValueError("scaler 'mean' must be finite and 'scale' finite and > 0")
        obj = cls()
        obj.mean_, obj.scale_ = mean, scale
        return obj

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StandardScaler):
            return NotImplemented
        if not (self.fitted and other.fitted):
            return self.fitted == other.fitted
        a, b = self._stats(), other._stats()
        return all(np.array_equal(x, y) for x, y in zip(a, b))

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        if not self.fitted:
            return "StandardScaler(unfitted)"
        mean, scale = self._stats()
        return f"StandardScaler(mean={mean.tolist()}, scale={scale.tolist()})"


def _to_numpy64(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to(device="cpu", dtype=torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)
