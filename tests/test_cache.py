"""The featurization cache: compact exact storage, the bypass, the write message, `molgraph cache`,
and tests that never write to the user's cache folder."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from molgraph.cli import cache_cmd
from molgraph.cli.main import main
from molgraph.data.collated import (
    COMPACT_FORMAT,
    CollatedGraphs,
    decode_array,
    encode_array,
    narrow_int_dtype,
)
from molgraph.data.csv_dataset import MoleculeCSVDataset
from molgraph.data.sources import announce_cache_write, format_size
from molgraph.featurizers import MolGraphFeaturizer

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "C[C@H](N)C(=O)O", "O=C=O", "[Na+].[Cl-]",
          "FC(F)(F)c1ccc(cc1)C#N", "C1CC1", "CCN(CC)CC", "OCC(O)CO", "c1ccncc1", "CS(=O)(=O)C"]


def _bits(t: torch.Tensor) -> np.ndarray:
    """A tensor's bytes, so NaN payloads and -0.0 compare exactly."""
    return t.contiguous().numpy().view(np.uint8)


def assert_same_tensor(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != {b.dtype}"
    assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} != {tuple(b.shape)}"
    assert np.array_equal(_bits(a), _bits(b)), f"{what}: values differ"


def assert_same_graphs(g: CollatedGraphs, h: CollatedGraphs) -> None:
    assert g.fields == h.fields
    for name in g.fields:
        assert_same_tensor(g.field(name), h.field(name), name)
    assert_same_tensor(g.edge_index, h.edge_index, "edge_index")
    assert_same_tensor(g.atom_ptr, h.atom_ptr, "atom_ptr")
    assert_same_tensor(g.edge_ptr, h.edge_ptr, "edge_ptr")
    assert (g.rows is None) == (h.rows is None)
    if g.rows is not None:
        assert_same_tensor(g.rows, h.rows, "rows")
    assert g.smiles == h.smiles
    assert g.meta == h.meta


def write_csv(path: Path, smiles: list[str], with_bad: bool = True) -> Path:
    lines = ["smiles,y"]
    for i, s in enumerate(smiles):
        lines.append(f"{s},{'' if i == 3 else i * 0.5}")  # row 3: missing label (NaN)
    if with_bad:
        lines.append("not_a_smiles,1.0")
    path.write_text("\n".join(lines) + "\n")
    return path


# -- codecs -------------------------------------------------------------------------------------

@pytest.mark.parametrize("lo, hi, expected", [
    (0, 255, "u1"), (-1, 127, "i1"), (0, 256, "u2"), (-129, 0, "i2"), (0, 65535, "u2"),
    (0, 2**32 - 1, "u4"), (-1, 2**31 - 1, "i4"), (0, 2**32, "u8"), (-1, 2**40, "i8"),
])
def test_narrow_int_dtype(lo, hi, expected):
    assert narrow_int_dtype(lo, hi) == np.dtype(expected)


def test_narrow_int_dtype_refuses_a_range_no_integer_holds():
    with pytest.raises(ValueError, match="no integer dtype"):
        narrow_int_dtype(-1, 2**64 - 1)


def _round_trip(name: str, value):
    spec, members = encode_array(name, value)
    json.dumps(spec)  # the layout must be JSON
    out = decode_array(name, spec, members)
    original = np.asarray(value)
    assert out.dtype == original.dtype and out.shape == original.shape
    assert np.array_equal(np.ascontiguousarray(out).view(np.uint8), np.ascontiguousarray(original).view(np.uint8))
    return spec, members


@pytest.mark.parametrize("values, member_dtype", [
    (np.arange(200, dtype=np.int64), "u1"),                 # index features: one byte
    (np.arange(-5, 101, dtype=np.int64), "i1"),
    (np.arange(300, dtype=np.int64), "u2"),                 # distinct values: no table helps
    (np.arange(-40000, 40000, 7, dtype=np.int64), "i4"),
])
def test_integers_take_the_narrowest_dtype(values, member_dtype):
    spec, members = _round_trip("a", values)
    assert spec["codec"] == "int"
    assert members["a"].dtype == np.dtype(member_dtype)


def test_a_local_edge_index_is_stored_in_one_byte_per_entry():
    edge_index = np.random.default_rng(0).integers(0, 180, size=(2, 5000)).astype(np.int64)
    spec, members = _round_trip("edge_index", edge_index)
    assert spec["codec"] == "int" and members["edge_index"].dtype == np.uint8


