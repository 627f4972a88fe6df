"""``benchmarks/tgn_baseline.py``: the TGN baseline of the CAW-N benchmark streams event subsets with
the right event ids, keeps the validation-selected state for the test stream, and repeats.

Small synthetic streams only; the benchmark runs the real data.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import _load_benchmark


@pytest.fixture(scope="module")
def tgn():
    return _load_benchmark("tgn_baseline")


def _stream(n_events: int = 300, n_nodes: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    src = rng.integers(0, n_nodes, n_events)
    dst = (src + rng.integers(1, n_nodes, n_events)) % n_nodes
    t = 1.6e9 + np.sort(rng.uniform(0, 1e6, n_events))  # unix seconds: float32 would lose the order
    return src, dst, t, n_nodes


def test_neighbour_events_map_to_their_event_ids(tgn):
    src, dst, t, n = _stream()
    model = tgn.TGNBaseline(src, dst, t, n, tgn.TGNSettings(batch_size=25, neighbors=5, epochs=1))
    # a subset with gaps, as the inductive split streams
    ids = np.arange(0, 300, 3)
    with torch.no_grad():
        model._stream(ids, np.unique(dst), np.random.default_rng(0), train=False)
    for node in range(n):
        e = model.loader.e_id[node]
        e = e[e >= 0]
        events = model.order[e].numpy()
        assert np.isin(events, ids).all()
        # every neighbour-table entry of ``node`` is one of its own events
        assert ((src[events] == node) | (dst[events] == node)).all()
    # relative times keep one-second resolution at unix-time magnitudes
    assert abs(float(model.t[-1] - model.t[0]) - (t[-1] - t[0])) < 1


def test_runs_repeat_and_the_test_stream_continues_the_selected_state(tgn):
    src, dst, t, n = _stream()
    pools = (np.unique(dst[:180]), np.unique(dst[:240]), np.unique(dst))
    tr, va, te = np.arange(180), np.arange(180, 240), np.arange(240, 300)
    out = []
    for _ in range(2):
        model = tgn.TGNBaseline(src, dst, t, n, tgn.TGNSettings(batch_size=30, neighbors=5, epochs=2,
                                                                 memory_dim=8, time_dim=8, embedding_dim=8))
        out.append(model.fit_and_test(tr, va, te, te, pools))
    a, b = out
    np.testing.assert_array_equal(a["test_scores"][0], te)
    np.testing.assert_allclose(a["test_scores"][1], b["test_scores"][1])
    np.testing.assert_allclose(a["test_scores"][2], b["test_scores"][2])
    assert a["best_epoch"] == int(np.argmax(a["val_ap_per_epoch"]))
    # the restored state holds the training and validation events: 240 streamed before the test
    assert model.loader.cur_e_id == 300
    assert set(model.order[:240].tolist()) == set(range(240))
