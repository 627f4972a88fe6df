"""Node-classification graphs (Cora-ML, Citeseer): standardisation, largest component, certificates, batches."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from molgraph.data.loader import Collate, graph_loader
from molgraph.data.node_graph import NodeBatcher, NodeGraph, load_base_certificates, load_node_graph, standardize
from molgraph.data.registry import get_card, list_datasets, load_dataset
from molgraph.data.splits import per_class_split
from molgraph.registry import DATASETS


def _toy() -> NodeGraph:
    # directed, weighted, with a self loop; nodes 0-1-2 form the largest component, 3-4 another, 5 alone
    rows, cols, w = [0, 1, 2, 2, 3, 1], [1, 2, 2, 0, 4, 0], [2.0, 1.0, 5.0, 0.5, 1.0, 3.0]
    adj = sp.csr_matrix((w, (rows, cols)), shape=(6, 6))
    attr = sp.csr_matrix(np.array([[0.2, 0, 0], [0, 0, 3.5], [0, 1, 0], [0, 0, 0], [1, 1, 1], [0, 0.1, 0]]))
    a, x = standardize(adj, attr)
    return NodeGraph("toy", a, x, np.array([0, 1, 0, 1, 1, 0]), np.arange(6) + 10)


def test_standardize_symmetrises_drops_loops_and_binarises() -> None:
    g = _toy()
    assert g.adj.toarray().tolist() == [
        [0, 1, 1, 0, 0, 0], [1, 0, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0], [0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 0]]
    assert g.adj.dtype == np.float32 and g.attr.dtype == np.float32
    assert g.attr.toarray().tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 0], [1, 1, 1], [0, 1, 0]]
    assert g.num_edges == 4 and g.edge_index.tolist() == [[0, 0, 1, 1, 2, 2, 3, 4], [1, 2, 0, 2, 0, 1, 4, 3]]


def test_largest_component_keeps_ascending_order_and_traces_nodes() -> None:
    g = _toy()
    assert g.components().tolist() == [0, 0, 0, 1, 1, 2]
    lcc = g.largest_connected_component()
    assert lcc.node_ids.tolist() == [10, 11, 12] and lcc.labels.tolist() == [0, 1, 0]
    assert lcc.adj.toarray().sum() == 6 and lcc.num_edges == 3
    sub = g.subgraph([4, 3])
    assert sub.node_ids.tolist() == [14, 13] and sub.attr.toarray().tolist() == [[1, 1, 1], [0, 0, 0]]
    # a tie between equal components goes to the one holding the lowest node
    tie = g.subgraph([3, 4, 0, 1])
    assert tie.largest_connected_component().node_ids.tolist() == [13, 14]
    with pytest.raises(IndexError, match="node 6 out of range"):
        g.subgraph([6])


def test_node_batcher_is_a_collate_of_full_graph_batches() -> None:
    g = _toy()
    batcher = NodeBatcher(g)
    assert isinstance(batcher, Collate) and len(batcher) == 6
    batches = list(graph_loader(batcher, [5, 0, 2], batch_size=2))
    assert [b.input_id.tolist() for b in batches] == [[5, 0], [2]]
    assert batches[0].x.data_ptr() == batches[1].x.data_ptr()  # the graph is shared, not copied
    assert batches[0].y[batches[0].input_id].tolist() == [0, 0]
    collated = g.to_collated()
    assert len(collated) == 1 and collated.fields == {"x": "node", "y": "node", "node_id": "node"}
    assert torch.equal(collated[0].edge_index, torch.from_numpy(g.edge_index))


def test_cards_and_registry_entries() -> None:
    assert list_datasets("node_graphs") == ["citeseer", "cora_ml"]
    assert "cora_ml" not in list_datasets() and "cora_ml" in list_datasets("all")
    card = get_card("Cora_ML")
    assert card.kind == "node_graph" and card.split == "per_class" and card.n_rows == 2995
    assert DATASETS["cora_ml"].group == "node_graphs" and DATASETS["citeseer"].card is get_card("citeseer")
    assert "Cora-ML" in DATASETS.entry("cora_ml").help


def test_missing_file_says_where_to_put_it(no_data_root) -> None:
    with pytest.raises(FileNotFoundError, match="graphs/cora_ml/cora_ml.npz"):
        load_node_graph("cora_ml")
    with pytest.raises(KeyError, match="unknown node-classification graph 'pubmed'"):
        load_node_graph("pubmed")


def _check_standard(g: NodeGraph) -> None:
    assert (g.adj != g.adj.T).nnz == 0 and g.adj.diagonal().sum() == 0
    assert set(np.unique(g.adj.data)) == {1.0} and set(np.unique(g.attr.data)) == {1.0}


# unpickling the repository's file warns about scipy's old module path (scipy.sparse.csr)
@pytest.mark.filterwarnings("ignore:Please import `csr_matrix`:DeprecationWarning")
def test_cora_ml_and_its_certificate_graph(data_root) -> None:
    g = load_node_graph("cora_ml")
    _check_standard(g)
    assert (g.num_nodes, g.num_edges, g.num_features, g.num_classes) == (2995, 8158, 2879, 7)
    assert np.bincount(g.labels).tolist() == [354, 402, 452, 442, 857, 193, 295]
    lcc = load_dataset("cora_ml", lcc=True)  # through the registry; checked against the lcc index file
    assert (lcc.num_nodes, lcc.num_edges, lcc.attr.nnz) == (2810, 7981, 142286)
    assert np.array_equal(lcc.labels, np.load(data_root / "graphs/cora_ml/collective_robustness/cora_ml_lcc_labels.npy"))
    # the certificate repository's own file (pickled scipy matrices): unpickled here, in the test only
    # (the file is sha256-checked first); the loader rebuilds the same graph without it
    from molgraph.data.registry import dataset_file

    own = np.load(dataset_file("cora_ml", "graphs/cora_ml/collective_robustness/cora_ml.npz"), allow_pickle=True)
    assert (own["adj"][()] != lcc.adj).nnz == 0 and (own["attr"][()] != lcc.attr).nnz == 0
    assert len(lcc.provenance) == 2
    # the per-class split of the certificate papers on it
    split = per_class_split(lcc.labels, 20, 20, seed=0)
    assert split.train.size == split.val.size == 140 and split.test.size == 2810 - 280


def test_cora_ml_base_certificates(data_root) -> None:
    grids = load_base_certificates("cora_ml")
    attr, dims = grids["attr_grid"]
    adj, _ = grids["adj_grid"]
    assert attr.shape == (2810, 7, 22) and dims == ("node", "attr_add", "attr_del") and adj.shape == (2810, 13)
    # naive certified ratios listed in the shared folder's provenance record
    assert attr[:, 0, 0].mean() == 1.0
    assert [round(float(attr[:, a, 0].mean()), 3) for a in range(1, 7)] == [0.842, 0.611, 0.601, 0.432, 0.432, 0.0]
    assert round(float(adj[:, 1].mean()), 3) == 0.830
    with pytest.raises(KeyError, match="no pre-computed base certificates for 'citeseer'"):
        load_base_certificates("citeseer")


def test_citeseer_and_its_certificate_graph(data_root) -> None:
    g = load_node_graph("citeseer")
    _check_standard(g)
    assert (g.num_nodes, g.num_edges, g.num_features, g.num_classes) == (3312, 4536, 3703, 6)
    assert np.unique(g.components()).size == 438
    assert g.class_names == ("AI", "Agents", "DB", "HCI", "IR", "ML")
    lcc = load_node_graph("citeseer", lcc=True)
    assert (lcc.num_nodes, lcc.num_edges, lcc.attr.nnz) == (2110, 3668, 67659)
    assert np.bincount(lcc.labels).tolist() == [115, 463, 388, 304, 532, 308]
    data = lcc.to_data()
    assert data.x.shape == (2110, 3703) and data.edge_index.shape == (2, 7336) and data.y.dtype == torch.int64
