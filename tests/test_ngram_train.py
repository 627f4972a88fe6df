"""N-gram graph embeddings as molecule features of the shared trainer (``ngram``, ``ngram:PATH``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from molgraph.cli.main import main
from molgraph.data.registry import dataset_path
from molgraph.methods.ngram.embedding import NGramGraph, NGramGraphConfig
from molgraph.train.checkpoint import load_model_file
from molgraph.methods.property.config import TrainConfig
from molgraph.methods.ngram.features import NGRAM_MAX_STEPS
from molgraph.methods.property.predict import Predictor
from molgraph.train.runner import run_training

SMALL = dict(hidden_dim=32, ffn_hidden_dim=32, accelerator="cpu", progress=False, epochs=2)


@pytest.fixture(scope="module")
def esol64(tmp_path_factory) -> Path:
    """64 ESOL molecules and a 48/8/8 split file."""
    d = tmp_path_factory.mktemp("esol64")
    df = pd.read_csv(dataset_path("esol"))[:64]
    pd.DataFrame({"smiles": df["smiles"], "logS": df["measured log solubility in mols per litre"]}).to_csv(
        d / "data.csv", index=False)
    (d / "split.json").write_text(json.dumps({"train": list(range(48)), "val": list(range(48, 56)),
                                              "test": list(range(56, 64))}))
    return d / "data.csv"


def _config(csv_path: Path, out: Path, featurizers: list[str]) -> TrainConfig:
    return TrainConfig(input=str(csv_path), smiles_column="smiles", target_columns=["logS"], task_type="regression",
                       split_file=str(csv_path.parent / "split.json"), output_dir=str(out),
                       molecule_featurizers=featurizers, **SMALL)


def test_ngram_fitted_on_training_split_only_and_kept_in_model_file(tmp_path, esol64):
    res = run_training(_config(esol64, tmp_path / "run", ["ngram"]))
    mf = load_model_file(res.model_path)["property"]["molecule_features"]
    assert mf["featurizers"] == ["ngram"] and len(mf["names"]) == 600
    state = mf["learned"]["ngram"]
    smiles = pd.read_csv(esol64)["smiles"].tolist()
    # the same seeded fit on the 48 training molecules gives the same W: val/test played no part
    ref = NGramGraph(NGramGraphConfig(seed=0, max_steps=NGRAM_MAX_STEPS)).fit(smiles[:48])
    np.testing.assert_array_equal(state["W"].numpy(), ref.W)
    assert state["fit_info"]["n_molecules"] == 48
    # fitted on all 64, W differs: the check above can tell the two apart
    assert not np.allclose(NGramGraph(NGramGraphConfig(seed=0, max_steps=NGRAM_MAX_STEPS)).fit(smiles).W, ref.W)
    # the model file alone predicts what the run wrote for its test molecules
    preds = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    mean, _, kept, rejects = Predictor.load(res.model_path).predict_smiles(preds["smiles"].tolist())
    assert not rejects and len(kept) == len(preds)
    np.testing.assert_allclose(mean[:, 0], preds["logS_pred"].to_numpy(), rtol=1e-5, atol=1e-5)


def test_ngram_model_file_from_cli_then_train_with_it(tmp_path, esol64):
    model = tmp_path / "ngram.npz"
    rc = main(["ngram", "embed", "-i", str(esol64), "-s", "smiles", "-o", str(tmp_path / "emb.npy"),
               "--epochs", "2", "--dim", "8", "--n-grams", "3", "--save-model", str(model), "--no-progress"])
    assert rc == 0 and model.is_file()
    res = run_training(_config(esol64, tmp_path / "run", [f"ngram:{model}", "morgan"]))
    mf = load_model_file(res.model_path)["property"]["molecule_features"]
    assert len(mf["names"]) == 3 * 8 + 2048 and mf["names"][0].startswith(f"ngram:{model}:")
    np.testing.assert_array_equal(mf["learned"][f"ngram:{model}"]["W"].numpy(), NGramGraph.load(model).W)
    # prediction needs only the model file: the N-gram file may go
    model.unlink()
    preds = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    mean, _, _, _ = Predictor.load(res.model_path).predict_smiles(preds["smiles"].tolist())
    np.testing.assert_allclose(mean[:, 0], preds["logS_pred"].to_numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, message", [("ngram:nope.npz", "no such file"), ("ngram:model.pt", "ends in .npz"),
                                           ("fingerprints", "unknown molecule featurizer")])
def test_bad_molecule_featurizer_names(tmp_path, esol64, name, message):
    with pytest.raises(ValueError, match=message):
        _config(esol64, tmp_path / "run", [name]).validate()
