"""Dataset registry, bundled files, data root, checksummed downloads, atomic writes, CLI."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib.util
import json
import os
import shutil
import stat
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

from molgraph.data import registry, sources
from molgraph.data.registry import CardError, DatasetCard, dataset_path, get_card, list_datasets, verify
from molgraph.data.sources import ChecksumError, atomic_output, atomic_write_bytes, download_file, sha256_file

REPO = Path(__file__).resolve().parents[1]
BUNDLED = {"esol", "freesolv", "lipophilicity", "bbbp", "bace", "tox21", "clintox", "sider"}
ROOT_ONLY = {"hiv", "muv", "toxcast", "qm8", "qm7"}


def _read(path: Path) -> pd.DataFrame:
    # pandas' defaults are what the cards' n_rows mean: gzip by suffix, CRLF handled, blank lines skipped.
    return pd.read_csv(path, low_memory=False)


def _flip_byte(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run ``molgraph.cli.main.main(argv)``; returns (exit code, stdout, stderr)."""
    from molgraph.cli import main as cli_main

    # Sibling sub-commands are written separately; skip only those whose module does not exist yet.
    present = tuple(m for m in cli_main._COMMAND_MODULES if importlib.util.find_spec(m) is not None)
    monkeypatch.setattr(cli_main, "_COMMAND_MODULES", present)

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli_main.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


# --------------------------------------------------------------------------------------------
# Cards and bundled files


def test_registry_lists_all_cards() -> None:
    assert set(list_datasets()) == BUNDLED | ROOT_ONLY
    assert list_datasets() == sorted(list_datasets())
    assert {n for n in list_datasets() if get_card(n).bundled} == BUNDLED


@pytest.mark.parametrize("name", sorted(BUNDLED | ROOT_ONLY))
def test_card_is_consistent(name: str) -> None:
    card = get_card(name)
    assert card.name == name == card.card_path.parent.name
    assert card.task_type in ("regression", "classification")
    assert card.split in ("random", "scaffold", "stratified")
    assert card.metric in ("RMSE", "MAE", "ROC-AUC", "PRC-AUC")
    assert card.n_targets == len(set(card.target_columns)) >= 1
    assert card.license and card.source and card.citation and card.quirks
    assert card.smiles_column not in card.target_columns
    if card.bundled:
        path = card.card_path.parent / card.file
        assert path.is_file()
        assert sha256_file(path) == card.sha256
        assert path.stat().st_size == card.size_bytes
        assert not card.root_path
    else:
        assert card.root_path == f"moleculenet/{name}/{card.file_name}"
        # Card-only folders: nothing but the card.
        assert [p.name for p in card.card_path.parent.iterdir()] == ["card.toml"]
    if card.url:
        assert card.url.startswith("https://deepchemdata.s3-us-west-1.amazonaws.com/datasets/")
        assert card.url.endswith("/" + card.file_name)
        assert "NOT verified" in card.url_note


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_rows_and_columns_match_card(name: str) -> None:
    card = get_card(name)
    df = _read(dataset_path(name))
    assert len(df) == card.n_rows
    assert card.smiles_column in df.columns
    assert set(card.target_columns) <= set(df.columns)
    labels = df[list(card.target_columns)]
    # Missing labels (empty cells) occur exactly where the card says so.
    assert labels.isna().to_numpy().any() == any("empty cells" in q for q in card.quirks)
    if card.task_type == "classification":
        present = labels.to_numpy(dtype=float).ravel()
        assert set(present[~pd.isna(present)]) <= {0.0, 1.0}


def test_known_quirks_are_recorded() -> None:
    assert get_card("bace").smiles_column == "mol"
    assert any("CRLF" in q for q in get_card("freesolv").quirks)
    assert any("Blank lines" in q for q in get_card("hiv").quirks)
    assert any("Duplicated columns" in q for q in get_card("qm8").quirks)
    assert "DERIVED" in get_card("qm7").title
    assert any("empty cells" in q for q in get_card("tox21").quirks)
    assert get_card("bbbp").rdkit_parse_failures == 11
    # QM8's duplicated PBE0 block is listed once.
    assert get_card("qm8").n_targets == 12


