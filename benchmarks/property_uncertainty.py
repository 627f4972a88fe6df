"""Property benchmark, uncertainty rows: each uncertainty method of molgraph against chemprop v2's same
method on the same split files, and the per-epoch speed of ``--compile``.

Part ``uncertainty`` (``--datasets``, ``--methods``, ``--seeds``): for every (dataset, method, seed)

1. ``molgraph train --config models/dmpnn_<dataset>.toml`` with the anchor's split, the seed, the
   method (``--uncertainty mve|evidential|dirichlet|mc-dropout``, or ``--ensemble-size K`` for
   ``ensemble``) and a calibration fitted on the validation split (``zscale`` for regression,
   ``platt`` for classification), graph only (the recipe's molecule features are dropped, for
   both libraries);
2. chemprop v2 through ``benchmarks/chemprop_runner.py`` on the same split rows (the molgraph run's
   ``splits.json``), seed and recipe settings, with its own head of the same name (``MveFFN``,
   ``EvidentialFFN``, ``BinaryDirichletFFN``), MC dropout (dropout layers on at prediction) or K
   runs with seeds ``seed .. seed + K - 1`` for the ensemble;
3. both scored by the same code (``molgraph.train.metrics``, ``molgraph.train.uncertainty_metrics``):
   test RMSE or ROC-AUC; NLL; miscalibration area (regression) or ECE and Brier (classification);
   Spearman of |error| with the std; uncalibrated ("raw") and after the same calibration fitted on
   each library's own validation predictions.

The script checks itself: both libraries must have scored the same test rows, and molgraph's
``test_predictions.csv`` must give back the RMSE / ROC-AUC its ``metrics.json`` reports.

Part ``compile`` (``--compile-models``): ``molgraph train`` on ``--compile-dataset`` for ``--compile-epochs``
epochs with and without ``--compile``, interleaved; the median seconds per training epoch after
the first (the first pays for compilation) and the process wall time.

Part ``hpopt`` (``--hpopt-study STUDY_DIR``, from ``molgraph hpopt``): the test RMSE of the search's
best configuration (``STUDY_DIR/best.toml``) trained with ``--hpopt-epochs`` epochs on the seeds
``--hpopt-seeds`` (data seed = model seed, as ``benchmarks/property.py`` does), beside the recipe
(``--hpopt-recipe``) trained the same way on the seeds ``--hpopt-recipe-seeds``; the search's trials,
best values and wall time (first trial's start to last trial's end, from ``study.db``). It checks
that the search's split (``search_split.json``) has no test rows and equals the training and
validation rows of the same data seed's run, so the search never saw that run's test rows, and that
each run's ``test_predictions.csv`` gives back its RMSE. Runs on another data seed than the
search's are flagged: their test rows were among the search's training or validation rows.

Usage::

    python benchmarks/property_uncertainty.py --parts uncertainty --datasets esol --methods mve --seeds 0 \\
        --chemprop-python .venv-chemprop/bin/python --epochs 30
    python benchmarks/property_uncertainty.py --parts compile --compile-models dmpnn gin
    python benchmarks/property_uncertainty.py --parts hpopt --hpopt-study runs/hpopt_lipo --hpopt-seeds 0 1 2 \
        --hpopt-recipe-seeds 0

Results: ``benchmarks/results/property_uncertainty.json`` (merged by part, see ``_harness.py``),
and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import _harness as harness  # noqa: E402

# dataset -> (split, task type); the splits of the property benchmark's anchors (benchmarks/property.py)
DATASETS = {
    "esol": ("random", "regression"),
    "freesolv": ("random", "regression"),
    "lipophilicity": ("balanced_scaffold", "regression"),
    "bbbp": ("balanced_scaffold", "classification"),
}
METHODS = {"regression": ("mve", "evidential", "ensemble", "mc-dropout"),
           "classification": ("dirichlet", "ensemble", "mc-dropout")}
CALIBRATION = {"regression": "zscale", "classification": "platt"}
MC_DROPOUT = 0.1  # dropout of the MC-dropout runs (the recipes have none)
MC_SAMPLES = 10
# the recipe keys chemprop_runner takes (job key -> recipe key), as benchmarks/property.py reads them
CHEMPROP_FROM_RECIPE = {"batch_size": "batch_size", "hidden_dim": "hidden_dim", "depth": "depth",
                        "ffn_hidden_dim": "ffn_hidden_dim", "ffn_layers": "ffn_layers", "dropout": "dropout",
                        "aggregation": "readout", "warmup_epochs": "warmup_epochs", "init_lr": "init_lr",
                        "max_lr": "max_lr", "final_lr": "final_lr"}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return env


def graph_only_recipe(dataset: str, workdir: Path) -> tuple[Path, dict[str, Any]]:
    """``models/dmpnn_<dataset>.toml`` without its molecule features (both libraries see graphs only)."""
    import tomli_w

    recipe = harness.load_recipe(f"dmpnn_{dataset}", required=["epochs", *CHEMPROP_FROM_RECIPE.values()])
    kept = {k: v for k, v in recipe.items() if k != "molecule_featurizers"}
    path = workdir / f"dmpnn_{dataset}.graph_only.toml"
    path.write_text(tomli_w.dumps(kept))
    return path, kept


def method_flags(method: str, ensemble_size: int) -> list[str]:
    if method == "ensemble":
        return ["--ensemble-size", str(ensemble_size)]
    if method == "mc-dropout":
        return ["--uncertainty", "mc-dropout", "--dropout", str(MC_DROPOUT), "--mc-dropout-samples", str(MC_SAMPLES)]
    return ["--uncertainty", method]


def run_molgraph(dataset: str, method: str, seed: int, recipe_path: Path, epochs: int, ensemble_size: int,
                 workdir: Path) -> dict[str, Any]:
    split, task_type = DATASETS[dataset]
    run_dir = workdir / f"molgraph-{dataset}-{method}-seed{seed}"
    cmd = [sys.executable, "-m", "molgraph.cli.main", "train", "--config", str(recipe_path), "--dataset", dataset,
           "--split", split, "--data-seed", str(seed), "--seed", str(seed), "--epochs", str(epochs),
           "--calibration", CALIBRATION[task_type], "--accelerator", "cpu", "--no-progress", "--quiet",
           "-o", str(run_dir), *method_flags(method, ensemble_size)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"molgraph train failed ({dataset}, {method}, seed {seed}):\n{proc.stderr[-3000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    primary = metrics["primary_metric"]
    # self-check: the written test predictions give back the reported primary metric
    import pandas as pd

    from molgraph.train.metrics import compute_metrics

    pred = pd.read_csv(run_dir / "test_predictions.csv")
    target = [c for c in pred.columns if f"{c}_pred" in pred.columns]
    again = compute_metrics(pred[[f"{t}_pred" for t in target]].to_numpy(), pred[target].to_numpy(), task_type,
                            [primary], target)[primary]
    if not np.isclose(again, metrics["test"][primary], rtol=1e-6, atol=1e-9):
        raise RuntimeError(f"{run_dir}: test_predictions.csv gives {primary} {again}, metrics.json {metrics['test'][primary]}")
    unc = metrics["uncertainty"]["test"]
    return {"run_dir": str(run_dir), "wall_seconds": time.perf_counter() - t0, primary: metrics["test"][primary],
            "raw": unc["raw"], "calibrated": unc.get("calibrated"), "method": metrics["uncertainty"]["method"],
            "test_rows": sorted(int(r) for r in pred["row"])}


def _chemprop_job(python: str, dataset: str, run_dir: Path, seed: int, settings: dict[str, Any], epochs: int,
                  workdir: Path, tag: str, **extra: Any) -> dict[str, Any]:
    from molgraph.data.registry import dataset_path, get_card

    card = get_card(dataset)
    splits = json.loads((run_dir / "splits.json").read_text())
    job = {"csv": str(dataset_path(dataset)), "smiles_column": card.smiles_column,
           "target_columns": list(card.target_columns), "task_type": card.task_type,
           "split": {k: splits[k] for k in ("train", "val", "test")}, "seed": seed, "threads": 1,
           "epochs": epochs, **settings, **extra}
    job_path, out_path = workdir / f"chemprop-{tag}.job.json", workdir / f"chemprop-{tag}.out.json"
    job_path.write_text(json.dumps(job))
    proc = subprocess.run([python, str(ROOT / "benchmarks" / "chemprop_runner.py"), str(job_path), str(out_path)],
                          cwd=ROOT, env=_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"chemprop failed ({tag}):\n{proc.stderr[-3000:]}")
    return json.loads(out_path.read_text())


def run_chemprop(python: str, dataset: str, method: str, seed: int, run_dir: Path, settings: dict[str, Any],
                 epochs: int, ensemble_size: int, workdir: Path) -> dict[str, Any]:
    """chemprop's same method on the molgraph run's split; scored like molgraph's."""
    from molgraph.data.registry import dataset_path, get_card
    from molgraph.data.table import read_molecule_table
    from molgraph.train.calibration import fit_calibrator
    from molgraph.train.metrics import compute_metrics, default_metrics
    from molgraph.train.uncertainty_metrics import uncertainty_metrics

    card = get_card(dataset)
    task_type = card.task_type
    t0 = time.perf_counter()
    tag = f"{dataset}-{method}-seed{seed}"
    if method == "ensemble":
        outs = [_chemprop_job(python, dataset, run_dir, seed + k, settings, epochs, workdir, f"{tag}-m{k}")
                for k in range(ensemble_size)]
    elif method == "mc-dropout":
        outs = [_chemprop_job(python, dataset, run_dir, seed, {**settings, "dropout": MC_DROPOUT}, epochs, workdir, tag,
                              mc_dropout_samples=MC_SAMPLES)]
    else:
        outs = [_chemprop_job(python, dataset, run_dir, seed, settings, epochs, workdir, tag, uncertainty=method)]
    table = read_molecule_table(dataset_path(dataset), card.smiles_column, list(card.target_columns))
    parts = {}
    for part in ("val", "test"):
        rows = outs[0][f"{part}_rows"]
        if any(o[f"{part}_rows"] != rows for o in outs):
            raise RuntimeError(f"chemprop {tag}: the ensemble members scored different {part} rows")
        means = np.stack([np.asarray(o[f"{part}_predictions"], dtype=float) for o in outs])
        var = None
        if outs[0][f"{part}_variances"] is not None:
            var = np.mean([np.asarray(o[f"{part}_variances"], dtype=float) for o in outs], axis=0)
        if len(outs) > 1:
            spread = means.var(axis=0, ddof=1)
            var = spread if var is None else var + spread
        y = table.targets[np.asarray(rows, dtype=np.int64)]
        parts[part] = (y, means.mean(axis=0), None if var is None else np.sqrt(var), rows)
    primary = default_metrics(task_type)[0]
    y, mean, std, rows = parts["test"]
    cal = fit_calibrator(CALIBRATION[task_type], task_type, parts["val"][0], parts["val"][1], parts["val"][2])
    cmean, cstd = (mean, cal.apply_std(std)) if task_type == "regression" else (cal.apply_prob(mean), std)
    return {"wall_seconds": time.perf_counter() - t0, primary: compute_metrics(mean, y, task_type, [primary])[primary],
            "raw": uncertainty_metrics(task_type, y, mean, std), "calibrated": uncertainty_metrics(task_type, y, cmean, cstd),
            "chemprop_version": outs[0]["chemprop_version"], "test_rows": sorted(int(r) for r in rows)}


