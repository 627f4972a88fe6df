"""First use on unseen data: the demo's folder and messages, predict's column names, chemprop split files.

Each test pins one behaviour a new user meets on day one: where ``molgraph demo`` leaves its
files, how reject reasons are shortened on screen, what ``molgraph predict`` calls its columns
whether or not the input is labelled, and that a split made here trains the same rows in
chemprop's file format as in molgraph's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from molgraph.cli import demo_cmd
from molgraph.cli.demo_cmd import choose_output_dir, shorten
from molgraph.cli.main import main
from molgraph.data.registry import dataset_path
from molgraph.data.splits import load_split_file

SMALL_MODEL = ["--hidden-dim", "16", "--ffn-hidden-dim", "16", "--epochs", "1", "--accelerator", "cpu",
               "--no-progress"]


# ---------------------------------------------------------------------------------------------
# Reject reasons on screen: cut on a word boundary
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, width, expected", [
    ("short reason", 40, "short reason"),                                  # fits: unchanged
    ("exactly ten", 11, "exactly ten"),                                    # fits exactly
    ("SMILES Parse Error: Failed parsing", 24, "SMILES Parse Error…"),     # ':' before the cut dropped
    ("SMILES Parse Error: Failed parsing", 27, "SMILES Parse Error: Failed…"),  # word ends right at the cut
    ("one two three", 9, "one two…"),
    ("Can't kekulize mol.  Unkekulized atoms: 9", 60, "Can't kekulize mol. Unkekulized atoms: 9"),  # spaces
    ("line one\nline two", 40, "line one line two"),                      # one line on screen
    ("Supercalifragilistic word", 8, "Superca…"),                          # one long word: cut inside it
    ("abc def", 1, "…"),
])
def test_shorten_cuts_on_a_word_boundary(text: str, width: int, expected: str) -> None:
    got = shorten(text, width)
    assert got == expected
    assert len(got) <= width


def test_shorten_never_ends_mid_word_on_rdkit_reasons() -> None:
    reason = ("SMILES Parse Error: syntax error while parsing: C1CC((; SMILES Parse Error: Failed parsing "
              "SMILES 'C1CC((' for input: 'C1CC(('")
    for width in range(len("SMILES…"), len(reason)):  # narrower cuts inside the first word
        got = shorten(reason, width)
        assert len(got) <= width and got.endswith("…")
        kept = got[:-1]
        # what is kept is a run of whole words of the reason: the next character was a space
        assert reason.startswith(kept) and reason[len(kept)] in " :;,.", (width, got)
    with pytest.raises(ValueError, match="width must be at least 1"):
        shorten(reason, 0)


# ---------------------------------------------------------------------------------------------
# The demo folder
# ---------------------------------------------------------------------------------------------


def test_choose_output_dir_never_reuses_a_used_folder(tmp_path: Path) -> None:
    base = tmp_path / "demo-run"
    assert choose_output_dir(None, base) == base
    base.mkdir()
    assert choose_output_dir(None, base) == base  # empty: fine
    (base / "rejects.csv").write_text("x")
    assert choose_output_dir(None, base) == tmp_path / "demo-run-2"
    (tmp_path / "demo-run-2").mkdir()
    (tmp_path / "demo-run-2" / "f").write_text("x")
    assert choose_output_dir(None, base) == tmp_path / "demo-run-3"

    # an explicit -o is used as given, or refused: never numbered behind the user's back
    assert choose_output_dir(tmp_path / "mine", base) == tmp_path / "mine"
    with pytest.raises(FileExistsError, match="not empty.*choose a new -o DIR"):
        choose_output_dir(base, base)
    with pytest.raises(FileExistsError, match="is a file"):
        choose_output_dir(base / "rejects.csv", base)


@pytest.fixture
def one_dataset_demo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_data_root: Path) -> Path:
    """Run the demo in ``tmp_path`` on BBBP alone (11 unreadable molecules): seconds, not minutes."""
    import molgraph.data.registry as registry

    monkeypatch.setattr(registry, "list_datasets", lambda *a, **k: ["bbbp"])
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_demo_writes_to_demo_run_and_keeps_full_reasons(one_dataset_demo: Path, capsys) -> None:
    assert main(["demo", "--skip-training"]) == 0
    out = capsys.readouterr().out
    folder = one_dataset_demo / "demo-run"
    assert "writing the demo to demo-run" in out and "demo folder kept: demo-run" in out

    rejects = pd.read_csv(folder / "rejects.csv")
    assert list(rejects.columns) == ["source", "row", "input", "reason"]
    assert len(rejects) == 11 and set(rejects["source"]) == {"bbbp"}
    # the screen shows each shown reason shortened on a word boundary; the file holds it whole
    for row, reason in zip(rejects["row"][:2], rejects["reason"][:2]):
        assert f"reject row {row}: {shorten(reason)}\n" in out
    assert rejects["reason"].str.len().max() > 0 and not rejects["reason"].str.endswith("…").any()
    molecules = pd.read_csv(folder / "new_molecules.csv")
    assert list(molecules.columns) == ["name", "smiles"] and len(molecules) == len(demo_cmd.DEMO_MOLECULES)

    # a second demo goes next to the first, which stays as it was
    before = (folder / "rejects.csv").read_bytes()
    assert main(["demo", "--skip-training"]) == 0
    assert "writing the demo to demo-run-2" in capsys.readouterr().out
    assert (one_dataset_demo / "demo-run-2" / "rejects.csv").is_file()
    assert (folder / "rejects.csv").read_bytes() == before


def test_demo_refuses_a_used_output_folder(one_dataset_demo: Path, capsys) -> None:
    used = one_dataset_demo / "mine"
    used.mkdir()
    (used / "notes.txt").write_text("keep me")
    assert main(["demo", "--skip-training", "-o", str(used)]) == 2
    captured = capsys.readouterr()
    assert "not empty" in captured.err and "-o" in captured.err
    assert "featurizer" not in captured.out  # refused before any work
    assert sorted(p.name for p in used.iterdir()) == ["notes.txt"]

    assert main(["demo", "--skip-training", "-o", str(one_dataset_demo / "new")]) == 0
    assert (one_dataset_demo / "new" / "rejects.csv").is_file()


@pytest.mark.slow  # trains on all of ESOL for one epoch (~15 s on 2 cores)
def test_demo_training_run_and_its_next_command(one_dataset_demo: Path, monkeypatch, capsys) -> None:
    import molgraph.data.registry as registry

    monkeypatch.setattr(registry, "list_datasets", lambda *a, **k: [])  # training part only
    assert main(["demo", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    folder = one_dataset_demo / "demo-run"
    assert (folder / "esol_dmpnn" / "model.pt").is_file()
    rejects = pd.read_csv(folder / "rejects.csv")
    assert rejects["source"].tolist() == ["new_molecules.csv"] and rejects["input"].tolist() == ["C1CC(("]
    full = rejects["reason"][0]
    assert f"rejected: {shorten(full, 80)}" in out and len(full) > 80  # shortened on screen only
    # the printed next step runs as shown and gives the _pred column
    next_line = next(line for line in out.splitlines() if line.startswith("next: molgraph "))
    assert main(next_line.split()[2:]) == 0
    preds = pd.read_csv(folder / "predictions.csv")
    assert list(preds.columns) == ["name", "smiles", "measured log solubility in mols per litre_pred"]


def test_demo_help_says_where_it_writes(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "./demo-run" in text and "./demo-run-2" in text and "must not exist or be empty" in text


# ---------------------------------------------------------------------------------------------
# A run trained on a chemprop split file; predict's columns with and without labels
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chemprop_split_run(tmp_path_factory) -> dict[str, Path]:
    """60 ESOL molecules split by ``molgraph split --format chemprop`` and trained on that file."""
    d = tmp_path_factory.mktemp("first_use")
    df = pd.read_csv(dataset_path("esol"))[:60]
    data = d / "mols.csv"
    pd.DataFrame({"smiles": df["smiles"], "logS": df["measured log solubility in mols per litre"]}).to_csv(
        data, index=False)
    chemprop_file = d / "chemprop_splits.json"
    assert main(["split", "-i", str(data), "--split", "random", "--seed", "1", "--format", "chemprop",
                 "-o", str(chemprop_file)]) == 0
    run = d / "run"
    assert main(["train", "-i", str(data), "-s", "smiles", "--target-columns", "logS", "-t", "regression",
                 "--splits-file", str(chemprop_file), *SMALL_MODEL, "-o", str(run)]) == 0
    return {"data": data, "chemprop_file": chemprop_file, "run": run, "dir": d}


def test_train_uses_exactly_the_rows_of_a_chemprop_split_file(chemprop_split_run) -> None:
    given = json.loads(chemprop_split_run["chemprop_file"].read_text())
    assert isinstance(given, list) and len(given) == 1  # chemprop v2's shape
    used = json.loads((chemprop_split_run["run"] / "splits.json").read_text())
    for part in ("train", "val", "test"):
        assert used[part] == given[0][part], part


def test_predict_columns_are_target_pred_with_or_without_labels(chemprop_split_run) -> None:
    d, run = chemprop_split_run["dir"], chemprop_split_run["run"]
    unlabelled = d / "new.csv"
    unlabelled.write_text("id,smiles\na,CCO\nb,not_a_smiles\nc,c1ccccc1\n")
    labelled = d / "labelled.csv"
    labelled.write_text("id,smiles,logS\na,CCO,0.0\nb,not_a_smiles,1.0\nc,c1ccccc1,-2.0\n")
    frames = {}
    for name, path in (("unlabelled", unlabelled), ("labelled", labelled)):
        out = d / f"preds_{name}.csv"
        assert main(["predict", "-i", str(path), "--model", str(run), "-o", str(out)]) == 0
        frames[name] = pd.read_csv(out)
    # one rule: the input's columns, then logS_pred; a label column is kept as it was
    assert list(frames["unlabelled"].columns) == ["id", "smiles", "logS_pred"]
    assert list(frames["labelled"].columns) == ["id", "smiles", "logS", "logS_pred"]
    assert frames["labelled"]["logS"].tolist() == [0.0, 1.0, -2.0]
    np.testing.assert_allclose(frames["labelled"]["logS_pred"], frames["unlabelled"]["logS_pred"])
    assert frames["unlabelled"]["logS_pred"].isna().tolist() == [False, True, False]


def test_predict_refuses_to_overwrite_prediction_columns(chemprop_split_run, capsys) -> None:
    d, run = chemprop_split_run["dir"], chemprop_split_run["run"]
    again = d / "preds_again.csv"
    again.write_text("smiles,logS_pred\nCCO,1.0\n")
    assert main(["predict", "-i", str(again), "--model", str(run), "-o", str(d / "p2.csv")]) == 1
    err = capsys.readouterr().err
    assert "logS_pred" in err and "rename or drop" in err
    assert not (d / "p2.csv").exists()


def test_predict_help_states_the_column_rule(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "T_pred" in text and "T_std" in text


def test_chemprop_split_file_loads_with_the_dataset_size(chemprop_split_run) -> None:
    split = load_split_file(chemprop_split_run["chemprop_file"], n=60)
    assert sorted(np.concatenate(list(split.parts().values())).tolist()) == list(range(60))
