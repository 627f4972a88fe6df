"""GraphNorm (Cai et al. 2021) and the ``norm=`` switch."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.nn import GraphNorm as PyGGraphNorm

from molgraph.featurizers import MolGraphFeaturizer
from molgraph.methods.property.model import build_model
from molgraph.nn import NORMS, GCNEncoder, GINEEncoder, GraphNorm, make_norm
from molgraph.nn.norm import _Scratch


def _random_batch(seed: int, num_graphs: int = 9, channels: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, 12, (num_graphs,), generator=g)
    batch = torch.repeat_interleave(torch.arange(num_graphs), sizes)
    x = torch.randn(int(sizes.sum()), channels, generator=g) * 3.0 + 5.0
    return x, batch


def _randomize(norm: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in (norm.weight, norm.bias, norm.mean_scale):
            p.copy_(torch.rand(p.shape, generator=g) * 2 - 0.5)


KERNELS = ["torch", "numba"]  # the scatter/gather path and the fused CPU kernels


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("eps", [1e-5, 1e-6])
def test_equals_pyg_graphnorm(seed, eps, kernel):
    x, batch = _random_batch(seed)
    ours, theirs = GraphNorm(x.shape[1], eps=eps, kernel=kernel), PyGGraphNorm(x.shape[1], eps=eps)
    _randomize(ours, seed)
    theirs.load_state_dict(ours.state_dict())  # same parameter names: weight, bias, mean_scale
    num_graphs = int(batch.max()) + 1
    torch.testing.assert_close(ours(x, batch, num_graphs), theirs(x, batch, num_graphs))
    torch.testing.assert_close(ours(x, batch), theirs(x, batch))  # batch_size inferred
    torch.testing.assert_close(ours(x), theirs(x))  # no batch: one graph
    # gradients agree too
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours(xa, batch, num_graphs).pow(2).sum().backward()
    theirs(xb, batch, num_graphs).pow(2).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad)
    for p_ours, p_theirs in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(p_ours.grad, p_theirs.grad)


@pytest.mark.parametrize("kernel", KERNELS)
def test_defaults_and_exact_small_case(kernel):
    norm = GraphNorm(2, kernel=kernel)
    assert norm.eps == 1e-5
    assert torch.equal(norm.weight, torch.ones(2)) and torch.equal(norm.bias, torch.zeros(2))
    assert torch.equal(norm.mean_scale, torch.ones(2))
    # graph 0: column values 1, 3 -> mean 2, var 1 -> -1/sqrt(1+eps), +1/sqrt(1+eps); graph 1: one node
    x = torch.tensor([[1.0, 10.0], [3.0, 10.0], [4.0, -2.0]])
    out = norm(x, torch.tensor([0, 0, 1]), 2)
    s = 1.0 / (1.0 + 1e-5) ** 0.5
    expected = torch.tensor([[-s, 0.0], [s, 0.0], [0.0, 0.0]])
    torch.testing.assert_close(out, expected)
    # alpha = 0.5: shift by half the mean; var of the shifted values (biased)
    with torch.no_grad():
        norm.mean_scale.fill_(0.5)
    out = norm(x[:2], torch.tensor([0, 0]), 1)
    shifted = x[:2] - 0.5 * x[:2].mean(0)
    var = shifted.pow(2).mean(0)
    torch.testing.assert_close(out, shifted / torch.sqrt(var + 1e-5))


def test_per_graph_statistics_without_shift_learning():
    x, batch = _random_batch(3)
    norm = GraphNorm(x.shape[1], learn_shift=False)
    assert "mean_scale" not in dict(norm.named_parameters())  # a buffer, fixed at 1
    out = norm(x, batch, int(batch.max()) + 1)
    for b in batch.unique():
        rows = out[batch == b]
        if rows.shape[0] > 1:
            torch.testing.assert_close(rows.mean(0), torch.zeros(x.shape[1]), atol=1e-5, rtol=0)
            torch.testing.assert_close(rows.var(0, unbiased=False), torch.ones(x.shape[1]), atol=1e-3, rtol=0)


@pytest.mark.parametrize("kernel", ["auto", "torch"])
def test_invariant_to_graph_order_and_node_permutation(kernel):
    # with "auto" the sorted batch takes the fused kernels and the permuted ones the scatter path
    x, batch = _random_batch(4)
    norm = GraphNorm(x.shape[1], kernel=kernel)
    _randomize(norm, 4)
    num_graphs = int(batch.max()) + 1
    out = norm(x, batch, num_graphs)
    # permute nodes arbitrarily (the batch vector need not be sorted)
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(norm(x[perm], batch[perm], num_graphs), out[perm])
    # relabel graphs in another order
    relabel = torch.randperm(num_graphs, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(norm(x, relabel[batch], num_graphs), out)


@pytest.mark.parametrize("kernel", KERNELS)
def test_single_node_graphs_and_constant_features_stay_finite(kernel):
    norm = GraphNorm(3, kernel=kernel)
    _randomize(norm, 0)
    x = torch.tensor([[1e3, -2.0, 0.0], [5.0, 5.0, 5.0], [5.0, 5.0, 5.0]])
    out = norm(x, torch.tensor([0, 1, 1]), 2)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in norm.parameters())
    # an empty graph in the middle (batch_size larger than the graphs present) is harmless
    assert torch.isfinite(norm(x, torch.tensor([0, 2, 2]), 3)).all()


def test_train_and_eval_compute_the_same():
    x, batch = _random_batch(5)
    norm = GraphNorm(x.shape[1])
    num_graphs = int(batch.max()) + 1
    train_out = norm.train()(x, batch, num_graphs)
    torch.testing.assert_close(norm.eval()(x, batch, num_graphs), train_out)


@pytest.mark.parametrize("kind", NORMS)
def test_make_norm_kinds(kind):
    x, batch = _random_batch(6)
    layer = make_norm(kind, x.shape[1])
    out = layer(x, batch, int(batch.max()) + 1)
    assert out.shape == x.shape and torch.isfinite(out).all()
    if kind == "none":
        assert torch.equal(out, x)
    if kind == "layer":
        torch.testing.assert_close(out.mean(1), torch.zeros(x.shape[0]), atol=1e-5, rtol=0)
    layer.reset_parameters()


def test_make_norm_rejects_unknown_name():
    with pytest.raises(ValueError, match="unknown norm 'group'"):
        make_norm("group", 4)


@pytest.mark.parametrize("encoder_cls", [GINEEncoder, GCNEncoder, partial(GCNEncoder, propagation="mean")])
@pytest.mark.parametrize("kind", NORMS)
def test_gine_and_gcn_with_every_norm_are_batch_consistent(kind, encoder_cls):
    """Per-graph norms make a graph's output independent of the other graphs in its batch."""
    fz = MolGraphFeaturizer.multihot()
    smiles = ["CCO", "c1ccccc1O", "CC(=O)N", "C"]
    graphs = [fz(s) for s in smiles]
    torch.manual_seed(0)
    enc = encoder_cls(fz.atom_dim, fz.bond_dim, hidden_dim=16, depth=2, norm=kind).eval()
    assert sum(isinstance(m, GraphNorm) for m in enc.modules()) == (
        0 if kind not in ("graph", "instance") else (4 if encoder_cls is GINEEncoder else 2))
    batch = Batch.from_data_list(graphs)
    with torch.no_grad():
        h = enc(batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.num_graphs)
        assert h.shape == (batch.num_nodes, 16) and torch.isfinite(h).all()
        if kind in ("graph", "instance", "layer", "none"):
            alone = graphs[1]
            h1 = enc(alone.x, alone.edge_index, alone.edge_attr)
            torch.testing.assert_close(h[batch.batch == 1], h1, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("preset", ["gin", "gcn"])
def test_property_model_norm_switch_round_trips(preset):
    fz = MolGraphFeaturizer.multihot()
    model = build_model(preset, num_tasks=1, atom_dim=fz.atom_dim, bond_dim=fz.bond_dim, norm="graph", hidden_dim=16,
                        depth=2, norm_eps=0.01)
    assert model.config["norm"] == "graph" and model.config["norm_eps"] == 0.01
    graph_norms = [m for m in model.modules() if isinstance(m, GraphNorm)]
    assert graph_norms and all(m.eps == 0.01 for m in graph_norms)
    clone = build_model(preset, **model.config)
    clone.load_state_dict(model.state_dict())
    batch = Batch.from_data_list([fz(s) for s in ["CCO", "CCN"]])
    model.eval(), clone.eval()
    with torch.no_grad():
        assert torch.equal(model(batch), clone(batch))


@pytest.mark.parametrize("with_scratch", [False, True])
def test_hand_written_backward_passes_gradcheck(with_scratch):
    x, batch = _random_batch(7, num_graphs=4, channels=3)
    norm = GraphNorm(3).double()
    _randomize(norm, 7)
    x = x.double().requires_grad_()
    for p in norm.parameters():
        p.requires_grad_(True)
    scratch = _Scratch() if with_scratch else None
    assert torch.autograd.gradcheck(lambda x_, w, b, a: torch.nn.functional.linear(
        _apply(norm, x_, w, b, a, batch, scratch), torch.eye(3, dtype=torch.float64)),
        (x, norm.weight, norm.bias, norm.mean_scale))


@pytest.mark.parametrize("kernel", KERNELS)
def test_scratch_buffers_do_not_leak_between_calls(kernel):
    # two layers sharing nothing, and one layer called twice before one backward: the reused work
    # buffers must not corrupt the saved state of an earlier call
    torch.manual_seed(3)
    x, batch = _random_batch(3, num_graphs=5, channels=4)
    norm = GraphNorm(4, kernel=kernel)
    _randomize(norm, 3)
    x1 = x.clone().requires_grad_()
    x2 = (2.0 * x + 1.0).detach().requires_grad_()
    (norm(x1, batch, 5).pow(2).sum() + norm(x2, batch, 5).pow(3).sum()).backward()
    ref = GraphNorm(4, kernel=kernel)
    ref.load_state_dict(norm.state_dict())
    r1, r2 = x.clone().requires_grad_(), (2.0 * x + 1.0).detach().requires_grad_()
    ref(r1, batch, 5).pow(2).sum().backward()
    ref2 = GraphNorm(4, kernel=kernel)
    ref2.load_state_dict(norm.state_dict())
    ref2(r2, batch, 5).pow(3).sum().backward()
    torch.testing.assert_close(x1.grad, r1.grad)
    torch.testing.assert_close(x2.grad, r2.grad)
    # a copy of the layer gets its own (empty) buffers
    import copy

    assert copy.deepcopy(norm)._scratch is not norm._scratch


def _apply(norm: GraphNorm, x, weight, bias, mean_scale, batch, scratch=None):
    from molgraph.nn.norm import _GraphNormFunction

    return _GraphNormFunction.apply(x, batch, int(batch.max()) + 1, weight, bias, mean_scale, norm.eps, scratch)


def test_fused_kernel_passes_gradcheck_with_empty_and_single_node_graphs():
    from molgraph.nn.graphnorm_cpu import GraphNormCPUFunction, segment_ptr

    g = torch.Generator().manual_seed(11)
    batch = torch.tensor([0, 0, 0, 2, 3, 3, 3, 3, 5, 5])  # graphs 1 and 4 empty, graph 2 one node
    x = (torch.randn(10, 3, generator=g, dtype=torch.float64) * 2 + 1).requires_grad_()
    norm = GraphNorm(3).double()
    _randomize(norm, 11)
    ptr = segment_ptr(batch, 6)
    assert ptr.tolist() == [0, 3, 3, 4, 8, 8, 10]
    assert torch.autograd.gradcheck(
        lambda x_, w, b, a: GraphNormCPUFunction.apply(x_, ptr, w, b, a, norm.eps),
        (x, norm.weight, norm.bias, norm.mean_scale))


def test_auto_kernel_takes_the_fused_path_only_where_it_applies():
    x, batch = _random_batch(8)
    b = int(batch.max()) + 1
    norm = GraphNorm(x.shape[1])
    assert norm.kernel == "auto"
    x = x.requires_grad_()
    assert type(norm(x, batch, b).grad_fn).__name__ == "GraphNormCPUFunctionBackward"
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
    assert type(norm(x[perm], batch[perm], b).grad_fn).__name__ == "_GraphNormFunctionBackward"
    # the explicit kernel says why it cannot run instead of falling back
    with pytest.raises(ValueError, match="not sorted by graph"):
        GraphNorm(x.shape[1], kernel="numba")(x[perm], batch[perm], b)
    with pytest.raises(ValueError, match="float32 or float64"):
        GraphNorm(x.shape[1], kernel="numba")(x.double(), batch, b)
    with pytest.raises(ValueError, match="graph index 5, outside"):
        GraphNorm(x.shape[1], kernel="numba")(x, batch, 5)
    with pytest.raises(ValueError, match="unknown GraphNorm kernel 'cuda'"):
        GraphNorm(4, kernel="cuda")


def test_fused_kernel_keeps_precision_on_offset_features():
    # a large common offset: the per-graph sums accumulate in float64, so float32 inputs lose
    # nothing against a float64 reference (a one-pass E[x^2] - E[x]^2 would lose the variance)
    g = torch.Generator().manual_seed(2)
    batch = torch.repeat_interleave(torch.arange(4), torch.tensor([5, 9, 2, 7]))
    x64 = torch.randn(23, 6, generator=g, dtype=torch.float64) + 1e3
    ref = GraphNorm(6, kernel="torch").double()(x64, batch, 4)
    out = GraphNorm(6, kernel="numba")(x64.float(), batch, 4)
    torch.testing.assert_close(out.double(), ref, atol=2e-3, rtol=0)


def test_graphnorm_on_the_last_layer_needs_the_residual_stream():
    # GraphNorm (alpha = 1 at initialization) centres every molecule's last-layer features; the GCN
    # block has no activation after its last layer, so a mean readout gives the same embedding for
    # every molecule unless a residual stream carries the molecule through: why the trainer turns
    # residual on with per-graph norms
    preset = "gcn"
    fz = MolGraphFeaturizer.multihot()
    batch = Batch.from_data_list([fz(s) for s in ["CCO", "c1ccccc1O", "CC(=O)N", "CCCCCl"]])
    pooled = {}
    for residual in (False, True):
        torch.manual_seed(0)
        model = build_model(preset, num_tasks=1, atom_dim=fz.atom_dim, bond_dim=fz.bond_dim, norm="graph",
                            hidden_dim=16, depth=3, residual=residual).eval()
        assert model.config["residual"] is residual
        with torch.no_grad():
            pooled[residual] = model.embed(batch)
    spread = {r: float((p - p.mean(0)).abs().max()) for r, p in pooled.items()}
    assert spread[False] < 1e-5 < 0.01 < spread[True]
