"""The shared trainer end to end: learning, NaN masking, model files, resume, DDP, CLI."""

from __future__ import annotations

import csv
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch

from molgraph.cli.main import main
from molgraph.data.loader import GraphBatcher
from molgraph.data.registry import dataset_path
from molgraph.featurizers import MolGraphFeaturizer
from molgraph.methods.property.model import build_model
from molgraph.train.checkpoint import CheckpointError, load_model_file
from molgraph.methods.property.config import TrainConfig
from molgraph.train.datamodule import GraphDataModule
from molgraph.methods.property.predict import Predictor
from molgraph.train.runner import run_training
from molgraph.train.scaling import StandardScaler
from molgraph.methods.property.task import PropertyTask

REPO = Path(__file__).resolve().parents[1]
SMALL = dict(hidden_dim=32, ffn_hidden_dim=32, accelerator="cpu", progress=False)


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory) -> Path:
    """128 ESOL molecules with a short target name, plus an exact 96/16/16 split file."""
    d = tmp_path_factory.mktemp("tiny")
    df = pd.read_csv(dataset_path("esol"))
    out = pd.DataFrame({"name": df["Compound ID"][:128], "smiles": df["smiles"][:128],
                        "logS": df["measured log solubility in mols per litre"][:128]})
    out.to_csv(d / "tiny.csv", index=False)
    (d / "split.json").write_text(json.dumps({"train": list(range(96)), "val": list(range(96, 112)),
                                              "test": list(range(112, 128))}))
    return d / "tiny.csv"


def _config(tmp_path: Path, csv_path: Path, name: str, **kw) -> TrainConfig:
    base = dict(input=str(csv_path), smiles_column="smiles", target_columns=["logS"], task_type="regression",
                split_file=str(csv_path.parent / "split.json"), epochs=3, output_dir=str(tmp_path / name), **SMALL)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.slow  # a long overfit (about 30 s on 2 cores)
def test_overfits_a_small_batch():
    feat = MolGraphFeaturizer.from_preset("multihot")
    smiles = pd.read_csv(dataset_path("esol"))["smiles"][:16].tolist()
    y = torch.tensor(pd.read_csv(dataset_path("esol"))["measured log solubility in mols per litre"][:16].to_numpy(),
                     dtype=torch.float32)[:, None]
    from molgraph.data.collated import CollatedGraphs

    graphs = CollatedGraphs.from_arrays([feat.arrays(s) for s in smiles])
    scaler = StandardScaler().fit(y.numpy())
    L.seed_everything(0, verbose=False)
    model = build_model("dmpnn", num_tasks=1, atom_dim=feat.atom_dim, bond_dim=feat.bond_dim, hidden_dim=64,
                        ffn_hidden_dim=64)
    task = PropertyTask(model, task_type="regression", target_names=["logS"], target_scaler=scaler,
                        schedule="constant", max_lr=3e-3)
    dm = GraphDataModule(GraphBatcher(graphs, y), range(16), range(16), batch_size=16)
    trainer = L.Trainer(max_epochs=150, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        use_distributed_sampler=False, check_val_every_n_epoch=50)
    trainer.fit(task, datamodule=dm)
    model.eval()
    with torch.no_grad():
        pred = task.to_values(model(GraphBatcher(graphs)(list(range(16)))))
    rmse = float(((pred - y) ** 2).mean().sqrt())
    assert rmse < 0.1 * float(y.std()), rmse


