"""Diagnostic plots for a training run: learning curves, parity plots, ROC curves and calibration plots.

Figures are built with :class:`matplotlib.figure.Figure` on an explicit Agg canvas rather than
through ``pyplot``: no global backend switch, no global figure registry to leak memory, and safe
in a headless process. Each PNG is written through
:func:`molgraph.data.sources.atomic_output`, so a crash never leaves a half-written file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from molgraph.data.sources import atomic_output

__all__ = ["MAX_TASKS_PLOTTED", "plot_affinity", "plot_calibration", "plot_learning_curves", "plot_parity", "plot_roc"]

#: Plots show at most this many tasks (datasets like ToxCast have hundreds); the title says so.
MAX_TASKS_PLOTTED = 12

_DPI = 100



def _task_panels(n_tasks: int) -> tuple[Figure, int, Any]:
    """A figure with one panel per shown task (at most :data:`MAX_TASKS_PLOTTED`, 4 per row):
    ``(figure, number shown, panel(j) -> axes of task j)``."""
    n_shown = min(n_tasks, MAX_TASKS_PLOTTED)
    ncols = min(max(n_shown, 1), 4)
    nrows = max(math.ceil(n_shown / ncols), 1)
    fig = Figure(figsize=(3.6 * ncols, 3.4 * nrows))
    return fig, n_shown, lambda j: fig.add_subplot(nrows, ncols, j + 1)

def _save(fig: Figure, out_png: str | os.PathLike[str]) -> Path:
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas
    out = Path(out_png)
    with atomic_output(out, "wb") as fh:
        fig.savefig(fh, format="png", dpi=_DPI)
    return out


def _as_2d(x: Any, what: str) -> np.ndarray:
    """NumPy array / tensor -> float64 ndarray (N, T); 1-D is one task."""
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{what} must be (N, T) or (N,), got shape {a.shape}")
    return a


def _names(target_names: Sequence[str] | None, n_tasks: int) -> list[str]:
    if target_names is None:
        return [f"task_{j}" for j in range(n_tasks)]
    names = [str(n) for n in target_names]
    if len(names) != n_tasks:
        raise ValueError(f"got {len(names)} target_names for {n_tasks} tasks")
    return names


def _pair(y_true: Any, y_other: Any, other: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_2d(y_true, "y_true"), _as_2d(y_other, other)
    if a.shape != b.shape:
        raise ValueError(f"y_true and {other} shapes differ: {a.shape} vs {b.shape}")
    return a, b


# ----------------------------------------------------------------- learning curves
def _per_epoch(df: pd.DataFrame, column: str) -> pd.Series:
    """Values of ``column`` per epoch; the mean when logged more than once in an epoch
    (e.g. a per-step ``train_loss_step``), the value itself for epoch-level logs."""
    rows = df[["epoch", column]].dropna()
    return rows.groupby("epoch")[column].mean()


def _pick(columns: Sequence[str], candidates: Sequence[str]) -> str | None:
    return next((c for c in candidates if c in columns), None)


def plot_learning_curves(
    metrics_csv: str | os.PathLike[str],
    out_png: str | os.PathLike[str],
    title: str | None = None,
) -> Path:
    """Plot train/val loss per epoch, and other ``val_*`` metrics on a second panel.

    Args:
        metrics_csv: a Lightning ``CSVLogger`` ``metrics.csv``: an ``epoch`` column plus logged
            values (``train_loss``, ``val_loss``, ``val_rmse`` ...). Rows are sparse: each holds
            only the values logged at that step. ``<name>_epoch`` / ``<name>_step`` variants
            (from ``on_step=True, on_epoch=True``) are understood; the epoch one is preferred.
        out_png: output path (parent folders are created).
        title: figure title; default the CSV's parent folder name.

    Returns:
        ``Path(out_png)``.

    Raises:
        ValueError: the CSV has no ``epoch`` column.
    """
    df = pd.read_csv(metrics_csv)
    if "epoch" not in df.columns:
        raise ValueError(f"{metrics_csv}: no 'epoch' column; is this a Lightning metrics.csv?")
    cols = list(df.columns)
    loss_cols = {
        "train": _pick(cols, ["train_loss_epoch", "train_loss", "train_loss_step"]),
        "val": _pick(cols, ["val_loss_epoch", "val_loss", "val_loss_step"]),
    }
    used = {"val_loss", "val_loss_epoch", "val_loss_step"}
    metric_cols = [c for c in cols if c.startswith("val_") and c not in used]
    # Drop "_step" duplicates of an "_epoch" column: the epoch one already summarizes them.
    metric_cols = [
        c for c in metric_cols if not (c.endswith("_step") and f"{c[:-5]}_epoch" in cols)
    ]
    # Summary metrics before per-task ones ("val_rmse" before "val_rmse/task_0"), so the cap
    # below drops per-task detail first.
    metric_cols.sort(key=lambda c: "/" in c)
    n_metric_cols = len(metric_cols)
    metric_cols = metric_cols[:MAX_TASKS_PLOTTED]

    n_panels = 2 if metric_cols else 1
    fig = Figure(figsize=(6.5 * n_panels, 4.5))
    axes: list[Axes] = [fig.add_subplot(1, n_panels, i + 1) for i in range(n_panels)]

    plotted = False
    for label, col in loss_cols.items():
        if col is None:
            continue
        series = _per_epoch(df, col)
        if len(series):
            # Markers so a single-epoch run still shows its point.
            axes[0].plot(series.index, series.values, marker="o", ms=3, label=f"{label} ({col})")
            plotted = True
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("loss")
    axes[0].set_title("loss")
    if plotted:
        axes[0].legend()
    else:
        axes[0].text(0.5, 0.5, "no loss logged", ha="center", va="center",
                     transform=axes[0].transAxes)

    if metric_cols:
        ax = axes[1]
        for col in metric_cols:
            series = _per_epoch(df, col)
            if len(series):
                ax.plot(series.index, series.values, marker="o", ms=3, label=col)
        ax.set_xlabel("epoch")
        more = ""
        if n_metric_cols > len(metric_cols):
            more = f" (first {len(metric_cols)} of {n_metric_cols})"
        ax.set_title(f"validation metrics{more}")
        ax.legend(fontsize="small")

    fig.suptitle(title if title is not None else Path(metrics_csv).resolve().parent.name)
    fig.tight_layout()
    return _save(fig, out_png)


# --------------------------------------------------------------------- parity plot
def plot_parity(
    y_true: Any,
    y_pred: Any,
    target_names: Sequence[str] | None,
    out_png: str | os.PathLike[str],
) -> Path:
    """Predicted vs true scatter, one panel per task, with the ``y = x`` line and RMSE.

    Args:
        y_true: ``(N, T)`` targets (NaN = missing; such rows are skipped per task).
        y_pred: ``(N, T)`` predictions on the same scale.
        target_names: ``T`` names, or ``None`` for ``task_0 ..``.
        out_png: output path.

    Only the first :data:`MAX_TASKS_PLOTTED` tasks are drawn; the figure title says when more
    exist. Returns ``Path(out_png)``.
    """
    yt, yp = _pair(y_true, y_pred, "y_pred")
    names = _names(target_names, yt.shape[1])
    fig, n_shown, panel = _task_panels(len(names))
    for j in range(n_shown):
        ax = panel(j)
        ok = np.isfinite(yt[:, j]) & np.isfinite(yp[:, j])
        t, p = yt[ok, j], yp[ok, j]
        if len(t) == 0:
            ax.text(0.5, 0.5, "no labelled rows", ha="center", va="center",
                    transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(names[j], fontsize="small")
            continue
        rmse = float(np.sqrt(np.mean((p - t) ** 2)))
        lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
        pad = 0.05 * (hi - lo) if hi > lo else 0.5
        lo, hi = lo - pad, hi + pad
        ax.plot([lo, hi], [lo, hi], color="0.5", lw=1, ls="--", zorder=1)
        ax.scatter(t, p, s=8, alpha=0.6, zorder=2)
        # Same limits on both axes so y = x is the diagonal and deviations read true to scale.
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal", adjustable="box")
        ax.set_title(f"{names[j]}\nRMSE={rmse:.3g} (n={len(t)})", fontsize="small")
        ax.set_xlabel("true")
        ax.set_ylabel("predicted")
    if n_shown == 0:
        fig.add_subplot(1, 1, 1).text(0.5, 0.5, "no tasks", ha="center", va="center")
    suptitle = "parity"
    if len(names) > n_shown:
        suptitle += f" (first {n_shown} of {len(names)} tasks shown)"
    fig.suptitle(suptitle)
    fig.tight_layout()
    return _save(fig, out_png)


# ----------------------------------------------------------------------- ROC plot
def plot_roc(
    y_true: Any,
    y_prob: Any,
    target_names: Sequence[str] | None,
    out_png: str | os.PathLike[str],
) -> Path:
    """ROC curves of the tasks on one axis, AUC in the legend.

    Args:
        y_true: ``(N, T)`` 0/1 labels (NaN = missing; skipped per task).
        y_prob: ``(N, T)`` predicted probabilities (any monotone score works for ROC).
        target_names: ``T`` names, or ``None`` for ``task_0 ..``.
        out_png: output path.

    Only the first :data:`MAX_TASKS_PLOTTED` tasks are considered; tasks whose labelled rows hold
    a single class have no ROC curve and are skipped. The title notes both. Returns
    ``Path(out_png)``.
    """
    # Imported here: sklearn is slow to import and only this plot needs it.
    from sklearn.metrics import roc_auc_score, roc_curve

    yt, yp = _pair(y_true, y_prob, "y_prob")
    names = _names(target_names, yt.shape[1])
    n_shown = min(len(names), MAX_TASKS_PLOTTED)
    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="chance")
    skipped = []
    for j in range(n_shown):
        ok = np.isfinite(yt[:, j]) & np.isfinite(yp[:, j])
        t, p = yt[ok, j], yp[ok, j]
        if len(np.unique(t)) < 2:
            skipped.append(names[j])
            continue
        fpr, tpr, _ = roc_curve(t, p)
        auc = roc_auc_score(t, p)
        ax.plot(fpr, tpr, lw=1.2, label=f"{names[j]} (AUC={auc:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize="small", loc="lower right")
    notes = []
    if len(names) > n_shown:
        notes.append(f"first {n_shown} of {len(names)} tasks")
    if skipped:
        notes.append(f"{len(skipped)} single-class task(s) skipped")
    ax.set_title("ROC" + (f" ({'; '.join(notes)})" if notes else ""), fontsize="medium")
    fig.tight_layout()
    return _save(fig, out_png)


# ---------------------------------------------------------------- calibration plot
def plot_calibration(
    y_true: Any,
    mean: Any,
    std: Any | None,
    task_type: str,
    target_names: Sequence[str] | None,
    out_png: str | os.PathLike[str],
    title: str = "calibration",
) -> Path:
    """Calibration of the predicted uncertainty, one panel per task.

    Regression (``std`` given): observed against expected coverage of the Gaussian central
    intervals ``mean +- z std`` with the miscalibration area. Classification (``mean`` = the
    probabilities of class 1, ``std`` ignored): a reliability diagram (fraction of positives against
    mean probability in 10 bins) with the ECE. The diagonal is perfect calibration.
    """
    from molgraph.train.uncertainty_metrics import calibration_curve, coverage_curve, expected_calibration_error

    yt, ym = _pair(y_true, mean, "mean")
    ys = _as_2d(std, "std") if std is not None else None
    if task_type == "regression" and ys is None:
        raise ValueError("a regression calibration plot needs the predicted std")
    names = _names(target_names, yt.shape[1])
    fig, n_shown, panel = _task_panels(len(names))
    for j in range(n_shown):
        ax = panel(j)
        ok = ~np.isnan(yt[:, j])
        ax.plot([0, 1], [0, 1], color="0.5", lw=1, ls="--")
        if task_type == "regression":
            expected, observed = coverage_curve(yt[ok, j], ym[ok, j], ys[ok, j])
            area = float(np.trapezoid(np.abs(observed - expected), expected))
            ax.plot(expected, observed, lw=1.5)
            ax.fill_between(expected, expected, observed, alpha=0.2)
            ax.set_xlabel("expected coverage")
            ax.set_ylabel("observed coverage")
            ax.set_title(f"{names[j]}\nmiscalibration area={area:.3f} (n={int(ok.sum())})", fontsize="small")
        else:
            conf, acc, cnt = calibration_curve(yt[:, j], ym[:, j])
            ece = expected_calibration_error(yt[:, j], ym[:, j])
            ax.plot(conf, acc, marker="o", lw=1.5)
            ax.set_xlabel("mean predicted probability")
            ax.set_ylabel("fraction positive")
            ax.set_title(f"{names[j]}\nECE={ece:.3f} (n={int(ok.sum())})", fontsize="small")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal", adjustable="box")
    suptitle = title
    if len(names) > n_shown:
        suptitle += f" (first {n_shown} of {len(names)} tasks shown)"
    fig.suptitle(suptitle)
    fig.tight_layout()
    return _save(fig, out_png)


def plot_affinity(z: Any, names: Sequence[str], out_png: str | os.PathLike[str]) -> Path:
    """Heat map of inter-task affinities ``z[i, j]`` (row: the task stepped on; column: the task
    whose loss changes; :mod:`molgraph.train.task_grouping`). Returns ``Path(out_png)``."""
    z = np.asarray(z, dtype=np.float64)
    fig = Figure(figsize=(1 + 0.5 * len(names), 1 + 0.5 * len(names)))
    ax = fig.add_subplot(1, 1, 1)
    lim = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    im = ax.imshow(z, cmap="RdBu", vmin=-lim, vmax=lim)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("task j (loss after the step)")
    ax.set_ylabel("task i (gradient step)")
    fig.colorbar(im, ax=ax, label="lookahead affinity Z(i -> j)")
    fig.tight_layout()
    return _save(fig, out_png)
