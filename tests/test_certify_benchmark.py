"""``benchmarks/certify.py``: its self-checks fire on doctored inputs, the area bounds, the second
solvers on the exact matrices of ``collective_problem``, and the stage-2 command lines and collector.

Fast (no Cora-ML, no training): the benchmark itself runs the real data.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from molgraph.methods.certificates.collective import (
    CollectiveProblem,
    attribute_perturbation,
    collective_certificate,
    collective_problem,
)
from molgraph.methods.certificates.receptive import node_receptive_fields

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    """``benchmarks/certify.py`` as a module (benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("certify_benchmark", REPO / "benchmarks" / "certify.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(naive, collective, start=0, status="optimal"):
    return [{"radius": start + i, "naive": n, "collective": c, "status": status}
            for i, (n, c) in enumerate(zip(naive, collective))]


# ------------------------------------------------------------------------------------------- areas
def test_area_bounds_exact_with_every_radius(bench) -> None:
    a = bench.area_bounds([0, 1, 2, 3, 4], [1.0, 0.8, 0.5, 0.1, 0.0])
    assert a == {"lower": pytest.approx(1.4), "upper": pytest.approx(1.4), "exact": True}


def test_area_bounds_bracket_skipped_radii(bench) -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        full = np.sort(rng.random(30))[::-1]
        full[rng.integers(5, 30):] = 0.0
        full[0] = 1.0
        truth = float(full[1:].sum())
        keep = sorted({0, 29, *rng.choice(np.arange(1, 29), size=6, replace=False).tolist()})
        a = bench.area_bounds(keep, full[keep])
        assert a["lower"] - 1e-12 <= truth <= a["upper"] + 1e-12
        assert a["exact"] == (a["lower"] == pytest.approx(a["upper"]))


def test_area_bounds_open_curve_and_bad_input(bench) -> None:
    a = bench.area_bounds([0, 1, 5], [1.0, 0.6, 0.3])
    assert a["upper"] is None and not a["exact"] and a["lower"] == pytest.approx(0.6 + 4 * 0.3)
    # unordered radii are sorted first
    assert bench.area_bounds([2, 0, 1], [0.0, 1.0, 0.5])["lower"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        bench.area_bounds([1, 2], [0.5, 0.0])
    with pytest.raises(ValueError):
        bench.area_bounds([0, 1, 1], [1.0, 0.5, 0.5])


# ------------------------------------------------------------------------------------------ checks
def test_check_curve_passes_a_sound_curve(bench) -> None:
    assert bench.check_curve("ok", _rows([1, 0.8, 0.3, 0, 0], [1, 0.9, 0.6, 0.4, 0.2]), strict=True).startswith("passed")


@pytest.mark.parametrize("rows, strict, match", [
    (_rows([1, 0.8], [1, 0.9], status="failed: time limit"), False, "fell back to naive"),
    (_rows([1, 0.8, 0.5], [1, 0.7, 0.6]), False, "collective 0.7000 < naive"),
    (_rows([1, 0.5, 0.6], [1, 0.9, 0.9]), False, "naive rises"),
    (_rows([1, 0.5, 0.4], [1, 0.8, 0.9]), False, "collective rises"),
    (_rows([1, 0.5, 0.4], [1, 0.8, 0.4]), True, "does not beat naive"),
])
def test_check_curve_fires(bench, rows, strict, match) -> None:
    with pytest.raises(bench.BenchmarkCheckError, match=match):
        bench.check_curve("doctored", rows, strict=strict)


def test_check_curve_strict_allows_both_zero(bench) -> None:
    bench.check_curve("zeros", _rows([1, 0.5, 0, 0], [1, 0.8, 0.1, 0.0]), strict=True)


def test_check_targets(bench) -> None:
    rows = [{"radius": 20, "naive": 0.4320, "collective": 0.7740}]
    out = bench.check_targets("ok", rows, {20: (0.432, 0.774)})
    assert out["20"]["measured"] == [0.432, 0.774]
    bench.check_targets("within", [{"radius": 20, "naive": 0.4335, "collective": 0.7725}], {20: (0.432, 0.774)})
    with pytest.raises(bench.BenchmarkCheckError, match="does not reproduce"):
        bench.check_targets("off", [{"radius": 20, "naive": 0.432, "collective": 0.771}], {20: (0.432, 0.774)})
    with pytest.raises(bench.BenchmarkCheckError, match="not solved"):
        bench.check_targets("missing", rows, {4: (0.432, 0.831)})
    # the acceptance values are the issue's
    assert bench.STAGE1_TARGETS == {"attr_del": {20: (0.432, 0.774)}, "attr_add": {4: (0.432, 0.831)}}
    assert bench.TARGET_TOL == 0.002


def test_check_naive_area(bench) -> None:
    assert bench.check_naive_area("ok", {"lower": 12.4526, "upper": 12.4526, "exact": True}, 12.45).startswith("passed")
    with pytest.raises(bench.BenchmarkCheckError):
        bench.check_naive_area("inexact", {"lower": 12.45, "upper": 13.45, "exact": False}, 12.45)
    with pytest.raises(bench.BenchmarkCheckError):
        bench.check_naive_area("other grid", {"lower": 11.9, "upper": 11.9, "exact": True}, 12.45)


def test_check_milp_order(bench) -> None:
    assert bench.check_milp_order(358.19, 309.0, 254.0).startswith("passed")
    bench.check_milp_order(358.19, 358.19 + 1e-5, 254.0)  # HiGHS tolerance
    with pytest.raises(bench.BenchmarkCheckError, match="exceeds the LP optimum"):
        bench.check_milp_order(300.0, 309.0, 254.0)
    with pytest.raises(bench.BenchmarkCheckError, match="exceeds its dual bound"):
        bench.check_milp_order(358.19, 309.0, 320.0)
    with pytest.raises(bench.BenchmarkCheckError, match="no incumbent"):
        bench.check_milp_order(358.19, 309.0, None)


def test_check_agreement(bench) -> None:
    assert bench.check_agreement("ok", -635.31672698, -635.31673584) < 1e-7
    with pytest.raises(bench.BenchmarkCheckError, match="not the same problem"):
        bench.check_agreement("off", -635.3, -636.0)


# ---------------------------------------------------------------- the extracted problem, second solvers
def _toy(seed: int = 0, n: int = 14):
    rng = np.random.default_rng(seed)
    a = np.zeros((n, n))
    for v in range(1, n):
        u = int(rng.integers(0, v))
        a[u, v] = a[v, u] = 1
    grid = np.zeros((n, 3, 5), dtype=bool)
    for v in range(n):
        if rng.random() < 0.1:
            continue
        top = int(rng.integers(0, 5))
        for k in range(3):
            grid[v, k, : top + 1] = True
            top -= int(rng.integers(0, 3))
            if top < 0:
                break
    fields = node_receptive_fields(sp.csr_matrix(a), 2)
    return grid, [attribute_perturbation("attr_add", fields, 1), attribute_perturbation("attr_del", fields, 4)]


def test_collective_problem_matches_collective_certificate(bench) -> None:
    for seed in range(3):
        grid, types = _toy(seed)
        prob = collective_problem(grid, types)
        ref = collective_certificate(grid, types)
        assert isinstance(prob, CollectiveProblem) and sp.issparse(prob.A)
        assert prob.A.shape == (prob.constraint_ub.size, prob.n_vars) and not prob.integrality.any()
        assert (prob.n_targets, prob.n_free, prob.naive_certified) == (ref.n_targets, ref.attacked_free,
                                                                       ref.naive_certified)
        ours = bench.solve_scipy(prob)
        assert ours["status"] == "optimal"
        assert prob.certified(ours["optimum"]) == ref.certified
        assert prob.attacked_bound(ours["optimum"]) == pytest.approx(ref.attacked_bound)
        fallback = bench.solve_dense_fallback(prob)
        assert fallback["matrix"] == "dense"
        bench.check_agreement("fallback", ours["optimum"], fallback["optimum"])
        sparse = bench.solve_dense_fallback(prob, dense_limit=0)
        assert sparse["matrix"].startswith("sparse")
        bench.check_agreement("fallback sparse", ours["optimum"], sparse["optimum"])
    assert collective_problem(grid, types, mode="milp").integrality.any()


def test_trivial_problem_has_no_variables() -> None:
    grid, types = _toy(1)
    zero = [t.with_budget(0) for t in types]
    prob = collective_problem(grid, zero)
    ref = collective_certificate(grid, zero)
    assert prob.n_vars == 0 and ref.status == "trivial"
    assert prob.certified(0.0) == ref.certified == ref.naive_certified


def test_cvxpy_solves_the_same_problem(bench) -> None:
    cp = pytest.importorskip("cvxpy")
    grid, types = _toy(2)
    prob = collective_problem(grid, types)
    ours = bench.solve_scipy(prob)
    for solver in [s for s in ("CLARABEL", "HIGHS") if s in cp.installed_solvers()]:
        res = bench.solve_cvxpy(prob, solver)
        assert res["status"] == "optimal"
        bench.check_agreement(solver, ours["optimum"], res["optimum"])
        assert prob.certified(res["optimum"]) == prob.certified(ours["optimum"])


# ------------------------------------------------------------------------------------------ stage 2
def test_stage2_commands(bench, tmp_path: Path) -> None:
    args = bench.parse_args(["--parts", "stage2", "--stage2", "--data-root", str(tmp_path)])
    train, certify = bench.stage2_commands(args, "citeseer", tmp_path / "run", tmp_path / "out")
    assert train[3:] == ["train", "--method", "smoothed_gcn", "-d", "citeseer", "--data-root", str(tmp_path),
                         "--accelerator", "cpu", "--no-progress", "--quiet", "-o", str(tmp_path / "run")]
    assert certify[3:] == ["certify", "--model", str(tmp_path / "run"), "--n-samples", "10000", "--n0", "1000",
                           "--device", "cpu", "-o", str(tmp_path / "out")]
    gpu = bench.parse_args(["--parts", "stage2", "--stage2", "--accelerator", "gpu", "--max-radius", "500"])
    train, certify = bench.stage2_commands(gpu, "cora_ml", tmp_path / "run", tmp_path / "out")
    assert "gpu" in train
    assert certify[certify.index("--n-samples") + 1] == "100000" and certify[certify.index("--device") + 1] == "cuda"
    assert certify[-2:] == ["--max-radius", "500"]
    n = bench.parse_args(["--stage2", "--accelerator", "gpu", "--n-samples", "2000"])
    assert bench.n_samples(n) == 2000 and n.parts == ["stage1", "speed", "stage2"]
    assert bench.parse_args([]).parts == ["stage1", "speed"]
    with pytest.raises(SystemExit):
        bench.parse_args(["--parts", "stage2"])  # minutes of work only on request


def _fake_certify_output(folder: Path, collective_del=(1.0, 0.9, 0.8, 0.7), drop: str | None = None) -> Path:
    folder.mkdir()
    summary = {"accuracy_smoothed": 0.84, "abstain_ratio": 0.08, "certified_and_correct_at_0": 0.8,
               "n_targets": 100, "targets": "test", "n_samples": 10000, "n0": 1000, "alpha": 0.01,
               "smoothing": {"p_plus": 0.01, "p_minus": 0.6}, "vote_seconds": 1.0, "graph": {"name": "cora_ml"},
               "types": {"attr_del": {"grid_extent": 2, "average_certifiable_naive": [0.8, 1.72],
                                      "average_certifiable_collective": [2.4, float("inf")],
                                      "solve_seconds_total": 0.1}}}
    if drop:
        summary.pop(drop)
    (folder / "summary.json").write_text(json.dumps(summary, default=float))
    lines = ["type,radius,naive_ratio,collective_ratio,solve_seconds"]
    for r, (nv, cv) in enumerate(zip((0.92, 0.6, 0.2, 0.0), collective_del)):
        lines.append(f"attr_del,{r},{nv},{cv},0.01")
    (folder / "curves.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_collect_stage2(bench, tmp_path: Path) -> None:
    entry = bench.collect_stage2(_fake_certify_output(tmp_path / "ok"))
    t = entry["types"]["attr_del"]
    assert t["naive_max_radius"] == 2
    assert t["average_certifiable_naive"] == {"lower": pytest.approx(0.8), "upper": pytest.approx(0.8), "exact": True}
    assert t["average_certifiable_collective"]["upper"] is None
    assert t["summary_json_average_certifiable"]["collective"]["upper"] is None  # Infinity read back
    assert entry["accuracy_smoothed"] == 0.84 and entry["checks"]["attr_del"].startswith("passed")
    with pytest.raises(bench.BenchmarkCheckError, match="collective"):
        bench.collect_stage2(_fake_certify_output(tmp_path / "below", collective_del=(1.0, 0.5, 0.4, 0.3)))
    with pytest.raises(bench.BenchmarkCheckError, match="lacks accuracy_smoothed"):
        bench.collect_stage2(_fake_certify_output(tmp_path / "missing", drop="accuracy_smoothed"))


def test_quotes_are_labelled(bench) -> None:
    assert "abstract" in bench.PAPER_HEADLINE["label"] and (bench.PAPER_HEADLINE["naive"],
                                                             bench.PAPER_HEADLINE["collective"]) == (7, 351)
    assert "demo" in bench.DEMO_RADII["label"] and (bench.DEMO_RADII["max_ra"], bench.DEMO_RADII["max_rd"],
                                                     bench.DEMO_RADII["n_samples"]) == (6, 18, 100_000)


def test_speed_falls_back_without_cvxpy(bench, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "cvxpy", None)  # import cvxpy raises ImportError
    solvers, description = bench.speed_solvers(bench.parse_args([]))
    assert list(solvers) == ["scipy_linprog_highs_ipm_dense"] and "cvxpy is not installed" in description


def test_speed_refuses_an_unknown_cvxpy_solver(bench) -> None:
    pytest.importorskip("cvxpy")
    with pytest.raises(SystemExit, match="NO_SUCH_SOLVER"):
        bench.speed_solvers(bench.parse_args(["--cvxpy-solvers", "NO_SUCH_SOLVER"]))
