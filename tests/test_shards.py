"""Shard datasets (molgraph.data.shards, ``molgraph featurize -o DIR/``): exact round trip, batches
equal to the in-memory path, resume after a kill, checksums, refused resumes, writer contract."""

from __future__ import annotations

import csv
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import AllChem

from molgraph.cli.main import main
from molgraph.data.collated import CollatedGraphs
from molgraph.data.loader import GraphBatcher, graph_loader
from molgraph.data.shards import (
    MANIFEST, ShardChecksumError, ShardedGraphs, ShardError, ShardWriter, shard_name,
)
from molgraph.featurizers import MolGraphFeaturizer, Reject, iter_featurize

# valid and invalid molecules; the 300-carbon chain needs uint16 local edge indices
SMILES = [
    "CCO", "", "c1ccccc1O", "C" * 300, "CC(=O)[O-].[Na+]", "not smiles", "[Na+]", "CCN", "O=C=O", "C1CC",
    "Cl[Pt](Cl)([NH3])[NH3]", "[13CH3]C(=O)O", "c1ccc2ccccc2c1", "N#N", "C[C@H](N)C(=O)O", "F/C=C/F", "O",
]


def _featurized(items, fz):
    results = list(iter_featurize(items, fz, errors="skip"))
    good = [(i, r) for i, r in results if not isinstance(r, Reject)]
    return results, good


def _write(root: Path, items, fz, shard_size: int, order=None, y_all=None, **kw) -> tuple[ShardWriter, list]:
    """Write the featurized ``items`` through ShardWriter.write_shard, shards in ``order``."""
    results, _ = _featurized(items, fz)
    targets = ["t0", "t1"] if y_all is not None else []
    writer = ShardWriter(root, featurizer_config=fz.to_config(), input_path="in.csv", input_sha256="ab" * 32,
                         smiles_column="smiles", target_columns=targets, shard_size=shard_size, **kw)
    n_shards = -(-len(items) // shard_size)
    for k in (order if order is not None else range(n_shards)):
        part = results[k * shard_size:(k + 1) * shard_size]
        graphs = [(i, r) for i, r in part if not isinstance(r, Reject)]
        rows = [i for i, _ in graphs]
        writer.write_shard(k, [r for _, r in graphs], rows, None if y_all is None else y_all[rows],
                           [r for _, r in part if isinstance(r, Reject)], len(part))
    return writer, results


def _assert_batches_equal(a, b) -> None:
    assert list(a.keys()) == list(b.keys())
    for key in b.keys():
        assert a[key].dtype == b[key].dtype, key
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, equal_nan=True, msg=key)  # NaN = missing label