def test_bundled_files_match_shared_manifest(data_root: Path) -> None:
    manifest = json.loads((data_root / "moleculenet" / "manifest.json").read_text())
    for name in list_datasets():
        card, entry = get_card(name), manifest[name]
        assert card.sha256 == entry["sha256"], name
        assert card.n_rows == entry["n_rows"], name
        assert card.smiles_column == entry["smiles_column"], name
        assert list(card.target_columns) == list(dict.fromkeys(entry["target_columns"])), name
        assert card.task_type == entry["task_type"], name
        assert card.split == entry["moleculenet_split"], name
        assert card.metric == entry["moleculenet_metric"], name
        assert card.rdkit_parse_failures == entry["rdkit_parse_failures"], name
        shared = data_root / "moleculenet" / entry["file"]
        if card.bundled:
            assert dataset_path(name).read_bytes() == shared.read_bytes(), name
        else:
            assert data_root / card.root_path == shared


def test_data_root_rows_match_cards(data_root: Path) -> None:
    for name in sorted(ROOT_ONLY):
        card = get_card(name)
        path = dataset_path(name)  # $MOLGRAPH_DATA points at the shared folder; sha256 checked
        assert path == data_root / card.root_path
        df = _read(path)
        assert len(df) == card.n_rows, name
        assert card.smiles_column in df.columns and set(card.target_columns) <= set(df.columns), name
    # HIV: one blank line after every CRLF-terminated row; pandas skips them.
    raw = (data_root / get_card("hiv").root_path).read_bytes()
    assert raw.count(b"\r\n") == get_card("hiv").n_rows + 1
    assert len(raw.splitlines()) == 2 * (get_card("hiv").n_rows + 1)
    # QM8: the second PBE0 block duplicates the first.
    qm8 = _read(data_root / get_card("qm8").root_path)
    assert (qm8["E1-PBE0"] == qm8["E1-PBE0.1"]).all()


def test_readme_indexes_every_card() -> None:
    text = (REPO / "datasets" / "README.md").read_text()
    for name in list_datasets():
        card = get_card(name)
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2] == f"{card.n_rows:,}"
        assert cells[3:8] == [card.task_type, str(card.n_targets), card.split, card.metric, card.location]


def test_get_card_is_case_insensitive_and_unknown_lists_names() -> None:
    assert get_card("ESOL") is get_card(" esol ")
    with pytest.raises(KeyError) as info:
        get_card("pcba")
    assert "pcba" in str(info.value) and "esol" in str(info.value) and "toxcast" in str(info.value)


def test_card_validation_rejects_bad_cards() -> None:
    good = dict(tomllib_load(get_card("esol").card_path))
    assert DatasetCard.from_dict(good) == get_card("esol")
    bad_cases = [
        {**good, "colour": "red"},
        {**good, "task_type": "ranking"},
        {**good, "split": "temporal"},
        {**good, "sha256": "abc"},
        {**good, "n_rows": True},
        {**good, "target_columns": ["a", "a"]},
        {k: v for k, v in good.items() if k != "file"},
        {**good, "bundled": False},  # no root_path
        {**good, "bundled": False, "root_path": "../outside.csv"},
    ]
    for data in bad_cases:
        with pytest.raises(CardError):
            DatasetCard.from_dict(data)


def tomllib_load(path: Path) -> dict:
    with open(path, "rb") as fh:
        return registry.tomllib.load(fh)  # tomllib, or tomli on Python 3.10


def test_bundled_dir_is_the_repository_folder() -> None:
    # In a source checkout (no molgraph/_bundled_datasets) the cards come from <repo>/datasets.
    assert registry.bundled_dir() == REPO / "datasets"
    assert not (REPO / "datasets" / "__init__.py").exists()


# --------------------------------------------------------------------------------------------
# Verification


def test_verify_all_ok_and_root_files_absent(no_data_root: Path) -> None:
    results = {r.name: r for r in verify()}
    assert {n for n, r in results.items() if r.status == "ok"} == BUNDLED
    assert {n for n, r in results.items() if r.status == "absent"} == ROOT_ONLY
    assert not any(r.failed for r in results.values())
    assert results["hiv"].path == no_data_root / "moleculenet" / "hiv" / "HIV.csv"