def test_distinct_zero_one_rows_are_bit_packed():
    rng = np.random.default_rng(1)
    onehot = np.unique(rng.integers(0, 2, size=(64, 40)), axis=0).astype(np.float32)  # distinct rows
    spec, members = _round_trip("x", onehot)
    assert spec["codec"] == "bits"
    assert members["x"].dtype == np.uint8 and members["x"].nbytes == (onehot.size + 7) // 8


def test_bools_are_bit_packed():
    flags = np.random.default_rng(2).integers(0, 2, size=1000).astype(bool)
    spec, members = _round_trip("mask", flags)
    assert spec["codec"] == "bits" and members["mask"].nbytes == 125


def test_negative_zero_is_not_a_zero_bit():
    onehot = np.unique(np.random.default_rng(3).integers(0, 2, size=(64, 40)), axis=0).astype(np.float32)
    onehot[0, 0] = -0.0
    spec, _ = _round_trip("x", onehot)  # round trip compares bytes: the sign of -0.0 survives
    assert spec["codec"] != "bits"


def test_repeated_feature_rows_become_a_table_and_codes():
    rng = np.random.default_rng(4)
    table = np.zeros((5, 12), dtype=np.float32)
    table[np.arange(5), rng.integers(0, 11, size=5)] = 1.0
    table[:, 11] = [0.12011, 0.14007, 0.15999, 0.12011 + 1e-7, np.nan]  # a scalar column: not 0/1
    order = rng.integers(0, 5, size=3000)
    x = table[order]
    spec, members = _round_trip("x", x)
    assert spec["codec"] == "rows"
    assert members["x"].dtype == np.uint8 and members["x"].shape == (3000,)
    first_seen = list(dict.fromkeys(order.tolist()))  # the table keeps the order of first appearance
    assert np.array_equal(members["x.table"].view(np.uint32), table[first_seen].view(np.uint32))


def test_rows_tell_nan_payloads_apart():
    quiet, other = np.float32(np.nan), np.uint32(0x7FC00001).view(np.float32)
    column = np.array([quiet, other, 1.5, quiet] * 50, dtype=np.float32)
    spec, members = _round_trip("y", column[:, None])
    assert spec["codec"] == "rows" and len(members["y.table"]) == 3


@pytest.mark.parametrize("dtype", ["f4", "f8", "i8", "i4", "u1", "i2", "?", "f2"])
def test_random_arrays_round_trip_exactly(dtype):
    rng = np.random.default_rng(5)
    for shape in [(0,), (0, 3), (1,), (7,), (50, 3), (40, 2, 2)]:
        if dtype == "?":
            value = rng.integers(0, 2, size=shape).astype(bool)
        elif dtype.startswith("f"):
            value = rng.normal(size=shape).astype(dtype)
        else:
            info = np.iinfo(dtype)
            value = rng.integers(max(info.min, -1000), min(info.max, 1000), size=shape, endpoint=True).astype(dtype)
        _round_trip("a", value)
        _round_trip("a", torch.from_numpy(np.ascontiguousarray(value)))  # tensors too


def test_unusable_dtypes_and_bad_layouts_are_refused():
    with pytest.raises(TypeError, match="numpy dtype"):
        encode_array("x", torch.zeros(3, dtype=torch.bfloat16))
    with pytest.raises(TypeError, match="bool, integer and float"):
        encode_array("x", np.array(["a", "b"]))
    spec, members = encode_array("x", np.arange(10))
    with pytest.raises(ValueError, match="unknown codec 'zstd'"):
        decode_array("x", {**spec, "codec": "zstd"}, members)
    with pytest.raises(ValueError, match="layout says"):
        decode_array("x", {**spec, "shape": [11]}, members)


# -- graphs in the compact layout ----------------------------------------------------------------

