"""Batch featurization, collated storage, molecule tables and the CSV dataset with its cache."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from molgraph.chem import MoleculeError
from molgraph.data.collated import CollatedGraphs
from molgraph.data.csv_dataset import MoleculeCSVDataset
from molgraph.data.registry import load_dataset
from molgraph.data.table import iter_smiles_column, read_molecule_table
from molgraph.featurizers import MolGraphFeaturizer, featurize_smiles, iter_featurize
from molgraph.featurizers.fingerprints import MorganFingerprint, rdkit_descriptors

SMILES = ["CCO", "c1ccccc1", "C1CC", "CC(=O)O", "", "N(C)(C)(C)(C)C", "C[C@H](N)O", "c1cccc1", "O"]
BAD_ROWS = [2, 4, 5, 7]


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_skip_reports_exactly_the_bad_items_in_order(n_jobs: int) -> None:
    graphs, rejects = featurize_smiles(SMILES * 3, n_jobs=n_jobs, chunk_size=4, errors="skip", progress=False)
    expected_bad = [i + 9 * k for k in range(3) for i in BAD_ROWS]
    assert [r.index for r in rejects] == expected_bad
    assert all(r.reason for r in rejects)
    assert [g.smiles for g in graphs] == [s for i, s in enumerate(SMILES * 3) if i not in expected_bad]


def test_parallel_equals_serial_and_streams_from_a_generator() -> None:
    smiles = ["CC(=O)Nc1ccc(O)cc1", "C/C=C/C", "O=C(O)c1ccccc1", "C[C@@H](F)Cl"] * 50
    serial = featurize_smiles(smiles, n_jobs=1, progress=False).graphs
    parallel = list(iter_featurize((s for s in smiles), n_jobs=2, chunk_size=16, progress=False))
    assert [i for i, _ in parallel] == list(range(len(smiles)))
    for a, (_, b) in zip(serial, parallel):
        assert torch.equal(a.x, torch.from_numpy(b.x)) and torch.equal(a.edge_index, torch.from_numpy(b.edge_index))


def test_raise_names_the_first_bad_item() -> None:
    with pytest.raises(MoleculeError) as info:
        featurize_smiles(SMILES, errors="raise", progress=False)
    assert info.value.index == 2 and info.value.input == "C1CC"


def test_collated_round_trip_pt_and_npz(tmp_path) -> None:
    fz = MolGraphFeaturizer.ogb()
    arrays = [fz.arrays(s) for s in ["CCO", "c1ccccc1", "[Na+]", "CC(=O)O"]]
    graphs = CollatedGraphs.from_arrays(arrays, meta={"featurizer": fz.to_config()}, rows=[0, 1, 3, 4])
    for name in ["g.pt", "g.npz"]:
        path = graphs.save(tmp_path / name)
        back = CollatedGraphs.load(path)
        assert len(back) == 4 and back.smiles == graphs.smiles and back.rows.tolist() == [0, 1, 3, 4]
        assert back.meta["featurizer"] == fz.to_config()
        for i in range(4):
            assert torch.equal(back[i].x, fz(graphs.smiles[i]).x)
            assert torch.equal(back[i].edge_index, fz(graphs.smiles[i]).edge_index)
    raw = torch.load(tmp_path / "g.pt", weights_only=True)  # plain tensors, no pickled classes
    assert raw["x"].shape == (3 + 6 + 1 + 4, 9)


def test_read_table_quirks(tmp_path) -> None:
    text = 'smiles,y1,y2\r\n\r\n"CC,O",1.5,\r\nCCO,,0\r\n\r\nc1ccccc1,nan,1\r\n'
    path = tmp_path / "t.csv.gz"
    with gzip.open(path, "wt", newline="") as fh:
        fh.write(text)
    table = read_molecule_table(path, "smiles", ["y1", "y2"])
    assert table.smiles == ["CC,O", "CCO", "c1ccccc1"]
    assert list(iter_smiles_column(path, "smiles", chunk_rows=1)) == table.smiles  # streamed, same rows
    np.testing.assert_array_equal(np.isnan(table.targets), [[False, True], [True, False], [True, False]])
    assert table.targets[0, 0] == 1.5
    bad = tmp_path / "bad.csv"
    bad.write_text("smiles,y\nCCO,1\nCC,high\n")
    with pytest.raises(ValueError, match=r"row 1, column 'y'.*'high'"):
        read_molecule_table(bad, "smiles", ["y"])
    with pytest.raises(KeyError, match="columns present"):
        read_molecule_table(bad, "SMILES", ["y"])


def test_csv_dataset_labels_rows_rejects_and_cache(tmp_path) -> None:
    path = tmp_path / "mols.csv"
    path.write_text("smiles,a,b\nCCO,1,0\nC1CC,0,1\nc1ccccc1,,1\nCC(=O)O,0,\n")
    cache = tmp_path / "cache"
    ds = MoleculeCSVDataset(path, "smiles", ["a", "b"], "classification", cache_dir=cache)
    assert len(ds) == 3 and not ds.from_cache
    assert ds.rows.tolist() == [0, 2, 3]
    assert [(r.index, r.input) for r in ds.rejects] == [(1, "C1CC")]
    item = ds[1]
    assert item.y.shape == (1, 2) and torch.isnan(item.y[0, 0]) and item.y[0, 1] == 1 and item.row == 2
    again = MoleculeCSVDataset(path, "smiles", ["a", "b"], "classification", cache_dir=cache)
    assert again.from_cache and torch.equal(again.graphs.x, ds.graphs.x) and len(again.rejects) == 1
    # another featurizer is another cache entry
    other = MoleculeCSVDataset(path, "smiles", ["a", "b"], "classification", cache_dir=cache,
                               featurizer=MolGraphFeaturizer.multihot())
    assert not other.from_cache and other[0].x.shape[1] == 72
    # a changed file is never served from the old cache
    path.write_text("smiles,a,b\nCCN,1,0\nC1CC,0,1\nc1ccccc1,,1\nCC(=O)O,0,\n")
    changed = MoleculeCSVDataset(path, "smiles", ["a", "b"], "classification", cache_dir=cache)
    assert not changed.from_cache and changed.smiles[0] == "CCN"
    assert MoleculeCSVDataset(path, "smiles", ["a", "b"], "classification", cache_dir=cache,
                              force_reload=True).from_cache is False
    with pytest.raises(MoleculeError) as info:
        MoleculeCSVDataset(path, "smiles", ["a", "b"], "classification", cache_dir=cache, errors="raise")
    assert info.value.index == 1


def test_csv_dataset_rejects_non_binary_classification_labels(tmp_path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("smiles,a\nCCO,2\nCC,0\n")
    with pytest.raises(ValueError, match="0/1"):
        MoleculeCSVDataset(path, "smiles", ["a"], "classification", cache_dir=False)


def test_bundled_dataset_loads_through_the_registry(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MOLGRAPH_CACHE", str(tmp_path))
    esol = load_dataset("esol")
    assert len(esol) == 1128 and esol.num_tasks == 1 and esol.task_type == "regression"
    assert esol[0].y.item() == pytest.approx(-0.77)  # Amigdalin, first row of delaney-processed.csv
    bace = load_dataset("bace")  # SMILES in the "mol" column
    assert len(bace) == 1513


@pytest.mark.slow  # featurizes all of HIV (41k molecules)
def test_hiv_from_the_data_root(data_root, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MOLGRAPH_CACHE", str(tmp_path))
    hiv = load_dataset("hiv", n_jobs=2)
    assert len(hiv) + len(hiv.rejects) == 41127 and len(hiv.rejects) == 7  # RDKit parse failures
    assert set(np.unique(hiv.targets)) == {0.0, 1.0}


def test_fingerprints_and_descriptors() -> None:
    fp = MorganFingerprint(radius=2, n_bits=1024)
    bits = fp(["CCO", "OCC", "c1ccccc1"])
    assert bits.shape == (3, 1024) and bits.dtype == np.uint8
    assert np.array_equal(bits[0], bits[1]) and not np.array_equal(bits[0], bits[2])
    counts = MorganFingerprint(n_bits=1024, counts=True)(["CCCCCC"])
    assert counts.max() > 1 and (counts > 0).sum() == (fp(["CCCCCC"]) > 0).sum()
    desc = rdkit_descriptors(["CCO"], ["MolWt", "NumHDonors", "RingCount"])
    np.testing.assert_allclose(desc, [[46.069, 1, 0]], atol=1e-3)
    with pytest.raises(MoleculeError) as info:
        fp(["CCO", "C1CC"])
    assert info.value.index == 1


def test_positions_survive_the_worker_round_trip() -> None:
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mols = []
    for smiles in ["CCO", "c1ccccc1", "CC(=O)O"]:
        mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
        AllChem.EmbedMolecule(mol, randomSeed=3)
        mols.append(mol)
    mols.insert(1, Chem.MolFromSmiles("CCN"))  # no conformer: no pos
    serial = featurize_smiles(mols, n_jobs=1, progress=False).graphs
    parallel = featurize_smiles(mols, n_jobs=2, chunk_size=2, progress=False).graphs
    assert ["pos" in g for g in parallel] == [True, False, True, True]
    for a, b in zip(serial, parallel):
        assert a.smiles == b.smiles and torch.equal(a.x, b.x)
        if "pos" in a:
            assert torch.equal(a.pos, b.pos) and torch.equal(a.z, b.z)
