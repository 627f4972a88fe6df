"""`molgraph featurize --engine dask` writes the local engine's shard folder, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from molgraph.cli.main import main
from molgraph.data.registry import dataset_path

pytest.importorskip("dask.distributed", reason="the Dask engine needs molgraph-ml[dask]")


def test_dask_engine_from_the_command_line_equals_the_local_engine(tmp_path, capsys):
    df = pd.read_csv(dataset_path("bbbp"))
    pd.DataFrame({"smiles": df["smiles"][:150], "p_np": df["p_np"][:150]}).to_csv(tmp_path / "in.csv", index=False)
    common = ["featurize", "-i", str(tmp_path / "in.csv"), "-s", "smiles", "--errors", "skip", "--shard-size", "60",
              "--target-columns", "p_np", "--n-jobs", "2", "--no-progress"]
    assert main([*common, "-o", f"{tmp_path / 'local'}/"]) == 0
    capsys.readouterr()
    assert main([*common, "--engine", "dask", "-o", f"{tmp_path / 'dask'}/"]) == 0
    import json

    totals = json.loads((tmp_path / "local" / "manifest.json").read_text())["totals"]
    assert f"featurized {totals['n_graphs']} molecules on Dask" in capsys.readouterr().err and totals["n_graphs"] > 100
    local = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local").rglob("*") if p.is_file())
    dask = sorted(p.relative_to(tmp_path / "dask") for p in (tmp_path / "dask").rglob("*") if p.is_file())
    assert local == dask and len(local) > 3
    for rel in local:
        assert (tmp_path / "local" / rel).read_bytes() == (tmp_path / "dask" / rel).read_bytes(), rel


def test_dask_engine_names_a_missing_column_without_a_traceback(tmp_path, capsys):
    assert main(["featurize", "-i", str(dataset_path("esol")), "-s", "no_such_column", "--engine", "dask",
                 "-o", f"{tmp_path / 'out'}/"]) == 1
    assert "no_such_column" in capsys.readouterr().err


def test_dask_engine_needs_a_shard_folder(tmp_path, capsys):
    assert main(["featurize", "-i", str(dataset_path("esol")), "-s", "smiles", "--engine", "dask",
                 "-o", str(tmp_path / "out.npz")]) == 2
    assert "--engine dask writes a folder of shards" in capsys.readouterr().err
