"""Graph transformer (Pre-LN, TUPE) and its structural encodings; the zinc_constrained dataset."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch_geometric.data import Batch, Data

from molgraph.featurizers import MolGraphFeaturizer
from molgraph.nn.graph_transformer import GraphTransformerEncoder, build_graph_transformer
from molgraph.nn.positional import (
    UNREACHABLE,
    dense_adjacency,
    laplacian_pe,
    random_walk_pe,
    shortest_path_distances,
)

REPO = Path(__file__).resolve().parents[1]
FEAT = MolGraphFeaturizer.multihot()
# asymmetric molecules (simple Laplacian spectra), a symmetric one, a salt (two components), one atom
SMILES = ["CC(=O)Nc1ccc(O)cc1C", "CCN(C)C(=O)C1CC1", "OCC(N)CS", "[Na+].[Cl-]", "C"]
# molecules whose 7 smallest non-trivial normalized-Laplacian eigenvalues are simple (two pendant
# atoms on one atom, as in C(=O)C or C(C)C, already make the eigenvalue 1 repeated)
LAP_SMILES = ["CCN(C)C(=O)C1CC1", "CCOc1ccc(CN)cc1F", "CC1CCN(CCO)C1"]


def _batch(smiles: list[str]) -> Batch:
    return Batch.from_data_list([FEAT(s) for s in smiles])


def _encoder(**kw) -> GraphTransformerEncoder:
    torch.manual_seed(0)
    kw.setdefault("pe_dim", 6)
    enc = GraphTransformerEncoder(FEAT.atom_dim, FEAT.bond_dim, 32, 3, 0.0, **kw)
    # non-trivial values for the tables that start at zero
    with torch.no_grad():
        if enc.spd_table is not None:
            enc.spd_table.weight.normal_()
        for block in enc.blocks:
            if block.tupe:
                block.theta_out.normal_()
                block.theta_in.normal_()
    return enc.eval()


def _edges(pairs: list[tuple[int, int]]) -> torch.Tensor:
    both = [(a, b) for a, b in pairs] + [(b, a) for a, b in pairs]
    return torch.tensor(both, dtype=torch.long).t().reshape(2, -1)


def _permute_within_graphs(batch: Batch, seed: int) -> tuple[Batch, torch.Tensor]:
    """The same molecules with atoms renumbered inside each graph (and edges reordered)."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.cat([
        start + torch.randperm(int(end - start), generator=g)
        for start, end in zip(batch.ptr[:-1].tolist(), batch.ptr[1:].tolist())
    ])  # new node k is old node perm[k]
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.numel())
    edge_order = torch.randperm(batch.edge_index.shape[1], generator=g)
    out = Batch(
        x=batch.x[perm], edge_index=inverse[batch.edge_index[:, edge_order]],
        edge_attr=batch.edge_attr[edge_order], batch=batch.batch[perm],
    )
    return out, perm


# --------------------------------------------------------------------------------------------
# structural encodings, exact values


def test_shortest_path_distances_exact() -> None:
    # graph 0: path 0-1-2-3 plus an isolated atom 4; graph 1: triangle
    edge_index = torch.cat([_edges([(0, 1), (1, 2), (2, 3)]), _edges([(5, 6), (6, 7), (7, 5)])], 1)
    batch = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1])
    adj, mask, pos = dense_adjacency(edge_index, batch, 2)
    assert adj.shape == (2, 5, 5) and mask.tolist() == [[True] * 5, [True] * 3 + [False] * 2]
    assert pos.tolist() == [0, 1, 2, 3, 4, 0, 1, 2]
    spd = shortest_path_distances(adj, mask)
    u = UNREACHABLE
    assert spd[0].tolist() == [
        [0, 1, 2, 3, u], [1, 0, 1, 2, u], [2, 1, 0, 1, u], [3, 2, 1, 0, u], [u, u, u, u, 0],
    ]
    assert spd[1].tolist() == [[0, 1, 1, u, u], [1, 0, 1, u, u], [1, 1, 0, u, u], [u] * 5, [u] * 5]