@pytest.mark.parametrize("preset", ["multihot", "ogb"])
def test_compact_graphs_equal_the_featurized_ones(preset):
    featurizer = MolGraphFeaturizer.from_preset(preset)
    arrays = [featurizer.arrays(s) for s in SMILES]
    g = CollatedGraphs.from_arrays(arrays, meta={"featurizer": featurizer.to_config()},
                                   rows=list(range(0, 2 * len(SMILES), 2)))
    n_nodes, n_edges = int(g.atom_ptr[-1]), int(g.edge_ptr[-1])
    g.add_field("charge_i32", torch.arange(n_nodes, dtype=torch.int32) - 3, "node")
    g.add_field("bond_len", torch.linspace(0.9, 1.6, n_edges, dtype=torch.float64), "edge")
    g.add_field("energy", torch.tensor([float("nan"), -0.0] + [1.5] * (len(SMILES) - 2)), "graph")
    members = g.to_compact(prefix="graphs.")
    assert all(k.startswith("graphs.") for k in members)
    assert json.loads(str(members["graphs.layout"]))["format"] == COMPACT_FORMAT
    assert_same_graphs(g, CollatedGraphs.from_compact(members, prefix="graphs."))
    # the stored bytes are a small part of the tensors' bytes
    plain = sum(t.numel() * t.element_size() for t in (g.x, g.edge_attr, g.edge_index))
    packed = sum(members[k].nbytes for k in members if k.split(".", 1)[1].startswith(("field.x", "field.edge_attr",
                                                                                        "edge_index")))
    assert packed * 4 < plain


def test_compact_keeps_non_ascii_ids_offsets_and_missing_rows():
    g = CollatedGraphs(
        torch.ones(5, 2), torch.tensor([[0, 1], [1, 0]]), torch.zeros(2, 1), torch.tensor([0, 2, 5]),
        torch.tensor([0, 2, 2]), ["µ-graph", "naïve\u2603"], meta={"unit": "Å"},
    )
    h = CollatedGraphs.from_compact(g.to_compact())
    assert_same_graphs(g, h)
    assert h.rows is None
    # offsets are stored as counts: int32 pointers that do not start at 0 come back as they were
    odd = CollatedGraphs(torch.ones(5, 2), torch.zeros(2, 3, dtype=torch.int64), torch.zeros(3, 1),
                         torch.tensor([1, 2, 5], dtype=torch.int32), torch.tensor([1, 1, 3], dtype=torch.int32),
                         ["a", "b"])
    assert_same_graphs(odd, CollatedGraphs.from_compact(odd.to_compact()))


def test_from_compact_says_what_is_wrong():
    with pytest.raises(ValueError, match="no compact graph layout"):
        CollatedGraphs.from_compact({})
    g = CollatedGraphs.from_arrays([MolGraphFeaturizer.ogb().arrays("CCO")])
    members = g.to_compact()
    layout = json.loads(str(members["layout"]))
    members["layout"] = np.array(json.dumps({**layout, "format": "something/9"}))
    with pytest.raises(ValueError, match="something/9"):
        CollatedGraphs.from_compact(members)


# -- the dataset cache ---------------------------------------------------------------------------

def test_cache_round_trip_is_exact_and_small(tmp_path, caplog):
    csv = write_csv(tmp_path / "mols.csv", SMILES * 4)
    cache = tmp_path / "cache"
    caplog.set_level(logging.INFO, logger="molgraph.cache")
    first = MoleculeCSVDataset(csv, "smiles", ["y"], featurizer=MolGraphFeaturizer.multihot(), cache_dir=cache)
    assert not first.from_cache and first.cache_path.suffix == ".npz" and first.cache_path.is_file()
    [message] = [r.getMessage() for r in caplog.records if r.name == "molgraph.cache"]
    assert str(first.cache_path) in message and format_size(first.cache_path.stat().st_size) in message
    assert "mols.csv" in message and f"{len(first)} molecules" in message and "multihot" in message

    again = MoleculeCSVDataset(csv, "smiles", ["y"], featurizer=MolGraphFeaturizer.multihot(), cache_dir=cache)
    assert again.from_cache
    assert_same_graphs(first.graphs, again.graphs)
    assert_same_tensor(first.y, again.y, "y")
    assert torch.isnan(again.y).any()  # the missing label survives as NaN
    assert again.rejects == first.rejects and len(again.rejects) == 1
    for i in (0, len(again) - 1):
        a, b = first[i], again[i]
        for key in ("x", "edge_index", "edge_attr", "y"):
            assert_same_tensor(a[key], b[key], key)
        assert a.row == b.row and a.smiles == b.smiles
    # the old layout (torch.save of the tensors) would be over ten times larger
    plain = sum(t.numel() * t.element_size() for t in (first.graphs.x, first.graphs.edge_attr,
                                                       first.graphs.edge_index))
    assert first.cache_path.stat().st_size * 10 < plain