def test_verify_with_real_data_root(data_root: Path) -> None:
    assert [r.status for r in verify(["hiv", "QM7", "esol"])] == ["ok", "ok", "ok"]


def test_verify_detects_corrupted_copy(tmp_path: Path, no_data_root: Path) -> None:
    copy = tmp_path / "bundled"
    shutil.copytree(REPO / "datasets", copy)
    _flip_byte(copy / "esol" / "delaney-processed.csv")
    (copy / "sider" / "sider.csv.gz").unlink()
    results = {r.name: r for r in verify(bundled=copy)}
    assert results["esol"].status == "mismatch" and results["esol"].failed
    assert results["esol"].actual != results["esol"].expected == get_card("esol").sha256
    assert results["sider"].status == "missing" and results["sider"].failed
    assert results["bace"].status == "ok"
    assert results["hiv"].status == "absent" and not results["hiv"].failed


def test_verify_detects_corrupted_data_root_file(tmp_path: Path) -> None:
    card = get_card("qm7")
    root = tmp_path / "root"
    target = root / card.root_path
    target.parent.mkdir(parents=True)
    target.write_bytes(b"smiles,qm7\nC,-417.96\n")
    (result,) = verify(["qm7"], root=root)
    assert result.status == "mismatch" and result.failed


# --------------------------------------------------------------------------------------------
# Resolving files in the data root


def test_missing_data_root_file_names_the_path(no_data_root: Path) -> None:
    expected = no_data_root / "moleculenet" / "hiv" / "HIV.csv"
    with pytest.raises(FileNotFoundError) as info:
        dataset_path("hiv")
    message = str(info.value)
    assert str(expected) in message
    assert "OpenDrugAI/AttentiveFP" in message  # where it comes from
    assert get_card("hiv").sha256 in message
    assert "download=True" in message
    assert registry.expected_path("hiv") == expected


def test_missing_file_without_url_is_not_downloaded(no_data_root: Path) -> None:
    assert get_card("qm7").url == ""
    with pytest.raises(FileNotFoundError, match="No download URL"):
        dataset_path("qm7", download=True)
    assert not any(no_data_root.rglob("*"))


def test_root_argument_beats_environment(tmp_path: Path, data_root: Path) -> None:
    # The data_root fixture points $MOLGRAPH_DATA at the shared folder; an explicit empty root wins.
    with pytest.raises(FileNotFoundError):
        dataset_path("hiv", root=tmp_path)
    assert dataset_path("hiv") == data_root / "moleculenet" / "hiv" / "HIV.csv"


def test_data_root_file_is_checked_before_use(tmp_path: Path, data_root: Path) -> None:
    card = get_card("qm7")
    root = tmp_path / "root"
    target = root / card.root_path
    target.parent.mkdir(parents=True)
    shutil.copyfile(data_root / card.root_path, target)
    assert dataset_path("qm7", root=root) == target
    # Same size, new content and mtime: the in-memory cache must not hide the change.
    _flip_byte(target)
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10_000_000))
    with pytest.raises(ChecksumError, match="does not match the qm7 card"):
        dataset_path("qm7", root=root)
    assert dataset_path("qm7", root=root, check=False) == target


def test_dataset_path_downloads_with_checksum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = b"smiles,y\r\nCCO,1.0\r\n"
    src = tmp_path / "remote" / "tiny.csv"
    src.parent.mkdir()
    src.write_bytes(payload)
    fake = dataclasses.replace(
        get_card("hiv"),
        url=src.as_uri(),
        sha256=hashlib.sha256(payload).hexdigest(),
        root_path="moleculenet/tiny/tiny.csv",
    )
    monkeypatch.setattr(registry, "get_card", lambda name, **kw: fake)
    root = tmp_path / "root"
    path = dataset_path("hiv", root=root, download=True)
    assert path == root / "moleculenet" / "tiny" / "tiny.csv"
    assert path.read_bytes() == payload


# --------------------------------------------------------------------------------------------
# sources: data root, cache, sha256, download, atomic writes