def test_spd_bias_is_the_table_entry_of_each_bucket() -> None:
    # path of 5 atoms and max_spd = 2: distances 3 and 4 share the "farther" bucket 3; the
    # second graph (two atoms, no bond) has an unreachable pair: bucket 4
    enc = GraphTransformerEncoder(4, 1, 8, 1, heads=2, pe="tupe", max_spd=2)
    with torch.no_grad():
        enc.spd_table.weight.copy_(torch.tensor([[0.0, 0.0], [1, 10], [2, 20], [3, 30], [4, 40]]))
    edge_index = _edges([(0, 1), (1, 2), (2, 3), (3, 4)])
    batch = torch.tensor([0, 0, 0, 0, 0, 1, 1])
    st = enc.structure(edge_index, batch, 2)
    bias = enc._bias(st, torch.float32)  # (B, H, 6, 6), token first
    d = torch.tensor([[abs(i - j) for j in range(5)] for i in range(5)])
    expected = d.clamp(max=3).float()
    assert torch.equal(bias[0, 0, 1:, 1:], expected) and torch.equal(bias[0, 1, 1:, 1:], 10 * expected)
    assert torch.equal(bias[0, :, 0, :], torch.zeros(2, 6)) and torch.equal(bias[0, :, 1:, 0], torch.zeros(2, 5))
    assert bias[1, 0, 1:3, 1:3].tolist() == [[0.0, 4.0], [4.0, 0.0]]
    assert torch.isinf(bias[1, :, :, 3:]).all() and (bias[1, :, :, 3:] < 0).all()  # padded keys
    assert torch.isfinite(bias[1, :, :, :3]).all()


def test_random_walk_pe_exact_and_matches_pyg() -> None:
    # triangle: returning after 1, 2, 3 steps has probability 0, 1/2, 1/4; a bond: 0, 1, 0
    edge_index = torch.cat([_edges([(0, 1), (1, 2), (2, 0)]), _edges([(3, 4)])], 1)
    adj, mask, _ = dense_adjacency(edge_index, torch.tensor([0, 0, 0, 1, 1]), 2)
    pe = random_walk_pe(adj, mask, 3)
    assert torch.allclose(pe[0], torch.tensor([[0.0, 0.5, 0.25]] * 3))
    assert torch.allclose(pe[1, :2], torch.tensor([[0.0, 1.0, 0.0]] * 2)) and (pe[1, 2] == 0).all()
    from torch_geometric.transforms import AddRandomWalkPE

    data = FEAT("CC(=O)Nc1ccc(O)cc1")
    ref = AddRandomWalkPE(walk_length=5, attr_name="rw")(data.clone()).rw
    adj, mask, _ = dense_adjacency(data.edge_index, torch.zeros(data.num_nodes, dtype=torch.long), 1)
    assert torch.allclose(random_walk_pe(adj, mask, 5)[0], ref, atol=1e-6)


def test_laplacian_pe_eigenpairs_padding_and_small_graphs() -> None:
    # path of 3: normalized Laplacian eigenvalues 0, 1, 2; the pad rows never mix in
    edge_index = torch.cat([_edges([(0, 1), (1, 2)]), _edges([(3, 4), (4, 5), (5, 6), (6, 3)])], 1)
    batch = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    adj, mask, _ = dense_adjacency(edge_index, batch, 2)
    vec, val = laplacian_pe(adj, mask, 4)
    assert vec.shape == (2, 4, 4) and val.shape == (2, 4)
    assert torch.allclose(val[0], torch.tensor([1.0, 2.0, 0.0, 0.0]), atol=1e-6)
    assert (vec[0, 3] == 0).all() and (vec[0, :, 2:] == 0).all()  # padded atom; n - 1 = 2 columns
    deg = adj[0, :3, :3].sum(-1)
    lap = torch.eye(3) - adj[0, :3, :3] / torch.sqrt(deg[:, None] * deg[None, :])
    for j in range(2):
        v = vec[0, :3, j]
        assert torch.allclose(lap @ v, val[0, j] * v, atol=1e-5) and math.isclose(float(v.norm()), 1.0, rel_tol=1e-5)
    # 4-cycle: eigenvalues 0, 1, 1, 2
    assert torch.allclose(val[1], torch.tensor([1.0, 1.0, 2.0, 0.0]), atol=1e-6)


