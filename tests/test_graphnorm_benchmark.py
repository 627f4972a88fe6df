"""The GraphNorm benchmark's bookkeeping: HIV runs of other seeds join their setting's entry."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def bench(graphnorm_benchmark):
    return graphnorm_benchmark


def _entry(bench, runs, overrides=None, accelerator="cpu", **changes):
    setting = dict(bench.HIV_SETTINGS["full"], **changes)
    entry = {"setting": "full", "overrides": overrides or {}, **setting, "featurizer": "ogb", "residual": True,
             "selection": "epoch with the best validation ROC-AUC", "accelerator": accelerator,
             "runs": [{"model": "gcn", "norm": n, "seed": s, "test_roc_auc": t, "val_roc_auc": 0.8}
                      for n, s, t in runs]}
    entry["models"] = bench._hiv_models(entry)
    return entry


def test_seeds_do_not_split_the_results(bench):
    assert bench._hiv_key({"setting": "full", "overrides": {"seeds": [3]}}) == "hiv_full"
    assert bench._hiv_key({"setting": "full", "overrides": {"seeds": [3], "norm_eps": 1e-6, "epochs": 5}}) == (
        "hiv_full_epochs=5_norm_eps=1e-06")


def test_merge_adds_other_seeds_and_replaces_redone_ones(bench):
    old = _entry(bench, [("graph", 0, 0.76), ("graph", 1, 0.70), ("batch", 0, 0.75)])
    new = _entry(bench, [("graph", 1, 0.78), ("graph", 2, 0.80)], overrides={"seeds": [1, 2]}, accelerator="gpu")
    assert new["models"]["gcn/graph"]["target_met"] is False  # two seeds decide nothing, whatever their mean
    merged, displaced = bench._merge_hiv(old, new)
    assert displaced is None
    got = {(r["norm"], r["seed"]): (r["test_roc_auc"], r["accelerator"]) for r in merged["runs"]}
    assert got == {("graph", 0): (0.76, "cpu"), ("graph", 1): (0.78, "gpu"), ("graph", 2): (0.80, "gpu"),
                   ("batch", 0): (0.75, "cpu")}
    assert merged["seeds"] == [0, 1, 2] and merged["overrides"] == {} and merged["accelerator"] == "cpu, gpu"
    gn = merged["models"]["gcn/graph"]
    assert gn["n_seeds"] == 3 and gn["seeds"] == [0, 1, 2]
    assert gn["test_roc_auc_mean"] == pytest.approx(0.78)  # with the replaced 0.70 it would be 0.753
    assert gn["test_roc_auc_std"] == pytest.approx(np.std([0.76, 0.78, 0.80]))
    assert gn["target"] == 0.77 and gn["target_met"] is True
    assert merged["models"]["gcn/batch"]["n_seeds"] == 1 and "target_met" not in merged["models"]["gcn/batch"]


def test_runs_of_another_protocol_are_not_mixed_in(bench):
    old = _entry(bench, [("graph", 0, 0.76)], epochs=40)  # the setting changed since
    new = _entry(bench, [("graph", 1, 0.78)])
    merged, displaced = bench._merge_hiv(old, new)
    assert displaced is old
    assert [r["seed"] for r in merged["runs"]] == [1] and merged["seeds"] == [1]


def test_an_altered_setting_has_no_target(bench):
    entry = _entry(bench, [("graph", s, 0.8) for s in range(3)], overrides={"norm_eps": 1e-6})
    assert entry["models"]["gcn/graph"]["target"] is None and "target_met" not in entry["models"]["gcn/graph"]


def test_the_reference_gin_setting_is_judged_and_kept_apart(bench):
    s = dict(bench.HIV_SETTINGS["full_gin"])
    entry = {"setting": "full_gin", "overrides": {}, **s, "featurizer": "ogb", "residual": True,
             "selection": "epoch with the best validation ROC-AUC", "accelerator": "cpu",
             "runs": [{"model": "gin", "norm": n, "seed": k, "test_roc_auc": t, "val_roc_auc": 0.8}
                      for n, k, t in [("graph", 0, 0.76), ("graph", 1, 0.77), ("graph", 2, 0.78), ("batch", 0, 0.9)]]}
    models = bench._hiv_models(entry)
    assert models["gin/graph"]["target"] == 0.77 and models["gin/graph"]["target_met"] is True
    assert models["gin/graph"]["paper"] == 0.7773 and models["gin/batch"]["target"] is None
    assert bench._hiv_key(entry) == "hiv_full_gin"
    # the same numbers with GINEConv's ReLU in the messages are another protocol: not merged into this entry
    relu = {**entry, "gin_message_activation": True}
    assert bench._merge_hiv(relu, entry)[1] is relu