def test_cache_false_reads_and_writes_nothing(tmp_path):
    csv = write_csv(tmp_path / "mols.csv", SMILES)
    cache = tmp_path / "cache"
    off = MoleculeCSVDataset(csv, "smiles", ["y"], featurizer=MolGraphFeaturizer.ogb(), cache=False, cache_dir=cache)
    assert off.cache_path is None and not off.from_cache and not cache.exists()
    on = MoleculeCSVDataset(csv, "smiles", ["y"], featurizer=MolGraphFeaturizer.ogb(), cache_dir=cache)
    assert on.cache_path.is_file()
    off_again = MoleculeCSVDataset(csv, "smiles", ["y"], featurizer=MolGraphFeaturizer.ogb(), cache=False,
                                   cache_dir=cache)
    assert not off_again.from_cache  # an existing cache is not read either
    assert_same_graphs(on.graphs, off_again.graphs)


def test_load_dataset_passes_cache_false(molgraph_cache):
    from molgraph.data.registry import load_dataset

    before = set(os.listdir(molgraph_cache))
    ds = load_dataset("freesolv", featurizer=MolGraphFeaturizer.ogb(), cache=False, progress=False)
    assert len(ds) > 600 and not ds.from_cache and ds.cache_path is None
    assert set(os.listdir(molgraph_cache)) == before


def test_a_damaged_or_foreign_cache_file_is_featurized_again(tmp_path):
    csv = write_csv(tmp_path / "mols.csv", SMILES)
    cache = tmp_path / "cache"
    ds = MoleculeCSVDataset(csv, "smiles", ["y"], cache_dir=cache)
    path = ds.cache_path
    path.write_bytes(path.read_bytes()[:200])  # truncated
    again = MoleculeCSVDataset(csv, "smiles", ["y"], cache_dir=cache)
    assert not again.from_cache
    assert MoleculeCSVDataset(csv, "smiles", ["y"], cache_dir=cache).from_cache  # rewritten whole
    # a file under the same name for another key (the name holds only a prefix) is not served
    with np.load(path) as f:
        members = {k: f[k] for k in f.files}
    members["key_json"] = np.array(json.dumps({"another": "key"}))
    with open(path, "wb") as fh:
        np.savez(fh, **members)
    assert not MoleculeCSVDataset(csv, "smiles", ["y"], cache_dir=cache).from_cache


