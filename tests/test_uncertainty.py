"""Uncertainty heads of the property method: MVE, evidential regression, Dirichlet classification;
``--uncertainty`` end to end through ``molgraph train`` and ``molgraph predict``."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from molgraph.data.collated import CollatedGraphs
from molgraph.data.loader import GraphBatcher, graph_loader
from molgraph.data.registry import dataset_path
from molgraph.featurizers import MolGraphFeaturizer
from molgraph.featurizers.batch import iter_featurize
from molgraph.methods.property.config import PropertyConfig
from molgraph.methods.property.model import PropertyModel
from molgraph.methods.property.predict import Predictor, predict_values
from molgraph.methods.property.uncertainty import (
    dirichlet_loss,
    evidential_loss,
    gaussian_nll,
    head_for,
    head_loss,
    head_moments,
    head_parameters,
)
from molgraph.train.runner import run_training
from molgraph.train.scaling import StandardScaler

SMALL = dict(hidden_dim=32, ffn_hidden_dim=32, accelerator="cpu", progress=False)


def _graphs(smiles: list[str]) -> CollatedGraphs:
    feat = MolGraphFeaturizer.from_preset("multihot")
    arrays = [g for _, g in iter_featurize(smiles, feat, errors="raise", progress=False)]
    return CollatedGraphs.from_arrays(arrays, rows=list(range(len(arrays))))


def _batch(smiles: list[str]):
    graphs = _graphs(smiles)
    return next(iter(graph_loader(GraphBatcher(graphs), np.arange(len(smiles)), batch_size=len(smiles))))


def test_mve_recovers_the_noise_variance_of_a_known_gaussian():
    """Targets drawn from N(mu_g, sigma_g^2), sigma_g depending on whether the molecule has a
    nitrogen: the MVE head's predicted variance, averaged over each group, is within 10% of sigma_g^2."""
    smiles = pd.read_csv(dataset_path("esol"))["smiles"][:200].tolist()
    has_n = np.array(["N" in s or "n" in s for s in smiles])
    batch = _batch(smiles)
    sigma = np.where(has_n, 0.5, 1.5)
    mu = np.where(has_n, 1.0, -2.0)
    rng = np.random.default_rng(0)
    reps = 40  # 40 draws per molecule: every molecule's targets are (1, reps) of the batch's row
    y = torch.as_tensor(mu[:, None] + sigma[:, None] * rng.standard_normal((len(smiles), reps)), dtype=torch.float32)
    torch.manual_seed(0)
    model = PropertyModel(num_tasks=1, atom_dim=batch.x.shape[1], bond_dim=batch.edge_attr.shape[1], hidden_dim=32,
                          depth=2, ffn_hidden_dim=32, readout="sum", head="mve")
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        mean, var = head_parameters(model(batch), "mve", 1)
        loss = gaussian_nll(mean, var, y)  # (B, 1) against (B, reps): each draw is one observation
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        mean, var = head_moments(model(batch), "mve", 1)
    var = var[:, 0].numpy()
    for group, s in ((has_n, 0.5), (~has_n, 1.5)):
        assert abs(var[group].mean() / s**2 - 1) < 0.10, (var[group].mean(), s**2)
    # the MLE it converges to: the draws' own variance, which is within sampling error of sigma^2
    assert abs(mean[:, 0].numpy()[has_n].mean() - 1.0) < 0.1


def test_evidential_nll_is_the_student_t_likelihood():
    """Amini et al.'s NLL (lam = 0) equals -log of the Student-t with 2 alpha degrees of freedom,
    location gamma and scale^2 = beta (1 + nu) / (nu alpha)."""
    gamma, nu, alpha, beta = (torch.tensor([[0.3, -1.0]], dtype=torch.float64), torch.tensor([[0.7, 2.0]], dtype=torch.float64),
                              torch.tensor([[1.5, 3.0]], dtype=torch.float64), torch.tensor([[0.4, 1.2]], dtype=torch.float64))
    y = torch.tensor([[1.1, -0.2]], dtype=torch.float64)
    got = evidential_loss(gamma, nu, alpha, beta, y, lam=0.0)
    scale = np.sqrt((beta * (1 + nu) / (nu * alpha)).numpy())
    ref = -stats.t.logpdf(y.numpy(), df=2 * alpha.numpy(), loc=gamma.numpy(), scale=scale).mean()
    assert float(got) == pytest.approx(ref, rel=1e-10)
    # the regularizer adds lam * |y - gamma| (2 nu + alpha)
    reg = ((y - gamma).abs() * (2 * nu + alpha)).mean()
    assert float(evidential_loss(gamma, nu, alpha, beta, y, lam=0.5)) == pytest.approx(ref + 0.5 * float(reg), rel=1e-10)