# --------------------------------------------------------------------------------------------
# equivariance, invariance, padding


@pytest.mark.parametrize(
    "options",
    [
        {"pe": "tupe", "pe_kind": "rw"},
        {"pe": "add", "pe_kind": "rw"},
        {"pe": "none"},
        {"pe": "tupe", "pe_kind": "lap", "lap_sign": "invariant"},
    ],
    ids=["tupe-rw", "add-rw", "none", "tupe-lap-invariant"],
)
def test_attention_is_permutation_equivariant(options: dict) -> None:
    smiles = LAP_SMILES if options.get("pe_kind") == "lap" else SMILES
    batch = _batch(smiles)
    if options.get("pe_kind") == "lap":  # the lap path is equivariant only for simple spectra
        adj, mask, _ = dense_adjacency(batch.edge_index, batch.batch, batch.num_graphs)
        _, val = laplacian_pe(adj, mask, 7)
        assert float((val[:, 1:] - val[:, :-1]).abs().min()) > 1e-2
    enc = _encoder(**options)
    h = enc(batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.num_graphs)
    g = enc.graph_state
    permuted, perm = _permute_within_graphs(batch, seed=1)
    h2 = enc(permuted.x, permuted.edge_index, permuted.edge_attr, permuted.batch, batch.num_graphs)
    assert torch.allclose(h2, h[perm], atol=1e-5)
    assert torch.allclose(enc.graph_state, g, atol=1e-5)
    assert not torch.allclose(h2, h, atol=1e-3)  # the renumbering did move atoms


def test_lap_sign_invariant_mode_ignores_eigenvector_signs() -> None:
    batch = _batch(SMILES)
    enc = _encoder(pe="tupe", pe_kind="lap", lap_sign="invariant")
    args = (batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.num_graphs)
    pe = enc.structure(batch.edge_index, batch.batch, batch.num_graphs)["pe"]
    h, g = enc.encode(*args, pe=pe)
    signs = torch.tensor([-1.0, 1.0]).repeat(3)[torch.randperm(6, generator=torch.Generator().manual_seed(0))]
    flipped = pe * signs.view(1, 1, -1) * torch.tensor([1.0, -1.0, -1.0, 1.0, -1.0]).view(-1, 1, 1)
    h2, g2 = enc.encode(*args, pe=flipped)
    assert torch.allclose(h, h2, atol=1e-6) and torch.allclose(g, g2, atol=1e-6)
    assert torch.allclose(enc.encode(*args, pe=-pe)[0], h, atol=1e-6)
    # training mode too: the invariant path draws no flips, so without dropout it is deterministic
    enc.train()
    assert torch.allclose(enc.encode(*args)[0], enc.encode(*args, pe=-pe)[0], atol=1e-6)


def test_lap_flip_mode_is_not_sign_invariant_and_flips_while_training() -> None:
    """The documented contract of lap_sign="flip": sign flips are augmentation, not invariance."""
    batch = _batch(LAP_SMILES)
    enc = _encoder(pe="add", pe_kind="lap", lap_sign="flip")
    args = (batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.num_graphs)
    pe = enc.structure(batch.edge_index, batch.batch, batch.num_graphs)["pe"]
    h_eval = enc.encode(*args)[0]
    assert torch.allclose(enc.encode(*args, pe=pe)[0], h_eval)  # eval: the eigh signs as they come
    assert not torch.allclose(enc.encode(*args, pe=-pe)[0], h_eval, atol=1e-4)
    enc.train()
    torch.manual_seed(3)
    a = enc.encode(*args)[0]
    b = enc.encode(*args)[0]
    torch.manual_seed(3)
    assert torch.equal(enc.encode(*args)[0], a)  # the flips follow torch's seed
    assert not torch.allclose(a, b, atol=1e-4)  # ... and differ from draw to draw (dropout is 0)


