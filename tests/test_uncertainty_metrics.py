"""Uncertainty metrics: NLL, miscalibration area, Spearman of |error| vs std, ECE, Brier."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import binary_calibration_error

from molgraph.train import uncertainty_metrics as um


def test_calibrated_gaussian_scores_well_and_a_too_narrow_one_does_not():
    rng = np.random.default_rng(0)
    n = 20000
    mean = rng.normal(size=(n, 1))
    std = rng.uniform(0.5, 2.0, size=(n, 1))
    y = mean + std * rng.standard_normal((n, 1))
    assert um.miscalibration_area(y, mean, std) < 0.01
    # the expected NLL of a calibrated Gaussian: E[0.5 log(2 pi s^2)] + 0.5
    assert um.gaussian_nll(y, mean, std) == pytest.approx(np.mean(0.5 * np.log(2 * math.pi * std**2)) + 0.5, abs=0.02)
    # half the std: observed coverage of level p is P(|Z| <= z_p / 2); area = int |that - p| dp
    from scipy.stats import norm

    levels = np.linspace(0, 1, 100001)
    exact = np.trapezoid(np.abs(2 * norm.cdf(norm.ppf((1 + levels) / 2) / 2) - 1 - levels), levels)
    assert um.miscalibration_area(y, mean, std / 2) == pytest.approx(exact, abs=0.01)
    assert um.gaussian_nll(y, mean, std / 2) > um.gaussian_nll(y, mean, std)


def test_spearman_ranks_errors_against_std():
    y = np.array([[0.0], [1.0], [3.0], [-6.0]])
    mean = np.zeros((4, 1))
    assert um.spearman_error_std(y, mean, np.array([[0.1], [0.2], [0.3], [0.4]])) == pytest.approx(1.0)
    assert um.spearman_error_std(y, mean, np.array([[0.4], [0.3], [0.2], [0.1]])) == pytest.approx(-1.0)
    # NaN labels are skipped per task
    y2 = np.concatenate([y, [[np.nan]]])
    assert um.spearman_error_std(y2, np.zeros((5, 1)), np.array([[0.1], [0.2], [0.3], [0.4], [9.0]])) == pytest.approx(1.0)


def test_classification_metrics_exact():
    y = np.array([[1.0], [0.0], [1.0], [0.0]])
    p = np.array([[0.9], [0.2], [0.6], [0.4]])
    assert um.brier_score(y, p) == pytest.approx((0.01 + 0.04 + 0.16 + 0.16) / 4)
    assert um.binary_nll(y, p) == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.6, 0.6])))
    ref = float(binary_calibration_error(torch.tensor(p[:, 0]), torch.tensor(y[:, 0]).long(), n_bins=15))
    assert um.expected_calibration_error(y, p) == pytest.approx(ref)
    conf, acc, cnt = um.calibration_curve(y[:, 0], p[:, 0], n_bins=2)
    np.testing.assert_allclose(conf, [0.3, 0.75])
    np.testing.assert_allclose(acc, [0.0, 1.0])
    assert list(cnt) == [2, 2]
    assert set(um.uncertainty_metrics("classification", y, p, None)) == {"ece", "brier", "nll"}
    assert um.uncertainty_metrics("regression", y, p, None) == {}


def test_calibration_plot_is_written(tmp_path):
    from molgraph.train.plots import plot_calibration

    rng = np.random.default_rng(1)
    y = rng.normal(size=(50, 2))
    out = plot_calibration(y, np.zeros_like(y), np.ones_like(y), "regression", ["a", "b"], tmp_path / "c.png")
    assert out.stat().st_size > 1000
    yc = (rng.uniform(size=(50, 1)) < 0.5).astype(float)
    assert plot_calibration(yc, rng.uniform(size=(50, 1)), None, "classification", None, tmp_path / "d.png").is_file()
    with pytest.raises(ValueError, match="needs the predicted std"):
        plot_calibration(y, y, None, "regression", None, tmp_path / "e.png")
