"""``molgraph hpopt``: the search space from the settings' declarations, a search that never reads a
test label, and a killed study that resumes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from molgraph.data.registry import dataset_path
from molgraph.methods.property.config import PropertyConfig
from molgraph.train.hpopt import check_study_dir, run_hpopt, search_space

REPO = Path(__file__).resolve().parents[1]
TINY = dict(hidden_dim=16, ffn_hidden_dim=16, epochs=2, accelerator="cpu", progress=False, quiet=True)


def _csv(path: Path, n: int = 60) -> Path:
    df = pd.read_csv(dataset_path("esol"))
    pd.DataFrame({"smiles": df["smiles"][:n], "logS": df["measured log solubility in mols per litre"][:n]}).to_csv(
        path, index=False)
    return path


def _config(csv: Path) -> PropertyConfig:
    return PropertyConfig(input=str(csv), smiles_column="smiles", target_columns=["logS"], task_type="regression",
                          split_sizes=[0.6, 0.2, 0.2], **TINY)


def test_search_space_comes_from_the_setting_declarations():
    space = search_space(PropertyConfig)
    assert space["depth"] == ("int", 2, 6) and space["max_lr"][0] == "log"
    assert {"hidden_dim", "dropout", "ffn_layers", "ffn_hidden_dim"} <= set(space)
    assert list(search_space(PropertyConfig, ["depth", "max_lr"])) == ["depth", "max_lr"]
    with pytest.raises(ValueError, match="declares no search range"):
        search_space(PropertyConfig, ["epochs"])
    with pytest.raises(ValueError, match="not a setting"):
        search_space(PropertyConfig, ["depht"])


def test_a_declared_range_can_be_narrowed_not_widened():
    space = search_space(PropertyConfig, ["hidden_dim=100:400", "depth=2:5", "max_lr=0.0005:0.002", "dropout"])
    assert space["hidden_dim"] == ("int", 100, 400, 50) and space["depth"] == ("int", 2, 5)
    assert space["max_lr"] == ("log", 0.0005, 0.002) and space["dropout"] == ("float", 0.0, 0.4, 0.05)
    for bad, why in (("hidden_dim=50:400", "within the declared"), ("depth=4:3", "within the declared"),
                     ("depth=2", "LOW:HIGH"), ("depth=2.5:4", "LOW:HIGH")):
        with pytest.raises(ValueError, match=why):
            search_space(PropertyConfig, [bad])


def test_study_folder_of_the_user_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="did not write"):
        check_study_dir(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.slow  # two searches of 3 trials (about 15 s on 2 cores)
def test_search_never_reads_test_labels(tmp_path):
    clean = _csv(tmp_path / "clean.csv")
    a = run_hpopt(_config(clean), tmp_path / "a", trials=3, params=["depth", "max_lr"])
    split = json.loads((tmp_path / "a" / "search_split.json").read_text())
    assert split["test"] == [] and split["info"]["n_test_rows_left_out"] == 12
    seen = set(split["train"]) | set(split["val"])
    test_rows = sorted(set(range(60)) - seen)
    assert len(test_rows) == 12
    # poison every test label: any use of them (scaling, selection, a metric) would change the trials
    poisoned = pd.read_csv(clean)
    poisoned.loc[test_rows, "logS"] = 1e6
    poisoned.to_csv(tmp_path / "poisoned.csv", index=False)
    b = run_hpopt(_config(tmp_path / "poisoned.csv"), tmp_path / "b", trials=3, params=["depth", "max_lr"])
    ta, tb = (pd.read_csv(tmp_path / d / "trials.csv") for d in ("a", "b"))
    np.testing.assert_array_equal(ta["value"], tb["value"])
    assert a.best_params == b.best_params
    # no trial predicted or scored a test row
    for trial in (tmp_path / "b" / "trials").iterdir():
        assert not (trial / "test_predictions.csv").exists()
        assert "test" not in json.loads((trial / "metrics.json").read_text())
    # the best recipe is the user's split again (test part included), with the best values
    best = PropertyConfig.from_dict({k: v for k, v in __import__("tomllib").loads(
        (tmp_path / "b" / "best.toml").read_text()).items() if k != "method"})
    assert best.split_file is None and best.split_sizes == [0.6, 0.2, 0.2]
    assert best.depth == b.best_params["depth"] and best.max_lr == pytest.approx(b.best_params["max_lr"])


@pytest.mark.slow  # a search killed in a subprocess, then resumed (about 20 s on 2 cores)
def test_a_killed_study_resumes(tmp_path):
    csv = _csv(tmp_path / "data.csv")
    study = tmp_path / "study"
    script = tmp_path / "kill.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(REPO)!r})
        from lightning.pytorch.callbacks import Callback
        from molgraph.methods.property.config import PropertyConfig
        from molgraph.train.hpopt import run_hpopt

        class KillInSecondTrial(Callback):
            def on_train_epoch_end(self, trainer, pl_module):
                if str(trainer.default_root_dir).endswith("trial_001"):
                    os._exit(9)  # no clean-up at all, as a kill -9 would leave it

        cfg = PropertyConfig(input={str(csv)!r}, smiles_column="smiles", target_columns=["logS"],
                             task_type="regression", split_sizes=[0.6, 0.2, 0.2], **{TINY!r})
        run_hpopt(cfg, {str(study)!r}, trials=3, params=["depth", "max_lr"], callbacks=[KillInSecondTrial()])
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 9, proc.stderr[-2000:]
    import optuna

    killed = optuna.load_study(study_name="hpopt", storage=f"sqlite:///{study / 'study.db'}")
    assert [t.state.name for t in killed.trials] == ["COMPLETE", "RUNNING"]
    interrupted = killed.trials[1].params

    result = run_hpopt(_config(csv), study, trials=3, params=["depth", "max_lr"])
    done = optuna.load_study(study_name="hpopt", storage=f"sqlite:///{study / 'study.db'}")
    assert [t.state.name for t in done.trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert done.trials[2].params == interrupted  # the killed trial is run again
    assert result.n_complete == 3 and (study / "best.toml").is_file()
    assert len(pd.read_csv(study / "trials.csv")) == 4
    # a setting the method gained since the study began (missing from its record) is the same at its default
    record = json.loads((study / "search_space.json").read_text())
    del record["config"]["compile"]
    (study / "search_space.json").write_text(json.dumps(record))
    assert run_hpopt(_config(csv), study, trials=3, params=["depth", "max_lr"]).n_complete == 3
    # another recipe in the same folder is refused
    other = _config(csv)
    other.depth = 3
    with pytest.raises(ValueError, match="other settings"):
        run_hpopt(other, study, trials=4, params=["max_lr"])