def test_an_unwritable_cache_folder_is_reported_not_fatal(tmp_path, caplog):
    csv = write_csv(tmp_path / "mols.csv", SMILES)
    blocker = tmp_path / "file_not_folder"
    blocker.write_text("x")
    caplog.set_level(logging.INFO, logger="molgraph.cache")
    ds = MoleculeCSVDataset(csv, "smiles", ["y"], cache_dir=blocker / "cache")
    assert len(ds) == len(SMILES)
    assert any("could not write the cache" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_the_write_line_goes_to_stderr_without_logging_setup(tmp_path, capsys, monkeypatch):
    logger = logging.getLogger("molgraph.cache")
    monkeypatch.setattr(logger, "propagate", False)  # no handler anywhere: a script or a notebook
    assert not logger.hasHandlers()
    target = tmp_path / "x.npz"
    target.write_bytes(b"\0" * 2500)
    line = announce_cache_write(target, "features of x.csv (3 molecules, ogb)")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == line + "\n"
    assert "\n" not in line and str(target) in line and "2.5 kB" in line


# -- tests stay out of the user's cache ----------------------------------------------------------

def test_tests_never_write_to_the_user_cache(tmp_path, monkeypatch, molgraph_cache):
    import platformdirs

    from molgraph.data.registry import load_dataset
    from molgraph.data.sources import cache_dir
    from molgraph.data.tu import load_tu

    real_home_cache = Path(platformdirs.user_cache_dir("molgraph"))
    assert os.environ["MOLGRAPH_CACHE"] == str(molgraph_cache)
    assert cache_dir() == molgraph_cache and real_home_cache not in molgraph_cache.parents
    real_before = set(real_home_cache.rglob("*")) if real_home_cache.is_dir() else set()

    # were MOLGRAPH_CACHE not set, the loads below would write into this fake home cache
    fake_home = tmp_path / "home_cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(fake_home))
    csv = write_csv(tmp_path / "home_check.csv", SMILES)
    written = [MoleculeCSVDataset(csv, "smiles", ["y"]).cache_path,
               load_dataset("freesolv", featurizer=MolGraphFeaturizer.ogb(), progress=False).cache_path]
    load_tu("mutag")
    assert all(p.parent == molgraph_cache and p.is_file() for p in written)
    assert any((molgraph_cache / "tu").iterdir())
    assert not fake_home.exists() or not any(fake_home.rglob("*"))
    # nothing these loads wrote appeared in the real home cache (others' files may come and go)
    real_after = set(real_home_cache.rglob("*")) if real_home_cache.is_dir() else set()
    new_names = {p.name for p in real_after - real_before}
    assert not new_names & {p.name for p in written}
    # a command-line subprocess inherits the session folder
    out = subprocess.run([sys.executable, "-m", "molgraph.cli.main", "cache", "info"], capture_output=True,
                         text=True, check=True, env={**os.environ, "XDG_CACHE_HOME": str(fake_home)}).stdout
    assert out.splitlines()[0] == f"cache folder: {molgraph_cache} ($MOLGRAPH_CACHE)"
    assert "home_check.csv" in out


# -- molgraph cache info | clear ------------------------------------------------------------------

def _populate(folder: Path, tmp_path: Path, monkeypatch) -> dict[str, Path]:
    """A cache folder with each kind of molgraph cache and look-alike files molgraph did not write."""
    from molgraph.data.tu import load_tu

    monkeypatch.setenv("MOLGRAPH_CACHE", str(folder))
    csv = write_csv(tmp_path / "clear_me.csv", SMILES)
    paths = {"features": MoleculeCSVDataset(csv, "smiles", ["y"]).cache_path}
    load_tu("mutag")
    [paths["tu"]] = list((folder / "tu").iterdir())
    # a TU folder from before the marker file: recognized by PyG's layout
    paths["tu_old"] = folder / "tu" / "MUTAG-0123456789abcdef"
    (paths["tu_old"] / "MUTAG" / "processed").mkdir(parents=True)
    (paths["tu_old"] / "MUTAG" / "processed" / "data.pt").write_bytes(b"\0" * 100)
    # an old-format .pt cache, as molgraph <= the compact format wrote it
    paths["old_pt"] = folder / "esol-0123456789abcdef0123.pt"
    torch.save({"key_json": json.dumps({"format": "molgraph.csv_dataset_cache/1"}), "y": torch.zeros(3)},
               paths["old_pt"])
    paths["qm9"] = folder / "qm9-0123456789abcdef0123.npz"
    np.savez(paths["qm9"], key=np.array(json.dumps({"format": "molgraph.qm9_cache/1", "targets": ["mu"],
                                                    "energy_unit": "eV", "molgraph_version": "0"})),
             index=np.arange(4), z=np.ones(9, dtype=np.uint8))
    paths["tmp_old"] = folder / ".tox21-0123456789abcdef0123.npz.ab12cd.tmp"
    paths["tmp_old"].write_bytes(b"\0" * 10)
    os.utime(paths["tmp_old"], (time.time() - 2 * 3600,) * 2)
    paths["tmp_young"] = folder / ".tox21-0123456789abcdef0124.npz.xy34zw.tmp"
    paths["tmp_young"].write_bytes(b"\0" * 10)
    return paths


def _foreign(folder: Path) -> dict[Path, bytes]:
    """Files molgraph did not write, some shaped like its own; returns their bytes."""
    before = set(folder.rglob("*"))
    (folder / "notes.txt").write_text("my notes")
    np.savez(folder / "foreign.npz", a=np.arange(3))
    np.savez(folder / "lookalike-0123456789abcdef0123.npz", format=np.array("someone.else/1"))
    torch.save({"weights": torch.ones(2)}, folder / "model.pt")
    with zipfile.ZipFile(folder / "archive.pt", "w") as zf:
        zf.writestr("archive/data.pkl", b"nothing of molgraph")
    (folder / ".notes.txt.ab12.tmp").write_text("not a cache temp name")
    (folder / "tu" / "README").write_text("mine")
    user_tu = folder / "tu" / "MUTAG-fedcba9876543210"  # a TU-like folder holding a user's file
    (user_tu / "MUTAG" / "processed").mkdir(parents=True)
    (user_tu / "MUTAG" / "processed" / "data.pt").write_bytes(b"\0")
    (user_tu / "my_results.csv").write_text("a,b\n")
    return {p: p.read_bytes() for p in set(folder.rglob("*")) - before if p.is_file()}


def test_info_lists_each_cache_with_size_and_content(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "cache"
    paths = _populate(folder, tmp_path, monkeypatch)
    foreign = _foreign(folder)
    scan = cache_cmd.scan_cache()
    assert scan.folder == folder
    kinds = {e.path: e.kind for e in scan.entries}
    assert kinds == {paths["features"]: "features", paths["tu"]: "tu", paths["tu_old"]: "tu",
                     paths["old_pt"]: "features (old format)", paths["qm9"]: "qm9",
                     paths["tmp_old"]: "unfinished", paths["tmp_young"]: "unfinished"}
    assert {e.path for e in scan.entries if not e.removable} == {paths["tmp_young"]}
    assert {folder / n for n in ("notes.txt", "foreign.npz", "lookalike-0123456789abcdef0123.npz", "model.pt",
                                 "archive.pt", ".notes.txt.ab12.tmp")} <= set(scan.others)
    assert folder / "tu" / "MUTAG-fedcba9876543210" in scan.others
    assert not set(scan.others) & set(kinds)
    assert len(foreign) >= 9

    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"cache folder: {folder} ($MOLGRAPH_CACHE)"
    feature_line = next(line for line in out if paths["features"].name in line)
    assert format_size(paths["features"].stat().st_size) in feature_line
    assert "clear_me.csv" in feature_line and f"{len(SMILES)} molecules" in feature_line
    assert any("old .pt format" in line and paths["old_pt"].name in line for line in out)
    assert any("QM9" in line and "4 molecules" in line for line in out)
    assert any("TU MUTAG" in line and line.rstrip().endswith("processed)") for line in out)
    assert out[-2] == f"total: 7 cache entries, {format_size(scan.total)}"
    assert out[-1].startswith("not molgraph's (never removed): ")


def test_clear_removes_only_what_molgraph_wrote(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "cache"
    paths = _populate(folder, tmp_path, monkeypatch)
    foreign = _foreign(folder)
    assert main(["cache", "clear", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "removed 6 cache entries" in out and "kept 1 unfinished" in out
    for key, path in paths.items():
        assert path.exists() == (key == "tmp_young"), key
    for path, content in foreign.items():  # untouched, byte for byte
        assert path.read_bytes() == content, path
    assert [e.path for e in cache_cmd.scan_cache().entries] == [paths["tmp_young"]]
    assert main(["cache", "clear", "--yes"]) == 0
    assert "nothing to remove" in capsys.readouterr().out


def test_clear_asks_first(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "cache"
    monkeypatch.setenv("MOLGRAPH_CACHE", str(folder))
    csv = write_csv(tmp_path / "ask.csv", SMILES)
    path = MoleculeCSVDataset(csv, "smiles", ["y"]).cache_path
    parser_args = ["cache", "clear"]
    questions = []

    def answer(reply):
        def ask(prompt: str) -> str:
            questions.append(prompt)
            if reply is EOFError:
                raise EOFError
            return reply
        return ask

    from molgraph.cli.main import build_parser

    for reply in ("", "n", EOFError):
        args = build_parser("cache").parse_args(parser_args)
        assert cache_cmd.run(args, ask=answer(reply)) == 1
        assert path.is_file()
    assert "nothing removed" in capsys.readouterr().err
    assert questions[0].startswith("remove 1 molgraph cache entry (") and str(folder) in questions[0]
    args = build_parser("cache").parse_args(parser_args)
    assert cache_cmd.run(args, ask=answer("y")) == 0
    assert not path.exists()


def test_info_of_a_missing_folder_and_with_dir(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["cache", "info", "--dir", str(missing)]) == 0
    out = capsys.readouterr().out
    assert f"{missing} (--dir)" in out and "nothing cached" in out
    assert main(["cache", "clear", "--dir", str(missing), "--yes"]) == 0
    assert not missing.exists()
    assert main(["cache"]) == 2  # no action: the help


def test_the_command_knows_the_writers_formats():
    from molgraph.data import csv_dataset, qm9, tu

    assert cache_cmd.CSV_CACHE_FORMAT == csv_dataset.CACHE_FORMAT
    assert cache_cmd.CSV_CACHE_LEGACY == csv_dataset.LEGACY_CACHE_FORMATS
    assert cache_cmd.QM9_CACHE_FORMAT == qm9._CACHE_FORMAT
    assert cache_cmd.TU_CACHE_FORMAT == tu.TU_CACHE_FORMAT
    assert cache_cmd.TU_CACHE_MARKER == tu.TU_CACHE_MARKER
    assert set(cache_cmd.TU_NAMES) == set(tu.TU_NAMES.values())