def test_padding_does_not_leak_across_graphs() -> None:
    enc = _encoder(pe="tupe", pe_kind="rw")
    alone = _batch(["OCC(N)CS"])
    h_alone = enc(alone.x, alone.edge_index, alone.edge_attr, alone.batch, 1)
    g_alone = enc.graph_state
    for smiles, index in ((["OCC(N)CS", "CC(=O)Nc1ccc(O)cc1C"], 0), (["CC(=O)Nc1ccc(O)cc1C", "C", "OCC(N)CS"], 2)):
        batch = _batch(smiles)
        x = batch.x.clone().requires_grad_(True)
        h = enc(x, batch.edge_index, batch.edge_attr, batch.batch, batch.num_graphs)
        mine = batch.batch == index
        assert torch.allclose(h[mine], h_alone, atol=1e-5)
        assert torch.allclose(enc.graph_state[index], g_alone[0], atol=1e-5)
        (h[mine].sum() + enc.graph_state[index].sum()).backward()
        assert (x.grad[~mine] == 0).all() and (x.grad[mine] != 0).any()


def test_bond_features_enter_only_through_the_bond_bias() -> None:
    batch = _batch(SMILES[:3])
    noisy = batch.edge_attr + torch.randn(batch.edge_attr.shape, generator=torch.Generator().manual_seed(0))
    for bond_bias, same in ((False, True), (True, False)):
        enc = _encoder(pe="tupe", bond_bias=bond_bias)
        h = enc(batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.num_graphs)
        h2 = enc(batch.x, batch.edge_index, noisy, batch.batch, batch.num_graphs)
        assert torch.allclose(h, h2, atol=1e-6) == same


# --------------------------------------------------------------------------------------------
# wiring: attention logits, TUPE terms, Pre-LN / Post-LN


def test_attention_and_tupe_position_logits_by_hand() -> None:
    enc = _encoder(pe="tupe", pe_kind="rw")
    block = enc.blocks[0]
    torch.manual_seed(1)
    b, t, d, heads = 2, 5, 32, enc.heads
    dh = d // heads
    h = torch.randn(b, t, d)
    pos = torch.randn(b, t - 1, d)
    bias = torch.randn(b, heads, t, t)
    bias[1, :, :, 3:] = float("-inf")
    # position term: atoms (p_i U_q)(p_j U_k) / sqrt(2 d_h); token row theta_out, column theta_in
    p = block.position_logits(pos)
    pq = block.pos_q(pos).view(b, t - 1, heads, dh)
    pk = block.pos_k(pos).view(b, t - 1, heads, dh)
    atoms = torch.einsum("bihc,bjhc->bhij", pq, pk) / math.sqrt(2 * dh)
    assert torch.allclose(p[:, :, 1:, 1:], atoms, atol=1e-5)
    assert torch.equal(p[:, :, 0, :], block.theta_out.view(1, heads, 1).expand(b, heads, t))
    assert torch.equal(p[:, :, 1:, 0], block.theta_in.view(1, heads, 1).expand(b, heads, t - 1))
    # content attention with the TUPE scale 1/sqrt(2 d_h)
    q, k, v = (z.view(b, t, heads, dh) for z in block.qkv(h).chunk(3, -1))
    logits = torch.einsum("bihc,bjhc->bhij", q, k) / math.sqrt(2 * dh) + bias
    mixed = torch.einsum("bhij,bjhc->bihc", logits.softmax(-1), v).reshape(b, t, d)
    assert torch.allclose(block.attention(h, bias), block.out(mixed), atol=1e-5)
    # without TUPE the scale is the usual 1/sqrt(d_h)
    plain = _encoder(pe="add").blocks[0]
    q, k, v = (z.view(b, t, heads, dh) for z in plain.qkv(h).chunk(3, -1))
    logits = torch.einsum("bihc,bjhc->bhij", q, k) / math.sqrt(dh) + bias
    mixed = torch.einsum("bhij,bjhc->bihc", logits.softmax(-1), v).reshape(b, t, d)
    assert torch.allclose(plain.attention(h, bias), plain.out(mixed), atol=1e-5)


