"""``molgraph featurize`` end to end: outputs, rejects file, counts, raise mode, input formats."""

from __future__ import annotations

import csv

import pandas as pd
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import AllChem

from molgraph.cli.main import main
from molgraph.data.collated import CollatedGraphs

# every kind of input the chem layer must survive, each with whether it is valid
ROWS = [
    ("CCO", True),
    ("", False),  # empty
    ("this is not smiles", False),  # garbage
    ("C☃C", False),  # non-ASCII
    ("N(C)(C)(C)(C)C", False),  # valence error
    ("c1cccc1", False),  # kekulization failure
    ("*c1ccccc1", True),  # wildcard
    ("[13CH3]C(=O)O", True),  # isotope
    ("C[N+](C)(C)CC(=O)[O-]", True),  # zwitterion
    ("[CH2]C", True),  # radical
    ("CC(=O)[O-].[Na+]", True),  # salt
    ("[H]C([H])([H])C([H])([H])O[H]", True),  # explicit-H (QM7/QM8 style)
    ("C" * 520, True),  # > 500 atoms
    ("Cl[Pt](Cl)([NH3])[NH3]", True),  # metal
    ("C1CC", False),  # unclosed ring
    ("c1ccccc1O", True),
]


def _write_csv(path, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["name", "smiles", "y"])
        for i, (smiles, _) in enumerate(rows):
            writer.writerow([f"m{i}", smiles, i])


def test_mixed_file_rejects_exactly_the_invalid_rows(tmp_path, capsys) -> None:
    src, out = tmp_path / "mixed.csv", tmp_path / "graphs.pt"
    _write_csv(src, ROWS)
    code = main(["featurize", "-i", str(src), "-s", "smiles", "-o", str(out), "--errors", "skip", "--no-progress"])
    assert code == 0
    rejects = pd.read_csv(tmp_path / "graphs.rejects.csv", keep_default_na=False)
    bad = [i for i, (_, ok) in enumerate(ROWS) if not ok]
    assert rejects["row"].tolist() == bad
    assert all(reason.strip() for reason in rejects["reason"])
    assert rejects["input"].tolist() == [ROWS[i][0] for i in bad]
    graphs = CollatedGraphs.load(out)
    good = [i for i, (_, ok) in enumerate(ROWS) if ok]
    assert graphs.rows.tolist() == good and len(graphs) == len(good)
    assert graphs[good.index(12)].num_nodes == 520
    printed = capsys.readouterr().out
    assert f"featurized {len(good)} of {len(ROWS)} molecules" in printed
    assert f"rejected {len(bad)}" in printed
    assert torch.load(out, weights_only=True)["format"].startswith("molgraph.collated_graphs")


def test_raise_mode_stops_names_the_row_and_writes_nothing(tmp_path, capsys) -> None:
    src, out = tmp_path / "mixed.csv", tmp_path / "graphs.pt"
    _write_csv(src, ROWS)
    code = main(["featurize", "-i", str(src), "-s", "smiles", "-o", str(out), "--no-progress"])
    assert code != 0
    err = capsys.readouterr().err
    assert "row 1" in err and "empty SMILES" in err
    assert list(tmp_path.iterdir()) == [src]  # no output, no rejects, no temporary file


def test_existing_output_is_untouched_when_a_run_fails(tmp_path) -> None:
    src, out = tmp_path / "mixed.csv", tmp_path / "graphs.npz"
    out.write_bytes(b"user data")
    _write_csv(src, ROWS)
    assert main(["featurize", "-i", str(src), "-o", str(out), "--no-progress"]) != 0
    assert out.read_bytes() == b"user data"


def test_smi_and_sdf_inputs_and_multihot(tmp_path) -> None:
    smi = tmp_path / "in.smi"
    smi.write_text("CCO ethanol\nC1CC broken\n\nc1ccccc1 benzene\n")
    out = tmp_path / "smi.npz"
    assert main(["featurize", "-i", str(smi), "-o", str(out), "--errors", "skip", "--featurizer", "multihot",
                 "--n-jobs", "2", "--no-progress"]) == 0
    graphs = CollatedGraphs.load(out)
    assert graphs.smiles == ["CCO", "c1ccccc1"] and graphs.x.shape[1] == 72
    assert pd.read_csv(tmp_path / "smi.rejects.csv")["row"].tolist() == [1]

    sdf = tmp_path / "in.sdf"
    writer = Chem.SDWriter(str(sdf))
    for smiles in ["CCO", "c1ccccc1N"]:
        mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
        AllChem.EmbedMolecule(mol, randomSeed=0)
        writer.write(mol)
    writer.close()
    out3d = tmp_path / "sdf.pt"
    assert main(["featurize", "-i", str(sdf), "-o", str(out3d), "--no-progress"]) == 0
    g3 = CollatedGraphs.load(out3d)
    assert len(g3) == 2 and g3.pos is not None and g3[0].pos.shape == (3, 3)  # heavy atoms by default


