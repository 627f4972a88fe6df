"""CAW-N's anonymization: exact counts on a small case, invariance to node relabelling."""

from __future__ import annotations

import numpy as np

from molgraph.data.temporal import TemporalEvents
from molgraph.methods.caw.anonymize import anonymize
from molgraph.methods.caw.store import WalkStore


def test_counts_exact_small_case():
    # one pair, M = 2 walks of L = 1 hop: u=5 walks to 7 and 9; v=7 walks to 5 and stops (padding)
    nu = np.array([[[5, 7], [5, 9]]])
    mu = np.ones_like(nu, dtype=bool)
    nv = np.array([[[7, 5], [7, -1]]])
    mv = np.array([[[True, True], [True, False]]])
    c = anonymize(nu, mu, nv, mv)
    assert c.shape == (1, 2, 2, 2, 2, 2)
    c5 = np.array([[1.0, 0.0], [0.0, 0.5]])  # node 5: both u-walks at step 0; one v-walk at step 1
    c7 = np.array([[0.0, 0.5], [1.0, 0.0]])
    c9 = np.array([[0.0, 0.5], [0.0, 0.0]])
    np.testing.assert_allclose(c[0, 0, 0, 0], c5)
    np.testing.assert_allclose(c[0, 0, 0, 1], c7)
    np.testing.assert_allclose(c[0, 0, 1, 1], c9)
    np.testing.assert_allclose(c[0, 1, 0, 0], c7)
    np.testing.assert_allclose(c[0, 1, 0, 1], c5)
    np.testing.assert_allclose(c[0, 1, 1, 1], 0.0)  # padding


def test_pairs_do_not_share_counts():
    nu = np.array([[[1, 2]], [[1, 2]]])
    nv = np.array([[[3, 2]], [[4, 5]]])
    m = np.ones_like(nu, dtype=bool)
    c = anonymize(nu, m, nv, m)
    np.testing.assert_allclose(c[0, 0, 0, 1], [[0, 1], [0, 1]])  # node 2 in both sets of pair 0
    np.testing.assert_allclose(c[1, 0, 0, 1], [[0, 1], [0, 0]])  # ...but only in u's set for pair 1


def test_invariant_to_node_relabelling():
    rng = np.random.default_rng(0)
    n = 40
    src, dst = rng.integers(0, n, 800), rng.integers(0, n, 800)
    t = np.sort(rng.uniform(0, 1000, 800))
    perm = rng.permutation(n)
    ev = TemporalEvents.from_arrays("a", src, dst, t)
    ev_p = TemporalEvents.from_arrays("b", perm[src], perm[dst], t)
    q = np.arange(500, 800, 3)
    out = []
    for e, relabel in ((ev, np.arange(n)), (ev_p, perm)):
        store = WalkStore.from_events(e, alpha=0.01)
        u, v = relabel[src[q]], relabel[dst[q]]
        # the same random stream picks the same events: edge ids (stream positions) are unchanged
        wu = store.walks(u, t[q], 8, 2, np.random.default_rng(1))
        wv = store.walks(v, t[q], 8, 2, np.random.default_rng(2))
        np.testing.assert_array_equal(wu.edge_id, out[0][2] if out else wu.edge_id)
        c = anonymize(wu.node.reshape(q.size, 8, 3), wu.mask.reshape(q.size, 8, 3),
                      wv.node.reshape(q.size, 8, 3), wv.mask.reshape(q.size, 8, 3))
        out.append((c, wu.node, wu.edge_id))
    np.testing.assert_array_equal(out[0][0], out[1][0])
    assert not np.array_equal(out[0][1], out[1][1])  # the node ids did change
