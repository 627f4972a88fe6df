"""Layers in molgraph.nn and the PropertyModel in molgraph.models."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from rdkit import Chem
from torch import nn
from torch_geometric.data import Batch

from molgraph.featurizers import MolGraphFeaturizer
from molgraph.methods.property.model import (
    MODEL_PRESETS,
    PropertyModel,
    build_model,
    featurizer_input_kwargs,
)
from molgraph.nn import (
    FFN,
    BondGCNConv,
    BondMessagePassing,
    GCNEncoder,
    MeanBondConv,
    GINEEncoder,
    InputEncoder,
    Readout,
    get_activation,
)

REPO = Path(__file__).resolve().parents[1]
SMALL = ["CCO", "c1ccccc1", "[Na+].[Cl-]", "CC(=O)Nc1ccc(O)cc1"]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def multihot() -> MolGraphFeaturizer:
    return MolGraphFeaturizer.from_preset("multihot")


@pytest.fixture(scope="module")
def ogb() -> MolGraphFeaturizer:
    return MolGraphFeaturizer.from_preset("ogb")


def _model(featurizer: MolGraphFeaturizer, encoder: str = "dmpnn", **kw) -> PropertyModel:
    args = {"num_tasks": 2, "encoder": encoder, "hidden_dim": 32, "ffn_hidden_dim": 16, **kw}
    return PropertyModel(**featurizer_input_kwargs(featurizer), **args).eval()


# --------------------------------------------------------------------------------------------
# D-MPNN against a per-edge Python reference
# --------------------------------------------------------------------------------------------
def _dmpnn_reference(layer: BondMessagePassing, x: torch.Tensor, edge_index: torch.Tensor,
                     edge_attr: torch.Tensor) -> torch.Tensor:
    """Yang et al.'s D-MPNN written edge by edge, finding reverse edges by search (not ``e ^ 1``)."""
    edges = [(int(u), int(v)) for u, v in edge_index.t()]
    rev = [edges.index((v, u)) for (u, v) in edges]
    act = torch.relu
    a = [layer.W_i(torch.cat([x[u], edge_attr[e]])) for e, (u, _) in enumerate(edges)]
    h = [act(ae) for ae in a]
    for _ in range(layer.depth - 1):
        new = []
        for e, (u, _) in enumerate(edges):
            m = torch.zeros(layer.hidden_dim, dtype=x.dtype)
            for f, (_, w) in enumerate(edges):
                if w == u and f != rev[e]:  # edges into u except the reverse of e
                    m = m + h[f]
            new.append(act(a[e] + layer.W_h(m)))
        h = new
    out = []
    for v in range(x.shape[0]):
        m = torch.zeros(layer.hidden_dim, dtype=x.dtype)
        for e, (_, w) in enumerate(edges):
            if w == v:
                m = m + h[e]
        out.append(act(layer.W_o(torch.cat([x[v], m]))))
    return torch.stack(out)


@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("smiles", ["CCO", "c1ccccc1", "[Na+].[Cl-]", "OC(=O)C1CC1"])
def test_dmpnn_matches_reference(multihot, smiles, depth):
    data = multihot(smiles)
    layer = BondMessagePassing(multihot.atom_dim, multihot.bond_dim, hidden_dim=16, depth=depth).double()
    x, ea = data.x.double(), data.edge_attr.double()
    with torch.no_grad():
        got = layer(x, data.edge_index, ea)
        want = _dmpnn_reference(layer, x, data.edge_index, ea)
    assert got.shape == (data.num_nodes, 16)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_dmpnn_batch_matches_reference(multihot):
    batch = Batch.from_data_list([multihot(s) for s in SMALL])
    layer = BondMessagePassing(multihot.atom_dim, multihot.bond_dim, hidden_dim=8, depth=3).double()
    x, ea = batch.x.double(), batch.edge_attr.double()
    with torch.no_grad():
        torch.testing.assert_close(
            layer(x, batch.edge_index, ea), _dmpnn_reference(layer, x, batch.edge_index, ea),
            rtol=0, atol=1e-12,
        )