def test_bad_arguments_give_clear_errors(tmp_path, capsys) -> None:
    src = tmp_path / "a.csv"
    src.write_text("smiles\nCCO\n")
    assert main(["featurize", "-i", str(src), "-o", str(tmp_path / "x.txt")]) == 2
    assert main(["featurize", "-i", str(src), "-o", str(tmp_path / "x.pt"), "--resume"]) == 2
    assert "apply to a shard folder output" in capsys.readouterr().err
    assert main(["featurize", "-i", str(src), "-o", str(tmp_path / "d") + "/", "--shard-size", "0"]) == 2
    assert "--shard-size must be >= 1" in capsys.readouterr().err
    smi = tmp_path / "a.smi"
    smi.write_text("CCO\n")
    assert main(["featurize", "-i", str(smi), "-o", str(tmp_path / "d") + "/", "--target-columns", "y"]) == 2
    assert "--target-columns needs a CSV/TSV input" in capsys.readouterr().err
    assert main(["featurize", "-i", str(src), "-o", str(tmp_path / "d") + "/", "--target-columns", "nope"]) == 2
    err = capsys.readouterr().err
    assert "['nope'] not found" in err and "nothing written" in err and not (tmp_path / "d").exists()
    assert main(["featurize", "-i", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "x.pt")]) == 2
    assert main(["featurize", "-i", str(src), "-s", "SMILES", "-o", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and "columns present" in err


def test_output_is_the_per_molecule_collation_for_any_n_jobs_and_format(tmp_path) -> None:
    """The command collates packed chunks; its files must hold what collating each molecule's
    arrays gives (the same arrays, dtypes, rows and smiles), with one job or two, .pt or .npz."""
    import numpy as np

    from molgraph.featurizers import MolGraphFeaturizer

    rows = ROWS * 7  # several chunks with two workers (chunk size 16 for a known length is not used here)
    src = tmp_path / "mixed.csv"
    _write_csv(src, rows)
    fz = MolGraphFeaturizer.ogb()
    good = [i for i, (_, ok) in enumerate(rows) if ok]
    expected = CollatedGraphs.from_arrays([fz.arrays(rows[i][0]) for i in good], rows=good)
    for n_jobs in ("1", "2"):
        for suffix in (".pt", ".npz"):
            out = tmp_path / f"g{n_jobs}{suffix}"
            assert main(["featurize", "-i", str(src), "-o", str(out), "--errors", "skip", "--n-jobs", n_jobs,
                         "--no-progress"]) == 0
            got = CollatedGraphs.load(out)
            assert got.smiles == expected.smiles and got.rows.tolist() == good
            for key in ("x", "edge_index", "edge_attr", "atom_ptr", "edge_ptr"):
                a, b = getattr(got, key), getattr(expected, key)
                assert a.dtype == b.dtype and torch.equal(a, b), (n_jobs, suffix, key)
            assert got.meta["n_input"] == len(rows) and got.meta["featurizer"] == fz.to_config()
            if suffix == ".npz":
                with np.load(out) as f:  # the same members as numpy's savez_compressed writes
                    assert f.files[:7] == ["format", "x", "edge_index", "edge_attr", "atom_ptr", "edge_ptr",
                                           "smiles"]
                    assert f["smiles"].dtype.kind == "U"


def test_featurize_command_imports_neither_pyg_nor_torch_for_npz(tmp_path) -> None:
    """torch_geometric costs seconds to import; the command writes graphs without it (and without
    torch for an .npz file, and reads a CSV without pandas)."""
    import subprocess
    import sys

    src = tmp_path / "a.csv"
    _write_csv(src, ROWS[:3])
    code = (
        "import sys; from molgraph.cli.main import main; "
        f"rc = main(['featurize', '-i', {str(src)!r}, '-o', {str(tmp_path / 'a.npz')!r}, '--errors', 'skip']); "
        "print(rc, *(m in sys.modules for m in ('torch_geometric', 'torch', 'pandas', 'tqdm')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "0 False False False False"
    # a shard folder neither (and pandas only when target columns are read)
    code = code.replace(repr(str(tmp_path / "a.npz")), repr(str(tmp_path / "shards") + "/"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "0 False False False False"
    assert (tmp_path / "shards" / "manifest.json").is_file()


# (name, file bytes): what pandas and the csv reader must read alike
CSV_QUIRKS = [
    ("blank and whitespace lines", b"smiles,y\n\nCCO,1\n   \n\t\nCC,2\n"),
    ("crlf and cr line ends", b"smiles,y\r\nCCO,1\r\n\r\n \r\nCC,2\rCCC,3\r"),
    ("quoted commas, quotes, line breaks", b'smiles,y\n"C,C",1\n"C""C",2\n"C\n\n  \nC",3\n"  ",4\n"",5\n'),
    ("short and long rows", b"a,smiles,y\n1,CCO,1\n2\n3,CC,2,extra\n"),
    ("bom, header spaces, bad utf-8", b"\xef\xbb\xbf a , smiles ,y\n1, C\xffC ,1\n"),
    ("leading blank lines, quote inside a cell", b'\n  \nsmiles,y\nC"C,1\n"CC"O,2\n  "x",3\n'),
    ("form feed and nbsp lines are rows", "smiles,y\nCC,1\n\x0c\n\u00a0\nCCC,2\n".encode()),
    ("duplicate column: the first", b"smiles,smiles\nA,B\n"),
]


def test_csv_column_reader_reads_as_pandas_does(tmp_path) -> None:
    """``molgraph featurize`` streams the SMILES column with the csv module (no pandas import);
    rows, blank-line skipping and cells must match the pandas reading of ``read_molecule_table``."""
    import gzip

    from molgraph.data.table import _iter_csv_column, _iter_pandas_column, iter_smiles_column

    for k, (name, data) in enumerate(CSV_QUIRKS):
        for suffix in (".csv", ".csv.gz", ".tsv"):
            body = data.replace(b",", b"\t") if suffix == ".tsv" else data
            path = tmp_path / f"q{k}{suffix}"
            with (gzip.open if suffix.endswith(".gz") else open)(path, "wb") as fh:
                fh.write(body)
            expected = list(_iter_pandas_column(path, "smiles", 2))
            assert list(_iter_csv_column(path, "smiles")) == expected, (name, suffix)
            assert list(iter_smiles_column(path, "smiles")) == expected, (name, suffix)
    # a tab-only line of a TSV holds two empty cells: a row for pandas, and here
    tsv = tmp_path / "tabs.tsv"
    tsv.write_bytes(b"smiles\ty\nCC\t1\n \t \nCCC\t2\n")
    assert list(_iter_csv_column(tsv, "smiles")) == list(_iter_pandas_column(tsv, "smiles", 2)) == ["CC", "", "CCC"]


def test_csv_column_reader_errors(tmp_path) -> None:
    from molgraph.data.table import iter_smiles_column

    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"\n  \n")
    with pytest.raises(ValueError):  # pandas' EmptyDataError
        list(iter_smiles_column(empty, "smiles"))
    unclosed = tmp_path / "unclosed.csv"
    unclosed.write_bytes(b'smiles,y\n"CC,1\nCCC,2\n')
    with pytest.raises(ValueError, match="quoted field"):
        list(iter_smiles_column(unclosed, "smiles"))
    other = tmp_path / "other.csv"
    other.write_bytes(b"mol,y\nCC,1\n")
    with pytest.raises(KeyError, match=r"columns present: \['mol', 'y'\]"):
        list(iter_smiles_column(other, "smiles"))


def test_streamed_npz_is_the_collated_file_member_for_member(tmp_path) -> None:
    """``save_chunks`` writes an .npz from the chunks' arrays without concatenating them: every
    member must hold the bytes that saving the concatenation gives (positions, rejects-only
    chunks, molecules without bonds, SMILES of different lengths included)."""
    import zipfile

    from molgraph.data.collated import CollatedArrays, save_chunks
    from molgraph.featurizers.batch import iter_featurize_chunks

    def mol3d(smiles: str) -> Chem.Mol:
        mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
        AllChem.EmbedMolecule(mol, randomSeed=1)
        return Chem.RemoveHs(mol)

    flat = [s for s, _ in ROWS] + ["[Na+]", "O", "c1ccc2ccccc2c1" * 3]
    with_pos = [mol3d(s) for s in ["CCO", "O", "c1ccccc1N", "[Na+]", "CC(=O)O"]]
    cases = {
        "smiles": (flat, 4),
        "rejects-only chunk": (["C1CC", "", "CCO", "c1ccccc1"], 2),
        "3d": (with_pos, 2),
        "3d and 2d mixed": (with_pos[:2] + ["CCN"], 2),
    }
    for name, (items, chunk_size) in cases.items():
        meta = {"case": name}
        chunks = list(iter_featurize_chunks(items, chunk_size=chunk_size, errors="skip"))
        a, b = tmp_path / "streamed.npz", tmp_path / "collated.npz"
        summary = save_chunks(a, chunks, meta)
        collated = CollatedArrays.from_chunks(chunks, meta)
        collated.save(b)
        assert (summary.num_graphs, summary.num_atoms, summary.num_edges) == (
            len(collated), collated.x.shape[0], collated.edge_index.shape[1])
        with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
            assert za.testzip() is None
            assert za.namelist() == zb.namelist(), name
            for member in za.namelist():
                assert za.read(member) == zb.read(member), (name, member)
        assert ("pos.npy" in zipfile.ZipFile(a).namelist()) == (name == "3d")
        pt = save_chunks(tmp_path / "g.pt", chunks, meta).path
        back = CollatedGraphs.load(pt)
        assert torch.equal(back.x, torch.from_numpy(collated.x)) and back.smiles == collated.smiles
