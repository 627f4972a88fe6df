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
