"""Metrics, masked loss, target scaling and diagnostic plots (molgraph.train.*)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)

from molgraph.train import plots as plots_mod
from molgraph.train.metrics import (
    METRICS,
    MetricSpec,
    compute_metrics,
    default_metrics,
    higher_is_better,
    masked_loss,
    primary_metric,
)
from molgraph.train.plots import plot_learning_curves, plot_parity, plot_roc
from molgraph.train.scaling import StandardScaler

nan = float("nan")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Two regression tasks, task 1 has missing labels.
REG_T = np.array([[1.0, 2.0], [2.0, nan], [3.5, 1.0], [0.5, 4.0], [4.0, nan], [2.5, 3.0]])
REG_P = np.array([[1.2, 2.5], [1.5, 9.0], [3.0, 1.5], [1.0, 3.0], [3.8, -7.0], [2.0, 3.3]])

# Two classification tasks with ties in the scores and a missing label.
CLS_T = np.array([[0, 1], [1, 0], [1, nan], [0, 1], [1, 0], [0, 1], [1, 1]], dtype=float)
CLS_P = np.array(
    [[0.1, 0.8], [0.7, 0.3], [0.4, 0.99], [0.4, 0.6], [0.9, 0.6], [0.55, 0.2], [0.7, 0.9]]
)


def _labelled(t: np.ndarray, p: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray]:
    ok = ~np.isnan(t[:, j])
    return t[ok, j], p[ok, j]


# ------------------------------------------------------------------------ registry
def test_registry_and_defaults():
    assert default_metrics("regression") == ["rmse", "mae", "r2"]
    assert default_metrics("classification") == ["roc_auc", "prc_auc", "accuracy"]
    assert primary_metric("regression") == "rmse"
    assert primary_metric("classification") == "roc_auc"
    assert not higher_is_better("rmse") and not higher_is_better("mae")
    assert higher_is_better("r2") and higher_is_better("roc_auc") and higher_is_better("accuracy")
    assert set(METRICS) == {"rmse", "mse", "mae", "r2", "roc_auc", "prc_auc", "accuracy"}
    assert all(isinstance(s, MetricSpec) and s.name == k for k, s in METRICS.items())
    with pytest.raises(dataclasses.FrozenInstanceError):
        METRICS["rmse"].higher_is_better = True  # type: ignore[misc]


@pytest.mark.parametrize(
    "call",
    [
        lambda: default_metrics("multiclass"),
        lambda: primary_metric("reg"),
        lambda: higher_is_better("auc"),
        lambda: compute_metrics([1.0], [1.0], "regression", metrics=["f1"]),
        lambda: compute_metrics([0.5], [1.0], "classification", metrics=["rmse"]),
        lambda: compute_metrics([1.0], [1.0], "ranking"),
    ],
)
def test_unknown_names_raise_with_allowed_values(call):
    with pytest.raises(ValueError, match="allowed"):
        call()


# ---------------------------------------------------------------- regression metrics
def test_regression_matches_sklearn_per_task_and_mean():
    out = compute_metrics(
        REG_P, REG_T, "regression", metrics=["rmse", "mse", "mae", "r2"], target_names=["a", "b"]
    )
    expected = {}
    for j, name in enumerate(["a", "b"]):
        t, p = _labelled(REG_T, REG_P, j)
        expected[f"mse/{name}"] = mean_squared_error(t, p)
        expected[f"rmse/{name}"] = math.sqrt(mean_squared_error(t, p))
        expected[f"mae/{name}"] = mean_absolute_error(t, p)
        expected[f"r2/{name}"] = r2_score(t, p)
    for m in ["rmse", "mse", "mae", "r2"]:
        expected[m] = (expected[f"{m}/a"] + expected[f"{m}/b"]) / 2
    assert set(out) == set(expected)
    for k, v in expected.items():
        assert out[k] == pytest.approx(v, rel=1e-12, abs=1e-12), k
        assert type(out[k]) is float
    # Means come first in the dict.
    assert list(out)[:4] == ["rmse", "mse", "mae", "r2"]


def test_nan_target_row_equals_dropping_it():
    # Row 1 is unlabelled for task 1 and its prediction there (9.0) is wild: it must not count.
    full = compute_metrics(REG_P, REG_T, "regression")
    keep = [0, 2, 3, 5]  # the rows where task 1 is labelled
    task1 = compute_metrics(REG_P[keep, 1], REG_T[keep, 1], "regression", target_names=["task_1"])
    for m in default_metrics("regression"):
        assert full[f"{m}/task_1"] == pytest.approx(task1[m], rel=1e-12)
    # A fully-unlabelled extra row changes nothing at all.
    more_t = np.vstack([REG_T, [nan, nan]])
    more_p = np.vstack([REG_P, [100.0, -100.0]])
    assert compute_metrics(more_p, more_t, "regression") == pytest.approx(full)


def test_torch_and_1d_inputs():
    t, p = REG_T[:, 0], REG_P[:, 0]
    a = compute_metrics(p, t, "regression")
    b = compute_metrics(torch.tensor(p, dtype=torch.float32, requires_grad=True), torch.tensor(t),
                        "regression")
    assert set(a) == {"rmse", "mae", "r2", "rmse/task_0", "mae/task_0", "r2/task_0"}
    assert b == pytest.approx(a, rel=1e-6)
    assert a["rmse"] == a["rmse/task_0"]


def test_undefined_tasks_are_nan_and_excluded_from_mean():
    t = np.array([[1.0, nan, 5.0], [2.0, nan, nan], [4.0, nan, nan]])
    p = np.array([[1.5, 0.0, 4.0], [2.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
    out = compute_metrics(p, t, "regression", target_names=["x", "none", "single"])
    assert math.isnan(out["rmse/none"]) and math.isnan(out["r2/none"])
    assert out["rmse/single"] == pytest.approx(1.0)
    assert math.isnan(out["r2/single"])  # one labelled row: r2 undefined
    assert out["rmse"] == pytest.approx((out["rmse/x"] + 1.0) / 2)
    assert out["r2"] == pytest.approx(out["r2/x"])  # only task x defines r2
    all_missing = compute_metrics(p[:, 1], t[:, 1], "regression")
    assert all(math.isnan(v) for v in all_missing.values())


def test_nonfinite_predictions_make_the_mean_nan():
    p = REG_P.copy()
    p[0, 0] = nan
    out = compute_metrics(p, REG_T, "regression")
    assert math.isnan(out["rmse/task_0"]) and not math.isnan(out["rmse/task_1"])
    assert math.isnan(out["rmse"])  # a diverged model is not averaged away


def test_shape_and_name_mismatch_raise():
    with pytest.raises(ValueError, match="same shape"):
        compute_metrics(REG_P, REG_T[:, :1], "regression")
    with pytest.raises(ValueError, match="target_names"):
        compute_metrics(REG_P, REG_T, "regression", target_names=["only_one"])


# ------------------------------------------------------------ classification metrics
def test_classification_matches_sklearn():
    out = compute_metrics(CLS_P, CLS_T, "classification")
    for j in range(2):
        t, p = _labelled(CLS_T, CLS_P, j)
        assert out[f"roc_auc/task_{j}"] == pytest.approx(roc_auc_score(t, p), rel=1e-12)
        # torchmetrics computes precision from integer counts in float32: ~1e-7 relative.
        assert out[f"prc_auc/task_{j}"] == pytest.approx(average_precision_score(t, p), rel=1e-6)
        assert out[f"accuracy/task_{j}"] == pytest.approx(accuracy_score(t, p > 0.5))
    for m in default_metrics("classification"):
        assert out[m] == pytest.approx((out[f"{m}/task_0"] + out[f"{m}/task_1"]) / 2)


def test_single_class_task_undefined_for_auc_only():
    t = np.column_stack([CLS_T[:, 0], np.ones(len(CLS_T))])
    out = compute_metrics(CLS_P, t, "classification")
    assert math.isnan(out["roc_auc/task_1"]) and math.isnan(out["prc_auc/task_1"])
    assert out["roc_auc"] == pytest.approx(out["roc_auc/task_0"])
    assert out["prc_auc"] == pytest.approx(out["prc_auc/task_0"])
    # Accuracy is still defined on a single-class task.
    assert out["accuracy/task_1"] == pytest.approx(np.mean(CLS_P[:, 1] > 0.5))
    assert out["accuracy"] == pytest.approx((out["accuracy/task_0"] + out["accuracy/task_1"]) / 2)


def test_classification_nan_row_equals_dropping_it():
    full = compute_metrics(CLS_P, CLS_T, "classification")
    ok = ~np.isnan(CLS_T[:, 1])
    dropped = compute_metrics(CLS_P[ok, 1], CLS_T[ok, 1], "classification")
    for m in default_metrics("classification"):
        assert full[f"{m}/task_1"] == pytest.approx(dropped[m], rel=1e-12)


def test_classification_input_validation():
    with pytest.raises(ValueError, match="probabilities"):
        compute_metrics(CLS_P * 3 - 1, CLS_T, "classification")  # logits, not probabilities
    with pytest.raises(ValueError, match="0, 1"):
        compute_metrics(CLS_P, CLS_T * 2, "classification")


# ---------------------------------------------------------------------- masked loss
def test_masked_loss_regression_matches_manual_and_has_grad():
    preds = torch.tensor(REG_P, requires_grad=True)
    targets = torch.tensor(REG_T)
    loss = masked_loss(preds, targets, "regression")
    ok = ~np.isnan(REG_T)
    manual = np.mean((REG_P[ok] - REG_T[ok]) ** 2)
    assert loss.item() == pytest.approx(manual, rel=1e-12)
    loss.backward()
    grad = preds.grad.numpy()
    assert np.isfinite(grad).all()
    assert (grad[~ok] == 0).all()  # unlabelled entries get no gradient
    np.testing.assert_allclose(grad[ok], 2 * (REG_P[ok] - REG_T[ok]) / ok.sum(), rtol=1e-12)
    assert masked_loss(preds, targets, "regression", "sum").item() == pytest.approx(
        manual * ok.sum()
    )
    none = masked_loss(preds, targets, "regression", "none")
    assert none.shape == preds.shape and (none[torch.from_numpy(~ok)] == 0).all()


def test_masked_loss_classification_is_masked_bce_with_logits():
    logits = torch.tensor([[2.0, -1.0], [-0.5, 3.0], [0.3, 0.0]], requires_grad=True)
    targets = torch.tensor([[1.0, nan], [0.0, 1.0], [nan, 0.0]])
    loss = masked_loss(logits, targets, "classification")
    ok = ~torch.isnan(targets)
    manual = torch.nn.functional.binary_cross_entropy_with_logits(logits[ok], targets[ok])
    assert loss.item() == pytest.approx(manual.item(), rel=1e-6)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad[~ok] == 0).all()


@pytest.mark.parametrize("task_type", ["regression", "classification"])
def test_masked_loss_without_labels_is_zero_not_nan(task_type):
    preds = torch.randn(4, 3, requires_grad=True)
    loss = masked_loss(preds, torch.full((4, 3), nan), task_type)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(preds.grad, torch.zeros(4, 3))


def test_masked_loss_rejects_bad_arguments():
    p = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="same shape"):
        masked_loss(p, torch.zeros(3, 1), "regression")
    with pytest.raises(ValueError, match="allowed"):
        masked_loss(p, torch.zeros(3, 2), "regression", reduction="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="allowed"):
        masked_loss(p, torch.zeros(3, 2), "multiclass")


# -------------------------------------------------------------------------- scaling
def test_scaler_statistics_and_round_trip():
    x = np.array([[1.0, 10.0, 5.0, nan], [3.0, nan, 5.0, nan], [5.0, 30.0, 5.0, nan]])
    sc = StandardScaler().fit(x)
    np.testing.assert_allclose(sc.mean_, [3.0, 20.0, 5.0, 0.0])
    np.testing.assert_allclose(sc.scale_, [np.std([1, 3, 5]), 10.0, 1.0, 1.0])
    z = sc.transform(x)
    assert z.dtype == np.float64
    np.testing.assert_array_equal(np.isnan(z), np.isnan(x))  # NaN stays NaN
    np.testing.assert_allclose(z[:, 2], 0.0)  # constant column: shifted, not blown up
    np.testing.assert_allclose(sc.inverse_transform(z), x, equal_nan=True)
    np.testing.assert_allclose(sc.inverse_transform_std(np.ones((2, 4))), [sc.scale_] * 2)


def test_scaler_constant_column_with_rounding_residue():
    x = np.full((7, 1), 0.1)  # the computed std is a tiny residue, not exactly 0
    sc = StandardScaler().fit(x)
    assert sc.scale_.tolist() == [1.0]
    assert np.abs(sc.transform(x)).max() < 1e-12


def test_scaler_keeps_type_dtype_and_grad():
    x = np.array([[1.0, 2.0], [3.0, 6.0]], dtype=np.float32)
    sc = StandardScaler().fit(x)
    assert sc.transform(x).dtype == np.float32
    t = torch.tensor(x, requires_grad=True)
    z = sc.transform(t)
    assert isinstance(z, torch.Tensor) and z.dtype == torch.float32
    # Plain comparisons: torch.testing's first use costs ~1 s of imports.
    assert z.tolist() == [[-1.0, -1.0], [1.0, 1.0]]
    z.sum().backward()
    assert t.grad.tolist() == [[1.0, 0.5], [1.0, 0.5]]
    back = sc.inverse_transform(torch.tensor([[0.0, nan]], dtype=torch.float64))
    assert back.dtype == torch.float64 and back[0, 0] == 2.0 and torch.isnan(back[0, 1])
    assert sc.inverse_transform_std(torch.ones(2)).tolist() == [1.0, 2.0]


def test_scaler_single_column_and_shape_check():
    sc = StandardScaler().fit(np.array([2.0, 4.0]))  # 1-D = one column
    assert sc.n_features == 1
    np.testing.assert_allclose(sc.transform(np.array([2.0, 4.0, 6.0])), [-1.0, 1.0, 3.0])
    two = StandardScaler().fit(np.ones((3, 2)))
    with pytest.raises(ValueError, match="last dimension"):
        two.transform(np.ones((3, 3)))
    with pytest.raises(ValueError, match="infinite"):
        StandardScaler().fit(np.array([[1.0], [np.inf]]))


def test_scaler_serialization_and_equality():
    sc = StandardScaler().fit(REG_T)
    d = sc.to_dict()
    assert set(d) == {"mean", "scale"} and all(type(v) is float for v in d["mean"] + d["scale"])
    again = StandardScaler.from_dict(json.loads(json.dumps(d)))
    assert again == sc and again is not sc
    assert again != StandardScaler().fit(REG_T * 2)
    assert StandardScaler() == StandardScaler() and StandardScaler() != sc
    with pytest.raises(ValueError):
        StandardScaler.from_dict({"mean": [0.0, 1.0], "scale": [1.0]})
    with pytest.raises(ValueError):
        StandardScaler.from_dict({"mean": [0.0], "scale": [0.0]})
    with pytest.raises(ValueError):
        StandardScaler.from_dict({"mean": [0.0]})


@pytest.mark.parametrize(
    "method",
    ["transform", "inverse_transform", "inverse_transform_std", "to_dict", "n_features"],
)
def test_unfitted_scaler_raises(method):
    sc = StandardScaler()
    with pytest.raises(RuntimeError, match="not fitted"):
        attr = getattr(sc, method)
        attr(np.zeros((2, 1))) if callable(attr) and method != "to_dict" else attr()


# ---------------------------------------------------------------------------- plots
def _is_png(path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_MAGIC


def test_plot_learning_curves_sparse_csv(tmp_path):
    # As written by Lightning's CSVLogger: each row holds only what was logged at that step.
    csv = tmp_path / "version_0" / "metrics.csv"
    csv.parent.mkdir()
    lines = ["epoch,step,train_loss,train_loss_step,val_loss,val_rmse,val_r2,val_rmse/task_0"]
    step = 0
    for epoch in range(3):
        for _ in range(2):
            lines.append(f"{epoch},{step},,{1.0 / (step + 1)},,,,")
            step += 1
        lines.append(f"{epoch},{step - 1},,,{0.9 - 0.1 * epoch},{1.2 - 0.1 * epoch},0.{epoch},1.0")
        lines.append(f"{epoch},{step - 1},{1.0 - 0.2 * epoch},,,,,")
    csv.write_text("\n".join(lines) + "\n")
    out = plot_learning_curves(csv, tmp_path / "plots" / "curves.png", title="run")
    assert out == tmp_path / "plots" / "curves.png" and _is_png(out)
    # No stray temporary files next to the output.
    assert [p.name for p in out.parent.iterdir()] == ["curves.png"]


def test_plot_learning_curves_loss_only_and_bad_csv(tmp_path):
    csv = tmp_path / "metrics.csv"
    csv.write_text("epoch,step,train_loss\n0,0,1.0\n")
    assert _is_png(plot_learning_curves(csv, tmp_path / "c.png"))
    bad = tmp_path / "bad.csv"
    bad.write_text("step,loss\n0,1.0\n")
    with pytest.raises(ValueError, match="epoch"):
        plot_learning_curves(bad, tmp_path / "bad.png")


def test_plot_parity(tmp_path, monkeypatch):
    out = plot_parity(REG_T, REG_P, ["a", "b"], tmp_path / "parity.png")
    assert _is_png(out)
    # More tasks than the cap (lowered so the test draws few panels), one with no label at all.
    monkeypatch.setattr(plots_mod, "MAX_TASKS_PLOTTED", 3)
    rng = np.random.default_rng(0)
    y = rng.normal(size=(20, 5))
    y[:, 1] = nan
    assert _is_png(plot_parity(y, y + 0.1, None, tmp_path / "many.png"))


def test_plot_roc(tmp_path, monkeypatch):
    out = plot_roc(CLS_T, CLS_P, ["t0", "t1"], tmp_path / "roc.png")
    assert _is_png(out)
    monkeypatch.setattr(plots_mod, "MAX_TASKS_PLOTTED", 4)
    rng = np.random.default_rng(0)
    y = (rng.random((30, 6)) > 0.5).astype(float)
    y[:, 2] = 1.0  # single class: skipped
    y[:5, 3] = nan
    assert _is_png(plot_roc(y, rng.random((30, 6)), None, tmp_path / "roc_many.png"))