def test_nan_labels_are_masked(tmp_path):
    # two tasks, the second labelled on half the rows only; NaN cells must neither crash nor leak
    df = pd.read_csv(dataset_path("esol"))[:80]
    t2 = df["Molecular Weight"].to_numpy(dtype=float) / 100.0
    t2[::2] = np.nan
    path = tmp_path / "two.csv"
    pd.DataFrame({"smiles": df["smiles"], "a": df["measured log solubility in mols per litre"], "b": t2}).to_csv(
        path, index=False)
    cfg = TrainConfig(input=str(path), smiles_column="smiles", target_columns=["a", "b"], task_type="regression",
                      epochs=2, output_dir=str(tmp_path / "run"), split="random", **SMALL)
    res = run_training(cfg)
    test = res.metrics["test"]
    assert np.isfinite(test["rmse/a"]) and np.isfinite(test["rmse/b"])
    preds = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    truth_b = preds["b"]
    rows = preds["row"].to_numpy()
    assert truth_b.isna().to_numpy().tolist() == (rows % 2 == 0).tolist()  # missing labels stay missing
    assert preds["b_pred"].notna().all()
    # the loss scaler ignored the missing cells: fitted mean equals the nanmean over training rows
    payload = load_model_file(tmp_path / "run" / "model.pt")["property"]
    train_rows = payload["split"]["train"]
    expected = np.nanmean(t2[train_rows])
    assert payload["target_scaler"]["mean"][1] == pytest.approx(expected, rel=1e-5)


def test_model_file_alone_reproduces_test_predictions(tmp_path, tiny_csv):
    # molecule-level features too: their scaler must travel in the model file
    res = run_training(_config(tmp_path, tiny_csv, "run", dropout=0.1, molecule_featurizers=["rdkit_descriptors"]))
    preds = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    predictor = Predictor.load(tmp_path / "run")
    mean, std, kept, rejects = predictor.predict_smiles(preds["smiles"].tolist())
    assert std is None and not rejects and len(kept) == len(preds)
    np.testing.assert_allclose(mean[:, 0], preds["logS_pred"].to_numpy(), rtol=1e-5, atol=1e-5)
    payload = load_model_file(res.model_path)
    section = payload["property"]
    for key in ("model_config", "featurizer", "target_scaler", "task_type", "target_names", "split",
                "molecule_features"):
        assert section[key], key
    assert payload["versions"] and payload["method"] == "property"
    assert section["model_config"]["extra_dim"] == len(section["molecule_features"]["names"]) > 100
    assert payload["config"]["train"]["seed"] == 0 and payload["config"]["splits"]["data_seed"] == 0


class _Interrupt(Exception):
    pass


class _StopAtEpoch(L.Callback):
    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise _Interrupt()


def test_resume_ends_like_an_uninterrupted_run(tmp_path, tiny_csv):
    kw = dict(dropout=0.2, epochs=5)
    full = run_training(_config(tmp_path, tiny_csv, "full", **kw))
    with pytest.raises(_Interrupt):
        run_training(_config(tmp_path, tiny_csv, "cut", **kw), callbacks=[_StopAtEpoch(2)])
    assert (tmp_path / "cut" / "checkpoints" / "member_0" / "last.ckpt").is_file()
    assert not (tmp_path / "cut" / "model.pt").exists()
    resumed = run_training(_config(tmp_path, tiny_csv, "cut", **kw), resume=True)
    assert resumed.metrics["test"] == full.metrics["test"]
    assert resumed.metrics["val"] == full.metrics["val"]
    # the learning curve keeps the epochs from before the interruption
    logs = sorted((tmp_path / "cut" / "logs" / "member_0").glob("version_*/metrics.csv"))
    epochs = pd.concat([pd.read_csv(p) for p in logs])["epoch"].dropna().astype(int)
    assert sorted(set(epochs)) == list(range(5))


class _WorseEachEpoch(L.Callback):
    """Reports a validation loss that grows with the epoch: the best epoch is always the first."""

    # after the task logs and before checkpointing (Lightning runs checkpoint callbacks last), at
    # both moments a ModelCheckpoint may save
    def on_validation_end(self, trainer, pl_module):
        trainer.callback_metrics["val_loss"] = torch.tensor(float(trainer.current_epoch))

    def on_train_epoch_end(self, trainer, pl_module):
        trainer.callback_metrics["val_loss"] = torch.tensor(float(trainer.current_epoch))


