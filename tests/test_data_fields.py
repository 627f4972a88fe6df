"""Arbitrary node/edge/graph fields in CollatedGraphs, their batches and files, and the collate protocol."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torch_geometric.data import Batch

from molgraph.data.collated import FORMAT, FORMAT_FIELDS, LEVELS, CollatedGraphs
from molgraph.data.loader import Collate, GraphBatcher, IndexDataset, graph_loader
from molgraph.featurizers import MolGraphFeaturizer

SMILES = ["CCO", "c1ccccc1O", "[Na+].[Cl-]", "C", "CC(=O)Nc1ccc(O)cc1", "C#N"]


def _graphs_with_fields() -> CollatedGraphs:
    """Featurized molecules plus one field of every kind and level (values tell rows apart)."""
    fz = MolGraphFeaturizer.ogb()
    graphs = CollatedGraphs.from_arrays([fz.arrays(s) for s in SMILES], rows=[0, 2, 3, 5, 6, 9])
    n_nodes, n_edges, n_graphs = graphs.count("node"), graphs.count("edge"), len(graphs)
    graphs.add_field("pos", torch.arange(n_nodes * 3, dtype=torch.float32).view(n_nodes, 3), "node")
    graphs.add_field("z", torch.arange(n_nodes) % 9 + 1, "node")
    graphs.add_field("forces", -torch.arange(n_nodes * 3, dtype=torch.float64).view(n_nodes, 3), "node")
    graphs.add_field("train_mask", torch.arange(n_nodes) % 2 == 0, "node")
    graphs.add_field("t", torch.arange(n_edges, dtype=torch.float64) * 0.5, "edge")
    graphs.add_field("energy", torch.arange(n_graphs, dtype=torch.float64) - 10.0, "graph")
    graphs.add_field("dipole", torch.arange(n_graphs * 3, dtype=torch.float32).view(n_graphs, 3), "graph")
    return graphs


def test_fields_declare_their_level_and_are_checked() -> None:
    graphs = _graphs_with_fields()
    assert graphs.fields == {"x": "node", "edge_attr": "edge", "pos": "node", "z": "node", "forces": "node",
                             "train_mask": "node", "t": "edge", "energy": "graph", "dipole": "graph"}
    assert graphs.field_names("graph") == ("energy", "dipole") and LEVELS == ("node", "edge", "graph")
    assert graphs.forces is graphs.field("forces") and graphs.x is graphs.field("x")
    with pytest.raises(ValueError, match=r"field 'bad' \(graph level\) has shape \(5,\); .* graphs, 6"):
        graphs.add_field("bad", torch.zeros(5), "graph")
    with pytest.raises(ValueError, match="level must be one of"):
        graphs.add_field("bad", torch.zeros(6), "molecule")
    with pytest.raises(ValueError, match="reserved"):
        graphs.add_field("ptr", torch.zeros(6), "graph")
    with pytest.raises(ValueError, match="contains 'index'"):
        graphs.add_field("atom_index", torch.zeros(graphs.count("node")), "node")
    with pytest.raises(ValueError, match="'x' is node-level"):
        graphs.add_field("x", torch.zeros(6, 2), "graph")
    with pytest.raises(TypeError, match="torch.Tensor"):
        graphs.add_field("energy2", np.zeros(6), "graph")
    with pytest.raises(KeyError, match="no field 'nope'; fields: x, edge_attr"):
        graphs.field("nope")
    with pytest.raises(AttributeError, match="no attribute or field 'nope'"):
        graphs.nope  # noqa: B018
    graphs.validate()


def test_indexing_slices_every_field_by_level() -> None:
    graphs = _graphs_with_fields()
    i = 4
    a0, a1 = graphs.atom_ptr[i].item(), graphs.atom_ptr[i + 1].item()
    e0, e1 = graphs.edge_ptr[i].item(), graphs.edge_ptr[i + 1].item()
    g = graphs[i]
    assert torch.equal(g.forces, graphs.forces[a0:a1]) and torch.equal(g.train_mask, graphs.train_mask[a0:a1])
    assert torch.equal(g.t, graphs.t[e0:e1])
    assert g.energy.tolist() == [-6.0] and g.dipole.shape == (1, 3)  # graph fields keep a leading 1
    assert g.smiles == SMILES[i]


def test_batch_carries_every_field_with_offsets_and_equals_pyg() -> None:
    graphs = _graphs_with_fields()
    idx = [4, 0, 3, 2, 4]  # a repeated graph too
    y = torch.arange(6, dtype=torch.float32)[:, None]
    batch = GraphBatcher(graphs, y)(idx)
    ref = Batch.from_data_list([graphs[i] for i in idx])
    for key in ("x", "edge_index", "edge_attr", "batch", "ptr", *graphs.fields):
        assert torch.equal(getattr(batch, key), getattr(ref, key)), key
        assert getattr(batch, key).dtype == getattr(ref, key).dtype, key
    assert torch.equal(batch.y, y[idx]) and batch.index.tolist() == idx and batch.num_graphs == 5
    sizes = graphs.num_atoms[idx]
    assert batch.ptr.tolist() == [0, *torch.cumsum(sizes, 0).tolist()]
    assert batch.energy.tolist() == [-6.0, -10.0, -7.0, -8.0, -6.0]
    # separating the batch gives every graph back, every field included
    for k, i in enumerate(idx):
        example, original = batch.get_example(k), graphs[i]
        for key in ("edge_index", *graphs.fields):
            assert torch.equal(example[key], original[key]), (k, key)
    assert len(batch.to_data_list()) == 5
    # a subset of the fields only
    small = GraphBatcher(graphs, fields=["z", "energy"])([1, 2])
    assert set(small.keys()) == {"z", "energy", "edge_index", "batch", "ptr", "index"}
    with pytest.raises(KeyError, match="no field 'spin'"):
        GraphBatcher(graphs, fields=["spin"])
    with pytest.raises(IndexError, match="graph index 6 out of range for 6 graphs"):
        GraphBatcher(graphs)([0, 6])
    with pytest.raises(IndexError, match="graph index -1"):
        GraphBatcher(graphs)([-1])


def test_graphs_without_x_batch_by_their_fields() -> None:
    # a 3D set: z and pos only, radius edges; no x, no edge_attr
    pos = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 1]])
    graphs = CollatedGraphs(
        None, torch.tensor([[0, 1, 0, 1, 0, 2], [1, 0, 1, 0, 2, 0]]), None,
        torch.tensor([0, 2, 5]), torch.tensor([0, 2, 6]), ["A", "B"], pos=pos, z=torch.tensor([1, 1, 6, 1, 1]),
        fields={"energy": ("graph", torch.tensor([1.5, -2.0]))},
    )
    assert graphs.x is None and graphs.edge_attr is None and graphs[1].num_nodes == 3
    batch = GraphBatcher(graphs)([1, 0])
    assert batch.edge_index.tolist() == [[0, 1, 0, 2, 3, 4], [1, 0, 2, 0, 4, 3]]
    assert batch.z.tolist() == [6, 1, 1, 1, 1] and batch.energy.tolist() == [-2.0, 1.5]
    assert batch.num_nodes == 5 and batch.batch.tolist() == [0, 0, 0, 1, 1]


@pytest.mark.parametrize("suffix", [".pt", ".npz"])
def test_fields_survive_save_and_load(tmp_path, suffix) -> None:
    graphs = _graphs_with_fields()
    graphs.meta["units"] = {"energy": "eV"}
    back = CollatedGraphs.load(graphs.save(tmp_path / f"g{suffix}"))
    assert back.fields == graphs.fields and back.meta == graphs.meta and back.smiles == graphs.smiles
    assert back.rows.tolist() == [0, 2, 3, 5, 6, 9]
    for name in graphs.fields:
        assert back.field(name).dtype == graphs.field(name).dtype, name
        assert torch.equal(back.field(name), graphs.field(name)), name
    assert torch.equal(back.edge_index, graphs.edge_index) and torch.equal(back.edge_ptr, graphs.edge_ptr)
    assert back.to_dict()["format"] == FORMAT_FIELDS
    if suffix == ".npz":
        with np.load(tmp_path / "g.npz", allow_pickle=False) as f:
            assert json.loads(str(f["fields_json"])) == graphs.fields
    # a subset keeps every field, local edges and rows
    sub = back.subset([5, 1])
    assert sub.smiles == [SMILES[5], SMILES[1]] and sub.rows.tolist() == [9, 2] and sub.fields == graphs.fields
    assert torch.equal(sub[1].forces, graphs[1].forces) and torch.equal(sub[0].edge_index, graphs[5].edge_index)
    sub.validate()


def test_molecule_files_keep_the_historical_format(tmp_path) -> None:
    fz = MolGraphFeaturizer.ogb()
    graphs = CollatedGraphs.from_arrays([fz.arrays(s) for s in SMILES[:3]], rows=[0, 1, 2])
    graphs.save(tmp_path / "g.npz")
    with zipfile.ZipFile(tmp_path / "g.npz") as zf:
        assert zf.namelist() == [f"{k}.npy" for k in ("format", "x", "edge_index", "edge_attr", "atom_ptr",
                                                      "edge_ptr", "smiles", "meta_json", "rows")]
    assert graphs.to_dict()["format"] == FORMAT


@pytest.mark.parametrize("suffix", [".pt", ".npz"])
def test_files_written_before_fields_still_load(tmp_path, suffix) -> None:
    """A format-/1 file as the previous molgraph wrote it (written here without molgraph's writer)."""
    old = {
        "format": "molgraph.collated_graphs/1",
        "x": np.arange(10, dtype=np.int64).reshape(5, 2), "edge_index": np.array([[0, 1, 0, 1], [1, 0, 1, 0]]),
        "edge_attr": np.ones((4, 3), dtype=np.int64), "atom_ptr": np.array([0, 2, 5]), "edge_ptr": np.array([0, 2, 4]),
        "smiles": ["CC", "CCC"], "meta_json": json.dumps({"featurizer": "ogb"}),
        "pos": np.zeros((5, 3), dtype=np.float32), "z": np.full(5, 6, dtype=np.int64), "rows": np.array([3, 7]),
    }
    path = tmp_path / f"old{suffix}"
    if suffix == ".npz":
        np.savez_compressed(path, **{**old, "smiles": np.array(old["smiles"])})
    else:
        torch.save({k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v) for k, v in old.items()}, path)
    graphs = CollatedGraphs.load(path)
    assert graphs.fields == {"x": "node", "edge_attr": "edge", "pos": "node", "z": "node"}
    assert graphs.smiles == ["CC", "CCC"] and graphs.meta == {"featurizer": "ogb"} and graphs.rows.tolist() == [3, 7]
    assert graphs[1].x.tolist() == [[4, 5], [6, 7], [8, 9]] and graphs[1].z.tolist() == [6, 6, 6]
    # saved again, it is the same format-/1 file
    again = tmp_path / f"again{suffix}"
    graphs.save(again)
    assert CollatedGraphs.load(again).to_dict()["format"] == FORMAT
    with pytest.raises(ValueError, match="not a molgraph graph file"):
        CollatedGraphs.from_dict({**graphs.to_dict(), "format": "something/9"})