@pytest.mark.parametrize("norm_first", [True, False])
def test_pre_ln_and_post_ln_wiring(norm_first: bool) -> None:
    enc = _encoder(pe="tupe", norm_first=norm_first)
    block = enc.blocks[0]
    with torch.no_grad():  # distinct affine parameters, so swapping the norms would show
        for norm in (block.norm1, block.norm2):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.normal_()
    torch.manual_seed(2)
    h = torch.randn(2, 5, 32)
    bias = torch.randn(2, enc.heads, 5, 5)
    if norm_first:
        mid = h + block.attention(block.norm1(h), bias)
        expected = mid + block.ffn(block.norm2(mid))
    else:
        mid = block.norm1(h + block.attention(h, bias))
        expected = block.norm2(mid + block.ffn(mid))
    assert torch.allclose(block(h, bias), expected, atol=1e-5)
    assert (enc.final_norm is not None) == norm_first  # Pre-LN ends with a LayerNorm
    # Post-LN states leave every block normalized; Pre-LN's residual stream is not
    batch = _batch(SMILES[:2])
    states = []
    hook = enc.blocks[1].register_forward_hook(lambda m, i, o: states.append(o))
    enc(batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.num_graphs)
    hook.remove()
    with torch.no_grad():
        ln = enc.blocks[1].norm2
        out = states[0][:, 0]  # the graph tokens (never padding)
        standardized = (out - ln.bias) / ln.weight
        unit = torch.allclose(standardized.mean(-1), torch.zeros(2), atol=1e-4) and torch.allclose(
            standardized.var(-1, unbiased=False), torch.ones(2), atol=1e-3)
    assert unit == (not norm_first)


# --------------------------------------------------------------------------------------------
# interface


def test_builder_reads_options_and_defaults() -> None:
    c = {"hidden_dim": 24, "depth": 2, "dropout": 0.1, "activation": "gelu", "heads": 3, "pe": "add",
         "pe_kind": None, "norm_first": False}
    enc = build_graph_transformer(c, 10, 4)
    assert (enc.hidden_dim, enc.heads, len(enc.blocks), enc.pe, enc.pe_kind, enc.norm_first) == (24, 3, 2, "add", "rw", False)
    assert not enc.use_spd and enc.final_norm is None
    default = build_graph_transformer({"hidden_dim": 300, "depth": 3, "dropout": 0.0, "activation": "relu"}, 10, 4)
    assert (default.pe, default.heads, default.use_spd, default.norm_first) == ("tupe", 4, True, True)
    with pytest.raises(ValueError, match="heads \\(7\\) must divide hidden_dim \\(24\\)"):
        build_graph_transformer({**c, "heads": 7}, 10, 4)
    with pytest.raises(ValueError, match="pe must be one of"):
        build_graph_transformer({**c, "pe": "sinusoid"}, 10, 4)


def test_bad_input_is_refused_with_reasons() -> None:
    enc = _encoder()
    batch = _batch(SMILES[:2])
    with pytest.raises(ValueError, match="non-decreasing"):
        enc(batch.x, batch.edge_index, batch.edge_attr, batch.batch.flip(0), 2)
    with pytest.raises(TypeError, match="float atom and bond features"):
        enc(batch.x.long(), batch.edge_index, batch.edge_attr, batch.batch, 2)
    with pytest.raises(ValueError, match="shape \\(B, L, pe_dim\\)"):
        enc.encode(batch.x, batch.edge_index, batch.edge_attr, batch.batch, 2, pe=torch.zeros(2, 3, 6))