def test_last_checkpoint_holds_the_last_epoch_not_the_best(tmp_path, tiny_csv):
    # interrupted at the start of epoch 3: epochs 0-2 are done, epoch 0 is the best
    with pytest.raises(_Interrupt):
        run_training(_config(tmp_path, tiny_csv, "cut", epochs=6), callbacks=[_WorseEachEpoch(), _StopAtEpoch(3)])
    member = tmp_path / "cut" / "checkpoints" / "member_0"
    assert torch.load(member / "best.ckpt", weights_only=True)["epoch"] == 0
    assert torch.load(member / "last.ckpt", weights_only=True)["epoch"] == 2
    run_training(_config(tmp_path, tiny_csv, "cut", epochs=6), resume=True, callbacks=[_WorseEachEpoch()])
    resumed = pd.read_csv(tmp_path / "cut" / "logs" / "member_0" / "version_1" / "metrics.csv")
    assert sorted(resumed["epoch"].dropna().astype(int).unique()) == [3, 4, 5]  # nothing redone


def test_cli_resume_reads_settings_from_run_dir(tmp_path, tiny_csv):
    run = tmp_path / "run"
    args = ["train", "-i", str(tiny_csv), "-s", "smiles", "--target-columns", "logS", "-t", "regression",
            "--splits-file", str(tiny_csv.parent / "split.json"), "--epochs", "2", "--hidden-dim", "32",
            "--accelerator", "cpu", "--no-progress", "-o", str(run)]
    assert main(args) == 0
    first = json.loads((run / "metrics.json").read_text())
    # a finished run resumes to the same result without training again
    assert main(["train", "--resume", str(run)]) == 0
    assert json.loads((run / "metrics.json").read_text())["test"] == first["test"]
    # and a new run into the same folder is refused, leaving it untouched
    before = (run / "model.pt").read_bytes()
    assert main(args) == 1
    assert (run / "model.pt").read_bytes() == before


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {_Evil.marker}",))


def test_malicious_model_file_is_refused(tmp_path, capsys):
    marker = tmp_path / "pwned"
    _Evil.marker = marker
    bad = tmp_path / "model.pt"
    torch.save({"format": "molgraph.model/1", "payload": _Evil()}, bad)
    with pytest.raises(CheckpointError, match="refused"):
        load_model_file(bad)
    assert not marker.exists()
    # the same through the CLI: a clear error, no code run, no output
    inp = tmp_path / "in.csv"
    inp.write_text("smiles\nCCO\n")
    assert main(["predict", "-i", str(inp), "--model", str(bad), "-o", str(tmp_path / "p.csv")]) == 1
    assert "refused" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "p.csv").exists()
    # a plain pickle (not a torch file) is refused too
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(CheckpointError):
        load_model_file(raw)
    assert not marker.exists()


