"""The conformer benchmark's self-checks: it stops instead of reporting numbers from copies."""

from __future__ import annotations

import pytest
from rdkit import Chem

from molgraph.conformers import generate_conformers


def test_copies_among_conformers_stop_the_run(conformers_benchmark):
    bench = conformers_benchmark
    res = generate_conformers("CCCCOC", 3, seed=0, optimize=None)
    counts = bench._check_distinct([res], [3], "t")
    assert counts["molecules_complete"] == 1 and counts["molecules_failed"] == 0
    res.mol.AddConformer(Chem.Conformer(res.mol.GetConformer(0)), assignId=True)
    with pytest.raises(bench.BenchmarkCheckError, match="not all distinct"):
        bench._check_distinct([res], [4], "t")


def test_short_ensemble_needs_a_reason(conformers_benchmark):
    bench = conformers_benchmark
    res = generate_conformers("CCCCOC", 3, seed=0, optimize=None)
    with pytest.raises(bench.BenchmarkCheckError):
        bench._check_distinct([res], [5], "t")  # 3 of 5 and the generator rejected nothing
    res.n_stereo_rejected = 2
    assert bench._check_distinct([res], [5], "t")["molecules_short_stereo_rejected"] == ["CCCCOC: 3 of 5"]


def test_best_of_k_equal_to_first_everywhere_stops_the_run(conformers_benchmark):
    bench = conformers_benchmark
    rows = [{"failed": False, "first": 0.3, "best_of_10": 0.3}, {"failed": True},
            {"failed": False, "first": 0.7, "best_of_10": 0.7}]
    with pytest.raises(bench.BenchmarkCheckError, match="best of 10 equals the first"):
        bench._qm9_summary(rows, (10,), 0.5)
    rows[2]["best_of_10"] = 0.4
    out = bench._qm9_summary(rows, (10,), 0.5)
    # failures count as misses; the evaluated-only fraction is the old way
    assert out["best_of_10"]["frac_within_0.5A"] == pytest.approx(2 / 3)
    assert out["best_of_10"]["frac_within_0.5A_evaluated_only"] == pytest.approx(1.0)
    assert out["first"]["frac_within_0.5A"] == pytest.approx(1 / 3)
    assert out["generation_failures"] == 1
