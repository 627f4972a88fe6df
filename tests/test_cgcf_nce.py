"""CGCF on real QM9 (slow): a briefly trained flow beats its untrained self on held-out likelihood,
and the energy network trained by NCE against the frozen flow classifies held-out molecules'
DFT geometries against flow samples better than chance."""

from __future__ import annotations

import json

import pytest

from molgraph.methods.cgcf.config import CGCFConfig
from molgraph.methods.cgcf.model import load_model


@pytest.mark.slow
def test_flow_learns_and_nce_accuracy_on_held_out_molecules_beats_chance(data_root, tmp_path):
    from molgraph.methods.cgcf.data import load_qm9_molecules
    from molgraph.methods.cgcf.flow import DistanceFlow
    from molgraph.methods.cgcf.train import edge_type_stats, evaluate_nll, train_cgcf

    config = CGCFConfig(hidden=16, layers=2, n_train=300, n_val=60, batch_size=32, train_steps=2, max_iters=120,
                        max_minutes=10, eval_solver="rk4", eval_steps=2, nce_molecules=200, energy_epochs=15,
                        energy_max_minutes=5, dg_steps=150, dg_restarts=4, seed=3)
    model = train_cgcf(config, tmp_path / "run", data_root=data_root, say=lambda _: None)
    info = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # the energy network was judged on molecules it never saw (Cormorant validation split)
    assert info["energy"]["n_val_molecules"] == 60
    assert info["energy"]["heldout_nce_accuracy"] > 0.5
    # learning happened: held-out NLL per edge below an untrained flow with the same statistics
    train = load_qm9_molecules("train", 300, seed=3, data_root=data_root)
    val = load_qm9_molecules("valid", 60, seed=3, data_root=data_root)
    mean, std = edge_type_stats(train.graphs)
    untrained = DistanceFlow(16, 2, 0.5, mean, std)
    base = evaluate_nll(untrained, val.graphs, steps=2, noise_std=0.1)
    assert info["flow"]["val_nll_per_edge_noised"] < base - 0.05
    # the saved model is the trained one
    loaded = load_model(tmp_path / "run")
    assert loaded.energy is not None and loaded.info["energy"]["heldout_nce_accuracy"] == pytest.approx(
        model.info["energy"]["heldout_nce_accuracy"])
