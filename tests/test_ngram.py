"""N-gram graph: walk sums against networkx walk enumeration, invariances, fitting, files, leakage."""

from __future__ import annotations

import json
import zipfile

import networkx as nx
import numpy as np
import pytest
import torch
from rdkit import Chem

from molgraph.chem import MoleculeError
from molgraph.methods.ngram.embedding import NGramGraph, NGramGraphConfig, segment_targets
from molgraph.methods.ngram.evaluate import cross_validate, prepare_molecules
from molgraph.methods.ngram.walks import CBoWVertexEmbedding, ngram_walk_sums

MOLS = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "C1CC1C(F)(F)F", "OC(=O)CCl", "[Na+].[Cl-]", "C", "CC[N+](C)(C)C",
        "O=S(=O)(N)c1ccc(Br)cc1", "C#CC(O)c1ccncc1I"]


def count_walks(graph: nx.Graph, k: int) -> int:
    """Number of walks with k vertices (k - 1 steps, backtracking allowed), by enumeration."""
    def extend(node: int, left: int) -> int:
        return 1 if left == 0 else sum(extend(nb, left - 1) for nb in graph.neighbors(node))
    return sum(extend(v, k - 1) for v in graph.nodes)


def edge_index_of(graph: nx.Graph) -> torch.Tensor:
    pairs = [(u, v) for u, v in graph.edges] + [(v, u) for u, v in graph.edges]
    return torch.tensor(pairs, dtype=torch.long).t().reshape(2, -1)


SMALL_GRAPHS = {
    "path4": nx.path_graph(4),
    "cycle5": nx.cycle_graph(5),
    "star4": nx.star_graph(4),
    "triangle+isolated": nx.union(nx.complete_graph(3), nx.empty_graph(range(3, 4))),
    "petersen": nx.petersen_graph(),
}


@pytest.mark.parametrize("name", sorted(SMALL_GRAPHS))
def test_walk_sums_count_walks_with_all_ones_embedding(name: str) -> None:
    graph = SMALL_GRAPHS[name]
    n, T = graph.number_of_nodes(), 6
    out = ngram_walk_sums(torch.ones(n, 1, dtype=torch.float64), edge_index_of(graph), torch.zeros(n, dtype=torch.long),
                          1, T)
    got = out[0, :, 0].tolist()
    assert got == [count_walks(graph, k) for k in range(1, T + 1)]
    A = nx.to_numpy_array(graph, nodelist=range(n))
    ones = np.ones(n)
    assert got == [float(ones @ np.linalg.matrix_power(A, k - 1) @ ones) for k in range(1, T + 1)]


def test_self_loops_option_walks_on_a_plus_i() -> None:
    graph = nx.path_graph(3)
    out = ngram_walk_sums(torch.ones(3, 1, dtype=torch.float64), edge_index_of(graph), torch.zeros(3, dtype=torch.long),
                          1, 4, self_loops=True)
    M = nx.to_numpy_array(graph) + np.eye(3)
    assert out[0, :, 0].tolist() == [float(np.ones(3) @ np.linalg.matrix_power(M, k) @ np.ones(3)) for k in range(4)]


def test_walk_sums_multiply_vertex_embeddings_along_walks() -> None:
    # path a-b-c with scalar embeddings 2, 3, 5: f2 sums both directions of both bonds; f3 the
    # walks aba, bab, bcb, cbc and abc in both directions
    f = torch.tensor([[2.0], [3.0], [5.0]], dtype=torch.float64)
    out = ngram_walk_sums(f, edge_index_of(nx.path_graph(3)), torch.zeros(3, dtype=torch.long), 1, 3)[0, :, 0]
    assert out.tolist() == [10.0, 2 * (2 * 3 + 3 * 5), 2 * 3 * 2 + 3 * 2 * 3 + 3 * 5 * 3 + 5 * 3 * 5 + 2 * (2 * 3 * 5)]


def element_ones_w(est: NGramGraph) -> np.ndarray:
    """A (D, 1) W with X W = 1 for every atom: each atom has exactly one hot element column."""
    W = np.zeros((est.in_dim, 1), dtype=np.float32)
    W[:10, 0] = 1.0  # the element segment (9 elements + unknown) comes first
    return W


