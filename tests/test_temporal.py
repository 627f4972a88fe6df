"""Temporal event streams (UCI, Enron, Wikipedia), the CSR neighbour store and its strict-before queries."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from molgraph.data.loader import Collate, graph_loader
from molgraph.data.registry import get_card, list_datasets, load_dataset
from molgraph.data.splits import chronological_split, inductive_split
from molgraph.data.temporal import EventBatcher, TemporalEvents, TemporalNeighbors, load_temporal
from molgraph.registry import DATASETS

# e0 (0,1,t=1)  e1 (1,2,t=2)  e2 (0,2,t=2)  e3 (2,2,t=3) self loop  e4 (0,1,t=5)
SRC, DST, T = [0, 1, 0, 2, 0], [1, 2, 2, 2, 1], [1.0, 2.0, 2.0, 3.0, 5.0]


def _toy() -> TemporalEvents:
    return TemporalEvents("toy", np.array(SRC), np.array(DST), np.array(T), node_ids=np.array([10, 11, 12]))


def test_undirected_store_is_exact() -> None:
    nb = _toy().neighbors()
    assert nb.indptr.tolist() == [0, 3, 6, 9]
    assert nb.edge_id.tolist() == [0, 2, 4, 0, 1, 4, 1, 2, 3]
    assert nb.neighbor.tolist() == [1, 2, 1, 0, 2, 0, 1, 0, 2]  # the self loop once, under node 2
    assert nb.t.tolist() == [1, 2, 5, 1, 2, 5, 2, 2, 3]
    assert nb.degree().tolist() == [3, 3, 3]


def test_strictly_before_excludes_the_query_time() -> None:
    nb = _toy().neighbors()
    start, stop = nb.before([0, 0, 0, 0, 2, 2], [0.0, 1.0, 2.0, 100.0, 3.0, 2.5])
    assert (stop - start).tolist() == [0, 0, 1, 3, 2, 2]
    neighbor, edge_id, t = nb.neighbors_before(2, 3.0)
    assert edge_id.tolist() == [1, 2] and neighbor.tolist() == [1, 0] and t.tolist() == [2.0, 2.0]
    assert nb.neighbors_before(0, 5.0)[1].tolist() == [0, 2]  # e4 itself (t = 5) is not seen
    # broadcasting: one node, many times
    assert (np.subtract(*nb.before(1, np.array([1.5, 2.0, 2.5]))[::-1])).tolist() == [1, 1, 2]
    with pytest.raises(IndexError, match="node 3 out of range for 3 nodes"):
        nb.before([3], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        nb.before([0], [np.nan])


def test_last_k_most_recent_first_with_padding() -> None:
    nb = _toy().neighbors()
    neighbor, edge_id, t, mask = nb.last_k([0, 1, 2], [6.0, 2.0, 1.0], k=2)
    assert edge_id.tolist() == [[4, 2], [0, -1], [-1, -1]]
    assert neighbor.tolist() == [[1, 2], [0, -1], [-1, -1]]
    assert t.tolist() == [[5.0, 2.0], [1.0, 0.0], [0.0, 0.0]]
    assert mask.tolist() == [[True, True], [True, False], [False, False]]
    with pytest.raises(ValueError, match="positive integer"):
        nb.last_k([0], [1.0], 0)


def test_directed_store_and_event_subsets() -> None:
    events = _toy()
    directed = events.neighbors(directed=True)
    assert directed.indptr.tolist() == [0, 3, 4, 5] and directed.edge_id.tolist() == [0, 2, 4, 1, 3]
    train_only = events.neighbors([0, 1])  # e.g. train events: later events are not in the store
    assert train_only.edge_id.tolist() == [0, 0, 1, 1] and train_only.indptr.tolist() == [0, 1, 3, 4]
    # built from raw arrays in any order: the same store
    shuffled = [4, 2, 0, 3, 1]
    raw = TemporalNeighbors.from_arrays(np.array(SRC)[shuffled], np.array(DST)[shuffled], np.array(T)[shuffled],
                                        3, edge_id=shuffled)
    full = events.neighbors()
    for name in ("indptr", "neighbor", "edge_id", "t"):
        assert np.array_equal(getattr(raw, name), getattr(full, name)), name


def test_from_arrays_sorts_stably_and_relabels() -> None:
    ev = TemporalEvents.from_arrays("x", src=[9, 5, 7, 5], dst=[5, 7, 9, 9], t=[3.0, 1.0, 3.0, 2.0], label=[1, 0, 0, 1])
    assert ev.node_ids.tolist() == [5, 7, 9]
    assert ev.file_row.tolist() == [1, 3, 0, 2]  # the two t = 3 events keep their file order
    assert ev.src.tolist() == [0, 0, 2, 1] and ev.dst.tolist() == [1, 2, 0, 2] and ev.label.tolist() == [0, 1, 1, 0]
    with pytest.raises(ValueError, match="event 1 \\(t=1.0\\) comes after t=3.0"):
        TemporalEvents("bad", np.array([0, 1]), np.array([1, 0]), np.array([3.0, 1.0]), node_ids=np.arange(2))
    with pytest.raises(ValueError, match="event 0 has dst node 5, outside 0..1"):
        TemporalEvents("bad", np.array([0]), np.array([5]), np.array([0.0]), node_ids=np.arange(2))


def test_before_agrees_with_brute_force_on_a_stream_with_ties() -> None:
    rng = np.random.default_rng(4)
    n_events, n_nodes = 3000, 40
    src, dst = rng.integers(0, n_nodes, n_events), rng.integers(0, n_nodes, n_events)
    t = np.sort(rng.integers(0, 300, n_events)).astype(float)  # about ten events per distinct time
    ev = TemporalEvents("r", src, dst, t, node_ids=np.arange(n_nodes))
    for directed in (False, True):
        nb = ev.neighbors(directed=directed)
        nodes, times = rng.integers(0, n_nodes, 200), rng.choice(np.append(t, [-1.0, 1e9, 150.5]), 200)
        start, stop = nb.before(nodes, times)
        for u, q, a, b in zip(nodes, times, start, stop):
            touches = (src == u) if directed else ((src == u) | (dst == u))
            expected = np.flatnonzero(touches & (t < q))
            assert np.array_equal(np.sort(nb.edge_id[a:b]), expected)
            assert np.all(np.diff(nb.t[a:b]) >= 0)


def test_event_batcher_is_a_collate() -> None:
    ev = TemporalEvents.from_arrays("x", [0, 1, 2], [1, 2, 0], [1.0, 2.0, 3.0], label=[0, 1, 0])
    batcher = EventBatcher(ev)
    assert isinstance(batcher, Collate) and len(batcher) == 3
    batches = list(graph_loader(batcher, [2, 0, 1], batch_size=2))
    assert batches[0]["edge_id"].tolist() == [2, 0] and batches[0]["src"].tolist() == [2, 0]
    assert batches[0]["t"].dtype == torch.float64 and batches[1]["label"].tolist() == [1]
    assert batches[0]["edge_feat"].shape == (2, 0)


def test_cards_and_registry() -> None:
    assert list_datasets("temporal") == ["enron", "uci", "wikipedia"]
    for name in ("uci", "enron", "wikipedia"):
        card = get_card(name)
        assert card.kind == "temporal" and card.split == "chronological" and card.task_type == "link_prediction"
        assert DATASETS[name].group == "temporal"
    with pytest.raises(KeyError, match="unknown temporal dataset 'reddit'"):
        load_temporal("reddit")


def test_missing_file_says_where_to_put_it(no_data_root) -> None:
    with pytest.raises(FileNotFoundError, match="graphs/enron/ml_enron.txt"):
        load_temporal("enron")


EXPECTED = {  # events, nodes, self loops, distinct times (shared folder's provenance records)
    "uci": (59835, 1899, 0, None),
    "enron": (125235, 184, 16410, 22632),
    "wikipedia": (157474, 9227, 0, None),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_streams(data_root, name) -> None:
    ev = load_dataset(name)
    n_events, n_nodes, loops, distinct = EXPECTED[name]
    assert (ev.num_events, ev.num_nodes, ev.num_self_loops) == (n_events, n_nodes, loops)
    if distinct is not None:
        assert np.unique(ev.t).size == distinct
    assert np.all(np.diff(ev.t) >= 0) and np.array_equal(ev.file_row, np.arange(n_events))  # files are sorted
    assert ev.edge_feat.shape == (n_events, 0) and len(ev.provenance) == 1
    nb = ev.neighbors()
    assert nb.indptr[-1] == 2 * n_events - loops
    # a positive event never sees itself or a simultaneous event
    rng = np.random.default_rng(0)
    for e in rng.choice(n_events, 50, replace=False):
        for node in (ev.src[e], ev.dst[e]):
            _, ids, times = nb.neighbors_before(node, ev.t[e])
            assert e not in ids and np.all(times < ev.t[e])
            touching = np.flatnonzero(((ev.src == node) | (ev.dst == node)) & (ev.t < ev.t[e]))
            assert np.array_equal(np.sort(ids), touching)
    if name == "wikipedia":
        assert ev.label.sum() == 217 and ev.src.max() < 8227 <= ev.dst.min()  # bipartite users -> pages
    if name == "uci":
        assert ev.node_ids.tolist() == list(range(1, 1900)) and ev.t[0] == 1082040961
        split = chronological_split(ev.t)
        assert abs(split.train.size / n_events - 0.70) < 0.001 and abs(split.test.size / n_events - 0.15) < 0.001
        inductive = inductive_split(ev.src, ev.dst, ev.t, seed=0)
        assert len(inductive.info["masked_nodes"]) == 189  # int(0.1 * 1899)
    if name == "enron":
        assert load_temporal("enron", self_loops="drop").num_events == n_events - loops
