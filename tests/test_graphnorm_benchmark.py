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
    # the GIN figure is a recalled one: stored under its own key, never as "paper"
    assert models["gin/graph"]["paper"] is None and models["gin/graph"]["paper_recalled"] == 0.7773
    assert "recalled" in models["gin/graph"]["paper_source"] and models["gin/batch"]["target"] is None
    assert bench._hiv_key(entry) == "hiv_full_gin"
    # the same numbers with GINEConv's ReLU in the messages are another protocol: not merged into this entry
    relu = {**entry, "gin_message_activation": True}
    assert bench._merge_hiv(relu, entry)[1] is relu


def test_paper_figures_are_labelled_by_source(bench):
    gcn = bench._hiv_paper_fields("gcn", "graph")  # read from the reference README's table
    assert gcn["paper"] == 0.7883 and "paper_recalled" not in gcn and "Test Performance" in gcn["paper_source"]
    assert bench._hiv_paper_fields("gcn", "batch") == {"paper": None}
    tu = bench._tu_paper_fields("mutag")
    assert tu["paper"] is None and tu["paper_recalled"] == 91.6 and "recalled" in tu["paper_source"]
    assert bench._paper_cell(tu) == "91.6 (recalled)" and bench._paper_cell(gcn) == "0.7883"
    assert bench._paper_cell({"paper": None}) == "-"


def test_stored_results_keep_recalled_figures_apart(bench):
    """Every paper figure in graphnorm.json names its source; recalled ones are not stored as ``paper``."""
    import json
    from pathlib import Path

    results = json.loads((Path(bench.__file__).parent / "results" / "graphnorm.json").read_text())
    seen = []

    def walk(node):
        if isinstance(node, dict):
            if "paper" in node or "paper_recalled" in node:
                seen.append(node)
                if node.get("paper") is not None or node.get("paper_recalled") is not None:
                    assert node.get("paper_source"), node
                if node.get("paper") is not None:
                    assert "recalled" not in node["paper_source"]
                if node.get("paper_recalled") is not None:
                    assert "recalled" in node["paper_source"]
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(results)
    recalled = {v for e in seen for v in [e.get("paper_recalled")] if v is not None}
    assert {0.7773, 91.6}.issubset(recalled)
    assert not {e.get("paper") for e in seen} & (set(bench.PAPER_RECALLED.values()) | {0.7773})


def _conv_entry(epochs, graph_to, batch_to, graph_loss, batch_loss):
    def norm(to, loss):
        return {"epochs_to_threshold": to, "epochs_to_threshold_mean": float(np.mean(to)),
                "train_loss_mean": loss, "final_train_loss_mean": loss[-1]}
    return {"epochs": epochs, "norms": {"graph": norm(graph_to, graph_loss), "batch": norm(batch_to, batch_loss)}}


def test_convergence_says_what_decided_each_dataset(bench):
    reached = bench._compare(_conv_entry(3, [2, 4], [4, 4], [1.0, 0.5, 0.4], [0.6, 0.5, 0.3]))
    assert reached["decided_by"] == "epochs to threshold" and reached["graph_ahead_of_batch"] is True
    assert reached["norms"]["graph"]["seeds_reaching_threshold"] == 1 and not reached["no_norm_reached_threshold"]
    assert reached["graph_lower_final_train_loss_than_batch"] is False
    # neither reaches the threshold (epochs + 1 on every seed): the mean loss over all epochs decides, and says so
    tie = bench._compare(_conv_entry(3, [4, 4], [4, 4], [0.9, 0.8, 0.7], [1.0, 0.9, 0.8]))
    assert tie["decided_by"].startswith("mean training loss over all epochs") and "neither" in tie["decided_by"]
    assert tie["graph_ahead_of_batch"] is True and tie["no_norm_reached_threshold"]
    slower = bench._compare(_conv_entry(3, [3, 4], [2, 2], [0.9, 0.8, 0.7], [1.0, 0.9, 0.8]))
    summary = bench._convergence_summary({"a": reached, "b": tie, "c": slower})
    assert summary["graph_fewer_epochs_to_threshold"] == ["a"] and summary["batch_fewer_epochs_to_threshold"] == ["c"]
    assert summary["decided_by_mean_train_loss"] == ["b"] and summary["no_norm_reached_threshold"] == ["b"]
    assert summary["goal_met"] is False  # a dataset decided by the loss tie-break does not count toward the goal


def test_stored_convergence_summary_is_what_the_entries_show(bench):
    import copy
    import json
    from pathlib import Path

    results = json.loads((Path(bench.__file__).parent / "results" / "graphnorm.json").read_text())
    conv = {k: bench._compare(copy.deepcopy(v)) for k, v in results["convergence"].items()}
    assert conv == results["convergence"]  # the stored comparison is the current rule's
    assert bench._convergence_summary(conv) == results["convergence_summary"]


def test_a_rerun_hiv_setting_replaces_its_entry_and_archives_the_old_one(bench):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(bench.__file__).parent))
    import _harness as harness

    old = _entry(bench, [("graph", 0, 0.76), ("graph", 1, 0.70)])
    record = {"command": "graphnorm.py --parts hiv", "settings": {"setting": "full"}}
    current = {"hiv_full": old, "parts": {"hiv_full": record}}
    new = _entry(bench, [("graph", 1, 0.78)], overrides={"seeds": [1]})
    # without --merge: this run's seeds alone, the old entry kept under hiv_full_previous with its record
    parts = bench._hiv_parts(current, new, {"setting": "full"}, merge=False)
    assert [harness.part_label(p.key) for p in parts] == ["hiv_full", "hiv_full_previous"]
    assert [r["seed"] for r in parts[0].entry["runs"]] == [1]
    assert parts[1].entry == [dict(old, record=record)]
    # with --merge: the seeds join, nothing is displaced
    parts = bench._hiv_parts(current, new, {"setting": "full"}, merge=True)
    assert len(parts) == 1 and [r["seed"] for r in parts[0].entry["runs"]] == [0, 1]
    assert parts[0].settings["runs_kept_from_earlier"] == 1
    assert {r["seed"]: r["test_roc_auc"] for r in parts[0].entry["runs"]} == {0: 0.76, 1: 0.78}
