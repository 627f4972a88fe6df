"""QM9 and rMD17 loaders on the shared data (skipped without it)."""

from __future__ import annotations

import numpy as np
import pytest

from molgraph.data.registry import get_card, list_3d_datasets, list_datasets, load_dataset, verify


def test_3d_cards_are_registered_apart_from_the_tables():
    assert list_3d_datasets() == ["qm9", "rmd17"]
    assert "qm9" not in list_datasets()
    qm9 = get_card("QM9")
    assert qm9.target_columns == ("mu", "alpha", "homo", "lumo", "gap", "r2", "zpve", "U0", "U", "H", "G", "Cv")
    assert qm9.n_rows == 130831 and not qm9.bundled and len(qm9.files) == 2
    assert len(get_card("rmd17").files) == 41


@pytest.fixture
def qm9(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MOLGRAPH_CACHE", str(tmp_path / "cache"))
    from molgraph.data.qm9 import load_qm9

    return load_qm9


def test_qm9_known_molecules_and_units(qm9):
    ds = qm9()
    assert len(ds) == 130831 and not ds.from_cache
    again = qm9()
    assert again.from_cache and np.array_equal(again.y.numpy(), ds.y.numpy())
    ch4 = ds[int(ds.position_of([1])[0])]
    assert ch4.smiles == "C" and ch4.z.tolist() == [6, 1, 1, 1, 1] and ch4.y.shape == (1, 12)
    bonds = (ch4.pos[1:] - ch4.pos[0]).norm(dim=1)
    assert np.allclose(bonds.numpy(), 1.09, atol=0.01)  # C-H, angstrom
    col = {t: i for i, t in enumerate(ds.targets)}
    assert ch4.y[0, col["mu"]].item() == pytest.approx(0.0, abs=1e-3)  # symmetric top: no dipole
    assert ch4.y[0, col["U0"]].item() == pytest.approx(-40.47893, abs=1e-5)  # Hartree, as in the file
    assert ds.units["U0"] == "Hartree" and ds.units["alpha"] == "bohr^3" and ds.units["Cv"] == "cal/(mol K)"
    water = ds[int(ds.position_of([3])[0])]
    assert water.smiles == "O" and water.z.tolist() == [8, 1, 1]
    oh = (water.pos[1:] - water.pos[0]).numpy()
    angle = np.degrees(np.arccos(oh[0] @ oh[1] / np.linalg.norm(oh, axis=1).prod()))
    assert np.allclose(np.linalg.norm(oh, axis=1), 0.96, atol=0.01) and 103 < angle < 106
    assert 1.8 < water.y[0, col["mu"]].item() < 2.0  # Debye
    assert 0.2 < water.y[0, col["gap"]].item() < 0.4  # Hartree (about 8 eV)

    ev = qm9(energy_unit="eV", atomref=True)
    assert ev.units["U0"] == "eV"
    u0 = ev.y[ev.position_of([1, 3]), col["U0"]].numpy()
    # atomization energy: U0 - sum(atomref U0), Hartree -> eV
    ch4_atomization = (-40.47893 - (-37.846772 - 4 * 0.500273)) * 27.211386246
    assert u0[0] == pytest.approx(ch4_atomization, abs=1e-4)
    assert -10.0 < u0[1] < -8.5  # water, about -9.2 eV at B3LYP
    gap_ev = ev.y[ev.position_of([3]), col["gap"]].item()
    assert gap_ev == pytest.approx(water.y[0, col["gap"]].item() * 27.211386246)
    cv = ev.y[ev.position_of([3]), col["Cv"]].item()
    assert cv == pytest.approx(water.y[0, col["Cv"]].item() - 3 * 2.981)


def test_qm9_splits(qm9):
    ds = qm9(targets=["U0"])
    assert ds.y.shape == (130831, 1)
    split = ds.cormorant_split()
    assert (len(split.train), len(split.val), len(split.test)) == (100000, 17748, 13083)
    assert len(np.intersect1d(split.train, split.test)) == 0
    rnd = ds.random_split((110000, 10000), seed=1)
    assert (len(rnd.train), len(rnd.val), len(rnd.test)) == (110000, 10000, 10831)
    assert np.array_equal(rnd.test, ds.random_split((110000, 10000), seed=1).test)
    with pytest.raises(ValueError, match="unknown QM9 target"):
        qm9(targets=["U0", "bogus"])
    with pytest.raises(KeyError):
        ds.position_of([21725])  # listed in uncharacterized.txt, so not in the set
    # through the registry too
    assert len(load_dataset("qm9", targets=["gap"])) == 130831


def test_rmd17_frames_units_and_splits(data_root):
    from molgraph.data.rmd17 import KCAL_PER_MOL_TO_EV, load_rmd17

    train, test = load_rmd17("uracil", 1, "train"), load_rmd17("uracil", 1, "test")
    assert len(train) == len(test) == 1000
    assert not set(train.old_indices) & set(test.old_indices)
    frame = train[0]
    assert frame.z.tolist().count(6) == 4 and frame.pos.shape == (12, 3) and frame.forces.shape == (12, 3)
    ev = load_rmd17("uracil", 1, "train", unit="eV")
    assert ev.energy[0].item() == pytest.approx(train.energy[0].item() * KCAL_PER_MOL_TO_EV)
    # C-C/C-N/C-O bonds of a thermal frame stay chemical: nearest heavy neighbour within 1.1-1.6 A
    heavy = frame.pos[frame.z > 1].numpy()
    d = np.linalg.norm(heavy[:, None] - heavy[None], axis=-1) + np.eye(len(heavy)) * 9
    assert ((d.min(axis=1) > 1.1) & (d.min(axis=1) < 1.6)).all()
    eth = load_dataset("rmd17", molecule="ethanol", split=3, part="test")
    assert eth.smiles == "CCO" and eth.z.shape == (9,)
    with pytest.raises(ValueError, match="unknown rMD17 molecule"):
        load_rmd17("benzene")
    assert [r.status for r in verify(["qm9", "rmd17"])] == ["ok", "ok"]


# --------------------------------------------------------------------------------------------
# radius graphs and the graph form of the 3D sets


def _brute_force_edges(pos: np.ndarray, cutoff: float) -> set[tuple[int, int]]:
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    n = len(pos)
    return {(a, b) for a in range(n) for b in range(n) if a != b and d[a, b] < cutoff}


def test_radius_graph_exact_on_a_hand_made_molecule():
    from molgraph.data.geometry import radius_graph

    # molecule 0: distances 0-1 1.0, 0-2 1.5, 1-2 1.80, 1-3 exactly 2.0 (left out: strict), the rest > 2
    # molecule 1: one atom; molecule 2: two atoms 5 apart
    pos = np.array([[0, 0, 0], [1, 0, 0], [0, 1.5, 0], [3, 0, 0], [7, 7, 7], [0, 0, 0], [0, 0, 5]], dtype=float)
    edge_index, edge_ptr = radius_graph(pos, [0, 4, 5, 7], cutoff=2.0)
    assert edge_index.tolist() == [[0, 1, 0, 2, 1, 2], [1, 0, 2, 0, 2, 1]]
    assert edge_ptr.tolist() == [0, 6, 6, 6] and edge_index.dtype == np.int64
    wide, wide_ptr = radius_graph(pos, [0, 4, 5, 7], cutoff=5.01)
    assert wide_ptr.tolist() == [0, 12, 12, 14] and wide[:, 12:].tolist() == [[0, 1], [1, 0]]
    with pytest.raises(ValueError, match="molecule 1: atoms 0 and 2 coincide"):
        radius_graph(np.array([[0, 0, 0], [1, 1, 1], [2, 2, 2], [1, 1, 1]], dtype=float), [0, 1, 4], 3.0)
    with pytest.raises(ValueError, match="cutoff must be a positive"):
        radius_graph(pos, [0, 7], 0.0)
    with pytest.raises(ValueError, match="ptr must rise"):
        radius_graph(pos, [0, 4, 6], 1.0)


def test_radius_graph_is_symmetric_loop_free_and_rigid_motion_invariant():
    from scipy.spatial.transform import Rotation

    from molgraph.data.geometry import radius_graph

    rng = np.random.default_rng(7)
    sizes = rng.integers(1, 30, size=60)
    ptr = np.concatenate([[0], np.cumsum(sizes)])
    pos = rng.uniform(-4, 4, size=(ptr[-1], 3))
    cutoff = 3.3
    # the test must not depend on rounding: keep no pair within 1e-6 of the cutoff
    for g in range(len(sizes)):
        p = pos[ptr[g]:ptr[g + 1]]
        assert not np.any(np.abs(np.linalg.norm(p[:, None] - p[None], axis=-1) - cutoff) < 1e-6)
    edge_index, edge_ptr = radius_graph(pos, ptr, cutoff, pairs_per_chunk=500)  # many small blocks
    for g in range(len(sizes)):
        e = edge_index[:, edge_ptr[g]:edge_ptr[g + 1]]
        assert set(map(tuple, e.T.tolist())) == _brute_force_edges(pos[ptr[g]:ptr[g + 1]], cutoff)
        assert (e[0] != e[1]).all() and np.array_equal(e[:, 1::2], e[::-1, 0::2])  # reverse at e ^ 1
    moved = Rotation.random(random_state=3).apply(pos) + np.array([100.0, -50.0, 7.5])
    again, again_ptr = radius_graph(moved, ptr, cutoff)
    assert np.array_equal(again, edge_index) and np.array_equal(again_ptr, edge_ptr)
    import torch

    as_tensor, _ = radius_graph(torch.from_numpy(pos), torch.from_numpy(ptr), cutoff)
    assert np.array_equal(as_tensor, edge_index)


def test_qm9_graph_form_on_a_few_molecules(qm9):
    import torch

    from molgraph.data.loader import GraphBatcher

    ds = qm9(energy_unit="eV")
    rows = ds.position_of([1, 3, 5000])  # methane, water, one larger molecule
    graphs = ds.to_graphs(cutoff=5.0, indices=rows)
    graphs.validate()
    assert graphs.fields == {"pos": "node", "z": "node", "y": "graph", "qm9_id": "graph"}
    assert graphs.qm9_id.tolist() == [1, 3, 5000] and graphs.rows.tolist() == rows.tolist()
    assert graphs.meta["units"]["U0"] == "eV" and graphs.meta["cutoff"] == 5.0
    methane = graphs[0]
    assert methane.smiles == "C" and methane.z.tolist() == [6, 1, 1, 1, 1]
    assert methane.edge_index.shape == (2, 20)  # every ordered pair of 5 atoms is within 5 A
    for k, row in enumerate(rows.tolist()):
        g, ref = graphs[k], ds[row]
        assert torch.equal(g.pos, ref.pos) and torch.equal(g.z, ref.z) and torch.equal(g.y, ref.y)
        assert set(map(tuple, g.edge_index.T.tolist())) == _brute_force_edges(ref.pos.double().numpy(), 5.0)
    batch = GraphBatcher(graphs)([2, 0])
    assert batch.y.shape == (2, 12) and batch.num_nodes == graphs.num_atoms[2] + 5
    assert batch.edge_index.max().item() == batch.num_nodes - 1


def test_rmd17_graph_form(data_root, tmp_path):
    import torch

    from molgraph.data.collated import CollatedGraphs
    from molgraph.data.loader import GraphBatcher
    from molgraph.data.rmd17 import load_rmd17

    ds = load_rmd17("uracil", 1, "train")
    graphs = ds.to_graphs(cutoff=3.0)
    assert len(graphs) == 1000 and graphs.fields == {
        "pos": "node", "z": "node", "forces": "node", "energy": "graph", "frame": "graph"}
    assert graphs.energy.dtype == torch.float64 and torch.equal(graphs.energy, ds.energy)
    assert graphs.meta["units"] == {"energy": "kcal/mol", "forces": "kcal/mol/angstrom", "pos": "angstrom"}
    for k in (0, 999):
        g = graphs[k]
        assert torch.equal(g.forces, ds.forces[k]) and torch.equal(g.pos, ds.pos[k]) and torch.equal(g.z, ds.z)
        assert g.frame.item() == ds.old_indices[k]
        assert set(map(tuple, g.edge_index.T.tolist())) == _brute_force_edges(ds.pos[k].numpy(), 3.0)
    batch = GraphBatcher(graphs)(np.array([5, 6, 7]))
    assert batch.forces.shape == (36, 3) and batch.energy.shape == (3,) and batch.pos.dtype == torch.float64
    back = CollatedGraphs.load(graphs.subset(range(10)).save(tmp_path / "u.npz"))
    assert torch.equal(back.forces, graphs.forces[:120]) and back.fields == graphs.fields


def test_rmd17_frame_ensemble_holds_the_frames_as_conformers(data_root):
    from molgraph.data.rmd17 import load_rmd17

    ds = load_rmd17("ethanol", 1, "test")
    frames = [9, 0, 5]
    mol, failed = ds.frame_ensemble(frames)
    assert failed == 0 and mol.GetNumConformers() == 3 and mol.GetNumAtoms() == 9
    for k, fr in enumerate(frames):
        # the molecule's atoms are in SMILES order: the same points, permuted
        got = np.asarray(mol.GetConformer(k).GetPositions())
        assert np.allclose(np.sort(got, axis=0), np.sort(ds.pos[fr].numpy(), axis=0), atol=1e-9)
    assert ds.frame_ensemble([]) == (None, 0)