def _summary(values: list[float]) -> dict[str, float]:
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if arr.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0, "n": int(arr.size)}


def summarize(entry: dict[str, Any], task_type: str) -> dict[str, Any]:
    """Mean and sd over seeds of every number of both libraries."""
    primary = "rmse" if task_type == "regression" else "roc_auc"
    keys = ("nll", "miscalibration_area", "spearman") if task_type == "regression" else ("ece", "brier", "nll")
    out: dict[str, Any] = {}
    for lib in ("molgraph", "chemprop"):
        runs = [r[lib] for r in entry["seeds"].values() if lib in r]
        if not runs:
            continue
        s = {primary: _summary([r[primary] for r in runs])}
        for stage in ("raw", "calibrated"):
            s[stage] = {k: _summary([(r.get(stage) or {}).get(k) for r in runs]) for k in keys}
        out[lib] = s
    return out


def table(results: dict[str, Any]) -> list[str]:
    lines = ["| dataset (split) | method | library | seeds | test RMSE / ROC-AUC | NLL raw | NLL cal. | "
             "miscal. area or ECE, raw | same, calibrated | Spearman or Brier, raw |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def cell(s: dict[str, float]) -> str:
        return "-" if not s or s["n"] == 0 else (f"{s['mean']:.3f} ± {s['std']:.3f}" if s["n"] > 1 else f"{s['mean']:.3f}")

    for dataset, methods in results.get("uncertainty", {}).items():
        split, task_type = DATASETS[dataset]
        primary = "rmse" if task_type == "regression" else "roc_auc"
        cal_key = "miscalibration_area" if task_type == "regression" else "ece"
        third = "spearman" if task_type == "regression" else "brier"
        for method, entry in methods.items():
            for lib, s in entry.get("summary", {}).items():
                lines.append(f"| {dataset} ({split}) | {method} | {lib} | {s[primary]['n']} | {cell(s[primary])} | "
                             f"{cell(s['raw']['nll'])} | {cell(s['calibrated']['nll'])} | {cell(s['raw'][cal_key])} | "
                             f"{cell(s['calibrated'][cal_key])} | {cell(s['raw'][third])} |")
    for dataset, entry in results.get("hpopt", {}).items():
        srch, summ = entry["search"], entry["summary"]
        lines += ["", f"hpopt {dataset}: {srch['trials']} in {srch['wall_seconds']:.0f} s, best trial {srch['best_trial']} "
                      f"(validation {srch['best_value']:.4f}): {srch['best_params']}",
                  "| configuration | seed | epochs | test RMSE | val RMSE | test rows seen by the search |", "|---|---|---|---|---|---|"]
        for name, runs in entry["runs"].items():
            for seed, r in runs.items():
                lines.append(f"| {name} | {seed} | {r['epochs']} | {r['test']['rmse']:.3f} | {r['val']['rmse']:.3f} | "
                             f"{r['test_rows_seen_by_search']} |")
        lines.append(f"best {cell(summ['best_test_rmse'])}, recipe {cell(summ['recipe_test_rmse'])}, paired difference "
                     f"(best - recipe, seeds {summ['paired_seeds']}) {cell(summ['paired_difference_best_minus_recipe'])}")
    if "compile" in results:
        lines += ["", "| model | compile | epochs | median s / epoch after the first | wall s |", "|---|---|---|---|---|"]
        for model, runs in results["compile"].items():
            for r in runs:
                lines.append(f"| {model} | {r['compile']} | {r['epochs']} | {r['epoch_seconds_median']:.2f} | "
                             f"{r['wall_seconds']:.1f} |")
    return lines


def part_uncertainty(args: argparse.Namespace, workdir: Path) -> list[harness.Part]:
    parts = []
    for dataset in args.datasets:
        split, task_type = DATASETS[dataset]
        recipe_path, recipe = graph_only_recipe(dataset, workdir)
        epochs = args.epochs or int(recipe["epochs"])
        settings = {job: recipe[key] for job, key in CHEMPROP_FROM_RECIPE.items()}
        settings["warmup_epochs"] = int(float(settings["warmup_epochs"]))
        for method in args.methods:
            if method not in METHODS[task_type]:
                continue
            entry: dict[str, Any] = {"seeds": {}}
            for seed in args.seeds:
                print(f"[{time.strftime('%H:%M:%S')}] {dataset} {method} seed {seed}", file=sys.stderr, flush=True)
                ours = run_molgraph(dataset, method, seed, recipe_path, epochs, args.ensemble_size, workdir)
                run = {"molgraph": ours}
                if args.chemprop_python:
                    theirs = run_chemprop(args.chemprop_python, dataset, method, seed, Path(ours["run_dir"]), settings,
                                          epochs, args.ensemble_size, workdir)
                    if theirs["test_rows"] != ours["test_rows"]:
                        raise RuntimeError(f"{dataset} {method} seed {seed}: the libraries scored different test rows")
                    run["chemprop"] = theirs
                for r in run.values():
                    r.pop("test_rows", None)
                entry["seeds"][str(seed)] = run
            settings_rec = {"dataset": dataset, "split": split, "method": method, "epochs": epochs,
                            "seeds": list(args.seeds), "calibration": CALIBRATION[task_type],
                            "ensemble_size": args.ensemble_size if method == "ensemble" else None,
                            "mc_dropout": {"dropout": MC_DROPOUT, "samples": MC_SAMPLES} if method == "mc-dropout" else None,
                            "recipe": f"models/dmpnn_{dataset}.toml without molecule_featurizers"}
            parts.append((("uncertainty", dataset, method), entry, settings_rec, task_type))
    return parts


def fold_seeds(pending: list[tuple], merge: bool):
    """The parts to write, as a function of the results file's content (called under its lock): with
    ``merge``, the seeds of an earlier run of the same part and settings are kept beside this run's."""

    def build(results: dict[str, Any]) -> list[harness.Part]:
        out = []
        for key, entry, settings, task_type in pending:
            entry = {"seeds": dict(entry["seeds"])}
            if merge:
                old = results
                for k in key:
                    old = old.get(k, {}) if isinstance(old, dict) else {}
                before = harness.part_settings(results, key) or {}
                same = {k: v for k, v in before.items() if k != "seeds"} == {k: v for k, v in settings.items() if k != "seeds"}
                if old and same:
                    kept = {s: r for s, r in old.get("seeds", {}).items() if s not in entry["seeds"]}
                    entry["seeds"] = {**kept, **entry["seeds"]}
                    entry["merged_seeds_from_earlier_run"] = sorted(kept, key=int)
                    settings = {**settings, "seeds": sorted(int(s) for s in entry["seeds"])}
            entry["summary"] = summarize(entry, task_type)
            out.append(harness.Part(key, entry, settings))
        return out

    return build


def part_compile(args: argparse.Namespace, workdir: Path) -> list[harness.Part]:
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in args.compile_models}
    for repeat in range(args.compile_repeats):
        for model in args.compile_models:
            for compiled in (False, True):
                run_dir = workdir / f"compile-{model}-{compiled}-{repeat}"
                cmd = [sys.executable, "-m", "molgraph.cli.main", "train", "--dataset", args.compile_dataset, "--model", model,
                       "--epochs", str(args.compile_epochs), "--accelerator", "cpu", "--no-progress", "--quiet",
                       "-o", str(run_dir), *(["--compile"] if compiled else [])]
                print(f"[{time.strftime('%H:%M:%S')}] compile {model} {compiled} repeat {repeat}", file=sys.stderr, flush=True)
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True)
                if proc.returncode != 0:
                    raise RuntimeError(f"compile run failed:\n{proc.stderr[-3000:]}")
                m = json.loads((run_dir / "metrics.json").read_text())
                runs[model].append({"compile": compiled, "repeat": repeat, "epochs": args.compile_epochs,
                                    "epoch_seconds_median": m["timing"]["train_epoch_seconds_median"],
                                    "wall_seconds": time.perf_counter() - t0,
                                    "test": {k: v for k, v in m["test"].items() if "/" not in k}})
    return [harness.Part(("compile", model), r, {"dataset": args.compile_dataset, "split": "random", "epochs": args.compile_epochs,
                                                 "threads": 1}) for model, r in runs.items()]


