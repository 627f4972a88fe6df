"""The smoothed node classifier as a method: its network, its noise, training through the shared
trainer on Cora-ML, and the ``certify``/``predict`` commands on the trained run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import SHARED_DATA

from molgraph.methods.certificates.model import SparseGCN
from molgraph.methods.certificates.smoothing import SmoothingParams
from molgraph.methods.certificates.task import NoisyGraph


def _toy_graph(seed: int = 0, n: int = 9, d: int = 12):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, d, generator=g) < 0.3).float()
    a = torch.triu((torch.rand(n, n, generator=g) < 0.35).float(), 1)
    a = a + a.T
    return x, a


def test_sparse_gcn_equals_the_dense_formula():
    x, a = _toy_graph()
    n = x.shape[0]
    model = SparseGCN(x.shape[1], 3, hidden=5, n_layers=2, dropout=0.5).eval()
    attr_index = x.nonzero().T
    edge_index = a.nonzero().T
    out = model(attr_index, edge_index, n)
    a_tilde = a + torch.eye(n)
    d = a_tilde.sum(1).rsqrt()
    a_hat = d[:, None] * a_tilde * d[None, :]
    h = torch.relu(a_hat @ x @ model.weights[0] + model.biases[0])
    expected = a_hat @ h @ model.weights[1] + model.biases[1]
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


def test_sparse_gcn_matches_pyg_gcnconv():
    from torch_geometric.nn import GCNConv

    x, a = _toy_graph(1)
    n = x.shape[0]
    model = SparseGCN(x.shape[1], 4, hidden=6, n_layers=2, dropout=0.0).eval()
    conv1, conv2 = GCNConv(x.shape[1], 6), GCNConv(6, 4)
    with torch.no_grad():
        conv1.lin.weight.copy_(model.weights[0].T)
        conv1.bias.copy_(model.biases[0])
        conv2.lin.weight.copy_(model.weights[1].T)
        conv2.bias.copy_(model.biases[1])
    edge_index = a.nonzero().T
    expected = conv2(torch.relu(conv1(x, edge_index)), edge_index)
    torch.testing.assert_close(model(x.nonzero().T, edge_index, n), expected, rtol=1e-5, atol=1e-6)


def test_stacked_copies_are_classified_as_separately():
    x, a = _toy_graph(2)
    n = x.shape[0]
    model = SparseGCN(x.shape[1], 3, hidden=4).eval()
    x2, a2 = _toy_graph(3)
    # the disjoint union sample_votes classifies: copy k's node i is node k * n + i
    attr = torch.cat([x.nonzero().T, x2.nonzero().T + torch.tensor([[n], [0]])], 1)
    edges = torch.cat([a.nonzero().T, a2.nonzero().T + n], 1)
    both = model(attr, edges, 2 * n)
    torch.testing.assert_close(both[:n], model(x.nonzero().T, a.nonzero().T, n))
    torch.testing.assert_close(both[n:], model(x2.nonzero().T, a2.nonzero().T, n))


def test_noisy_graph_is_reproducible_and_noisy():
    x, a = _toy_graph(4, n=40, d=50)
    graph = NoisyGraph(x.nonzero().T, a.nonzero().T, 40, 50, SmoothingParams(p_plus=0.05, p_minus=0.5))
    one = graph.sample(torch.Generator().manual_seed(7))
    two = graph.sample(torch.Generator().manual_seed(7))
    other = graph.sample(torch.Generator().manual_seed(8))
    assert torch.equal(one[0], two[0]) and not torch.equal(one[0], other[0])
    assert torch.equal(one[1], graph.edge_index)  # no edge noise asked for


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A smoothed GCN trained on Cora-ML's largest component (few epochs: CI runs it)."""
    from molgraph.cli.main import main
    from molgraph.data.node_graph import load_node_graph

    if SHARED_DATA is None:
        pytest.skip("shared data folder ../shared/data not found (set MOLGRAPH_TEST_DATA)")
    try:
        load_node_graph("cora_ml", SHARED_DATA, lcc=True)
    except FileNotFoundError as exc:
        pytest.skip(f"Cora-ML not in the data root: {exc}")
    run = tmp_path_factory.mktemp("smoothed") / "run"
    code = main(["train", "--method", "smoothed_gcn", "-d", "cora_ml", "--data-root", str(SHARED_DATA),
                 "--epochs", "150", "--patience", "150",
                 "--max-lr", "0.01", "--accelerator", "cpu", "--no-progress", "--quiet", "-o", str(run)])
    assert code == 0
    return run