def test_dmpnn_isolated_atoms_and_no_edges(multihot):
    data = multihot("[Na+].[Cl-]")
    assert data.edge_index.shape[1] == 0
    layer = BondMessagePassing(multihot.atom_dim, multihot.bond_dim, hidden_dim=8)
    with torch.no_grad():
        out = layer(data.x, data.edge_index, data.edge_attr)
        # no bonds: m_v = 0, so the output is act(W_o [x_v || 0])
        want = torch.relu(layer.W_o(torch.cat([data.x, torch.zeros(2, 8)], dim=1)))
    torch.testing.assert_close(out, want)


def test_dmpnn_odd_edge_count_rejected(multihot):
    data = multihot("CCO")
    layer = BondMessagePassing(multihot.atom_dim, multihot.bond_dim, hidden_dim=8)
    with pytest.raises(ValueError, match="reverse pairs"):
        layer(data.x, data.edge_index[:, :3], data.edge_attr[:3])


def test_dmpnn_matches_chemprop(multihot):
    """Same weights, same input -> same atom embeddings as chemprop v2's BondMessagePassing."""
    chemprop_mp = pytest.importorskip("chemprop.nn.message_passing")
    from chemprop.data import BatchMolGraph, MolGraph

    graphs = [multihot(s) for s in SMALL]
    theirs = chemprop_mp.BondMessagePassing(multihot.atom_dim, multihot.bond_dim, d_h=24, depth=3)
    ours = BondMessagePassing(multihot.atom_dim, multihot.bond_dim, hidden_dim=24, depth=3)
    ours.load_state_dict({k: v for k, v in theirs.state_dict().items() if k.startswith("W_")})
    mgs = [
        MolGraph(g.x.numpy(), g.edge_attr.numpy(), g.edge_index.numpy(),
                 np.arange(g.edge_index.shape[1]) ^ 1)
        for g in graphs
    ]
    batch = Batch.from_data_list(graphs)
    with torch.no_grad():
        torch.testing.assert_close(
            ours(batch.x, batch.edge_index, batch.edge_attr), theirs(BatchMolGraph(mgs)),
            rtol=1e-5, atol=1e-5,
        )