def _train_and_check(config: Path, dataset: str, split: str, seed: int, epochs: int, run_dir: Path,
                     reuse: bool = False) -> dict[str, Any]:
    """``molgraph train --config CONFIG`` on (split, data seed = seed, seed), checked against its own
    ``test_predictions.csv``; the run's test metrics, val metrics and wall seconds. With ``reuse``, a
    finished run of this script in ``run_dir`` (same command) is read instead of trained again."""
    import pandas as pd

    from molgraph.train.metrics import compute_metrics

    cmd = [sys.executable, "-m", "molgraph.cli.main", "train", "--config", str(config), "--dataset", dataset,
           "--split", split, "--data-seed", str(seed), "--seed", str(seed), "--epochs", str(epochs),
           "--accelerator", "cpu", "--no-progress", "--quiet", "-o", str(run_dir)]
    done = run_dir / "bench_run.json"  # written by this script after a finished run: its command and wall time
    if reuse and done.is_file() and json.loads(done.read_text())["cmd"] == cmd[1:]:
        wall, reused = float(json.loads(done.read_text())["wall_seconds"]), True
    else:
        print(f"[{time.strftime('%H:%M:%S')}] train {config.name} seed {seed} ({epochs} epochs)", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"molgraph train failed ({config}, seed {seed}):\n{proc.stderr[-3000:]}")
        wall, reused = time.perf_counter() - t0, False
        done.write_text(json.dumps({"cmd": cmd[1:], "wall_seconds": wall}))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    pred = pd.read_csv(run_dir / "test_predictions.csv")
    target = [c for c in pred.columns if f"{c}_pred" in pred.columns]
    again = compute_metrics(pred[[f"{t}_pred" for t in target]].to_numpy(), pred[target].to_numpy(), "regression",
                            ["rmse"], target)["rmse"]
    if not np.isclose(again, metrics["test"]["rmse"], rtol=1e-6, atol=1e-9):
        raise RuntimeError(f"{run_dir}: test_predictions.csv gives rmse {again}, metrics.json {metrics['test']['rmse']}")
    return {"run_dir": str(run_dir), "wall_seconds": wall, "reused_finished_run": reused, "epochs": epochs,
            "test": {k: v for k, v in metrics["test"].items() if "/" not in k},
            "val": {k: v for k, v in metrics["val"].items() if "/" not in k}}