def test_estimator_with_unit_embedding_counts_walks_of_molecules() -> None:
    est = NGramGraph(dim=1, n_grams=5)
    est.W = element_ones_w(est)
    emb = est.transform(MOLS)
    assert emb.shape == (len(MOLS), 5)
    for smi, row in zip(MOLS, emb):
        mol = Chem.MolFromSmiles(smi)
        graph = nx.Graph()
        graph.add_nodes_from(range(mol.GetNumAtoms()))
        graph.add_edges_from((b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds())
        assert row.tolist() == [count_walks(graph, k) for k in range(1, 6)], smi
    # ethanol by hand: 3 atoms, 4 directed edges, sum of squared degrees 1 + 4 + 1
    assert emb[0, :3].tolist() == [3.0, 4.0, 6.0]


@pytest.fixture(scope="module")
def fitted() -> NGramGraph:
    return NGramGraph(dim=8, n_grams=4, epochs=3, seed=7).fit(MOLS * 3)


def test_invariant_to_atom_order(fitted: NGramGraph) -> None:
    rng = np.random.default_rng(0)
    base = fitted.transform(MOLS)
    for i, smi in enumerate(MOLS):
        mol = Chem.MolFromSmiles(smi)
        perm = rng.permutation(mol.GetNumAtoms()).tolist()
        shuffled = Chem.RenumberAtoms(mol, perm)
        np.testing.assert_allclose(fitted.transform([shuffled])[0], base[i], rtol=1e-6, atol=1e-5)


def test_batched_equals_one_by_one(fitted: NGramGraph) -> None:
    batched = fitted.transform(MOLS)
    single = np.concatenate([fitted.transform([m]) for m in MOLS])
    np.testing.assert_array_equal(batched, single)
    graphs, _ = fitted.featurize(MOLS)
    np.testing.assert_array_equal(fitted.transform_graphs(graphs, chunk_size=3), batched)


def test_output_layout_and_first_gram_is_sum_of_vertex_embeddings(fitted: NGramGraph) -> None:
    graphs, _ = fitted.featurize(MOLS[:2])
    emb = fitted.transform_graphs(graphs)
    assert emb.shape == (2, 4 * 8) and emb.dtype == np.float32
    assert fitted.feature_names[:2] == ["ngram1:0", "ngram1:1"] and fitted.feature_names[-1] == "ngram4:7"
    x0 = graphs.x[: int(graphs.atom_ptr[1])].numpy().astype(np.float64)
    np.testing.assert_allclose(emb[0, :8], (x0 @ fitted.W.astype(np.float64)).sum(0), rtol=1e-6)


def test_fit_is_seeded_and_deterministic() -> None:
    a = NGramGraph(dim=4, epochs=2, seed=3).fit(MOLS)
    b = NGramGraph(dim=4, epochs=2, seed=3).fit(MOLS)
    c = NGramGraph(dim=4, epochs=2, seed=4).fit(MOLS)
    np.testing.assert_array_equal(a.W, b.W)
    assert not np.array_equal(a.W, c.W)
    # the random ablation is the CBoW starting point: same seed, same untrained W
    r = NGramGraph(dim=4, vertex_embedding="random", seed=3).fit(MOLS)
    z = NGramGraph(dim=4, epochs=0, seed=3).fit(MOLS)
    np.testing.assert_array_equal(r.W, z.W)
    assert not np.array_equal(r.W, a.W)


def test_cbow_learns_to_predict_atom_attributes() -> None:
    mols = MOLS * 20
    before = NGramGraph(dim=16, epochs=0, seed=0)
    graphs, _ = before.featurize(mols)
    after = NGramGraph(dim=16, epochs=15, seed=0).fit_graphs(graphs)
    assert after.fit_info["best_loss"] < 0.6 * 8 * np.log(2)  # well under chance level
    # element, from neighbours alone, right far more often than the most common element
    targets, _ = segment_targets(graphs.x, after.featurizer.atom_featurizer)
    majority = np.bincount(targets[:, 0].numpy()).max() / len(targets)
    assert after.fit_info["segment_accuracy"][0] > majority + 0.1


def test_segment_targets_read_one_hot_blocks() -> None:
    est = NGramGraph()
    graphs, _ = est.featurize(["OC(=O)c1ccncc1N"])
    targets, classes = segment_targets(graphs.x, est.featurizer.atom_featurizer)
    assert classes == [10, 7, 7, 6, 6, 2, 2, 2]
    # atom 0 is the hydroxyl O: element O (index 2), degree 1, one H, implicit valence 1,
    # charge 0 (index 2), not aromatic, acceptor and donor
    assert targets[0].tolist() == [2, 1, 1, 1, 2, 0, 1, 1]


def test_cbow_module_heads_match_separate_heads() -> None:
    torch.manual_seed(0)
    model = CBoWVertexEmbedding(5, 3, [4, 2], hidden_dim=6)
    ctx = torch.randn(7, 5)
    logits = model.logits(ctx)
    z = ctx @ model.weight
    hid = torch.relu(model.hidden(z)).view(7, 2, 6)
    for s, n in enumerate([4, 2]):
        ref = hid[:, s] @ model.out_weight[s, :, :n] + model.out_bias[s, :n]
        torch.testing.assert_close(logits[:, s, :n], ref)
    assert torch.isinf(logits[:, 1, 2:]).all()
    t = torch.tensor([[0, 1]] * 7)
    expected = sum(torch.nn.functional.cross_entropy(logits[:, s, :n], t[:, s]) for s, n in enumerate([4, 2]))
    torch.testing.assert_close(model.loss(ctx, t), expected)


def test_max_atoms_cap_records_rejects_and_raises_by_default() -> None:
    est = NGramGraph(dim=2, vertex_embedding="random", max_atoms=5).fit(["CCO"])
    res = est.embed(["CCO", "CCCCCCCC", "not a smiles"])
    assert res.indices.tolist() == [0]
    reasons = {r.index: r.reason for r in res.rejects}
    assert reasons[1] == "8 heavy atoms > max_atoms=5" and 2 in reasons
    with pytest.raises(MoleculeError, match="max_atoms=5"):
        est.transform(["CCCCCCCC"])


def test_unfitted_and_wrong_input_errors() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        NGramGraph().transform(["CCO"])
    with pytest.raises(ValueError, match="vertex_embedding"):
        NGramGraphConfig(vertex_embedding="glove")  # type: ignore[arg-type]
    with pytest.raises(MoleculeError) as err:
        NGramGraph(dim=2, vertex_embedding="random").fit(["CCO"]).transform(["CCO", "C1CC"])
    assert err.value.index == 1


def test_save_load_round_trip_without_pickle(tmp_path, fitted: NGramGraph) -> None:
    path = fitted.save(tmp_path / "ngram.npz")
    loaded = NGramGraph.load(path)
    np.testing.assert_array_equal(loaded.W, fitted.W)
    assert loaded.config == fitted.config and loaded.featurizer == fitted.featurizer
    np.testing.assert_array_equal(loaded.transform(MOLS), fitted.transform(MOLS))
    assert NGramGraph.from_config(json.loads(json.dumps(fitted.to_config()))).config == fitted.config
    # a file holding a pickled object array is refused, not unpickled
    evil = tmp_path / "evil.npz"
    np.savez(evil, W=fitted.W, header=np.array([{"format": "x"}], dtype=object))
    with pytest.raises(ValueError):
        NGramGraph.load(evil)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["W.npy", "header.npy"]


def test_cross_validation_fits_w_on_training_molecules_only() -> None:
    """W of every fold must not change when the fold's *test* molecules change, and must
    change when a *training* molecule changes (so the check can fail)."""
    rng = np.random.default_rng(0)
    smiles = ["CCO", "CCCO", "CC(C)O", "c1ccccc1", "c1ccccc1O", "CC(=O)O", "CCN", "CCCl", "OCCO", "CC(=O)N",
              "c1ccncc1", "CCOC", "CCS", "FC(F)F", "C1CCCCC1", "CC#N"]
    y = rng.normal(size=(len(smiles), 1))
    cfg = NGramGraphConfig(dim=4, n_grams=3, epochs=2)

    def fold_ws(mols: list[str]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        seen: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        data = prepare_molecules(mols, y, max_atoms=None)
        cross_validate(data, "regression", predictor="rf", folds=4, seed=123, ngram_config=cfg,
                       predictor_params={"n_estimators": 5},
                       fold_hook=lambda info: seen.__setitem__(info["fold"], (info["W"], info["test"])))
        return seen

    base = fold_ws(smiles)
    for fold, (W, test) in base.items():
        swapped = list(smiles)
        for i in test:  # replace every test molecule by something else entirely
            swapped[i] = "O=C(O)c1ccc(Br)cc1N"
        np.testing.assert_array_equal(fold_ws(swapped)[fold][0], W)
        train_i = next(i for i in range(len(smiles)) if i not in set(test.tolist()))
        changed = list(smiles)
        changed[train_i] = "O=C(O)c1ccc(Br)cc1N"
        assert not np.array_equal(fold_ws(changed)[fold][0], W)
        break  # one fold is enough to prove both directions; the others follow the same code


def test_classification_cv_drops_missing_labels_per_task() -> None:
    smiles = ["CCO", "CCCO", "CC(C)O", "c1ccccc1", "c1ccccc1O", "CC(=O)O", "CCN", "CCCl", "OCCO", "CC(=O)N"] * 2
    y = np.array([[i % 2, np.nan if i % 5 == 0 else (i // 2) % 2] for i in range(len(smiles))], dtype=float)
    data = prepare_molecules(smiles, y, max_atoms=None)
    seen = []
    res = cross_validate(data, "classification", representation="ngram_random", predictor="rf", folds=2, seed=1,
                         ngram_config=NGramGraphConfig(dim=4, n_grams=2), task_names=["a", "b"],
                         predictor_params={"n_estimators": 5}, fold_hook=seen.append)
    assert set(res["tasks"]) == {"a", "b"} and set(res["mean"]) == {"roc_auc", "prc_auc"}
    b_rows = set().union(*[set(i["train"].tolist()) | set(i["test"].tolist()) for i in seen if i["tasks"] == [1]])
    assert b_rows == {i for i in range(len(smiles)) if i % 5 != 0}  # unlabelled rows never used for task b
    assert all(len(f) == 2 for f in (res["tasks"]["a"]["folds"], res["tasks"]["b"]["folds"]))
