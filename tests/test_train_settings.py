"""`molgraph train` checks every setting before it writes, and a failed run leaves a usable folder.

A misspelt name must fail at once with the setting, the value and the valid names, leaving no
folder behind; a run that fails later must leave a folder the corrected command or ``--resume``
accepts; a finished run or a folder of the user's must never be written into.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from molgraph.cli.main import main
from molgraph.data.registry import dataset_path
from molgraph.methods.property.config import TrainConfig, setting_choices
from molgraph.train.optim import OPTIMIZERS, SCHEDULES, register_optimizer
from molgraph.train.runner import check_run_dir, run_training
from molgraph.methods.property.task import PropertyTask


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory) -> Path:
    """48 ESOL molecules with a short target name."""
    df = pd.read_csv(dataset_path("esol"))[:48]
    path = tmp_path_factory.mktemp("settings") / "tiny.csv"
    pd.DataFrame({"smiles": df["smiles"], "logS": df["measured log solubility in mols per litre"]}).to_csv(
        path, index=False)
    return path


def _args(csv_path: Path, run: Path, *extra: str) -> list[str]:
    return ["train", "-i", str(csv_path), "-s", "smiles", "--target-columns", "logS", "-t", "regression",
            "--epochs", "1", "--hidden-dim", "16", "--ffn-hidden-dim", "16", "--depth", "2", "-b", "16",
            "--accelerator", "cpu", "--no-progress", *extra, "-o", str(run)]


def _listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- bad names on the command line and in settings files: nothing written ----------------------


@pytest.mark.parametrize(("option", "bad", "valid"), [("--optimizer", "adamz", tuple(OPTIMIZERS)),
                                                      ("--schedule", "cosinus", SCHEDULES)])
def test_bad_name_on_the_command_line_writes_nothing(tmp_path, tiny_csv, capsys, option, bad, valid):
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as info:
        main(_args(tiny_csv, run, option, bad))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert option in err and repr(bad) in err
    assert all(repr(name) in err for name in valid)
    assert not run.exists()


@pytest.mark.parametrize(("setting", "bad", "valid"), [("optimizer", "adamz", tuple(OPTIMIZERS)),
                                                       ("schedule", "cosinus", SCHEDULES)])
def test_bad_name_in_a_settings_file_writes_nothing(tmp_path, tiny_csv, capsys, setting, bad, valid):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(f'{setting} = "{bad}"\n')
    run = tmp_path / "run"
    assert main(_args(tiny_csv, run, "--config", str(recipe))) == 1
    err = capsys.readouterr().err
    assert setting in err and repr(bad) in err and ", ".join(valid) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.toml"]


def test_help_lists_the_registered_names(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for setting in ("optimizer", "schedule", "model", "norm", "split", "readout"):
        assert ", ".join(setting_choices()[setting]) in out, setting


# -- TrainConfig.validate ------------------------------------------------------------------------


def _valid(**kw) -> TrainConfig:
    return TrainConfig(**{"dataset": "esol", "output_dir": "run", **kw})


@pytest.mark.parametrize("setting", sorted(setting_choices()))
def test_each_misnamed_choice_is_refused_with_the_valid_names(setting):
    extra = {"model": "gcn"} if setting in ("norm", "gcn_propagation") else {}  # settings of those models only
    value = ["nonesuch"] if setting == "metrics" else "nonesuch"
    with pytest.raises(ValueError) as info:
        _valid(**{setting: value, **extra}).validate()
    message = str(info.value)
    assert setting in message and "'nonesuch'" in message
    assert ", ".join(setting_choices()[setting]) in message
    _valid(**extra).validate()  # and the same settings without the bad name pass


def test_valid_names_come_from_the_registries():
    # a newly registered optimizer is valid at once: the name list is not repeated in the settings
    with pytest.raises(ValueError, match="'lion'"):
        _valid(optimizer="lion").validate()
    register_optimizer("lion", OPTIMIZERS["adam"])
    try:
        assert _valid(optimizer="lion").validate().optimizer == "lion"
        assert "lion" in setting_choices()["optimizer"]
    finally:
        OPTIMIZERS.unregister("lion")


@pytest.mark.parametrize(("kw", "message"), [
    ({"epochs": 0}, "epochs must be >= 1, got 0"),
    ({"epochs": "3"}, "epochs must be an integer, got '3'"),
    ({"epochs": True}, "epochs must be an integer"),
    ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ({"max_lr": float("nan")}, "max_lr must be a finite number"),
    ({"max_lr": 0.0}, "max_lr must be > 0"),
    ({"schedule": "noam", "final_lr": 0.0}, "noam schedule .* needs final_lr > 0"),
    ({"weight_decay": -1.0}, "weight_decay must be >= 0"),
    ({"grad_clip": 0.0}, "grad_clip must be > 0"),
    ({"hidden_dim": 0}, "hidden_dim must be >= 1"),
    ({"split_sizes": [0.9, 0.0, 0.1]}, "split_sizes: the validation fraction must be > 0"),
    ({"split_sizes": [0.5, 0.5]}, "split_sizes: sizes must be three fractions"),
    ({"seed": -1}, r"seed must be in \[0, 2\*\*32\)"),
    ({"metrics": ["roc_auc"]}, "metrics: 'roc_auc' does not apply to a regression task; for regression choose "
                               "from rmse, mse, mae, r2"),
    ({"monitor": "val_roc_auc"}, "monitor must be one of val_loss, train_loss, val_rmse, val_mae, val_r2; "
                                 "got 'val_roc_auc'"),
    ({"metrics": ["mae"], "monitor": "val_rmse"}, "monitor must be one of val_loss, train_loss, val_mae;"),
    ({"dataset": "esoll"}, "dataset: unknown dataset 'esoll'; known datasets: .*esol"),
    ({"task_type": "classification"}, "task_type: dataset esol is a regression set"),
    ({"target_columns": ["logS"]}, r"target_columns: dataset esol has no target column\(s\) \['logS'\]"),
    ({"dataset": "tox21", "split": "stratified"}, "stratified split needs exactly one target, got 12"),
    ({"batch_norm": True}, "batch_norm applies to the gin and gcn models"),
    ({"model": "gin", "norm": "graph", "batch_norm": True}, "batch_norm = True contradicts norm = 'graph'"),
    ({"num_workers": -1}, "num_workers must be >= 0"),
])
def test_values_and_combinations_are_checked(kw, message):
    with pytest.raises(ValueError, match=message):
        _valid(**kw).validate()


def test_values_are_normalized():
    import numpy as np

    cfg = _valid(epochs=np.int64(3), max_lr=1, devices=[0, 1], split_sizes=(0.8, 0.1, 0.1)).validate()
    assert (type(cfg.epochs), type(cfg.max_lr), cfg.devices, cfg.split_sizes) == (int, float, "0,1", [0.8, 0.1, 0.1])
    assert _valid(metrics=["roc_auc"], dataset="bbbp", monitor="val_roc_auc").validate().monitor == "val_roc_auc"


@pytest.mark.parametrize(("kw", "message"), [({"accelerator": "gpux"}, "invalid accelerator name.*gpux"),
                                             ({"precision": "33"}, "Precision '33' is invalid"),
                                             ({"strategy": "dddp"}, "invalid strategy name")])
def test_hardware_settings_are_checked_before_writing(tmp_path, tiny_csv, kw, message):
    cfg = TrainConfig(input=str(tiny_csv), smiles_column="smiles", target_columns=["logS"], task_type="regression",
                      output_dir=str(tmp_path / "run"), progress=False, **kw)
    with pytest.raises(ValueError, match=message):
        run_training(cfg)
    assert not (tmp_path / "run").exists()


# -- runs that fail while fitting ----------------------------------------------------------------


def _boom(*args, **kwargs):
    raise RuntimeError("simulated failure while fitting")


def test_run_failing_in_its_first_epoch_leaves_a_folder_both_retries_accept(tmp_path, tiny_csv, capsys, monkeypatch):
    run = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(PropertyTask, "training_step", _boom)
        with pytest.raises(RuntimeError, match="simulated") as info:
            main(_args(tiny_csv, run))
    assert "rerun the corrected command with the same -o" in " ".join(info.value.__notes__)
    assert (run / "config.toml").is_file() and not (run / "model.pt").exists()
    check_run_dir(run)  # accepted: nothing was trained
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)

    # the corrected command (settings may change) reuses the folder; no trace of the failed start is left
    assert main(_args(tiny_csv, run, "--hidden-dim", "8")) == 0
    assert (run / "model.pt").is_file() and "hidden_dim = 8" in (run / "config.toml").read_text()
    assert [p.name for p in (run / "logs" / "member_0").iterdir()] == ["version_0"]
    # now it holds a finished run, which a new run never overwrites
    before = _listing(run)
    capsys.readouterr()
    assert main(_args(tiny_csv, run)) == 1
    assert "holds a finished run" in capsys.readouterr().err
    assert _listing(run) == before

    # --resume also accepts the failed folder; a bad saved setting is named, and --resume can override it
    saved = copy / "config.toml"
    saved.write_text(saved.read_text().replace('optimizer = "adam"', 'optimizer = "adamz"'))
    capsys.readouterr()
    assert main(["train", "--resume", str(copy)]) == 1
    err = capsys.readouterr().err
    assert "config.toml" in err and "'adamz'" in err and ", ".join(OPTIMIZERS) in err and "--resume" in err
    assert not (copy / "model.pt").exists()
    assert main(["train", "--resume", str(copy), "--optimizer", "adam"]) == 0
    assert (copy / "model.pt").is_file() and 'optimizer = "adam"' in saved.read_text()


def test_run_failing_after_trained_epochs_is_kept_for_resume(tmp_path, tiny_csv, capsys, monkeypatch):
    run = tmp_path / "run"

    def stop_in_second_epoch(self):
        if self.current_epoch == 1:
            _boom()

    args = _args(tiny_csv, run, "--epochs", "2")
    with monkeypatch.context() as m:
        m.setattr(PropertyTask, "on_train_epoch_start", stop_in_second_epoch)
        with pytest.raises(RuntimeError) as info:
            main(args)
    assert f"molgraph train --resume {run}" in " ".join(info.value.__notes__)
    assert (run / "checkpoints" / "member_0" / "last.ckpt").is_file()
    # starting over would throw the trained epoch away: refused, saying what to do, folder untouched
    before = _listing(run)
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "unfinished run with trained epochs" in err and f"--resume {run}" in err
    assert _listing(run) == before
    assert main(["train", "--resume", str(run)]) == 0
    assert (run / "model.pt").is_file()


# -- folders that are not ours -------------------------------------------------------------------


def test_folders_with_foreign_files_are_refused_untouched(tmp_path, tiny_csv, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    (run / "config.toml").write_text("# looks like ours\n")
    assert main(_args(tiny_csv, run)) == 1
    err = capsys.readouterr().err
    assert "did not write (notes.txt)" in err
    assert _listing(run) == {"notes.txt": b"mine", "config.toml": b"# looks like ours\n"}
    with pytest.raises(FileExistsError, match="is a file"):
        check_run_dir(run / "notes.txt")
    # an empty folder and an atomic write's leftover temporary file are fine
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_run_dir(empty) == []
    (empty / ".config.toml.abc123.tmp").write_text("")
    assert [p.name for p in check_run_dir(empty)] == [".config.toml.abc123.tmp"]
    # --resume of a folder that is no run says so
    assert main(["train", "--resume", str(tmp_path / "empty")]) == 1
    assert "not the folder of a molgraph train run" in capsys.readouterr().err
