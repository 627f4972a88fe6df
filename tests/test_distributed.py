"""The Dask engine (:mod:`molgraph.data.distributed`) writes the local engine's shard folder,
byte for byte: arrays, rejects and manifest, with targets, rejects and an all-rejected shard; resume
and raise mode behave as the local engine's. One LocalCluster of 2 worker processes serves the module.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install 'molgraph-ml[dask]')")

from distributed import Client, LocalCluster  # noqa: E402

from molgraph.chem import MoleculeError  # noqa: E402
from molgraph.cli.main import main  # noqa: E402
from molgraph.data.shards import ShardedGraphs, ShardError  # noqa: E402
from molgraph.data.table import read_molecule_table  # noqa: E402
from molgraph.featurizers import MolGraphFeaturizer, Reject, iter_featurize  # noqa: E402
from molgraph.data import distributed as dist  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ESOL = REPO / "datasets" / "esol" / "delaney-processed.csv"
SHARD = 100
# input rows that give no graph; shard 0 is clean (raise mode then leaves one complete shard),
# and rows 300-302 form the last shard, which therefore holds no graph at all
BAD = {120: "this is not smiles", 150: "", 199: "C1CC", 250: "c1cccc1", 300: "N(C)(C)(C)(C)C", 301: "C1CC", 302: "xx"}
N_ROWS = 303


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """ESOL's first rows with bad SMILES spliced in; target y with empty and NaN-like cells."""
    with open(ESOL, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        good = [(r["smiles"], r["measured log solubility in mols per litre"]) for r in reader]
    rows = []
    it = iter(good)
    for i in range(N_ROWS):
        smiles, y = (BAD[i], "1.5") if i in BAD else next(it)
        if i % 37 == 5:
            y = ""  # a missing label
        elif i % 41 == 7:
            y = "NaN"
        rows.append((f"m{i}", smiles, y))
    path = tmp_path_factory.mktemp("dask-input") / "library.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "smiles", "y"])
        w.writerows(rows)
    return path


def _local(src: Path, out: Path, *extra: str) -> int:
    return main(["featurize", "-i", str(src), "-o", f"{out}/", "--shard-size", str(SHARD), "--no-progress", *extra])


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _assert_same_folder(got: Path, want: Path) -> None:
    a, b = _files(got), _files(want)
    assert sorted(a) == sorted(b)
    differ = [name for name in a if a[name] != b[name]]
    assert not differ, f"files differ from the local engine's: {differ}"


@pytest.fixture(scope="module")
def local_ref(library, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dask-ref") / "local"
    assert _local(library, out, "-s", "smiles", "--target-columns", "y", "--errors", "skip") == 0
    return out


def test_partition_equals_iter_featurize_of_its_rows(library) -> None:
    table = read_molecule_table(library, "smiles", ["y"])  # the package's own row and label rules
    first, n = 140, 70  # rows 140..209: three bad rows inside, a missing and a NaN label
    config = MolGraphFeaturizer.ogb().to_config()
    arrays, rows, y, rejects = dist.featurize_partition(library, first, n, "smiles", ["y"], config)
    expected = list(iter_featurize(table.smiles[first:first + n], MolGraphFeaturizer.ogb(), errors="skip"))
    want_graphs = [(first + i, r) for i, r in expected if not isinstance(r, Reject)]
    assert rows == [i for i, _ in want_graphs]
    for got, (_, want) in zip(arrays, want_graphs, strict=True):
        assert got.smiles == want.smiles
        for name in ("x", "edge_index", "edge_attr"):
            assert getattr(got, name).dtype == getattr(want, name).dtype
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
    assert rejects == [r._replace(index=first + i) for i, r in expected if isinstance(r, Reject)]
    assert [r.index for r in rejects] == [150, 199]
    assert y.dtype == np.float32 and y.shape == (len(rows), 1)
    np.testing.assert_array_equal(y[:, 0], table.targets[rows, 0].astype(np.float32))
    assert np.isnan(y).sum() == 3  # rows 153 and 190 (empty), 171 ("NaN")
    with pytest.raises(MoleculeError) as err:
        dist.featurize_partition(library, first, n, "smiles", [], config, errors="raise")
    assert err.value.index == 150 and "empty" in err.value.reason


def test_partition_past_the_end_of_the_file_is_an_error(library) -> None:
    config = MolGraphFeaturizer.ogb().to_config()
    with pytest.raises(ValueError, match="expected 100 rows from row 250"):
        dist.featurize_partition(library, 250, 100, "smiles", [], config)


def test_dask_shards_equal_the_local_engine_byte_for_byte(client, library, local_ref, tmp_path) -> None:
    out = tmp_path / "dask"
    seen: list[dist.ShardInfo] = []
    manifest = dist.featurize_to_shards_dask(
        str(library), out, smiles_column="smiles", target_columns=["y"], featurizer=MolGraphFeaturizer.ogb(),
        shard_size=SHARD, errors="skip", scheduler=client, progress=seen.append,
    )
    _assert_same_folder(out, local_ref)
    assert manifest["complete"] and manifest["totals"]["n_input_rows"] == N_ROWS
    assert sorted(s.index for s in seen) == [0, 1, 2, 3]
    assert {s.index: s.n_graphs for s in seen}[3] == 0  # the all-rejected shard
    assert len({s.worker for s in seen}) == 2  # both worker processes took shards
    graphs = ShardedGraphs.open(out)
    assert len(graphs) == N_ROWS - len(BAD)
    assert [r.index for r in graphs.rejects()] == sorted(BAD)


def test_own_local_cluster_smi_input_without_targets(library, tmp_path) -> None:
    """scheduler=None starts (and stops) a LocalCluster; .smi input; the multihot preset."""
    smi = tmp_path / "library.smi"
    with open(library, newline="", encoding="utf-8") as fh:
        smi.write_text("".join(f"{r['smiles'] or '.'} {r['name']}\n" for r in csv.DictReader(fh)), encoding="utf-8")
    ref, out = tmp_path / "local", tmp_path / "dask"
    assert _local(smi, ref, "--featurizer", "multihot", "--errors", "skip") == 0
    dist.featurize_to_shards_dask(smi, out, smiles_column="smiles", featurizer=MolGraphFeaturizer.multihot(),
                                  shard_size=SHARD, progress=False)
    _assert_same_folder(out, ref)


def test_the_own_local_cluster_gets_the_quiet_worker_settings() -> None:
    import dask

    def settings() -> dict:
        return {key: dask.config.get(key) for key in dist.LOCAL_CLUSTER_CONFIG}

    with dist._connect(None, n_workers=1) as c:
        got = c.run(settings)
        assert list(got.values()) == [dist.LOCAL_CLUSTER_CONFIG]
        assert len(c.nthreads()) == 1 and list(c.nthreads().values()) == [1]


def test_resume_featurizes_only_the_damaged_shard(client, library, local_ref, tmp_path) -> None:
    out = tmp_path / "resumed"
    shutil.copytree(local_ref, out)
    damaged = out / "shard-00001" / "x.npy"
    data = damaged.read_bytes()
    damaged.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # the checksum no longer matches
    seen: list[dist.ShardInfo] = []
    dist.featurize_to_shards_dask(  # by address: a client of its own on the module's cluster
        library, out, smiles_column="smiles", target_columns=["y"], shard_size=SHARD,
        scheduler=client.scheduler.address, resume=True, progress=seen.append,
    )
    assert [s.index for s in seen] == [1]
    _assert_same_folder(out, local_ref)


def test_raise_mode_stops_at_the_first_bad_row(client, library, local_ref, tmp_path, capsys) -> None:
    """Both engines name row 120. The local engine writes the shards whose rows came in chunks before
    the bad one's (chunking decides); the Dask engine writes every shard before the bad row's, in order."""
    ref, out = tmp_path / "local", tmp_path / "dask"
    assert _local(library, ref, "-s", "smiles", "--target-columns", "y") == 1
    assert "error: row 120: 'this is not smiles'" in capsys.readouterr().err
    with pytest.raises(MoleculeError) as err:
        dist.featurize_to_shards_dask(library, out, smiles_column="smiles", target_columns=["y"],
                                      shard_size=SHARD, errors="raise", scheduler=client, progress=False)
    assert err.value.index == 120 and err.value.input == BAD[120]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "shard-00000"]
    shard0 = _files(out / "shard-00000")
    assert shard0 == _files(local_ref / "shard-00000")  # shard 0 is clean: the same as the skip run's
    with pytest.raises(ShardError, match="complete: false"):
        ShardedGraphs.open(out)
    # resuming in skip mode completes it: the skip run's folder
    dist.featurize_to_shards_dask(library, out, smiles_column="smiles", target_columns=["y"], shard_size=SHARD,
                                  scheduler=client, resume=True, progress=False)
    _assert_same_folder(out, local_ref)


@pytest.mark.parametrize("existed", [False, True])
def test_a_failure_before_the_first_shard_leaves_the_folder_as_it_was(client, tmp_path, existed) -> None:
    src = tmp_path / "few.csv"
    src.write_text("smiles\nCCO\nCC(\nc1ccccc1\n", encoding="utf-8")
    out = tmp_path / "out"
    if existed:
        out.mkdir()
    with pytest.raises(MoleculeError) as err:
        dist.featurize_to_shards_dask(src, out, smiles_column="smiles", errors="raise", scheduler=client,
                                      progress=False)
    assert err.value.index == 1
    assert out.exists() == existed and (not existed or not any(out.iterdir()))


def test_bad_requests_fail_before_any_folder_or_task(client, library, tmp_path) -> None:
    out = tmp_path / "never"
    kw = dict(smiles_column="smiles", shard_size=SHARD, scheduler=client, progress=False)
    with pytest.raises(KeyError, match="not found; columns present"):
        dist.featurize_to_shards_dask(library, out, **{**kw, "smiles_column": "SMILES"})
    with pytest.raises(KeyError, match="nope"):
        dist.featurize_to_shards_dask(library, out, target_columns=["nope"], **kw)
    sdf = tmp_path / "mols.sdf"
    sdf.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="not SDF"):
        dist.featurize_to_shards_dask(sdf, out, **kw)
    with pytest.raises(FileNotFoundError):
        dist.featurize_to_shards_dask(tmp_path / "missing.csv", out, **kw)
    with pytest.raises(ValueError, match="errors must be"):
        dist.featurize_to_shards_dask(library, out, errors="ignore", **kw)
    with pytest.raises(ValueError, match="n_workers sizes the LocalCluster"):
        dist.featurize_to_shards_dask(library, out, n_workers=4, **kw)
    assert not out.exists()
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(ShardError, match="not empty"):
        dist.featurize_to_shards_dask(library, taken, **kw)
    assert sorted(p.name for p in taken.iterdir()) == ["notes.txt"]


def test_workers_with_other_versions_are_refused() -> None:
    class FakeClient:
        def run(self, fn):
            return {"tcp://node7:4000": {**dist._worker_versions(), "rdkit": "2001.01.1"}}

        def nthreads(self):
            return {"tcp://node7:4000": 1}

    with pytest.raises(RuntimeError, match=r"node7.*rdkit 2001\.01\.1"):
        dist._check_workers(FakeClient())
