"""``molgraph conformers generate|evaluate``, the SDF writer and ensemble reading."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from rdkit import Chem

from molgraph.cli.main import main
from molgraph.conformers.ensembles import read_ensembles


def _write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("id,smiles\n" + "".join(f"{i},{s}\n" for i, s in enumerate(rows)))
    return path


def test_generate_writes_sdf_rejects_and_counts(tmp_path, capsys):
    src = _write_csv(tmp_path / "in.csv", ["CCO", "not_a_smiles", "C1#CC1", "OB(O)c1ccccc1", "F/C=C/C[C@@H](Cl)Br", ""])
    out = tmp_path / "out.sdf"
    code = main(["conformers", "generate", "-i", str(src), "-n", "3", "-o", str(out), "--max-attempts", "20",
                 "--n-jobs", "2", "--seed", "5"])
    text = capsys.readouterr().out
    assert code == 0
    assert "generated 9 conformers for 3 of 6 molecules" in text and "failed 3" in text
    with open(tmp_path / "out.rejects.csv", newline="") as fh:
        rejects = list(csv.DictReader(fh))
    assert [int(r["row"]) for r in rejects] == [1, 2, 5]
    assert "Parse Error" in rejects[0]["reason"] and "ETK_MINIMIZATION" in rejects[1]["reason"]
    assert "empty SMILES" in rejects[2]["reason"]
    records = [m for m in Chem.SDMolSupplier(str(out), removeHs=False)]
    assert len(records) == 9 and all(m is not None and m.GetNumAtoms() > 3 for m in records)
    boron = [m for m in records if m.GetProp("molgraph_index") == "3"]
    assert boron[0].GetProp("molgraph_force_field") == "UFF" and "MMFF94" in boron[0].GetProp("molgraph_notes")
    stereo = [m for m in records if m.GetProp("molgraph_index") == "4"]
    for m in stereo:  # stereo read back from the 3D coordinates equals the input's
        Chem.AssignStereochemistryFrom3D(m)
        assert Chem.MolToSmiles(Chem.RemoveHs(m)) == Chem.MolToSmiles(Chem.MolFromSmiles("F/C=C/C[C@@H](Cl)Br"))
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_generate_refuses_bad_arguments(tmp_path, capsys):
    src = _write_csv(tmp_path / "in.csv", ["CCO"])
    assert main(["conformers", "generate", "-i", str(src), "-o", str(tmp_path / "x.csv")]) == 2
    assert main(["conformers", "generate", "-i", str(src), "-s", "nope", "-o", str(tmp_path / "x.sdf")]) == 2
    assert "nope" in capsys.readouterr().err
    assert not (tmp_path / "x.sdf").exists()


def test_evaluate_known_answers(tmp_path, capsys):
    src = _write_csv(tmp_path / "in.csv", ["CC(=O)Oc1ccccc1C(=O)O", "CCCCO"])
    ref, gen = tmp_path / "ref.sdf", tmp_path / "gen.sdf"
    assert main(["conformers", "generate", "-i", str(src), "-n", "4", "-o", str(ref), "--seed", "1"]) == 0
    # the same seed and settings reproduce the references exactly: COV 1, MAT 0
    assert main(["conformers", "generate", "-i", str(src), "-n", "4", "-o", str(gen), "--seed", "1"]) == 0
    capsys.readouterr()
    out = tmp_path / "cov.json"
    assert main(["conformers", "evaluate", "--generated", str(gen), "--reference", str(ref), "--threshold", "0.5",
                 "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 molecules evaluated" in printed and "COV-R" in printed
    result = json.loads(out.read_text())
    assert result["cov_r"]["mean"] == 1.0 and result["mat_r"]["mean"] == pytest.approx(0.0, abs=1e-4)
    assert result["protocol"]["comparison"] == "<=" and result["protocol"]["heavy_atoms"] is True
    # a different molecule in the generated file is reported as unmatched, not dropped silently
    other = _write_csv(tmp_path / "o.csv", ["CCCCO", "c1ccncc1"])
    assert main(["conformers", "generate", "-i", str(other), "-n", "2", "-o", str(gen), "--seed", "9"]) == 0
    assert main(["conformers", "evaluate", "--generated", str(gen), "--reference", str(ref), "--exclusive",
                 "-o", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["n_evaluated"] == 1 and result["unmatched_generated"] == ["c1ccncc1"]
    assert result["unmatched_reference"] == ["CC(=O)Oc1ccccc1C(=O)O"] and result["protocol"]["comparison"] == "<"


def test_geom_sample_reads_into_ten_ensembles(data_root):
    path = data_root / "3d" / "geom_drugs_sample10" / "geom_drugs_train_first10_reference_conformers.sdf.gz"
    ensembles, rejects = read_ensembles(path, key="prop:mol_index")
    assert len(ensembles) == 10 and sum(m.GetNumConformers() for m in ensembles.values()) == 503 - len(rejects)
    # the one GEOM conformer of molecule 7 with a different graph is rejected with a reason
    assert [(r["key"], "graph differs" in r["reason"] or "atoms" in r["reason"]) for r in rejects] == [("7", True)]
