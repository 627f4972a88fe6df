"""Calibration maps (z-scaling, isotonic, Platt): fitted on validation data, monotone, and stored in
the model file without pickled code."""

from __future__ import annotations

import numpy as np
import pytest

from molgraph.train.calibration import Calibrator, fit_calibrator
from molgraph.train.checkpoint import load_model_file, save_model_file


def _regression(rng, n=2000):
    mean = rng.normal(size=(n, 2))
    std = rng.uniform(0.2, 2.0, size=(n, 2))
    y = mean + 1.7 * std * rng.standard_normal((n, 2))  # the model's std is 1.7 times too small
    y[::10, 1] = np.nan
    return y, mean, std


def _classification(rng, n=4000):
    p = rng.uniform(0.01, 0.99, size=(n, 1))
    logit = np.log(p / (1 - p))
    true = 1 / (1 + np.exp(-(0.5 * logit + 0.3)))  # over-confident model
    y = (rng.uniform(size=(n, 1)) < true).astype(float)
    return y, p


@pytest.mark.parametrize("method", ["zscale", "isotonic"])
def test_regression_maps_are_monotone_and_fix_the_scale(method):
    rng = np.random.default_rng(0)
    y, mean, std = _regression(rng)
    cal = fit_calibrator(method, "regression", y, mean, std)
    grid = np.linspace(0.01, 3.0, 500)[:, None].repeat(2, axis=1)
    out = cal.apply_std(grid)
    assert (np.diff(out, axis=0) >= 0).all() and (out > 0).all()
    # the calibrated z-scores have unit variance on the data they were fitted on
    z = (y - mean) / cal.apply_std(std)
    assert np.nanmean(z**2, axis=0) == pytest.approx([1.0, 1.0], abs=0.08)


def test_zscale_factor_exact():
    y = np.array([[1.0], [-2.0], [3.0]])
    cal = fit_calibrator("zscale", "regression", y, np.zeros((3, 1)), np.ones((3, 1)))
    assert cal.params[0]["scale"] == pytest.approx(np.sqrt((1 + 4 + 9) / 3))
    np.testing.assert_allclose(cal.apply_std(np.array([[2.0]])), [[2 * np.sqrt(14 / 3)]])


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_classification_maps_are_monotone_and_calibrate(method):
    from molgraph.train.uncertainty_metrics import expected_calibration_error

    rng = np.random.default_rng(1)
    y, p = _classification(rng)
    cal = fit_calibrator(method, "classification", y, p)
    grid = np.linspace(0.0, 1.0, 1001)[:, None]
    out = cal.apply_prob(grid)
    assert (np.diff(out[:, 0]) >= -1e-12).all() and out.min() >= 0 and out.max() <= 1
    # fresh data from the same model: the calibrated probabilities have a smaller ECE
    y2, p2 = _classification(np.random.default_rng(2))
    assert expected_calibration_error(y2, cal.apply_prob(p2)) < 0.5 * expected_calibration_error(y2, p2)


def test_platt_recovers_the_generating_map():
    y, p = _classification(np.random.default_rng(3), n=40000)
    cal = fit_calibrator("platt", "classification", y, p)
    assert cal.params[0]["a"] == pytest.approx(0.5, abs=0.03)
    assert cal.params[0]["b"] == pytest.approx(0.3, abs=0.05)


def test_calibrators_round_trip_through_the_model_file(tmp_path):
    rng = np.random.default_rng(4)
    y, mean, std = _regression(rng)
    yc, p = _classification(rng)
    fitted = [fit_calibrator("zscale", "regression", y, mean, std), fit_calibrator("isotonic", "regression", y, mean, std),
              fit_calibrator("platt", "classification", yc, p), fit_calibrator("isotonic", "classification", yc, p)]
    payload = {"method": "property", "config": {}, "members": [], "property": {"calibrations": [c.to_dict() for c in fitted]}}
    save_model_file(tmp_path / "model.pt", payload)
    back = [Calibrator.from_dict(d) for d in load_model_file(tmp_path / "model.pt")["property"]["calibrations"]]
    for a, b in zip(fitted, back):
        assert a == b
        if a.task_type == "regression":
            np.testing.assert_array_equal(a.apply_std(std), b.apply_std(std))
        else:
            np.testing.assert_array_equal(a.apply_prob(p), b.apply_prob(p))


def test_bad_calibrations_are_refused():
    with pytest.raises(ValueError, match="does not apply to classification"):
        fit_calibrator("zscale", "classification", np.zeros((2, 1)), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="needs a predicted std"):
        fit_calibrator("isotonic", "regression", np.zeros((2, 1)), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="missing"):
        Calibrator.from_dict({"method": "platt", "task_type": "classification", "params": [{"a": 1.0}]})
    # a task without validation labels keeps its std
    cal = fit_calibrator("zscale", "regression", np.full((3, 1), np.nan), np.zeros((3, 1)), np.ones((3, 1)))
    np.testing.assert_array_equal(cal.apply_std(np.array([[0.7]])), [[0.7]])
