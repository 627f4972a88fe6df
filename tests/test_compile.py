"""``--compile``: the torch.compile'd encoder (D-MPNN, GIN, graph transformer) gives the eager model's predictions, and a compiled
training run writes a model file that loads into an eager model."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from molgraph.data.collated import CollatedGraphs
from molgraph.data.loader import GraphBatcher, graph_loader
from molgraph.data.registry import dataset_path
from molgraph.featurizers import MolGraphFeaturizer
from molgraph.featurizers.batch import iter_featurize
from molgraph.methods.property.model import build_model


def _batches(n: int = 48, batch_size: int = 16):
    smiles = pd.read_csv(dataset_path("esol"))["smiles"][:n].tolist()
    feat = MolGraphFeaturizer.from_preset("multihot")
    arrays = [g for _, g in iter_featurize(smiles, feat, errors="raise", progress=False)]
    graphs = CollatedGraphs.from_arrays(arrays, rows=list(range(n)))
    return list(graph_loader(GraphBatcher(graphs), np.arange(n), batch_size=batch_size)), graphs


@pytest.mark.slow  # inductor compiles C++ for each model (17 s for D-MPNN and GIN, 70 s for the graph transformer, 2 cores)
@pytest.mark.parametrize("preset", ["dmpnn", "gin", "graph_transformer"])
def test_compiled_encoder_matches_eager(preset):
    batches, graphs = _batches()
    torch.manual_seed(0)
    eager = build_model(preset, num_tasks=2, atom_dim=graphs.x.shape[1], bond_dim=graphs.edge_attr.shape[1],
                        hidden_dim=64, ffn_hidden_dim=64).eval()
    compiled = copy.deepcopy(eager)
    compiled.encoder.compile(dynamic=True)
    from torch._dynamo.utils import counters

    counters.clear()
    # the compiled module keeps the parameter names: checkpoints and model files are unchanged
    assert list(compiled.state_dict()) == list(eager.state_dict())
    with torch.no_grad():
        for batch in batches:  # batches of different sizes: one dynamic-shape graph serves them all
            torch.testing.assert_close(compiled(batch), eager(batch), rtol=1e-5, atol=1e-5)
    assert counters["stats"]["unique_graphs"] >= 1  # the encoder did run compiled, not fall back to eager


@pytest.mark.slow  # a compiled 2-epoch training run (16 s)
def test_compiled_training_run_predicts_like_its_model_file(tmp_path):
    from molgraph.methods.property.config import PropertyConfig
    from molgraph.methods.property.predict import Predictor
    from molgraph.train.runner import run_training

    df = pd.read_csv(dataset_path("esol"))
    pd.DataFrame({"smiles": df["smiles"][:80], "logS": df["measured log solubility in mols per litre"][:80]}).to_csv(
        tmp_path / "d.csv", index=False)
    cfg = PropertyConfig(input=str(tmp_path / "d.csv"), smiles_column="smiles", target_columns=["logS"],
                         task_type="regression", epochs=2, compile=True, hidden_dim=32, ffn_hidden_dim=32,
                         accelerator="cpu", progress=False, output_dir=str(tmp_path / "run"))
    run_training(cfg)
    test = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    mean, _, _, _ = Predictor.load(tmp_path / "run").predict_smiles(test["smiles"].tolist())
    np.testing.assert_allclose(mean[:, 0], test["logS_pred"], rtol=1e-5, atol=1e-6)
