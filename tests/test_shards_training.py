"""Training and predicting from a folder of featurized shards gives what the in-memory path gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from molgraph.cli.main import main
from molgraph.data.registry import dataset_path

TARGET = "logS"


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("shards_training")
    df = pd.read_csv(dataset_path("esol"))
    pd.DataFrame({"smiles": df["smiles"][:200], TARGET: df["measured log solubility in mols per litre"][:200]}).to_csv(
        d / "small.csv", index=False)
    return d


def _train(args: list[str], out: Path) -> dict:
    common = ["-t", "regression", "--epochs", "2", "--hidden-dim", "32", "--ffn-hidden-dim", "32", "--accelerator",
              "cpu", "--quiet", "--no-progress", "-o", str(out)]
    assert main(["train", *args, *common]) == 0
    return json.loads((out / "metrics.json").read_text())


def test_training_and_prediction_from_shards_equal_the_csv_path(small, tmp_path):
    csv_path = small / "small.csv"
    shards = tmp_path / "shards"
    assert main(["featurize", "-i", str(csv_path), "-s", "smiles", "--featurizer", "multihot", "--target-columns",
                 TARGET, "--shard-size", "64", "-o", f"{shards}/"]) == 0
    from_csv = _train(["-i", str(csv_path), "-s", "smiles", "--target-columns", TARGET], tmp_path / "csv_run")
    from_shards = _train(["-i", f"{shards}/"], tmp_path / "shard_run")  # targets come from the manifest
    assert from_shards["val"] == from_csv["val"] and from_shards["test"] == from_csv["test"]

    assert main(["predict", "--model", str(tmp_path / "shard_run"), "-i", f"{shards}/", "-o",
                 str(tmp_path / "p_shards.csv")]) == 0
    assert main(["predict", "--model", str(tmp_path / "shard_run"), "-i", str(csv_path), "-o",
                 str(tmp_path / "p_csv.csv")]) == 0
    a, b = pd.read_csv(tmp_path / "p_shards.csv"), pd.read_csv(tmp_path / "p_csv.csv")
    assert list(a["row"]) == list(range(200)) and list(a["smiles"]) == [s.strip() for s in b["smiles"]]
    np.testing.assert_array_equal(a[f"{TARGET}_pred"].to_numpy(), b[f"{TARGET}_pred"].to_numpy())


def test_shards_of_another_featurizer_are_refused_at_prediction(small, tmp_path, capsys):
    csv_path = small / "small.csv"
    ogb = tmp_path / "ogb"
    assert main(["featurize", "-i", str(csv_path), "-s", "smiles", "--featurizer", "ogb", "--target-columns", TARGET,
                 "-o", f"{ogb}/"]) == 0
    _train(["-i", str(csv_path), "-s", "smiles", "--target-columns", TARGET], tmp_path / "run")  # multihot model
    capsys.readouterr()
    assert main(["predict", "--model", str(tmp_path / "run"), "-i", f"{ogb}/", "-o", str(tmp_path / "p.csv")]) != 0
    assert "another featurizer" in capsys.readouterr().err and not (tmp_path / "p.csv").exists()


def test_shards_without_targets_cannot_train(small, tmp_path, capsys):
    plain = tmp_path / "plain"
    assert main(["featurize", "-i", str(small / "small.csv"), "-s", "smiles", "-o", f"{plain}/"]) == 0
    capsys.readouterr()
    assert main(["train", "-i", f"{plain}/", "-t", "regression", "-o", str(tmp_path / "run")]) != 0
    assert "no target column" in capsys.readouterr().err and not (tmp_path / "run").exists()