def test_dirichlet_loss_exact_values():
    one = torch.ones(1, 1, dtype=torch.float64)
    # uniform Beta(1, 1), label 1: squared error 0.5 + variance term 2 * 0.25 / 3; no misleading evidence
    assert float(dirichlet_loss(one, one, one, lam=1.0)) == pytest.approx(0.5 + 0.5 / 3)
    # evidence on the wrong class is penalized by KL(Beta(1, 3) || Beta(1, 1)) = log 3 - 2/3
    a1, a0 = one, 3 * one
    base = float(dirichlet_loss(a1, a0, one, lam=0.0))
    assert float(dirichlet_loss(a1, a0, one, lam=1.0)) - base == pytest.approx(math.log(3) - 2 / 3)
    # missing labels take no part
    y = torch.tensor([[1.0, float("nan")]], dtype=torch.float64)
    both = dirichlet_loss(torch.ones(1, 2, dtype=torch.float64), torch.ones(1, 2, dtype=torch.float64), y, lam=0.0)
    assert float(both) == pytest.approx(0.5 + 0.5 / 3)


def test_heads_moments_and_refusals():
    raw = torch.randn(5, 4 * 3, dtype=torch.float64)
    gamma, nu, alpha, beta = head_parameters(raw, "evidential", 3)
    assert (nu > 0).all() and (alpha > 1).all() and (beta > 0).all()
    mean, var = head_moments(raw, "evidential", 3)
    torch.testing.assert_close(var, beta * (1 + nu) / (nu * (alpha - 1)))
    p, v = head_moments(torch.zeros(2, 2), "dirichlet", 1)
    torch.testing.assert_close(p, torch.full((2, 1), 0.5))
    torch.testing.assert_close(v, torch.full((2, 1), 0.25 / (2 * math.log(2) + 2 + 1)))
    with pytest.raises(ValueError, match="needs 6 outputs"):
        head_parameters(torch.zeros(2, 5), "mve", 3)
    assert head_for("evidential", "classification") == "dirichlet"
    assert head_for("ensemble", "regression") == "point"
    with pytest.raises(ValueError, match="mve applies to regression"):
        head_for("mve", "classification")
    with pytest.raises(ValueError, match="dirichlet applies to classification"):
        head_for("dirichlet", "regression")
    # the point head keeps the library's loss
    out, y = torch.randn(4, 2), torch.randn(4, 2)
    torch.testing.assert_close(head_loss(out, y, "point", "regression", 2), torch.nn.functional.mse_loss(out, y))


