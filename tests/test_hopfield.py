"""Modern Hopfield pooling and lookup (``molgraph.nn.hopfield``): exact retrievals on small cases,
node-order invariance, the readout contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from molgraph.nn.hopfield import HopfieldLayer, HopfieldPooling
from molgraph.nn.readout import READOUTS, Readout


def _graphs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(9, 6, generator=g, dtype=torch.float64)
    batch = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2])
    return h, batch


def _brute(pool: HopfieldPooling, h: torch.Tensor, batch: torch.Tensor, n_graphs: int) -> torch.Tensor:
    """Per graph and query, the update of the paper written out with explicit loops."""
    out = []
    for b in range(n_graphs):
        y = h[batch == b]
        k, v = pool.key(pool.norm(y)), pool.value(pool.norm(y))
        rows = []
        for q in pool.queries:
            xi = q
            for _ in range(pool.steps - 1):
                xi = torch.softmax(pool.beta * k @ xi, 0) @ k
            rows.append(torch.softmax(pool.beta * k @ xi, 0) @ v if len(y) else torch.zeros(pool.key_dim, dtype=h.dtype))
        out.append(pool.out(torch.cat(rows)))
    return torch.stack(out)


@pytest.mark.parametrize("steps,queries", [(1, 1), (3, 2)])
def test_pooling_equals_the_update_written_out(steps, queries):
    torch.manual_seed(0)
    pool = HopfieldPooling(6, num_queries=queries, steps=steps).double()
    h, batch = _graphs()
    torch.testing.assert_close(pool(h, batch, 4)[:3], _brute(pool, h, batch, 3))


def test_pooling_is_invariant_to_node_order_and_empty_graphs_pool_to_zero():
    torch.manual_seed(0)
    pool = HopfieldPooling(6, num_queries=2, steps=2).double()
    h, batch = _graphs()
    perm = torch.tensor([3, 1, 0, 2, 5, 4, 8, 6, 7])  # within each graph, so ``batch`` stays sorted
    a, b = pool(h, batch, 4), pool(h[perm], batch[perm], 4)
    torch.testing.assert_close(a, b)
    assert torch.equal(a[3], torch.zeros(6, dtype=torch.float64))


def test_large_beta_retrieves_the_nearest_node():
    torch.manual_seed(0)
    pool = HopfieldPooling(6, beta=1e4).double()
    h, batch = _graphs()
    alpha = pool.attention(h, batch, 3)[:, 0]
    for b in range(3):
        a = alpha[batch == b]
        assert a.max() > 1 - 1e-6  # one node takes all the weight


def test_readout_registry_and_options():
    assert "hopfield" in READOUTS
    r = Readout("hopfield", 6, num_queries=3, steps=2)
    assert r.hopfield.num_queries == 3 and r.hopfield.steps == 2
    with pytest.raises(ValueError, match="takes no options"):
        Readout("mean", 6, num_queries=3)
    with pytest.raises(ValueError, match="needs hidden_dim"):
        Readout("hopfield")


def test_layer_lookup_equals_hand_computation():
    torch.manual_seed(0)
    layer = HopfieldLayer(4, 3, n_patterns=5, steps=2).double()
    x = torch.randn(2, 4, dtype=torch.float64)
    p = layer.patterns.detach().numpy()
    wq, wk, wv = (m.weight.detach().numpy() for m in (layer.query, layer.key, layer.value))
    k = p @ wk.T

    def sm(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    xi = x.numpy() @ wq.T
    xi = sm(layer.beta * xi @ k.T) @ k
    expected = sm(layer.beta * xi @ k.T) @ (p @ wv.T)
    np.testing.assert_allclose(layer(x).detach().numpy(), expected, rtol=1e-10)