# --------------------------------------------------------------------------------------------
# the collate protocol


class _Squares:
    """The smallest Collate: item i is i*i."""

    def __init__(self, n: int):
        self.n = n
        self.calls: list[np.ndarray] = []

    def __len__(self) -> int:
        return self.n

    def __call__(self, indices: np.ndarray) -> torch.Tensor:
        self.calls.append(indices)
        return torch.from_numpy(indices * indices)


def test_any_collate_plugs_into_the_loader() -> None:
    sq = _Squares(10)
    assert isinstance(sq, Collate) and isinstance(GraphBatcher(_graphs_with_fields()), Collate)
    batches = list(graph_loader(sq, [9, 2, 4, 7, 1], batch_size=2))
    assert [b.tolist() for b in batches] == [[81, 4], [16, 49], [1]]
    assert all(isinstance(c, np.ndarray) and c.dtype == np.int64 for c in sq.calls)
    assert [b.tolist() for b in graph_loader(sq, batch_size=4)][-1] == [64, 81]  # default: every item
    with pytest.raises(ValueError, match="index 10 is out of range for _Squares of 10 items"):
        graph_loader(sq, [0, 10])
    with pytest.raises(TypeError, match="Collate protocol"):
        graph_loader(lambda idx: idx, [0])


def test_batched_fetch_keeps_the_shuffled_order() -> None:
    """One fetch per batch (``__getitems__``) must draw the same order as the per-item fetch did."""
    indices = np.arange(100, 137)
    ours = [b.tolist() for b in graph_loader(_Squares(200), indices, batch_size=8, shuffle=True,
                                             generator=torch.Generator().manual_seed(3))]

    class PerItem(IndexDataset):  # no __getitems__: the DataLoader fetches item by item
        __getitems__ = None

    plain = DataLoader(PerItem(indices), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(3),
                       collate_fn=lambda items: [i * i for i in items])
    assert ours == list(plain)