def test_predict_values_unscales_the_variance_and_mixes_members():
    smiles = ["CCO", "c1ccccc1", "CC(=O)O", "CCN"]
    graphs = _graphs(smiles)
    scaler = StandardScaler().fit(np.array([[0.0], [4.0]]))  # mean 2, scale 2
    torch.manual_seed(0)
    models = [PropertyModel(num_tasks=1, atom_dim=graphs.x.shape[1], bond_dim=graphs.edge_attr.shape[1],
                            hidden_dim=8, depth=1, ffn_hidden_dim=8, head="mve") for _ in range(2)]
    batcher, idx = GraphBatcher(graphs), np.arange(len(smiles))
    batch = next(iter(graph_loader(batcher, idx, batch_size=8)))
    moments = []
    for m in models:
        m.eval()
        with torch.no_grad():
            mu, var = head_moments(m(batch).double(), "mve", 1)
        moments.append((mu.numpy() * 2 + 2, var.numpy() * 4))
    one_mean, one_std = predict_values(models[:1], batcher, idx, task_type="regression", target_scaler=scaler, head="mve")
    np.testing.assert_allclose(one_mean, moments[0][0], rtol=1e-6)
    np.testing.assert_allclose(one_std, np.sqrt(moments[0][1]), rtol=1e-6)
    mean, std = predict_values(models, batcher, idx, task_type="regression", target_scaler=scaler, head="mve")
    means = np.stack([mm for mm, _ in moments])
    expected = np.mean([v for _, v in moments], axis=0) + means.var(axis=0, ddof=1)
    np.testing.assert_allclose(mean, means.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(std, np.sqrt(expected), rtol=1e-6)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("uq")
    df = pd.read_csv(dataset_path("esol"))
    pd.DataFrame({"smiles": df["smiles"][:96], "logS": df["measured log solubility in mols per litre"][:96]}).to_csv(
        d / "tiny.csv", index=False)
    b = pd.read_csv(dataset_path("bbbp"))
    pd.concat([b[b["p_np"] == 0][:40], b[b["p_np"] == 1][:40]]).to_csv(d / "bbbp.csv", index=False)
    return d


def test_mve_run_writes_std_and_the_method_through_predict(tiny, tmp_path, capsys):
    from molgraph.cli.main import main

    run = tmp_path / "run"
    assert main(["train", "-i", str(tiny / "tiny.csv"), "-s", "smiles", "--target-columns", "logS", "-t", "regression",
                 "--epochs", "2", "--uncertainty", "mve", "--calibration", "zscale", "-o", str(run),
                 "--hidden-dim", "32", "--ffn-hidden-dim", "32", "--accelerator", "cpu", "--no-progress"]) == 0
    test = pd.read_csv(run / "test_predictions.csv")
    assert (test["logS_std"] > 0).all()
    p = Predictor.load(run)
    assert p.head == "mve" and p.uncertainty == "mve+zscale" and p.calibrator.method == "zscale"
    # the model file alone gives the run's calibrated test std
    mean, std, kept, _ = p.predict_smiles(test["smiles"].tolist())
    np.testing.assert_allclose(std[:, 0], test["logS_std"], rtol=1e-5)
    np.testing.assert_allclose(mean[:, 0], test["logS_pred"], rtol=1e-5, atol=1e-6)
    out = tmp_path / "pred.csv"
    assert main(["predict", "--model", str(run), "-i", str(tiny / "tiny.csv"), "-o", str(out)]) == 0
    pred = pd.read_csv(out)
    assert (pred["logS_std"] > 0).all() and set(pred["uncertainty_method"]) == {"mve+zscale"}
    import json

    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["uncertainty"]["test"]["raw"]) == {"nll", "miscalibration_area", "spearman"}
    assert (run / "calibration_test.png").is_file()


def test_dirichlet_classification_with_platt_calibration(tiny, tmp_path):
    cfg = PropertyConfig(input=str(tiny / "bbbp.csv"), smiles_column="smiles", target_columns=["p_np"],
                         task_type="classification", split="stratified", split_sizes=[0.6, 0.2, 0.2], epochs=2,
                         uncertainty="evidential", calibration="platt", output_dir=str(tmp_path / "run"), **SMALL)
    res = run_training(cfg)
    test = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    assert test["p_np_pred"].between(0, 1).all() and test["p_np_prob"].between(0, 1).all()
    assert (test["p_np_std"] > 0).all()
    p = Predictor.load(tmp_path / "run")
    assert p.head == "dirichlet" and p.calibrates_probability
    np.testing.assert_allclose(p.calibrated_prob(test[["p_np_pred"]].to_numpy()), test[["p_np_prob"]].to_numpy(),
                               rtol=1e-6)
    assert set(res.metrics["uncertainty"]["test"]["calibrated"]) == {"ece", "brier", "nll"}


@pytest.mark.parametrize("kw, message", [
    (dict(uncertainty="mve", task_type="classification"), "mve applies to regression"),
    (dict(uncertainty="ensemble"), "ensemble_size >= 2"),
    (dict(uncertainty="mc-dropout"), "needs dropout > 0"),
    (dict(calibration="zscale"), "calibrates a predicted std"),
    (dict(uncertainty="mve", calibration="platt"), "does not apply to regression"),
])
def test_uncertainty_settings_are_checked(tiny, tmp_path, kw, message):
    base = dict(input=str(tiny / "tiny.csv"), smiles_column="smiles", target_columns=["logS"], task_type="regression",
                output_dir=str(tmp_path / "run"))
    base.update(kw)
    with pytest.raises(ValueError, match=message):
        PropertyConfig(**base).validate()
    assert not (tmp_path / "run").exists()