def _study_record(study_dir: Path) -> dict[str, Any]:
    """The search: trials by state, best trial, its values, and the wall time from ``study.db``."""
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name="hpopt", storage=f"sqlite:///{study_dir / 'study.db'}")
    trials = study.get_trials(deepcopy=False)
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    states = {st.name.lower(): sum(t.state == st for t in trials) for st in TrialState}
    best = study.best_trial
    return {"study_dir": str(study_dir), "trials": {k: v for k, v in states.items() if v},
            "best_trial": best.number, "best_value": best.value, "best_params": best.params,
            "wall_seconds": (max(ends) - min(starts)).total_seconds() if starts and ends else None,
            "trial_seconds_sum": sum(float(t.user_attrs.get("seconds", 0.0)) for t in trials),
            "search_space": json.loads((study_dir / "search_space.json").read_text())["space"]}


def part_hpopt(args: argparse.Namespace, workdir: Path) -> list[harness.Part]:
    from molgraph.train.settings import flatten, load_toml

    study_dir = args.hpopt_study
    best_path = study_dir / "best.toml"
    best = flatten({k: v for k, v in load_toml(best_path).items() if k != "method"})
    dataset, split, search_seed = best["dataset"], best["split"], int(best["data_seed"])
    search_split = json.loads((study_dir / "search_split.json").read_text())
    if search_split["test"]:
        raise RuntimeError(f"{study_dir / 'search_split.json'} has {len(search_split['test'])} test rows: the search saw them")
    record = _study_record(study_dir)
    runs: dict[str, dict[str, Any]] = {"best": {}, "recipe": {}}
    for name, config, seeds in (("best", best_path, args.hpopt_seeds), ("recipe", args.hpopt_recipe, args.hpopt_recipe_seeds)):
        for seed in seeds:
            run = _train_and_check(config, dataset, split, seed, args.hpopt_epochs, workdir / f"hpopt-{name}-seed{seed}",
                                   reuse=args.hpopt_reuse)
            splits = json.loads((Path(run["run_dir"]) / "splits.json").read_text())
            if seed == search_seed:
                # the search trained and selected on exactly this run's training and validation rows
                if splits["train"] != search_split["train"] or splits["val"] != search_split["val"]:
                    raise RuntimeError(f"seed {seed}: the run's train/val rows differ from the search's {study_dir}")
                run["test_rows_seen_by_search"] = 0
            else:
                seen = set(search_split["train"]) | set(search_split["val"])
                run["test_rows_seen_by_search"] = sum(int(r) in seen for r in splits["test"])
            runs[name][str(seed)] = run

    def stats(name: str, only: list[str] | None = None) -> dict[str, float]:
        return _summary([r["test"]["rmse"] for s, r in runs[name].items() if only is None or s in only])

    # the recipe's numbers in the property benchmark (benchmarks/property.py, same split, data seed = seed,
    # 50 epochs), for reference beside the runs above
    earlier = json.loads((ROOT / "benchmarks" / "results" / "property.json").read_text())
    anchor = earlier.get("anchors", {}).get(f"{dataset}_scaffold" if "scaffold" in split else f"{dataset}_{split}", {})
    recipe_property_json = {s: r["molgraph"]["test"]["rmse"] for s, r in anchor.get("runs", {}).items() if "molgraph" in r}
    paired = sorted(set(runs["best"]) & set(runs["recipe"]), key=int)
    entry = {"search": record, "runs": runs, "summary": {
        "best_test_rmse": stats("best"), "recipe_test_rmse": stats("recipe"),
        "best_test_rmse_search_split_only": stats("best", [str(search_seed)]),
        "paired_seeds": paired, "recipe_test_rmse_in_property_json": recipe_property_json,
        "paired_difference_best_minus_recipe": _summary([runs["best"][s]["test"]["rmse"] - runs["recipe"][s]["test"]["rmse"]
                                                          for s in paired])}}
    settings = {"study": str(study_dir), "dataset": dataset, "split": split, "search_data_seed": search_seed,
                "epochs": args.hpopt_epochs, "best_seeds": list(args.hpopt_seeds),
                "recipe": str(args.hpopt_recipe), "recipe_seeds": list(args.hpopt_recipe_seeds),
                "note": "data seed = model seed; runs on another data seed than the search's have test rows "
                        "that were training or validation rows of the search (test_rows_seen_by_search)"}
    return [harness.Part(("hpopt", dataset), entry, settings)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=["uncertainty"], choices=("uncertainty", "compile", "hpopt"))
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--methods", nargs="+", default=["mve", "evidential", "dirichlet", "ensemble", "mc-dropout"],
                    choices=("mve", "evidential", "dirichlet", "ensemble", "mc-dropout"))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default: the recipe's)")
    ap.add_argument("--ensemble-size", type=int, default=5)
    ap.add_argument("--chemprop-python", default=None, help="chemprop's interpreter (.venv-chemprop/bin/python)")
    ap.add_argument("--compile-models", nargs="+", default=["dmpnn", "gin"])
    ap.add_argument("--compile-dataset", default="lipophilicity", choices=list(DATASETS))
    ap.add_argument("--compile-epochs", type=int, default=4)
    ap.add_argument("--compile-repeats", type=int, default=1)
    ap.add_argument("--hpopt-study", type=Path, default=None, help="a molgraph hpopt study folder (part hpopt)")
    ap.add_argument("--hpopt-seeds", nargs="*", type=int, default=[0, 1, 2], help="seeds of the best configuration's runs")
    ap.add_argument("--hpopt-recipe", type=Path, default=ROOT / "models" / "dmpnn_lipophilicity.toml",
                    help="the recipe the best configuration is compared with")
    ap.add_argument("--hpopt-recipe-seeds", nargs="*", type=int, default=[0, 1, 2], help="seeds of the recipe's runs")
    ap.add_argument("--hpopt-reuse", action="store_true",
                    help="read the finished runs of an earlier invocation in --workdir instead of training them again")
    ap.add_argument("--hpopt-epochs", type=int, default=50, help="training epochs of those runs (the recipe's 50)")
    ap.add_argument("--workdir", type=Path, default=None, help="keep run folders here (default: a temp dir)")
    ap.add_argument("--merge-seeds", action="store_true",
                    help="keep the seeds an earlier run of the same (dataset, method) and settings wrote")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "property_uncertainty.json")
    args = ap.parse_args(argv)
    run = harness.start_run(argv, script="benchmarks/property_uncertainty.py", output=args.out)
    with tempfile.TemporaryDirectory(prefix="bench_uq_") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        compiled: list[harness.Part] = part_compile(args, workdir) if "compile" in args.parts else []
        if "hpopt" in args.parts:
            if args.hpopt_study is None:
                ap.error("--parts hpopt needs --hpopt-study STUDY_DIR")
            compiled += part_hpopt(args, workdir)
        pending = part_uncertainty(args, workdir) if "uncertainty" in args.parts else []
        fold = fold_seeds(pending, args.merge_seeds)
        results = harness.update_results(args.out, lambda current: [*compiled, *fold(current)], run,
                                         benchmark="property_uncertainty")
    print("\n".join(table(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