@pytest.mark.parametrize("preset", ["ogb", "multihot"])
def test_round_trip_and_batches_equal_the_in_memory_path(tmp_path, preset) -> None:
    fz = MolGraphFeaturizer.from_preset(preset)
    y_all = np.random.default_rng(0).normal(size=(len(SMILES), 2)).astype(np.float32)
    y_all[3, 1] = np.nan
    root = tmp_path / "ds"
    writer, results = _write(root, SMILES, fz, shard_size=5, order=[3, 1, 0, 2], y_all=y_all)
    manifest = writer.close(len(SMILES))
    assert manifest["complete"] and [s["name"] for s in manifest["shards"]] == [shard_name(k) for k in range(4)]
    assert manifest["featurizer"] == fz.to_config() and manifest["shard_size"] == 5

    good = [(i, r) for i, r in results if not isinstance(r, Reject)]
    rows = [i for i, _ in good]
    expected = CollatedGraphs.from_arrays([r for _, r in good], rows=rows)
    sg = ShardedGraphs.open(root)
    assert len(sg) == len(good) and sg.target_columns == ["t0", "t1"] and sg.featurizer_config == fz.to_config()
    assert sg.rows.tolist() == rows and sg.smiles_list() == expected.smiles
    assert [sg.smiles(i) for i in range(len(sg))] == expected.smiles
    np.testing.assert_array_equal(sg.y, y_all[rows])
    got = sg.to_collated()
    for key in ("x", "edge_index", "edge_attr", "atom_ptr", "edge_ptr", "rows"):
        a, b = getattr(got, key), getattr(expected, key)
        assert a.dtype == b.dtype and torch.equal(a, b), key
    assert [r.index for r in sg.rejects()] == [i for i, r in results if isinstance(r, Reject)]

    # stored narrow and memory-mappable; read back in the featurizer's dtypes
    spec = manifest["shards"][0]["arrays"]
    assert spec["x"]["dtype"] == np.dtype(fz.atom_featurizer.dtype).str
    assert spec["edge_attr"]["stored"] == "|u1"  # OGB indices and one-hot bond features fit uint8
    assert spec["x"]["stored"] == ("|u1" if preset == "ogb" else "<f4")  # multihot x has scaled masses
    assert spec["edge_index"]["stored"] == "<u2"  # shard 0 holds the 300-atom chain
    assert manifest["shards"][1]["arrays"]["edge_index"]["stored"] == "|u1"
    assert isinstance(np.load(root / "shard-00000" / "x.npy", mmap_mode="r"), np.memmap)

    batcher = GraphBatcher(expected, torch.from_numpy(y_all[rows]))
    n = len(sg)
    # one shard, across a shard boundary, all shards shuffled, repeats, a single graph, none
    cases = [[0, 1], [2, 3, 4, 5], list(np.random.default_rng(1).permutation(n)), [5, 5, 0, n - 1, 0], [n - 1], []]
    for idx in cases:
        _assert_batches_equal(sg(np.array(idx, dtype=np.int64)), batcher(np.array(idx, dtype=np.int64)))
    example = sg(np.array([3, 1]))
    assert torch.equal(example.to_data_list()[0].x, expected[3].x)
    with pytest.raises(IndexError, match=f"graph index {n} out of range"):
        sg(np.array([0, n]))

    # other targets for the batches (the trainer's scaled y), pickling (DataLoader workers), the loader
    scaled = torch.from_numpy(y_all[rows] * 2)
    _assert_batches_equal(sg.with_targets(scaled)(np.array([4, 0])), GraphBatcher(expected, scaled)(np.array([4, 0])))
    assert "y" not in sg.with_targets(None)(np.array([0]))
    clone = pickle.loads(pickle.dumps(sg))
    _assert_batches_equal(clone(np.array([6, 2])), batcher(np.array([6, 2])))
    loaded = list(graph_loader(sg, batch_size=4))
    assert sum(b.num_graphs for b in loaded) == n
    _assert_batches_equal(loaded[1], batcher(np.arange(4, 8)))


def test_3d_molecules_keep_positions(tmp_path) -> None:
    def mol3d(smiles: str) -> Chem.Mol:
        mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
        AllChem.EmbedMolecule(mol, randomSeed=3)
        return Chem.RemoveHs(mol)

    mols = [mol3d(s) for s in ["CCO", "c1ccccc1N", "O", "CC(=O)O"]]
    fz = MolGraphFeaturizer.ogb()
    root = tmp_path / "ds"
    _write(root, mols, fz, shard_size=3)[0].close(len(mols))
    sg = ShardedGraphs.open(root)
    assert sg.fields == {"x": "node", "edge_attr": "edge", "pos": "node", "z": "node"}
    expected = CollatedGraphs.from_arrays([fz.arrays(m) for m in mols], rows=range(len(mols)))
    _assert_batches_equal(sg(np.array([3, 0, 2])), GraphBatcher(expected)(np.array([3, 0, 2])))


def test_cli_sdf_positions_across_shards(tmp_path, monkeypatch) -> None:
    """3D molecules from an SDF (some without a conformer, one unreadable) keep pos/z per shard."""
    sdf = tmp_path / "in.sdf"
    writer = Chem.SDWriter(str(sdf))
    for k, smiles in enumerate(["CCO", "c1ccccc1N", "O", "CC(=O)O", "CCN", "C1CCCCC1", "N#N"]):
        mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
        if k != 4:  # molecule 4 stays 2D: its shard has no positions
            AllChem.EmbedMolecule(mol, randomSeed=k)
        writer.write(mol)
    writer.close()
    assert _featurize("-i", str(sdf), "-o", str(tmp_path / "ref.pt")) == 0
    ref = CollatedGraphs.load(tmp_path / "ref.pt")  # no pos: one molecule has none
    _small_chunks(monkeypatch, 2)
    assert _featurize("-i", str(sdf), "-o", f"{tmp_path / 'ds'}/", "--shard-size", "3") == 0
    sg = ShardedGraphs.open(tmp_path / "ds")
    assert sg.fields == {"x": "node", "edge_attr": "edge"}  # shard 1 (rows 3-5) has no positions
    arrays = [e["arrays"] for e in sg.manifest["shards"]]
    assert ["pos" in a for a in arrays] == [True, False, True]
    got = sg.to_collated()
    assert torch.equal(got.x, ref.x) and torch.equal(got.edge_index, ref.edge_index)
    fz = MolGraphFeaturizer.ogb()
    mols = [m for m in Chem.SDMolSupplier(str(sdf))]
    pos = np.load(tmp_path / "ds" / "shard-00002" / "pos.npy", mmap_mode="r")
    np.testing.assert_array_equal(pos, fz.arrays(mols[6]).pos)
    pos0 = np.load(tmp_path / "ds" / "shard-00000" / "pos.npy")
    np.testing.assert_array_equal(pos0, np.concatenate([fz.arrays(m).pos for m in mols[:3]]))