@pytest.mark.slow  # two processes with gloo (about 40 s on 2 cores)
def test_two_process_ddp_matches_single_process(tmp_path, tiny_csv):
    """2 CPU processes (gloo) with batch 16 each see exactly the batches of 1 process with 32."""
    common = ["-m", "molgraph.cli.main", "train", "-i", str(tiny_csv), "-s", "smiles", "--target-columns", "logS",
              "-t", "regression", "--splits-file", str(tiny_csv.parent / "split.json"), "--epochs", "3",
              "--accelerator", "cpu", "--hidden-dim", "32", "--ffn-hidden-dim", "32", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name, extra in (("single", ["-b", "32"]), ("ddp", ["-b", "16", "--devices", "2", "--strategy", "ddp"])):
        proc = subprocess.run([sys.executable, *common, *extra, "-o", str(tmp_path / name)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    single = json.loads((tmp_path / "single" / "metrics.json").read_text())
    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    for part in ("val", "test"):
        for key in ("rmse", "mae", "r2"):
            assert ddp[part][key] == pytest.approx(single[part][key], rel=1e-4, abs=1e-5), (part, key)
    # and the training actually moved the weights (not a trivially equal untrained pair)
    assert single["test"]["rmse"] != pytest.approx(
        json.loads((tmp_path / "single" / "metrics.json").read_text())["val"]["rmse"])


def test_cli_train_predict_evaluate(tmp_path, tiny_csv, capsys):
    run = tmp_path / "run"
    cfg = tmp_path / "recipe.toml"
    cfg.write_text('[model]\nmodel = "gin"\nhidden_dim = 32\ndepth = 2\n[optim]\nepochs = 1\nbatch_size = 32\n')
    rc = main(["train", "-i", str(tiny_csv), "-s", "smiles", "--target-columns", "logS", "-t", "regression",
               "--config", str(cfg), "--epochs", "2", "--ensemble-size", "2", "--accelerator", "cpu",
               "--no-progress", "-o", str(run)])
    assert rc == 0
    for name in ("config.toml", "splits.json", "metrics.json", "test_predictions.csv", "model.pt",
                 "learning_curves.png", "parity_test.png"):
        assert (run / name).is_file() and (run / name).stat().st_size > 0, name
    text = (run / "config.toml").read_text()
    assert 'model = "gin"' in text and "epochs = 2" in text and "batch_size = 32" in text  # CLI beats file
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) >= {"val", "test", "members", "timing"} and len(metrics["members"]) == 2
    assert "logS_std" in pd.read_csv(run / "test_predictions.csv").columns

    new = tmp_path / "new.csv"
    new.write_text("id,smiles,logS\na,CCO,0.0\nb,not_a_smiles,1.0\nc,c1ccccc1,-2.0\n")
    out = tmp_path / "preds.csv"
    assert main(["predict", "-i", str(new), "--model", str(run), "-o", str(out)]) == 0
    preds = pd.read_csv(out)
    assert list(preds.columns[:3]) == ["id", "smiles", "logS"]
    assert {"logS_pred", "logS_std"} <= set(preds.columns)
    assert preds["logS_pred"].isna().tolist() == [False, True, False]
    with open(tmp_path / "preds.rejects.csv", newline="") as fh:
        rejects = list(csv.DictReader(fh))
    assert [r["row"] for r in rejects] == ["1"] and rejects[0]["reason"]
    # predict never overwrites silently
    assert main(["predict", "-i", str(new), "--model", str(run), "-o", str(out)]) == 1

    capsys.readouterr()
    assert main(["evaluate", "-i", str(new), "--model", str(run)]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["n"] == 2 and scores["n_rejected"] == 1 and np.isfinite(scores["rmse"])


def test_classification_run_with_mc_dropout(tmp_path):
    df = pd.read_csv(dataset_path("bbbp"))
    df = pd.concat([df[df["p_np"] == 0][:40], df[df["p_np"] == 1][:40]])
    path = tmp_path / "bbbp_small.csv"
    df.to_csv(path, index=False)
    cfg = TrainConfig(input=str(path), smiles_column="smiles", target_columns=["p_np"], task_type="classification",
                      split="stratified", split_sizes=[0.6, 0.2, 0.2], epochs=2, dropout=0.2, mc_dropout_samples=4,
                      output_dir=str(tmp_path / "run"), **SMALL)
    res = run_training(cfg)
    assert 0.0 <= res.metrics["test"]["roc_auc"] <= 1.0
    assert (tmp_path / "run" / "roc_test.png").is_file()
    preds = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    assert preds["p_np_pred"].between(0, 1).all() and (preds["p_np_std"] > 0).all()
    # MC-dropout predictions are repeatable (seeded), and the model file knows it uses them
    p = Predictor.load(tmp_path / "run")
    a = p.predict_smiles(preds["smiles"].tolist())
    b = p.predict_smiles(preds["smiles"].tolist())
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[0][:, 0], preds["p_np_pred"], rtol=1e-5, atol=1e-6)


def test_config_errors_name_the_problem(tmp_path, tiny_csv, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("epochz = 3\n")
    assert main(["train", "--config", str(bad), "-i", str(tiny_csv), "-s", "smiles", "--target-columns", "logS",
                 "-t", "regression", "-o", str(tmp_path / "r")]) == 1
    assert "epochz" in capsys.readouterr().err
    assert main(["train", "-i", str(tiny_csv), "-s", "smiles", "-t", "regression", "-o", str(tmp_path / "r")]) == 1
    assert "target_columns" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_failed_start_leaves_no_run_folder(tmp_path, tiny_csv, capsys):
    run = tmp_path / "run"
    args = ["train", "-i", str(tiny_csv), "-s", "smiles", "-t", "regression", "--epochs", "1",
            "--accelerator", "cpu", "--no-progress", "-o", str(run)]
    assert main([*args, "--target-columns", "logP"]) == 1  # no such column
    assert "logP" in capsys.readouterr().err
    assert not run.exists()  # so the corrected command can use the same folder
    assert main([*args, "--target-columns", "logS", "--hidden-dim", "16"]) == 0
    assert (run / "model.pt").is_file()


def test_cli_gcn_with_graphnorm(tmp_path, tiny_csv):
    run = tmp_path / "gcn"
    rc = main(["train", "-i", str(tiny_csv), "-s", "smiles", "--target-columns", "logS", "-t", "regression",
               "--split-file", str(tiny_csv.parent / "split.json"), "--model", "gcn", "--norm", "graph",
               "--norm-eps", "0.01", "--hidden-dim", "32", "--depth", "2", "--epochs", "2", "--accelerator", "cpu",
               "--no-progress", "-o", str(run)])
    assert rc == 0
    payload = load_model_file(run / "model.pt")
    assert payload["property"]["model_config"]["encoder"] == "gcn" and payload["property"]["model_config"]["norm"] == "graph"
    assert payload["property"]["model_config"]["residual"] is True  # on by default with a per-graph norm
    assert payload["property"]["model_config"]["norm_eps"] == 0.01
    assert payload["property"]["model_config"]["gcn_propagation"] == "symmetric"  # the default layer


def test_cli_gcn_mean_propagation(tmp_path, tiny_csv):
    run = tmp_path / "gcn_mean"
    rc = main(["train", "-i", str(tiny_csv), "-s", "smiles", "--target-columns", "logS", "-t", "regression",
               "--split-file", str(tiny_csv.parent / "split.json"), "--model", "gcn", "--norm", "graph",
               "--gcn-propagation", "mean", "--output-dropout", "0.5", "--hidden-dim", "16", "--depth", "2",
               "--epochs", "1", "--accelerator", "cpu", "--no-progress", "-o", str(run)])
    assert rc == 0
    payload = load_model_file(run / "model.pt")
    assert payload["property"]["model_config"]["gcn_propagation"] == "mean"
    assert payload["property"]["model_config"]["output_dropout"] == 0.5  # the reference's logit dropout, kept in the model file
    assert any(".convs.0.eps" in k for k in payload["members"][0])  # MeanBondConv's (fixed) eps buffer
    assert "mean_scale" in "".join(k for k in payload["members"][0])  # GraphNorm's alpha was trained and saved


@pytest.mark.parametrize(("model", "norm", "flag", "expected"), [
    ("gcn", "graph", None, True), ("gin", "instance", None, True), ("gin", "batch", None, False),
    ("gcn", None, None, False), ("gcn", "graph", False, False), ("gin", "batch", True, True)])
def test_residual_default_follows_the_norm(model, norm, flag, expected):
    from molgraph.methods.property.config import TrainConfig
    from molgraph.methods.property.method import residual_for

    cfg = TrainConfig(dataset="esol", model=model, norm=norm, residual=flag, output_dir="run").validate()
    assert residual_for(cfg) is expected


def test_residual_is_refused_for_the_dmpnn():
    from molgraph.methods.property.config import TrainConfig

    with pytest.raises(ValueError, match="residual applies to the gin and gcn models"):
        TrainConfig(dataset="esol", model="dmpnn", residual=True, output_dir="run").validate()


def test_norm_eps_is_checked():
    from molgraph.methods.property.config import TrainConfig

    with pytest.raises(ValueError, match="norm_eps applies to the gin and gcn models"):
        TrainConfig(dataset="esol", model="dmpnn", norm_eps=0.01, output_dir="run").validate()
    with pytest.raises(ValueError, match="gcn_propagation applies to the gcn model"):
        TrainConfig(dataset="esol", model="gin", gcn_propagation="mean", output_dir="run").validate()
    with pytest.raises(ValueError, match="gcn_propagation must be one of"):
        TrainConfig(dataset="esol", model="gcn", gcn_propagation="sum", output_dir="run").validate()
    with pytest.raises(ValueError, match="gin_last_activation applies to the gin model"):
        TrainConfig(dataset="esol", model="gcn", gin_last_activation=False, output_dir="run").validate()
    with pytest.raises(ValueError, match="output_dropout must be in"):
        TrainConfig(dataset="esol", model="gcn", output_dropout=-0.1, output_dir="run").validate()
    with pytest.raises(ValueError, match="norm_eps must be > 0"):
        TrainConfig(dataset="esol", model="gin", norm_eps=0.0, output_dir="run").validate()


def test_config_toml_holds_every_resolved_value_and_reruns_identically(tmp_path, tiny_csv, capsys):
    from molgraph.train.settings import flatten, load_toml

    first = run_training(_config(tmp_path, tiny_csv, "first", model="gcn"))
    saved = flatten(load_toml(tmp_path / "first" / "config.toml"))
    # the preset's sizes and the task type's metrics are written, not left out as "default"
    for key in ("hidden_dim", "depth", "readout", "ffn_hidden_dim", "norm", "residual", "gcn_propagation"):
        assert saved[key] is not None, key
    assert saved["metrics"] == ["rmse", "mae", "r2"] and saved["task_type"] == "regression"
    assert main(["train", "--config", str(tmp_path / "first" / "config.toml"), "-o", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["test"] == first.metrics["test"]


def test_deterministic_runs_repeat_bit_for_bit(tmp_path, tiny_csv):
    kw = dict(deterministic=True, dropout=0.1, hidden_dim=300, accelerator="cpu")
    one = run_training(_config(tmp_path, tiny_csv, "one", **kw))
    two = run_training(_config(tmp_path, tiny_csv, "two", **kw))
    assert one.metrics["test"] == two.metrics["test"]
    a = load_model_file(one.model_path)["members"][0]
    b = load_model_file(two.model_path)["members"][0]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow  # three ESOL runs (about 40 s on 2 cores)
def test_what_repeats_under_another_thread_count(tmp_path):
    # What docs/trainer.md promises: in deterministic mode a run repeats bit for bit with the same
    # thread count; with another thread count the matrix products sum in another order, so
    # results agree to about 1e-6 (relative) but not bit for bit. This very run (ESOL, 1 epoch,
    # the default D-MPNN) showed it: test RMSE 1.9156963937 with 1 thread, 1.9156964097 with 2.
    def run(name: str) -> Any:
        return run_training(TrainConfig(dataset="esol", epochs=1, dropout=0.1, deterministic=True, accelerator="cpu",
                                        progress=False, quiet=True, output_dir=str(tmp_path / name)))

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run("one")
        torch.set_num_threads(2)
        two, again = run("two"), run("again")
    finally:
        torch.set_num_threads(threads)
    assert two.metrics["test"] == again.metrics["test"]
    for key, value in one.metrics["test"].items():
        assert two.metrics["test"][key] == pytest.approx(value, rel=1e-5), key


def test_no_cache_neither_reads_nor_writes_the_cache(tmp_path, tiny_csv, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("MOLGRAPH_CACHE", str(cache))
    run_training(_config(tmp_path, tiny_csv, "off", cache=False, epochs=1))
    assert not cache.exists() or not any(cache.iterdir())
    run_training(_config(tmp_path, tiny_csv, "on", epochs=1))
    assert [p.suffix for p in cache.iterdir()] == [".npz"]


def test_one_line_per_epoch_without_a_progress_bar_and_none_with_quiet(tmp_path, tiny_csv, caplog):
    lines: list[str] = []
    run_training(_config(tmp_path, tiny_csv, "loud", epochs=2), say=lines.append)
    epochs = [ln for ln in lines if ln.startswith("epoch ")]
    assert [ln.split()[1] for ln in epochs] == ["1/2", "2/2"]
    assert all("train_loss" in ln and "val_rmse" in ln and ln.endswith(" s") for ln in epochs)
    quiet: list[str] = []
    run_training(_config(tmp_path, tiny_csv, "quiet", epochs=2, quiet=True), say=quiet.append)
    assert not [ln for ln in quiet if ln.startswith("epoch ")]


def test_train_help_states_every_default(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    options = out.split("\ndata:\n", 1)[1]  # the settings' options: the groups from data on
    import re

    # one entry per option: its text runs until the next line that starts an option
    entries = re.split(r"\n  (?=-)", options)
    missing = [e.split()[0] for e in entries[1:] if "default" not in e]
    assert not missing, missing
