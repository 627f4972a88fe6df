"""``molgraph ngram embed`` / ``molgraph ngram evaluate``: outputs, rejects, JSON last line."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from molgraph.cli.main import main
from molgraph.methods.ngram.embedding import NGramGraph
from molgraph.methods.ngram.predictors import fit_predict_tasks, make_predictor, resolve_predictor, xgboost_available

FAST = ["--dim", "4", "--n-grams", "3", "--epochs", "1"]


def _csv(path, rows):
    path.write_text("smiles,y\n" + "".join(f"{s},{y}\n" for s, y in rows))
    return path


def test_embed_writes_aligned_rows_rejects_and_model(tmp_path, capsys) -> None:
    inp = _csv(tmp_path / "in.csv", [("CCO", 1), ("c1ccccc1", 2), ("C1CC", 3), ("CCCCCCCCCC", 4), ("", 5)])
    fit = _csv(tmp_path / "fit.csv", [("CCN", 0), ("CC(=O)O", 0), ("c1ccncc1", 0)])
    out = tmp_path / "emb.npy"
    code = main(["ngram", "embed", "-i", str(inp), "-s", "smiles", "-o", str(out), "--fit-on", str(fit),
                 "--max-atoms", "6", "--save-model", str(tmp_path / "m.npz"), *FAST])
    assert code == 0
    emb = np.load(out)
    assert emb.shape == (5, 12)
    assert np.isfinite(emb[:2]).all() and np.isnan(emb[2:]).all()
    rejects = (tmp_path / "emb.rejects.csv").read_text().splitlines()
    assert rejects[0] == "row,input,reason" and len(rejects) == 4
    assert rejects[2].startswith("3,CCCCCCCCCC,10 heavy atoms > max_atoms=6")
    printed = capsys.readouterr().out
    assert "embedded 2 of 5 molecules" in printed and "rejected 3" in printed
    # W came from --fit-on only: refitting on that file gives the same embeddings
    model = NGramGraph.load(tmp_path / "m.npz")
    ref = NGramGraph(model.config).fit(["CCN", "CC(=O)O", "c1ccncc1"])
    np.testing.assert_array_equal(model.W, ref.W)
    np.testing.assert_array_equal(emb[:2], ref.transform(["CCO", "c1ccccc1"]))
    # a saved model embeds without fitting, to .npz with rows
    out2 = tmp_path / "emb2.npz"
    assert main(["ngram", "embed", "-i", str(inp), "-o", str(out2), "--model", str(tmp_path / "m.npz")]) == 0
    with np.load(out2, allow_pickle=False) as f:
        assert f["rows"].tolist() == [0, 1]
        np.testing.assert_array_equal(f["embeddings"], emb[:2])


def test_embed_raise_mode_writes_nothing(tmp_path, capsys) -> None:
    inp = _csv(tmp_path / "in.csv", [("CCO", 1), ("C1CC", 2)])
    out = tmp_path / "emb.npy"
    assert main(["ngram", "embed", "-i", str(inp), "-o", str(out), "--errors", "raise", "--fit-on",
                 str(_csv(tmp_path / "f.csv", [("CCO", 0)])), *FAST]) == 1
    assert not out.exists() and "row 1" in capsys.readouterr().err


def test_evaluate_prints_metrics_json_last(tmp_path, capsys) -> None:
    rng = np.random.default_rng(0)
    smiles = ["C" * n + "O" for n in range(1, 13)] + ["c1ccccc1" + "C" * n for n in range(8)]
    inp = _csv(tmp_path / "d.csv", [(s, float(len(s)) + rng.normal(0, 0.1)) for s in smiles])
    code = main(["ngram", "evaluate", "-i", str(inp), "--target-columns", "y", "-t", "regression",
                 "--predictor", "rf", "--folds", "3", "--seed", "123", "--trees", "10", *FAST,
                 "--output", str(tmp_path / "r.json")])
    assert code == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(last["mean"]) == {"rmse", "mae", "r2"} and last["protocol"] == "3-fold CV"
    assert last["tasks"]["y"]["rmse"] == pytest.approx(last["mean"]["rmse"])
    full = json.loads((tmp_path / "r.json").read_text())
    assert len(full["tasks"]["y"]["folds"]) == 3 and full["seed"] == 123


def test_evaluate_registry_dataset_on_a_scaffold_split(capsys) -> None:
    code = main(["ngram", "evaluate", "--dataset", "freesolv", "--split", "balanced_scaffold", "--seed", "0",
                 "--predictor", "rf", "--trees", "20", "--representation", "ngram_random", *FAST])
    assert code == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["protocol"] == "balanced_scaffold split" and last["n_used"] == 642
    # even a tiny random-W embedding must beat predicting the mean (r2 = 0) on the scaffold test set
    assert set(last["mean"]) == {"rmse", "mae", "r2"} and last["mean"]["r2"] > 0.2


def test_predictors_drop_missing_labels_and_resolve_xgb() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    Y = np.stack([X[:, 0], X[:, 1]], 1)
    Y[::2, 1] = np.nan
    seen = {}
    pred = fit_predict_tasks("rf", "regression", X, Y, X[:5], params={"n_estimators": 5},
                             on_task=lambda t, m: seen.__setitem__(t, m.n_features_in_ and m.estimators_[0].tree_.weighted_n_node_samples[0]))
    assert pred.shape == (5, 2) and np.isfinite(pred).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert resolve_predictor("xgb") == ("xgb" if xgboost_available() else "hgb")
    with pytest.raises(ValueError, match="unknown predictor"):
        make_predictor("svm", "regression")
    # task 1 saw only its 20 labelled rows (bootstrap draws 20 samples)
    assert seen[1] == 20 and seen[0] == 40