# --------------------------------------------------------------------------------------------
# PropertyModel: invariances and batching
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("encoder", ["dmpnn", "gine", "gcn"])
@pytest.mark.parametrize("readout", ["mean", "sum", "max", "attention"])
def test_permutation_invariance(multihot, encoder, readout):
    mol = Chem.MolFromSmiles("CC(=O)Nc1ccc(O)cc1")
    rng = np.random.default_rng(0)
    perm = [int(i) for i in rng.permutation(mol.GetNumAtoms())]
    shuffled = Chem.RenumberAtoms(mol, perm)
    a, b = multihot(mol), multihot(shuffled)
    assert not torch.equal(a.x, b.x)  # the permutation really moved atoms
    model = _model(multihot, encoder, readout=readout)
    with torch.no_grad():
        torch.testing.assert_close(model(a), model(b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("preset", ["ogb", "multihot"])
@pytest.mark.parametrize("encoder", ["dmpnn", "gine", "gcn"])
def test_batch_equals_single(preset, encoder, request):
    featurizer = request.getfixturevalue(preset)
    graphs = [featurizer(s) for s in SMALL[:3]]
    model = _model(featurizer, encoder)
    with torch.no_grad():
        together = model(Batch.from_data_list(graphs))
        alone = torch.cat([model(Batch.from_data_list([g])) for g in graphs])
        lone_data = torch.cat([model(g) for g in graphs])  # a bare Data counts as one graph
    assert together.shape == (3, 2)
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(together, lone_data, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("preset", ["ogb", "pyg", "multihot"])
@pytest.mark.parametrize("encoder", ["dmpnn", "gine", "gcn"])
def test_input_encodings(preset, encoder):
    featurizer = MolGraphFeaturizer.from_preset(preset)
    kwargs = featurizer_input_kwargs(featurizer)
    index = preset != "multihot"
    assert (kwargs["atom_cardinalities"] is not None) == index
    assert (kwargs["bond_cardinalities"] is not None) == index
    model = _model(featurizer, encoder)
    if encoder in ("gcn", "gine"):  # embed index input themselves: atoms once, bonds per layer (OGB baselines)
        assert model.atom_encoder is None and model.bond_encoder is None
        assert model.encoder.input.is_index == index
        bond_encoders = ([conv.edge_encoder for conv in model.encoder.convs] if encoder == "gcn"
                         else list(model.encoder.bond_encoders))
        assert len(bond_encoders) == model.encoder.depth and all(b.is_index == index for b in bond_encoders)
    else:
        assert (model.atom_encoder is not None) == index
    batch = Batch.from_data_list([featurizer(s) for s in SMALL])
    model.train()
    out = model(batch)
    assert out.shape == (len(SMALL), 2) and torch.isfinite(out).all()
    out.sum().backward()  # gradients flow to every parameter used
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_index_input_without_cardinalities_is_an_error(ogb):
    model = PropertyModel(num_tasks=1, atom_dim=ogb.atom_dim, bond_dim=ogb.bond_dim, hidden_dim=8)
    with pytest.raises(TypeError, match="atom_cardinalities"):
        model(Batch.from_data_list([ogb("CCO")]))


def test_input_encoder():
    enc = InputEncoder(2, 4, [3, 5])
    x = torch.tensor([[0, 4], [2, 1]])
    want = enc.embeddings[0].weight[x[:, 0]] + enc.embeddings[1].weight[x[:, 1]]
    torch.testing.assert_close(enc(x), want)
    lin = InputEncoder(3, 4)
    assert isinstance(lin.linear, nn.Linear) and lin(torch.randn(5, 3)).shape == (5, 4)
    with pytest.raises(ValueError):
        InputEncoder(3, 4, [2, 2])


# --------------------------------------------------------------------------------------------
# Config, presets, extra features, readouts, FFN
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("encoder", ["dmpnn", "gine", "gcn", "graph_transformer"])
@pytest.mark.parametrize("preset", ["ogb", "multihot"])
def test_config_round_trip(preset, encoder, request):
    featurizer = request.getfixturevalue(preset)
    model = _model(featurizer, encoder, extra_dim=3, readout="attention", ffn_layers=2, dropout=0.1)
    config = model.config
    assert json.loads(json.dumps(config)) == config  # plain JSON types
    assert set(config) == {
        "num_tasks", "atom_dim", "bond_dim", "encoder", "hidden_dim", "depth", "dropout", "readout",
        "ffn_hidden_dim", "ffn_layers", "extra_dim", "atom_cardinalities", "bond_cardinalities",
        "batch_norm", "activation", "norm", "residual", "norm_eps", "gcn_propagation", "output_dropout",
        "gin_message_activation", "gin_last_activation", "head", "encoder_options",
    }
    clone = PropertyModel(**json.loads(json.dumps(config)))
    clone.load_state_dict(model.state_dict())
    clone.eval()
    graphs = [featurizer(s) for s in SMALL]
    for g in graphs:
        g.extra = torch.randn(1, 3)
    batch = Batch.from_data_list(graphs)
    with torch.no_grad():
        assert torch.equal(model(batch), clone(batch))
    config["hidden_dim"] = 1  # a copy: the model's config is unchanged
    assert model.config["hidden_dim"] == 32


def test_build_model_presets(multihot):
    dims = featurizer_input_kwargs(multihot)
    m = build_model("dmpnn", num_tasks=3, **dims)
    assert isinstance(m.encoder, BondMessagePassing) and m.config["depth"] == 3
    assert m.config["hidden_dim"] == 300 and m.config["readout"] == "mean"
    g = build_model("gin", num_tasks=1, depth=2, **dims)
    assert isinstance(g.encoder, GINEEncoder) and len(g.encoder.convs) == 2
    assert MODEL_PRESETS["gin"]["depth"] == 5  # overrides do not leak into the preset
    with pytest.raises(ValueError, match="dmpnn"):
        build_model("nope", num_tasks=1, **dims)
    c = build_model("gcn", num_tasks=1, norm="graph", **dims)
    assert isinstance(c.encoder, GCNEncoder) and c.encoder.depth == 5 and c.encoder.norm == "graph"
    with pytest.raises(ValueError, match="gine"):
        PropertyModel(num_tasks=1, encoder="gat", **dims)


def _path_bonds(conv, index_bonds):
    """Bonds of the 4-atom path 0-1-2-3 (both directions) for a conv with a 2-column ``edge_encoder``:
    ``(edge_index (2, 6), edge_attr (6, 2), encoded bonds e (6, d))``."""
    pairs = [(0, 1), (1, 2), (2, 3)]
    edge_index = torch.tensor([[a for a, b in pairs] + [b for a, b in pairs],
                               [b for a, b in pairs] + [a for a, b in pairs]])
    if index_bonds:  # the layer's own tables, summed (OGB's BondEncoder)
        edge_attr = torch.tensor([[0, 1], [3, 2], [1, 0]] * 2)
        tables = conv.edge_encoder.embeddings
        e = tables[0].weight[edge_attr[:, 0]] + tables[1].weight[edge_attr[:, 1]]
    else:
        edge_attr = torch.randn(edge_index.shape[1], 2)
        e = conv.edge_encoder.linear(edge_attr)
    return edge_index, edge_attr, e


@pytest.mark.parametrize("index_bonds", [False, True])
def test_bond_gcn_conv_matches_dense_formula(index_bonds):
    # D^-1/2 (A + I) D^-1/2 propagation with bond terms, written out densely on a 4-atom path
    torch.manual_seed(0)
    conv = BondGCNConv(3, 2, [4, 3] if index_bonds else None)
    with torch.no_grad():
        conv.root.normal_()
    x = torch.randn(4, 3)
    edge_index, edge_attr, e = _path_bonds(conv, index_bonds)
    h = conv.lin(x)
    deg = torch.tensor([2.0, 3.0, 3.0, 2.0])  # neighbours + the self loop
    expected = torch.relu(h + conv.root) / deg[:, None]
    for k in range(edge_index.shape[1]):
        u, v = int(edge_index[0, k]), int(edge_index[1, k])
        expected[v] += torch.relu(h[u] + e[k]) / torch.sqrt(deg[u] * deg[v])
    torch.testing.assert_close(conv(x, edge_index, edge_attr), expected)


@pytest.mark.parametrize("index_bonds", [False, True])
def test_mean_bond_conv_matches_dense_formula(index_bonds):
    # The GraphNorm reference's molecule GCN: W((1 + eps) h_v + mean_u (h_u + e_uv)) + b, written
    # out on a 4-atom path plus a lone atom (no bonds: only its own term)
    torch.manual_seed(0)
    conv = MeanBondConv(3, 2, [4, 3] if index_bonds else None, eps=0.5)
    x = torch.randn(5, 3)
    edge_index, edge_attr, e = _path_bonds(conv, index_bonds)
    agg = 1.5 * x
    for v in range(5):
        into = [k for k in range(edge_index.shape[1]) if int(edge_index[1, k]) == v]
        if into:
            agg[v] = agg[v] + torch.stack([x[int(edge_index[0, k])] + e[k] for k in into]).mean(0)
    torch.testing.assert_close(conv(x, edge_index, edge_attr), conv.lin(agg))
    assert "eps" not in dict(conv.named_parameters())  # fixed, as in the reference
    learned = MeanBondConv(3, 2, train_eps=True)
    assert float(learned.eps.detach()) == 0.0 and "eps" in dict(learned.named_parameters())


def test_gcn_propagation_switch(multihot):
    dims = featurizer_input_kwargs(multihot)
    m = build_model("gcn", num_tasks=1, norm="graph", gcn_propagation="mean", depth=2, **dims)
    assert m.encoder.propagation == "mean"
    assert all(isinstance(c, MeanBondConv) for c in m.encoder.convs) and len(m.encoder.convs) == 2
    assert PropertyModel(**m.config).config == m.config  # the choice survives the model file
    assert all(isinstance(c, BondGCNConv) for c in build_model("gcn", num_tasks=1, **dims).encoder.convs)
    with pytest.raises(ValueError, match="unknown gcn_propagation"):
        build_model("gcn", num_tasks=1, gcn_propagation="sum", **dims)
    with pytest.raises(ValueError, match="applies to the gcn encoder"):
        build_model("gin", num_tasks=1, gcn_propagation="mean", **dims)
    with pytest.raises(ValueError, match="unknown propagation"):
        GCNEncoder(4, 2, propagation="max")


@pytest.mark.parametrize("message_activation", [True, False])
@pytest.mark.parametrize("last_activation", [True, False])
def test_gine_activation_switches_match_hand_computation(message_activation, last_activation):
    # One layer, no norm: h' = [relu](lin2(relu(lin1((1 + eps) h + sum_{u->v} [relu](h_u + e_uv)))))
    torch.manual_seed(0)
    enc = GINEEncoder(5, 3, hidden_dim=8, depth=1, norm="none", residual=False,
                      message_activation=message_activation, last_activation=last_activation)
    with torch.no_grad():
        enc.convs[0].eps.fill_(0.25)
    x, edge_attr = torch.randn(4, 5), torch.randn(6, 3)
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    with torch.no_grad():
        h, e = enc.input(x), enc.bond_encoders[0](edge_attr)
        msg = h[edge_index[0]] + e
        if message_activation:
            msg = msg.relu()
        agg = 1.25 * h + torch.zeros_like(h).index_add_(0, edge_index[1], msg)
        want = enc.outs[0](enc.convs[0].nn(agg).relu())
        if last_activation:
            want = want.relu()
        torch.testing.assert_close(enc(x, edge_index, edge_attr), want)


def test_gin_activation_switches_reach_the_model_file(ogb):
    dims = featurizer_input_kwargs(ogb)
    m = build_model("gin", num_tasks=1, norm="graph", depth=2, gin_message_activation=False,
                    gin_last_activation=False, **dims)
    assert not m.encoder.message_activation and not m.encoder.last_activation
    assert PropertyModel(**m.config).config == m.config  # the choice survives the model file
    default = build_model("gin", num_tasks=1, **dims)
    assert default.encoder.message_activation and default.encoder.last_activation  # GINEConv's behaviour
    legacy = {k: v for k, v in default.config.items() if not k.startswith("gin_")}  # a model file from before
    assert PropertyModel(**legacy).config == default.config
    with pytest.raises(ValueError, match="apply to the gine encoder"):
        build_model("gcn", num_tasks=1, gin_last_activation=False, **dims)


def test_output_dropout_drops_whole_outputs_in_training_only(multihot):
    # The GraphNorm reference's logit dropout: in training each output is either 0 or twice the
    # eval-mode output (inverted dropout, p 0.5); in eval it is the plain model's output.
    dims = featurizer_input_kwargs(multihot)
    torch.manual_seed(0)
    m = build_model("gcn", num_tasks=2, norm="graph", gcn_propagation="mean", depth=2, dropout=0.0,
                    output_dropout=0.5, **dims)
    plain = PropertyModel(**{**m.config, "output_dropout": 0.0})
    plain.load_state_dict(m.state_dict())  # the dropout has no parameters: same state dict
    batch = Batch.from_data_list([multihot(s) for s in SMALL] * 8)
    m.eval()
    plain.eval()
    with torch.no_grad():
        ref = plain(batch)
        assert torch.equal(m(batch), ref)
        m.train()  # dropout 0 elsewhere and GraphNorm has no running statistics: only the logits are random
        out = m(batch)
    kept = out != 0
    assert 0 < int(kept.sum()) < out.numel()  # some outputs dropped, some kept
    torch.testing.assert_close(out[kept], 2 * ref[kept])
    assert PropertyModel(**m.config).config["output_dropout"] == 0.5
    with pytest.raises(ValueError, match="output_dropout must be in"):
        build_model("gcn", num_tasks=1, output_dropout=1.0, **dims)


def test_extra_features(multihot):
    model = _model(multihot, extra_dim=4)
    graphs = [multihot(s) for s in SMALL[:3]]
    for g in graphs:
        g.extra = torch.randn(1, 4)
    batch = Batch.from_data_list(graphs)
    with torch.no_grad():
        emb = model.embed(batch)
        assert emb.shape == (3, 32 + 4) and model.embed_dim == 36
        torch.testing.assert_close(emb[:, 32:], batch.extra)
        assert model(batch).shape == (3, 2)
        # the extra features reach the output
        batch.extra = batch.extra + 1.0
        assert not torch.allclose(model(batch), model.ffn(emb))
    with pytest.raises(ValueError, match="no 'extra'"):
        model(Batch.from_data_list([multihot(s) for s in SMALL[:3]]))
    for g in graphs:
        g.extra = torch.randn(1, 5)
    with pytest.raises(ValueError, match=r"\(3, 4\)"):
        model(Batch.from_data_list(graphs))


def test_readout_kinds():
    h = torch.randn(6, 4)
    batch = torch.tensor([0, 0, 0, 1, 1, 2])
    parts = [h[:3], h[3:5], h[5:]]
    expect = {
        "sum": torch.stack([p.sum(0) for p in parts]),
        "mean": torch.stack([p.mean(0) for p in parts]),
        "max": torch.stack([p.max(0).values for p in parts]),
        "norm": torch.stack([p.sum(0) / 100 for p in parts]),
    }
    for kind, want in expect.items():
        torch.testing.assert_close(Readout(kind)(h, batch, 3), want)
    att = Readout("attention", 4)
    with torch.no_grad():
        gate = att.attention.gate_nn(h).squeeze(1)
        want = torch.stack([
            (torch.softmax(gate[s], 0)[:, None] * h[s]).sum(0)
            for s in (slice(0, 3), slice(3, 5), slice(5, 6))
        ])
        torch.testing.assert_close(att(h, batch, 3), want)
    # an explicit num_graphs gives trailing empty graphs a (zero) row
    assert Readout("sum")(h, batch, 5).shape == (5, 4)
    with pytest.raises(ValueError, match="mean"):
        Readout("median")
    with pytest.raises(ValueError, match="hidden_dim"):
        Readout("attention")


def test_ffn_layout():
    assert [type(m) for m in FFN(5, 2, 7, num_layers=0).layers] == [nn.Linear]
    layers = FFN(5, 2, 7, num_layers=2, dropout=0.2).layers
    assert [type(m) for m in layers] == [nn.Dropout, nn.Linear, nn.ReLU] * 2 + [nn.Dropout, nn.Linear]
    assert layers[1].in_features == 5 and layers[-1].out_features == 2
    with pytest.raises(ValueError, match="relu"):
        get_activation("swishy")


@pytest.mark.parametrize("encoder", ["dmpnn", "gine", "gcn"])
@pytest.mark.parametrize("preset", ["ogb", "multihot"])
def test_reset_parameters(preset, encoder, request):
    featurizer = request.getfixturevalue(preset)
    model = _model(featurizer, encoder, readout="attention", activation="prelu")
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.123)
    model.reset_parameters()
    for name, p in model.named_parameters():
        assert not torch.all(p == 0.123), f"{name} was not reset"
    # index embeddings keep their Xavier init (not undone by nn.Embedding's N(0, 1))
    if model.atom_encoder is not None:
        assert model.atom_encoder.embeddings[0].weight.abs().max() < 0.5


# --------------------------------------------------------------------------------------------
# A tiny overfit: the models can learn
# --------------------------------------------------------------------------------------------
def _esol(n: int) -> tuple[list[str], torch.Tensor]:
    with open(REPO / "datasets" / "esol" / "delaney-processed.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))[:n]
    smiles = [r["smiles"].strip() for r in rows]
    y = torch.tensor([[float(r["measured log solubility in mols per litre"])] for r in rows])
    return smiles, (y - y.mean()) / y.std()


@pytest.mark.parametrize("encoder", ["dmpnn", "gine", "gcn"])
def test_overfit_esol(multihot, encoder):
    smiles, y = _esol(20)
    batch = Batch.from_data_list([multihot(s) for s in smiles])
    model = _model(multihot, encoder, num_tasks=1, hidden_dim=64, ffn_hidden_dim=64).train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(200):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(batch), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if losses[-1] < 0.1 * losses[0]:
            break
    assert losses[-1] < 0.1 * losses[0], f"{encoder}: {losses[0]:.3f} -> {losses[-1]:.3f}"



def test_encoder_options_reach_the_graph_transformer_and_are_checked(ogb):
    model = _model(ogb, "graph_transformer", encoder_options={"heads": 2, "pe": "add", "norm_first": False})
    enc = model.encoder
    assert (enc.pe, enc.norm_first) == ("add", False) and all(b.heads == 2 for b in enc.blocks)
    with pytest.raises(ValueError, match="takes no option"):
        _model(ogb, "graph_transformer", encoder_options={"hops": 3})
    with pytest.raises(ValueError, match="takes no option"):
        _model(ogb, "gine", encoder_options={"heads": 2})
    from molgraph.methods.property.config import TrainConfig

    with pytest.raises(ValueError, match="applies to the graph_transformer model"):
        TrainConfig(dataset="esol", model="gin", heads=2, output_dir="unused").validate()