def _csv(path: Path, smiles: list[str]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "smiles", "y"])
        for i, s in enumerate(smiles):
            w.writerow([f"m{i}", s, "" if i % 5 == 4 else i / 2])
    return path


def _featurize(*args: str) -> int:
    return main(["featurize", *args, "--no-progress"])


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _small_chunks(monkeypatch, size: int) -> None:
    """Make ``molgraph featurize`` send chunks of ``size`` molecules, so chunks straddle shard boundaries."""
    from molgraph.featurizers import batch

    original = batch.iter_featurize_chunks
    monkeypatch.setattr(batch, "iter_featurize_chunks", lambda *a, **k: original(*a, **{**k, "chunk_size": size}))


def test_cli_shards_hold_what_the_npz_holds(tmp_path, capsys, monkeypatch) -> None:
    src = _csv(tmp_path / "in.csv", SMILES * 3)
    assert _featurize("-i", str(src), "-o", str(tmp_path / "ref.npz"), "--errors", "skip") == 0
    ref = CollatedGraphs.load(tmp_path / "ref.npz")
    ref_rejects = (tmp_path / "ref.rejects.csv").read_text().splitlines()
    trees = []
    for n_jobs in ("1", "2"):
        out = tmp_path / f"s{n_jobs}"
        assert _featurize("-i", str(src), "-o", f"{out}/", "--errors", "skip", "--shard-size", "7",
                          "--n-jobs", n_jobs, "--target-columns", "y") == 0
        sg = ShardedGraphs.open(out)
        got = sg.to_collated()
        for key in ("x", "edge_index", "edge_attr", "atom_ptr", "edge_ptr", "rows"):
            assert torch.equal(getattr(got, key), getattr(ref, key)), (n_jobs, key)
        assert got.smiles == ref.smiles and sg.num_shards == -(-len(SMILES) * 3 // 7)
        rejects = [line for k in range(sg.num_shards)
                   for line in (out / shard_name(k) / "rejects.csv").read_text().splitlines()[1:]]
        assert rejects == ref_rejects[1:]
        labels = [np.nan if i % 5 == 4 else i / 2 for i in sg.rows]
        np.testing.assert_array_equal(sg.y[:, 0], np.array(labels, dtype=np.float32))
        trees.append(_tree(out))
    assert trees[0] == trees[1]  # the same bytes for any number of jobs
    _small_chunks(monkeypatch, 3)  # chunks of 3 across shards of 7
    assert _featurize("-i", str(src), "-o", f"{tmp_path / 's3'}/", "--errors", "skip", "--shard-size", "7",
                      "--n-jobs", "2", "--target-columns", "y") == 0
    assert _tree(tmp_path / "s3") == trees[0]
    monkeypatch.undo()
    printed = capsys.readouterr().out
    assert f"featurized {len(ref)} of {len(SMILES) * 3} molecules" in printed
    assert f"rejected {len(ref_rejects) - 1} -> " in printed
    # an existing folder is a shard output too (without the trailing slash), when empty
    (tmp_path / "empty").mkdir()
    assert _featurize("-i", str(src), "-o", str(tmp_path / "empty"), "--errors", "skip", "--shard-size", "7",
                      "--target-columns", "y") == 0
    assert _tree(tmp_path / "empty") == trees[0]


def test_killed_run_resumes_without_gaps_or_duplicates(tmp_path) -> None:
    """A run killed right after its first shard (a subprocess that exits hard), plus debris of a
    kill in the middle of a shard (a temporary folder, a shard folder never listed), resumes into
    the same files as an uninterrupted run."""
    smiles = SMILES * 4
    src = _csv(tmp_path / "in.csv", smiles)
    args = ["-i", str(src), "--errors", "skip", "--shard-size", "10", "--target-columns", "y"]
    whole = tmp_path / "whole"
    assert _featurize(*args, "-o", f"{whole}/") == 0

    killed = tmp_path / "killed"
    code = (
        "import os, sys\n"
        "from molgraph.data import shards\n"
        "original = shards.ShardWriter.write_built\n"
        "def write_then_die(self, *a, **k):\n"
        "    original(self, *a, **k)\n"
        "    os._exit(9)\n"
        "shards.ShardWriter.write_built = write_then_die\n"
        "from molgraph.cli.main import main\n"
        f"main(['featurize', *{args!r}, '-o', {str(killed) + '/'!r}, '--no-progress'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    manifest = json.loads((killed / MANIFEST).read_text())
    assert not manifest["complete"] and [s["name"] for s in manifest["shards"]] == ["shard-00000"]
    with pytest.raises(ShardError, match="incomplete"):
        ShardedGraphs.open(killed)
    partial = ShardedGraphs.open(killed, allow_incomplete=True)
    assert partial.rows.max() < 10

    (killed / ".tmp-shard-00001-x").mkdir()  # a shard being written when the kill came
    (killed / ".tmp-shard-00001-x" / "x.npy").write_bytes(b"half")
    (killed / "shard-00003").mkdir()  # renamed into place, but the manifest was not updated
    (killed / "shard-00003" / "x.npy").write_bytes(b"stale")
    assert _featurize(*args, "-o", str(killed), "--resume") == 0
    assert _tree(killed) == _tree(whole)
    sg = ShardedGraphs.open(killed)
    rows = sg.rows.tolist()
    assert rows == sorted(set(rows)) and len(rows) + sg.num_rejected == len(smiles)


def test_resume_fills_the_shards_another_engine_left_out(tmp_path) -> None:
    """Shards 0 and 2 written (any order, as a distributed engine may), then ``--resume``."""
    smiles = SMILES[:15]
    src = _csv(tmp_path / "in.csv", smiles)
    whole = tmp_path / "whole"
    assert _featurize("-i", str(src), "-o", f"{whole}/", "--errors", "skip", "--shard-size", "5") == 0
    from molgraph.data.sources import sha256_file

    fz = MolGraphFeaturizer.ogb()
    results, _ = _featurized(smiles, fz)
    part = tmp_path / "part"
    writer = ShardWriter(part, featurizer_config=fz.to_config(), input_path=src, input_sha256=sha256_file(src),
                         smiles_column="smiles", shard_size=5)
    for k in (2, 0):
        chunk = results[5 * k:5 * k + 5]
        graphs = [(i, r) for i, r in chunk if not isinstance(r, Reject)]
        writer.write_shard(k, [r for _, r in graphs], [i for i, _ in graphs], None,
                           [r for _, r in chunk if isinstance(r, Reject)], 5)
    with pytest.raises(ShardError, match="shard-00001"):
        writer.close(len(smiles))  # a gap
    assert ShardWriter(part, featurizer_config=fz.to_config(), input_path=src, input_sha256=sha256_file(src),
                       smiles_column="smiles", shard_size=5, resume=True).done_shards == {0, 2}
    assert _featurize("-i", str(src), "-o", f"{part}/", "--errors", "skip", "--shard-size", "5", "--resume") == 0
    assert _tree(part) == _tree(whole)


def test_corrupted_truncated_or_missing_files_are_named(tmp_path) -> None:
    fz = MolGraphFeaturizer.ogb()
    root = tmp_path / "ds"
    _write(root, SMILES, fz, shard_size=6)[0].close(len(SMILES))
    ShardedGraphs.open(root)  # intact

    x = root / "shard-00001" / "x.npy"
    data = bytearray(x.read_bytes())
    data[-1] ^= 1
    x.write_bytes(bytes(data))
    with pytest.raises(ShardChecksumError, match=r"shard shard-00001: file x\.npy does not match its checksum"):
        ShardedGraphs.open(root)
    data[-1] ^= 1
    x.write_bytes(bytes(data))

    ei = root / "shard-00002" / "edge_index.npy"
    ei.write_bytes(ei.read_bytes()[:-3])
    with pytest.raises(ShardChecksumError, match=r"shard-00002: file edge_index\.npy .*corrupted or truncated"):
        ShardedGraphs.open(root)
    # without the checksums, the truncated file still fails by name when it is mapped
    unchecked = ShardedGraphs.open(root, verify=False)
    with pytest.raises(ShardError, match=r"shard-00002: file edge_index\.npy"):
        unchecked(np.arange(len(unchecked)))

    (root / "shard-00000" / "rejects.csv").unlink()
    with pytest.raises(ShardChecksumError, match=r"shard-00000: file rejects\.csv is missing"):
        ShardedGraphs.open(root)


def test_resume_refuses_another_input_or_featurizer(tmp_path, capsys) -> None:
    src = _csv(tmp_path / "in.csv", SMILES)
    out = f"{tmp_path / 'ds'}/"
    base = ["-i", str(src), "-o", out, "--errors", "skip", "--shard-size", "5"]
    assert _featurize(*base) == 0
    capsys.readouterr()
    assert _featurize(*base) == 2  # the folder holds a dataset: no silent overwrite
    assert "already holds a shard dataset" in capsys.readouterr().err
    assert _featurize(*base, "--resume", "--featurizer", "multihot") == 2
    assert "featurizer config" in capsys.readouterr().err
    assert _featurize(*base, "--resume", "--shard-size", "6") == 2
    assert "shard size" in capsys.readouterr().err
    _csv(src, SMILES[:-1])  # the input changed
    assert _featurize(*base, "--resume") == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "sha256" in err
    # nothing was touched by the refused runs
    assert ShardedGraphs.open(tmp_path / "ds").manifest["complete"]
    # a label that is not a number: named by row and column, and no folder is left behind
    bad = tmp_path / "bad.csv"
    bad.write_text("smiles,y\nCCO,1\nCCN,oops\n")
    assert _featurize("-i", str(bad), "-o", f"{tmp_path / 'bad'}/", "--target-columns", "y") == 2
    err = capsys.readouterr().err
    assert "row 1, column 'y': label 'oops' is not a number" in err and not (tmp_path / "bad").exists()


def test_writer_contract_errors(tmp_path) -> None:
    fz = MolGraphFeaturizer.ogb()
    g = [fz.arrays(s) for s in ("CCO", "CCN", "O")]
    writer = ShardWriter(tmp_path / "ds", featurizer_config=fz.to_config(), input_path="in.csv",
                         input_sha256="0" * 64, smiles_column="smiles", target_columns=["t"], shard_size=4)
    y = np.zeros((3, 1), dtype=np.float32)
    with pytest.raises(ShardError, match="row 7 is neither a graph nor a reject"):
        writer.write_shard(1, g, [4, 5, 6], y, [], 4)
    with pytest.raises(ShardError, match="row 5 is given twice"):
        writer.write_shard(1, g, [4, 5, 6], y, [Reject(5, "x", "bad")], 4)
    with pytest.raises(ShardError, match="row 3 lies outside the shard"):
        writer.write_shard(1, g, [3, 5, 6], y, [Reject(7, "x", "bad")], 4)
    with pytest.raises(ShardError, match="must increase"):
        writer.write_shard(1, g, [6, 5, 4], y, [Reject(7, "x", "bad")], 4)
    with pytest.raises(ShardError, match=r"y has shape \(2, 1\), expected \(3, 1\)"):
        writer.write_shard(1, g, [4, 5, 6], y[:2], [Reject(7, "x", "bad")], 4)
    with pytest.raises(ShardError, match="n_rows must be in"):
        writer.write_shard(1, g, [4, 5, 6], y, [Reject(7, "x", "bad")], 5)
    assert writer.done_shards == set()
    writer.write_shard(1, g, [4, 5, 6], y, [Reject(7, "x", "bad")], 4)
    writer.write_shard(0, [], [], np.zeros((0, 1)), [Reject(k, "", "empty") for k in range(4)], 4)  # all rejected
    with pytest.raises(ShardError, match="shard-00001 covers 4 rows; with 5 input rows it must cover 1"):
        writer.close(5)
    manifest = writer.close(8)
    assert manifest["totals"]["n_graphs"] == 3 and manifest["totals"]["n_rejected"] == 5
    sg = ShardedGraphs.open(tmp_path / "ds")
    assert sg.rows.tolist() == [4, 5, 6] and sg(np.array([2, 0])).x.dtype == torch.int64
    with pytest.raises(ShardError, match="already holds a shard dataset"):
        ShardWriter(tmp_path / "ds", featurizer_config=fz.to_config(), input_path="in.csv", input_sha256="0" * 64,
                    smiles_column="smiles", target_columns=["t"], shard_size=4)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ShardError, match="not empty"):
        ShardWriter(tmp_path / "other", featurizer_config=fz.to_config(), input_path="in.csv", input_sha256="0" * 64,
                    smiles_column="smiles")