def test_training_learns_cora_ml(trained_run):
    metrics = json.loads((trained_run / "metrics.json").read_text())
    # 7 classes (chance ~0.14-0.3 by class share); the paper's smoothed GCN reaches ~0.75-0.8
    assert metrics["test"]["accuracy_smoothed"] > 0.6, metrics["test"]
    assert metrics["test"]["n"] == 2810 - 2 * 7 * 20
    saved = (trained_run / "config.toml").read_text()
    assert 'method = "smoothed_gcn"' in saved and "p_minus = 0.6" in saved


def test_predict_writes_smoothed_classes_and_rejects_unknown_nodes(trained_run, tmp_path):
    from molgraph.cli.main import main

    pd.DataFrame({"node_id": ["0", "5", "abc", "999999"]}).to_csv(tmp_path / "nodes.csv", index=False)
    out = tmp_path / "preds.csv"
    assert main(["predict", "--model", str(trained_run), "-i", str(tmp_path / "nodes.csv"), "-o", str(out),
                 "--votes", "50"]) == 0
    preds = pd.read_csv(out)
    rejects = pd.read_csv(tmp_path / "preds.rejects.csv")
    assert len(preds) + len(rejects) == 4 and set(rejects["row"]) >= {2, 3}
    assert preds["vote_share"].between(0, 1).all()


def test_certify_a_trained_model(trained_run, tmp_path):
    from molgraph.cli.main import main

    out = tmp_path / "certs"
    args = ["certify", "--model", str(trained_run), "--n-samples", "300", "--n0", "50", "-o", str(out)]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_targets"] == 2810 - 2 * 7 * 20 and summary["targets"] == "test"
    assert 0.6 < summary["accuracy_smoothed"] <= 1
    curves = pd.read_csv(out / "curves.csv")
    assert set(curves["type"]) == {"attr_add", "attr_del"}
    for _, part in curves.groupby("type"):
        naive, coll = part["naive_ratio"].to_numpy(), part["collective_ratio"].to_numpy()
        assert (np.diff(naive) <= 1e-12).all() and (np.diff(coll) <= 1e-12).all()
        assert (coll >= naive - 1e-12).all() and coll[1] > naive[1]  # the collective view certifies more
    with np.load(out / "base_certificates.npz") as f:
        grid, abstain = f["grid"], f["abstain"]
        assert grid.shape[0] == 2810 and (abstain == ~grid[:, 0, 0]).all()
    # at radius 0 the certified ratio is the share of targets whose vote is certain enough
    first = curves[(curves["type"] == "attr_del") & (curves["radius"] == 0)].iloc[0]
    assert first["naive_ratio"] == pytest.approx(1 - summary["abstain_ratio"])
    assert main(args) == 2 and (out / "summary.json").is_file()  # an existing folder is not replaced


def test_certify_refuses_bad_settings_before_writing(tmp_path, capsys):
    from molgraph.cli.main import main

    out = tmp_path / "never"
    assert main(["certify", "--base-grid", str(tmp_path / "g.npy"), "-o", str(out)]) == 2
    assert "--dataset" in capsys.readouterr().err
    assert main(["certify", "--model", str(tmp_path), "--alpha", "1.5", "-o", str(out)]) == 2
    assert not out.exists()


def test_curve_area_bounds_the_sum_of_a_non_increasing_curve():
    from molgraph.methods.certificates.cli import curve_area, sweep_radii

    full = [1.0, 0.8, 0.8, 0.5, 0.2, 0.0]
    assert curve_area(list(range(6)), full) == pytest.approx((2.3, 2.3))
    lo, hi = curve_area([0, 1, 3, 5], [1.0, 0.8, 0.5, 0.0])
    assert lo <= 2.3 <= hi and (lo, hi) == pytest.approx((1.8, 2.6))
    assert curve_area([0, 2], [1.0, 0.5]) == (1.0, float("inf"))  # not at 0 yet: no upper bound
    assert sweep_radii(3, None) == list(range(9))
    radii = sweep_radii(5, 40)
    assert radii[:11] == list(range(11)) and radii[-1] == 40 and all(b > a for a, b in zip(radii, radii[1:]))