def test_data_root_and_cache_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import platformdirs

    monkeypatch.delenv("MOLGRAPH_DATA", raising=False)
    monkeypatch.delenv("MOLGRAPH_CACHE", raising=False)
    user_cache = Path(platformdirs.user_cache_dir("molgraph"))
    assert sources.data_root() == user_cache / "data"
    assert sources.cache_dir() == user_cache / "processed"
    monkeypatch.setenv("MOLGRAPH_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("MOLGRAPH_CACHE", str(tmp_path / "cache"))
    assert sources.data_root() == tmp_path / "env"
    assert sources.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert sources.cache_dir() == tmp_path / "cache"


def test_sha256_file_streams_large_file(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # spans several 1 MiB chunks
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_download_file_url(tmp_path: Path) -> None:
    src = tmp_path / "src.csv.gz"
    src.write_bytes(gzip.compress(b"smiles\nC\n"))
    dest = tmp_path / "out" / "sub" / "dest.csv.gz"
    got = download_file(src.as_uri(), dest, sha256_file(src).upper())
    assert got == dest and dest.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["dest.csv.gz"]


def test_download_file_wrong_sha_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "src.csv"
    src.write_bytes(b"smiles\nC\n")
    out = tmp_path / "out"
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        download_file(src.as_uri(), out / "dest.csv", "0" * 64)
    assert not any(out.rglob("*"))
    # An existing file is not replaced by a download that fails its checksum.
    old = out / "dest.csv"
    old.write_bytes(b"old")
    with pytest.raises(ChecksumError):
        download_file(src.as_uri(), old, "0" * 64)
    assert old.read_bytes() == b"old"
    assert [p.name for p in out.iterdir()] == ["dest.csv"]


def test_atomic_output_keeps_old_file_when_writer_raises(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    atomic_write_bytes(path, b"old contents")
    with pytest.raises(RuntimeError):
        with atomic_output(path, "wb") as fh:
            fh.write(b"half-written")
            raise RuntimeError("writer failed")
    assert path.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]  # no temp file left


def test_atomic_output_replaces_and_creates_parents(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "note.txt"
    with atomic_output(path, "w", encoding="utf-8") as fh:
        fh.write("héllo\n")
    assert path.read_text(encoding="utf-8") == "héllo\n"
    atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    # Normal permissions (not a temporary file's 0600).
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    with pytest.raises(ValueError):
        with atomic_output(path, "ab"):
            pass


# --------------------------------------------------------------------------------------------
# load_dataset


def test_load_dataset_passes_card_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    class FakeDataset:
        def __init__(self, *args, **kwargs):
            calls.append((args, kwargs))

    fake_module = types.ModuleType("molgraph.data.csv_dataset")
    fake_module.MoleculeCSVDataset = FakeDataset
    monkeypatch.setitem(sys.modules, "molgraph.data.csv_dataset", fake_module)
    ds = registry.load_dataset("BACE", n_jobs=2)
    assert isinstance(ds, FakeDataset)
    (args, kwargs), = calls
    assert args == (REPO / "datasets" / "bace" / "bace.csv", "mol", ["Class"], "classification")
    assert kwargs == {"name": "bace", "n_jobs": 2}


# --------------------------------------------------------------------------------------------
# CLI


def test_cli_list(cli, no_data_root: Path) -> None:
    code, out, _ = cli("datasets", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "rows", "task", "targets", "split", "metric", "where", "present"]
    by_name = {line.split()[0]: line for line in lines[2:]}
    # every kind of set, each listed once: molecule tables, 3D, TU graphs, node graphs, temporal, generation
    from molgraph.data.registry import list_datasets
    from molgraph.registry import DATASETS

    assert set(by_name) == set(list_datasets("all")) == set(DATASETS) and len(lines) - 2 == len(by_name)
    assert BUNDLED | ROOT_ONLY <= set(by_name) and {"qm9", "cora_ml", "uci", "moses", "mutag"} <= set(by_name)
    assert "link_prediction" in by_name["uci"]
    assert "7,831" in by_name["tox21"] and "bundled" in by_name["tox21"]
    assert "data root" in by_name["muv"] and by_name["muv"].endswith("no")


def test_cli_info(cli) -> None:
    code, out, _ = cli("datasets", "info", "BACE")
    assert code == 0
    assert out.startswith("bace: BACE")
    assert get_card("bace").sha256 in out
    assert "mol: SMILES" in out and "CC0 1.0" in out and "quirks" in out
    code, _, err = cli("datasets", "info", "nope")
    assert code == 2 and "unknown dataset 'nope'" in err and "esol" in err


def test_cli_verify(cli, no_data_root: Path) -> None:
    code, out, _ = cli("datasets", "verify")
    assert code == 0
    assert "8 ok, 0 mismatch, 0 missing, 5 absent" in out
    code, out, _ = cli("datasets", "verify", "esol", "hiv", "--root", str(no_data_root))
    assert code == 0 and "1 ok" in out and "1 absent" in out


def test_cli_verify_fails_on_corrupted_bundled_file(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_data_root: Path
) -> None:
    copy = tmp_path / "bundled"
    shutil.copytree(REPO / "datasets" / "freesolv", copy / "freesolv")
    _flip_byte(copy / "freesolv" / "SAMPL.csv")
    monkeypatch.setattr(registry, "bundled_dir", lambda: copy)
    code, out, err = cli("datasets", "verify")
    assert code == 1
    assert "mismatch" in out and "freesolv" in err


def test_cli_datasets_without_action_prints_help(cli) -> None:
    code, out, _ = cli("datasets")
    assert code == 2 and "verify" in out


# --------------------------------------------------------------------------------------------
# Card groups (3D, graphs, node graphs, temporal, generation) and the DATASETS registry


def test_every_card_group_parses_and_is_registered() -> None:
    from molgraph.registry import DATASETS

    everything = registry.list_datasets("all")
    assert set(everything) == set(list_datasets()) | {n for g in registry.CARD_GROUPS for n in registry.list_datasets(g)}
    assert {"qm9", "rmd17", "mutag", "cora_ml", "citeseer", "uci", "enron", "wikipedia", "moses"} <= set(everything)
    assert set(DATASETS) == set(everything)
    for name in everything:
        card, entry = get_card(name), DATASETS.entry(name)
        group = registry.group_of(name)
        assert card.card_path.parent.name == name and card.card_path.parent.parent.name == (group or "datasets")
        task_types, splits = registry.KIND_RULES[card.kind]
        assert card.task_type in task_types and card.split in splits, name
        assert entry.obj.group == group and entry.obj.kind == card.kind and entry.help.endswith(card.title)
        if name in registry.LOADERS:
            assert entry.obj.loader == registry.LOADERS[name]
    with pytest.raises(ValueError, match="group must be"):
        registry.list_datasets("images")
    with pytest.raises(KeyError, match="unknown dataset 'nope'.*cora_ml"):
        get_card("nope")


def test_kind_rules_reject_mismatched_cards() -> None:
    good = dict(tomllib_load(get_card("uci").card_path))
    assert DatasetCard.from_dict(good) == get_card("uci")
    for bad in ({**good, "split": "random"}, {**good, "task_type": "regression"}, {**good, "kind": "events"}):
        with pytest.raises(CardError):
            DatasetCard.from_dict(bad)
    moses = dict(tomllib_load(get_card("moses").card_path))
    assert DatasetCard.from_dict(moses).target_columns == ()
    with pytest.raises(CardError, match="smiles_column"):
        DatasetCard.from_dict({k: v for k, v in moses.items() if k != "smiles_column"})
    node = dict(tomllib_load(get_card("cora_ml").card_path))
    with pytest.raises(CardError, match="target_columns"):
        DatasetCard.from_dict({**node, "target_columns": []})


def test_every_listed_file_of_the_new_groups_matches_its_card(data_root: Path) -> None:
    names = [n for g in ("node_graphs", "temporal", "generation") for n in registry.list_datasets(g)]
    assert [r.status for r in verify(names)] == ["ok"] * len(names)
    for name in names:
        for rel in get_card(name).files:
            assert registry.dataset_file(name, rel).is_file()  # sha256-checked
