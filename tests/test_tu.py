"""TU graph-classification datasets through the registry, and GIN training on them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from molgraph.data import registry
from molgraph.data.splits import stratified_kfold
from molgraph.data.tu import TU_NAMES, load_tu
from molgraph.methods.graph_classification.model import GraphClassifier
from molgraph.methods.graph_classification.task import fit_graph_classifier


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MOLGRAPH_CACHE", str(tmp_path / "cache"))


def test_bundled_mutag_loads_with_known_counts(no_data_root):
    ds = registry.load_dataset("MUTAG")  # case-insensitive, bundled: no data root needed
    assert len(ds) == 188 and ds.num_classes == 2 and ds.num_features == 7
    assert ds.node_features == "node_labels"
    assert np.bincount(ds.y).tolist() == [63, 125]  # MUTAG: 125 mutagenic, 63 not
    g = ds[0]
    assert g.x.shape == (17, 7) and g.edge_index.shape == (2, 38) and g.edge_attr.shape == (38, 4)
    assert torch.equal(g.x.sum(1), torch.ones(17))  # one-hot node labels
    card = registry.get_card("mutag")
    assert card.kind == "graphs" and card.bundled and card.metric == "accuracy"
    assert "mutag" in registry.list_graph_datasets()


def test_collated_view_matches_the_graphs(no_data_root):
    ds = load_tu("ptc_mr")
    col = ds.to_collated()
    assert len(col) == len(ds) == 344
    for i in (0, 17, 343):
        assert torch.equal(col[i].x, ds[i].x) and torch.equal(col[i].edge_index, ds[i].edge_index)


def test_checksum_mismatch_is_refused(no_data_root, tmp_path, monkeypatch):
    # a data-root set whose file was altered: the loader names the file and refuses it
    root = tmp_path / "root"
    raw = root / "graphs" / "tu" / "IMDB-BINARY" / "raw"
    raw.mkdir(parents=True)
    for rel in registry.get_card("imdb_binary").files:
        (root / rel).write_text("1, 2\n")
    with pytest.raises(registry.ChecksumError, match="IMDB-BINARY_A.txt"):
        load_tu("imdb_binary", root=root)


def test_missing_data_root_file_says_where_to_put_it(no_data_root):
    with pytest.raises(FileNotFoundError, match="graphs/tu/NCI1/raw/NCI1_A.txt"):
        load_tu("nci1")


def test_unknown_name():
    with pytest.raises(KeyError, match="unknown TU dataset"):
        load_tu("reddit_binary")


@pytest.mark.parametrize("name", ["proteins", "imdb_binary", "imdb_multi", "nci1"])
def test_data_root_sets(data_root, name):
    ds = load_tu(name)
    expected = {"proteins": (1113, 2), "imdb_binary": (1000, 2), "imdb_multi": (1500, 3), "nci1": (4110, 2)}
    assert (len(ds), ds.num_classes) == expected[name]
    if name.startswith("imdb"):
        assert ds.node_features == "degree"
        for g in (ds[0], ds[len(ds) - 1]):
            degree = torch.bincount(g.edge_index[0], minlength=g.num_nodes)
            assert torch.equal(g.x.argmax(1), degree)  # one-hot degree
        assert ds.num_features == ds.max_degree + 1
    assert set(np.unique(ds.y)) == set(range(ds.num_classes))


@pytest.mark.slow  # trains the TU GIN for many epochs (about 50 s on 2 cores)
def test_gin_with_graphnorm_learns_mutag(no_data_root):
    ds = load_tu("mutag")
    train, test = stratified_kfold(ds.y, k=10, seed=0)[0]
    model = GraphClassifier(in_dim=ds.num_features, num_classes=2, norm="graph")
    curves = fit_graph_classifier(model, ds.to_collated(), ds.y, train, {"test": test},
                                  epochs=40, lr=1e-2, seed=0)
    assert len(curves.train_loss) == 40 and len(curves.eval["test"]["acc"]) == 40
    assert np.mean(curves.train_loss[-5:]) < 0.5 * np.mean(curves.train_loss[:3])
    assert max(curves.eval["test"]["acc"]) >= 0.75  # majority class is 0.66


def test_curves_are_reproducible(no_data_root):
    ds = load_tu("mutag")
    idx = np.arange(len(ds))

    def run():
        m = GraphClassifier(in_dim=ds.num_features, num_classes=2, norm="graph")
        return fit_graph_classifier(m, ds.to_collated(), ds.y, idx[:150], {"test": idx[150:]}, epochs=3,
                                    seed=3, data_seed=4).to_dict()

    a, b = run(), run()
    assert a["train_loss"] == b["train_loss"] and a["eval"] == b["eval"]


def test_tu_names_all_have_cards():
    assert set(TU_NAMES) == set(registry.list_graph_datasets())


def test_graph_classifier_dropout_placement():
    with pytest.raises(ValueError, match="dropout_on"):
        GraphClassifier(in_dim=3, num_classes=2, dropout_on="nodes")
    ds = load_tu("mutag")
    from torch_geometric.data import Batch

    batch = Batch.from_data_list([ds[0], ds[1]])
    for where in ("logits", "features"):
        torch.manual_seed(0)
        m = GraphClassifier(in_dim=ds.num_features, num_classes=2, dropout_on=where, dropout=0.9).train()
        out = m(batch)
        if where == "logits":  # dropout zeroes whole logits
            assert (out == 0).any()
        m.eval()
        assert torch.equal(m(batch), m(batch))  # no dropout at evaluation
        assert GraphClassifier(**m.config).config == m.config


def test_gin_eps_one_equals_gin_over_graphs_with_self_loops():
    # the GraphNorm reference feeds GIN graphs with a self-loop on every node: that is eps = 1
    from torch_geometric.data import Batch
    from torch_geometric.utils import add_self_loops

    ds = load_tu("mutag")
    batch = Batch.from_data_list([ds[0], ds[5], ds[9]])
    torch.manual_seed(0)
    with_eps = GraphClassifier(in_dim=ds.num_features, num_classes=2, eps=1.0, dropout=0.0).eval()
    plain = GraphClassifier(in_dim=ds.num_features, num_classes=2, dropout=0.0).eval()
    plain.load_state_dict(with_eps.state_dict())
    for conv in plain.encoder.convs:  # eps is a buffer of GINConv: the state dict carried the 1 over
        assert float(conv.eps) == 1.0
        conv.eps.fill_(0.0)
    looped = batch.clone()
    looped.edge_index, _ = add_self_loops(batch.edge_index, num_nodes=batch.num_nodes)
    with torch.no_grad():
        torch.testing.assert_close(with_eps(batch), plain(looped))
        assert not torch.allclose(with_eps(batch), plain(batch))
    assert GraphClassifier(**with_eps.config).config["eps"] == 1.0
