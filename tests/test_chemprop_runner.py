"""benchmarks/chemprop_runner.py: train chemprop v2 on a tiny ESOL split, twice, in subprocesses.

chemprop is not a molgraph dependency; the end-to-end test is skipped when it is not importable.
"""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
RUNNER = REPO / "benchmarks" / "chemprop_runner.py"
ESOL = REPO / "datasets" / "esol"


def _esol_job(tmp_path: Path, **overrides) -> Path:
    card = tomllib.loads((ESOL / "card.toml").read_text())
    # rows 0..1127; a fixed, spread-out choice of 120 of them, split 80/20/20
    rows = [(i * 37) % card["n_rows"] for i in range(120)]
    assert len(set(rows)) == 120
    job = {
        "csv": str(ESOL / card["file"]),
        "smiles_column": card["smiles_column"],
        "target_columns": card["target_columns"],
        "task_type": card["task_type"],
        "split": {"train": rows[:80], "val": rows[80:100], "test": rows[100:]},
        "seed": 7,
        "epochs": 3,
        "hidden_dim": 64,
        "ffn_hidden_dim": 64,
        "threads": 1,
        **overrides,
    }
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    return path


def _start(job: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(RUNNER), str(job), str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=job.parent,
    )


def test_runner_does_not_import_molgraph() -> None:
    """The script runs in chemprop's environment, where molgraph is not installed."""
    tree = ast.parse(RUNNER.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        assert not any(n.split(".")[0] == "molgraph" for n in names), names


@pytest.mark.parametrize(
    ("change", "message", "needs_pandas"),
    [
        (lambda j: j.pop("seed"), "missing required key(s): seed", False),
        (lambda j: j.update(task_type="multiclass"), "unknown task_type 'multiclass'", False),
        # rows are checked against the CSV (read with pandas, before torch/chemprop are imported)
        (lambda j: j["split"]["test"].append(99999), "out of range", True),
    ],
)
def test_bad_job_is_reported(tmp_path: Path, change, message: str, needs_pandas: bool) -> None:
    if needs_pandas:
        pytest.importorskip("pandas")
    job_path = _esol_job(tmp_path)
    job = json.loads(job_path.read_text())
    change(job)
    job_path.write_text(json.dumps(job))
    out = tmp_path / "out.json"
    proc = _start(job_path, out)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert message in err
    assert not out.exists()


# Two chemprop trainings in subprocesses, side by side: ~15 s on 2 cores, mostly imports (not
# marked slow; mark it if it grows past ~20 s).
def test_chemprop_runner_esol_tiny(tmp_path: Path) -> None:
    pytest.importorskip("chemprop", reason="chemprop is not installed (not a molgraph dependency)")
    job = _esol_job(tmp_path)
    outs = [tmp_path / "out_a.json", tmp_path / "out_b.json"]
    # the two same-seed runs go side by side to halve the wall time (each uses one thread)
    procs = [_start(job, out) for out in outs]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    a, b = (json.loads(out.read_text()) for out in outs)
    split = json.loads(job.read_text())["split"]

    assert a["chemprop_version"].startswith("2.")
    assert a["torch_version"]
    assert (a["n_train"], a["n_val"], a["n_test"]) == (80, 20, 20)
    assert a["rejects"] == []
    assert a["val_rows"] == split["val"] and a["test_rows"] == split["test"]
    for key, n in (("val_predictions", 20), ("test_predictions", 20)):
        preds = a[key]
        assert len(preds) == n and all(len(row) == 1 for row in preds), key
        assert all(v is not None and math.isfinite(v) for row in preds for v in row), key
    # regression output is unscaled: ESOL log-solubilities, not standardized values near 0
    mean = sum(r[0] for r in a["test_predictions"]) / 20
    assert -8.0 < mean < 1.0
    assert a["featurize_seconds"] > 0
    assert len(a["train_epoch_seconds"]) == 3 and all(s > 0 for s in a["train_epoch_seconds"])
    assert a["train_molecules_per_second"] > 0
    assert a["best_epoch"] in (0, 1, 2)
    assert a["n_parameters"] > 0

    # Same seed, one thread, Trainer(deterministic=True): chemprop v2 on CPU is bit-for-bit
    # reproducible (seeded init, SeededSampler shuffle, CPU index_add/scatter are deterministic).
    assert a["test_predictions"] == b["test_predictions"]
    assert a["val_predictions"] == b["val_predictions"]
    assert a["best_epoch"] == b["best_epoch"]


def _module(path: Path, name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_property_benchmark_jobs_from_recipes_pass_the_runner_checks(tmp_path: Path) -> None:
    """benchmarks/property.py fills chemprop's settings from models/dmpnn_<dataset>.toml: every anchor's
    job must be one the runner accepts (e.g. whole warm-up epochs where the recipe writes 2.0)."""
    runner = _module(RUNNER, "_chemprop_runner_under_test")
    bench = _module(REPO / "benchmarks" / "property.py", "_property_benchmark_under_test")
    for anchor in bench.ANCHORS:
        settings = bench.chemprop_settings(anchor.dataset)
        recipe = tomllib.loads((REPO / "models" / f"dmpnn_{anchor.dataset}.toml").read_text())
        assert settings["hidden_dim"] == recipe["model"]["hidden_dim"]
        assert settings["aggregation"] == recipe["model"]["readout"]
        assert settings["max_lr"] == recipe["optim"]["max_lr"]
        loaded = runner.load_job(_esol_job(tmp_path, **settings))  # ESOL's rows, the anchor's settings
        assert loaded["warmup_epochs"] == int(recipe["optim"]["warmup_epochs"]), anchor.name
        assert loaded["epochs"] == recipe["optim"]["epochs"]
