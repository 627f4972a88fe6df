"""benchmarks/_harness.py: results files that many runs of some parts share, written atomically,
and the benchmarks' use of it (per-part settings, old files, recipes)."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # as the benchmark scripts import it

import _harness as harness  # noqa: E402


def _run(command: str = "bench.py --x") -> harness.RunInfo:
    return harness.RunInfo(command=command, date="2026-01-01T00:00:00+00:00", machine={"cpu_count": 2},
                           versions={"numpy": "2"})


def test_a_run_of_some_parts_keeps_the_others_and_replaces_its_own(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    harness.update_results(out, [harness.Part("speed", {"x": 1}), harness.Part(("datasets", "a"), {"y": 1}),
                                 harness.Part(("datasets", "b"), {"y": 2})], _run("first"), benchmark="demo")
    harness.update_results(out, [harness.Part(("datasets", "a"), {"y": 10})], _run("second"), benchmark="demo")
    got = json.loads(out.read_text())
    assert got["speed"] == {"x": 1} and got["datasets"] == {"a": {"y": 10}, "b": {"y": 2}}
    assert got["benchmark"] == "demo"
    assert got["parts"]["datasets/a"]["command"] == "second"
    assert got["parts"]["datasets/b"]["command"] == "first" and got["parts"]["speed"]["command"] == "first"


def test_each_part_records_its_own_settings(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    harness.update_results(out, [harness.Part("convergence", {"e": 1}, {"epochs": 100, "seeds": [0, 1, 2]})], _run())
    harness.update_results(out, [harness.Part("accuracy", {"e": 2}, {"epochs": 400})], _run())
    got = json.loads(out.read_text())
    assert "settings" not in got  # no file-level settings for the last run to overwrite
    assert harness.part_settings(got, "convergence") == {"epochs": 100, "seeds": [0, 1, 2]}
    assert harness.part_settings(got, "accuracy") == {"epochs": 400}
    record = harness.part_record(got, "accuracy")
    assert record["machine"]["cpu_count"] == 2 and "loadavg_at_end" in record["machine"]
    assert record["versions"] == {"numpy": "2"} and record["date"] == "2026-01-01T00:00:00+00:00"


def test_a_failed_write_leaves_the_old_file_intact(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    harness.update_results(out, [harness.Part("speed", {"x": 1})], _run())
    before = out.read_bytes()
    with pytest.raises(TypeError, match="cannot write a object"):
        harness.update_results(out, [harness.Part("speed", {"x": object()})], _run())
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.json.lock"]  # no temporary file left


def test_an_unreadable_results_file_is_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    out.write_text("{ not json")
    with pytest.raises(harness.ResultsFileError, match="not valid JSON"):
        harness.start_run([], script="bench.py", distributions=(), output=out)
    with pytest.raises(harness.ResultsFileError):
        harness.update_results(out, [harness.Part("speed", {})], _run())
    assert out.read_text() == "{ not json"


def test_numpy_values_are_written_as_numbers(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    out = harness.write_json_atomic(tmp_path / "n.json", {"a": np.float32(0.5), "b": np.arange(3), "c": np.int64(7)})
    assert json.loads(out.read_text()) == {"a": 0.5, "b": [0, 1, 2], "c": 7}


def test_writers_running_at_once_all_end_up_in_the_file(tmp_path: Path) -> None:
    out = tmp_path / "r.json"

    def write(k: int) -> None:
        for i in range(5):
            harness.update_results(out, [harness.Part(("runs", f"w{k}_{i}"), {"k": k})], _run())

    threads = [threading.Thread(target=write, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = json.loads(out.read_text())
    assert len(got["runs"]) == 15 and len(got["parts"]) == 15


def test_old_file_level_keys_move_aside_and_still_answer_for_their_parts() -> None:
    old = {"settings": {"epochs": 50}, "machine": {"cpus": 2}, "anchors": {"a": {"v": 1}, "b": {"v": 2}}}
    merged = harness.merge_parts(old, [harness.Part(("anchors", "a"), {"v": 3}, {"epochs": 5})], _run(),
                                 legacy_keys=("settings", "machine"))
    assert "settings" not in merged and "machine" not in merged
    assert merged["legacy_run"]["settings"] == {"epochs": 50} and "note" in merged["legacy_run"]
    assert harness.part_settings(merged, ("anchors", "a")) == {"epochs": 5}
    assert harness.part_settings(merged, ("anchors", "b")) == {"epochs": 50}  # from the old file-level settings
    assert harness.part_settings(old, ("anchors", "b")) == {"epochs": 50}  # an old file not yet rewritten
    assert old["settings"] == {"epochs": 50} and "parts" not in old  # the caller's dict is not touched
    # a file with per-part records keeps its file-level keys: they were written on purpose
    again = harness.merge_parts(dict(merged, settings={"kept": True}), [], _run(), legacy_keys=("settings",))
    assert again["settings"] == {"kept": True}


def _old_format_graphnorm() -> dict:
    """graphnorm.json as written before per-part records (rebuilt from the stored file, whichever format it has)."""
    stored = json.loads((REPO / "benchmarks" / "results" / "graphnorm.json").read_text())
    old = {k: v for k, v in stored.items() if k not in ("parts", "legacy_run", "updated")}
    for key in ("settings", "machine"):
        old.setdefault(key, stored.get("legacy_run", {}).get(key, {"from": "test"}))
    return old


def test_old_graphnorm_results_still_read_and_merge(tmp_path: Path, graphnorm_benchmark) -> None:
    bench = graphnorm_benchmark
    old = _old_format_graphnorm()
    out = tmp_path / "graphnorm.json"
    out.write_text(json.dumps(old))
    entry = dict(old["accuracy"]["mutag"], epochs=3)
    new_settings = {"epochs": 3, "folds": 10}
    got = harness.update_results(out, lambda current: bench._replacing(
        current, [harness.Part(("accuracy", "mutag"), entry, new_settings)]), _run(),
        legacy_keys=bench.LEGACY_KEYS, finalize=bench._finalize)
    assert got == json.loads(out.read_text())
    assert got["legacy_run"]["settings"] == old["settings"] and "settings" not in got
    assert harness.part_settings(got, ("accuracy", "mutag")) == new_settings
    assert harness.part_settings(got, ("convergence", "mutag")) == old["settings"]  # old parts: the old settings
    assert got["accuracy"]["mutag"]["epochs"] == 3
    assert got["accuracy_previous"]["mutag"][-1] == old["accuracy"]["mutag"]  # replaced, kept
    for key in ("convergence", "convergence_summary", "speed"):
        assert got[key] == old[key], key  # untouched parts (convergence recomputed to the same)
    assert {k: v for k, v in got["accuracy"].items() if k != "mutag"} == {
        k: v for k, v in old["accuracy"].items() if k != "mutag"}
    assert "| mutag | 90% of training folds | 10 x 3 |" in got["tables"]


def test_load_recipe_flattens_tables_and_names_what_is_missing(tmp_path: Path) -> None:
    recipe = harness.load_recipe("dmpnn_esol")
    assert recipe["hidden_dim"] == 300 and recipe["dataset"] == "esol" and recipe["schedule"] == "noam"
    bad = tmp_path / "twice.toml"
    bad.write_text("[model]\ndepth = 3\n[optim]\ndepth = 4\n")
    with pytest.raises(ValueError, match="'depth' appears twice"):
        harness.load_recipe(bad)
    with pytest.raises(KeyError, match="has no no_such_key"):
        harness.load_recipe("dmpnn_esol", required=["depth", "no_such_key"])
    with pytest.raises(FileNotFoundError, match="models/"):
        harness.load_recipe("no_such_recipe")


def test_graphnorm_hiv_settings_are_the_recipes(graphnorm_benchmark) -> None:
    bench = graphnorm_benchmark
    for setting, name in bench.HIV_RECIPES.items():
        recipe = harness.load_recipe(name)
        s = bench.HIV_SETTINGS[setting]
        for key in ("hidden_dim", "dropout", "batch_size", "epochs", "schedule", "depth", "ffn_layers", "split",
                    "output_dropout"):
            assert s[key] == recipe[key], (setting, key)
        assert s["lr"] == recipe["max_lr"] and s["norm_eps"] == recipe.get("norm_eps")
    gcn = harness.load_recipe(bench.HIV_RECIPES["full"])
    assert bench.HIV_SETTINGS["full"]["gcn_propagation"] == gcn["gcn_propagation"]
    assert bench.HIV_SETTINGS["full_gin"]["gin_message_activation"] is False
    assert {k: gcn[k] for k in bench.HIV_TRAINER_KEYS} == bench.HIV_TRAINER
    # the comparisons are the GCN recipe with a few changes
    assert bench.HIV_SETTINGS["full_leaderboard"]["lr"] == gcn["max_lr"]


def _property_benchmark():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_property_bench", REPO / "benchmarks" / "property.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_property_runs_the_recipes(tmp_path: Path) -> None:
    bench = _property_benchmark()
    tomllib = pytest.importorskip("tomllib")
    args = type("Args", (), {"epochs": None, "no_molecule_features": False})()
    anchors = {a.name: a for a in bench.ANCHORS}
    esol = bench.run_config(anchors["esol_random"], "dmpnn", args, tmp_path)
    assert esol["path"] == REPO / "models" / "dmpnn_esol.toml"  # the recipe itself
    assert esol["molecule_featurizers"] == ["rdkit_descriptors"] and esol["epochs"] == 50
    assert esol["recipe_settings"]["hidden_dim"] == 300 and "dataset" not in esol["recipe_settings"]
    graph_only = bench.run_config(anchors["esol_scaffold"], "dmpnn", args, tmp_path)
    copy = tomllib.loads(Path(graph_only["path"]).read_text())
    assert graph_only["molecule_featurizers"] == [] and "molecule_featurizers" not in copy
    assert copy["hidden_dim"] == 300 and copy["schedule"] == "noam"  # the rest of the recipe, unchanged
    args.epochs, args.no_molecule_features = 5, True
    freesolv = bench.run_config(anchors["freesolv_random"], "gin", args, tmp_path)
    assert freesolv["recipe"] == "models/gin_freesolv.toml" and freesolv["epochs"] == 5
    assert freesolv["molecule_featurizers"] == []


def test_property_refuses_to_keep_anchors_of_other_settings() -> None:
    bench = _property_benchmark()
    old = {"settings": {"epochs": 50}, "anchors": {"esol_random": {"dataset": "esol"}, "bace_scaffold": {"dataset": "bace"}}}
    bench.check_kept(old, {"esol_random"}, "dmpnn", {"esol": 50, "bace": 50})
    with pytest.raises(SystemExit, match="bace_scaffold: epochs 50 \\(this run: 5\\)"):
        bench.check_kept(old, {"esol_random"}, "dmpnn", {"esol": 5, "bace": 5})
    bench.check_kept(old, {"esol_random", "bace_scaffold"}, "dmpnn", {"esol": 5, "bace": 5})  # all rerun
