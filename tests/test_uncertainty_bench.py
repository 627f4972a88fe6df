"""The uncertainty rows of the property benchmark: chemprop_runner's uncertainty job keys, chemprop's
heads end to end (when chemprop is importable), and the merge of seeds across benchmark runs."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _job(tmp_path: Path, **kw) -> Path:
    job = {"csv": str(REPO / "datasets" / "esol" / "delaney-processed.csv"), "smiles_column": "smiles",
           "target_columns": ["measured log solubility in mols per litre"], "task_type": "regression",
           "split": {"train": list(range(0, 60)), "val": list(range(60, 80)), "test": list(range(80, 100))},
           "seed": 0, "epochs": 2, "hidden_dim": 32, "ffn_hidden_dim": 32, "threads": 1, **kw}
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    return path


@pytest.mark.parametrize("kw, message", [
    (dict(uncertainty="dirichlet"), "does not apply to regression"),
    (dict(uncertainty="bayes"), "unknown uncertainty"),
    (dict(mc_dropout_samples=5), "needs dropout > 0"),
])
def test_runner_refuses_bad_uncertainty_keys(tmp_path, kw, message):
    runner = _module("chemprop_runner")
    with pytest.raises(runner.JobError, match=message):
        runner.load_job(_job(tmp_path, **kw))


@pytest.mark.slow  # chemprop's MVE head, trained for 2 epochs in its own environment (about 20 s)
def test_runner_mve_gives_positive_variances(tmp_path):
    python = REPO / ".venv-chemprop" / "bin" / "python"
    if not python.is_file():
        pytest.skip("no .venv-chemprop (make .venv-chemprop/.installed)")
    out = tmp_path / "out.json"
    proc = subprocess.run([str(python), str(REPO / "benchmarks" / "chemprop_runner.py"),
                           str(_job(tmp_path, uncertainty="mve")), str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(out.read_text())
    assert len(res["test_variances"]) == 20
    assert all(v[0] > 0 and math.isfinite(v[0]) for v in res["test_variances"])


def test_seeds_of_an_earlier_run_with_the_same_settings_are_kept():
    bench = _module("property_uncertainty")
    one = {"rmse": 1.0, "raw": {"nll": 1.0, "miscalibration_area": 0.1, "spearman": 0.2}, "calibrated": None}
    pending = [(("uncertainty", "esol", "mve"), {"seeds": {"1": {"molgraph": one}}}, {"epochs": 30, "seeds": [1]},
                "regression")]
    earlier = {"uncertainty": {"esol": {"mve": {"seeds": {"0": {"molgraph": {**one, "rmse": 2.0}}}}}},
               "parts": {"uncertainty/esol/mve": {"settings": {"epochs": 30, "seeds": [0]}}}}
    (part,) = bench.fold_seeds(pending, True)(earlier)
    assert sorted(part.entry["seeds"]) == ["0", "1"] and part.settings["seeds"] == [0, 1]
    assert part.entry["summary"]["molgraph"]["rmse"]["mean"] == pytest.approx(1.5)
    # other settings: the earlier seeds are not mixed in
    earlier["parts"]["uncertainty/esol/mve"]["settings"]["epochs"] = 50
    (part,) = bench.fold_seeds(pending, True)(earlier)
    assert sorted(part.entry["seeds"]) == ["1"]