def test_state_dict_round_trip_and_reset() -> None:
    enc = _encoder(pe="tupe", pe_kind="lap", lap_sign="invariant")
    batch = _batch(SMILES)
    h = enc(batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.num_graphs)
    clone = GraphTransformerEncoder(FEAT.atom_dim, FEAT.bond_dim, 32, 3, 0.0, pe="tupe", pe_kind="lap",
                                    lap_sign="invariant", pe_dim=6).eval()
    clone.load_state_dict(enc.state_dict())
    assert torch.equal(clone(batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.num_graphs), h)
    clone.reset_parameters()
    assert (clone.spd_table.weight == 0).all() and all((b.theta_in == 0).all() for b in clone.blocks)


# --------------------------------------------------------------------------------------------
# the zinc_constrained dataset


def _generator():
    path = REPO / "benchmarks" / "make_zinc_constrained.py"
    spec = importlib.util.spec_from_file_location("make_zinc_constrained", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_zinc_constrained_card_file_split_and_targets() -> None:
    from molgraph.data.registry import dataset_file, dataset_path, get_card
    from molgraph.data.splits import load_split_file

    card = get_card("zinc_constrained")
    df = pd.read_csv(dataset_path("zinc_constrained"))  # sha256-checked
    assert len(df) == card.n_rows == 12000 and list(card.target_columns) == ["penalized_logp"]
    assert df["smiles"].is_unique and df["moses_train_row"].is_unique
    np.testing.assert_allclose(df["penalized_logp"], df["logp"] - df["sa_score"] - df["long_cycles"], atol=2e-6)
    split = load_split_file(dataset_file("zinc_constrained", "splits.json"), n=12000)
    assert split.counts == {"train": 10000, "val": 1000, "test": 1000}
    gen = _generator()
    # recompute a few rows from their SMILES: RDKit logP, SA score and long rings
    for i in (0, 1, 11999):
        logp, sa, cycles, y = gen.constrained_solubility(df["smiles"][i])
        assert (round(logp, 6), round(sa, 6), cycles, round(y, 6)) == (
            df["logp"][i], df["sa_score"][i], df["long_cycles"][i], df["penalized_logp"][i])
    # a 7-membered ring counts, a 6-membered one does not
    from rdkit import Chem

    assert gen.long_cycles(Chem.MolFromSmiles("C1CCCCCC1c1ccccc1")) == 1
    assert json.loads(dataset_file("zinc_constrained", "splits.json").read_text())["seed"] == 0


@pytest.mark.slow
def test_zinc_constrained_rebuilds_byte_identically(data_root: Path) -> None:
    gen = _generator()
    assert gen.main(["--root", str(data_root), "--check"]) == 0


@pytest.mark.slow
def test_graph_transformer_learns_constrained_solubility() -> None:
    """A small Pre-LN TUPE model beats the mean predictor on held-out molecules within 6 epochs."""
    from torch_geometric.loader import DataLoader

    from molgraph.data.registry import dataset_path
    from molgraph.nn import Readout

    df = pd.read_csv(dataset_path("zinc_constrained"))
    data = [FEAT(s) for s in df["smiles"][:1200]]
    for d, y in zip(data, df["penalized_logp"][:1200]):
        d.y = torch.tensor([[float(y)]])
    train, test = data[:1000], data[1000:]
    torch.manual_seed(0)
    enc = GraphTransformerEncoder(FEAT.atom_dim, FEAT.bond_dim, 32, 2, 0.0)
    head = torch.nn.Linear(32, 1)
    readout = Readout("mean", 32)
    params = [*enc.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3)
    mean = float(torch.cat([d.y for d in train]).mean())
    for _ in range(6):
        for b in DataLoader(train, batch_size=32, shuffle=True):
            h = enc(b.x, b.edge_index, b.edge_attr, b.batch, b.num_graphs)
            loss = ((head(readout(h, b.batch, b.num_graphs)) + mean - b.y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    enc.eval()
    b = Batch.from_data_list(test)
    with torch.no_grad():
        pred = head(readout(enc(b.x, b.edge_index, b.edge_attr, b.batch, b.num_graphs), b.batch, b.num_graphs)) + mean
    mae = float((pred - b.y).abs().mean())
    baseline = float((mean - b.y).abs().mean())
    assert mae < 0.8 * baseline, (mae, baseline)
