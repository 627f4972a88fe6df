"""N-gram graph benchmark: the paper's protocol, baselines in the same run, and embedding speed.

Evaluations (``molgraph.methods.ngram.evaluate``):

* ``cv``: 5-fold CV, seed 123 (``KFold`` for regression, ``StratifiedKFold`` per task for
  classification), molecules over 55 atoms dropped (100 for ClinTox and HIV) and reported,
  ``W`` fitted inside every fold on its training molecules only, one predictor per task.
* ``scaffold``: the balanced Bemis-Murcko scaffold split 0.8/0.1/0.1 with seeds 0, 1, 2: the
  split ``molgraph train --split balanced_scaffold --data-seed S`` makes and
  ``benchmarks/property.py`` uses for the graph models (same call on the same parsed
  molecules), with no atom cap so the test rows are the graph models' test rows. (The
  deterministic ``scaffold`` split puts a single class in BBBP's and BACE's test sets, which
  makes ROC-AUC undefined there.) Trained on train, scored on test; val is reported, unused.
* ``det_scaffold``: the deterministic scaffold split 0.8/0.1/0.1 (largest scaffold sets to
  train: the rule of ogbg-molhiv's split and of ``molgraph train --split scaffold``, which the
  GraphNorm benchmark's HIV runs use), one run.
* representations ``ngram`` (CBoW ``W``), ``ngram_random`` (untrained seeded ``W``) and ``morgan``
  (radius 2, 1024 bits) on the same molecules; predictors ``rf``, ``hgb``, ``xgb``.
* ``--speed``: embed all of HIV (featurize + ``X W`` + walk sums) with ``NGramGraph.embed`` and
  ``n_jobs`` workers, next to the featurizers' graphs/s.

Runs piecewise; every result is a part of ``benchmarks/results/ngram.json``, merged in
(atomically, under a lock) as soon as it is measured: ``runs/DATASET/PROTOCOL/REPRESENTATION/PREDICTOR``
and ``speed``, with the load average around it in the entry and its record (command, date,
machine, versions, settings) under ``parts`` (``benchmarks/_harness.py``)::

    python benchmarks/ngram.py --datasets esol --predictors rf hgb
    python benchmarks/ngram.py --datasets tox21 --predictors rf --representations ngram
    python benchmarks/ngram.py --datasets bbbp bace --protocols scaffold
    python benchmarks/ngram.py --speed
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import _harness as harness  # noqa: E402

from molgraph.data.registry import dataset_path, get_card  # noqa: E402
from molgraph.data.splits import make_split  # noqa: E402
from molgraph.data.table import read_molecule_table  # noqa: E402
from molgraph.methods.ngram.embedding import NGramGraphConfig  # noqa: E402
from molgraph.methods.ngram.evaluate import cross_validate, evaluate_split, prepare_molecules  # noqa: E402
from molgraph.methods.ngram.predictors import xgboost_available  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "ngram.json"

# dataset -> (atom cap for CV, protocols run by default, note)
DATASETS: dict[str, tuple[int, tuple[str, ...], str]] = {
    "esol": (55, ("cv", "scaffold"), ""),
    "tox21": (55, ("cv",), ""),
    "clintox": (100, ("cv",), ""),
    "hiv": (100, ("cv", "scaffold"), ""),
    "muv": (55, ("cv",), "the paper reports PRC-AUC for MUV; both ROC-AUC and PRC-AUC are recorded"),
    "qm7": (55, ("cv",), "derived copy of QM7 (SMILES + u0_atom from DeepChem's qm7.csv), see its card"),
    "qm8": (55, ("cv",), "QM8 from SMILES with implicit hydrogens (the reference uses explicit-H SDF graphs)"),
    "qm9": (55, ("cv",), "QM9 from its GDB-17 SMILES with implicit hydrogens (molgraph.data.qm9.load_qm9; the reference "
                         "uses explicit-H SDF graphs); targets in QM9's units (energies in Hartree), no atomref"),
    "bbbp": (55, ("scaffold",), ""),
    "bace": (55, ("scaffold",), ""),
}


VERSIONED = ("rdkit", "torch", "torch_geometric", "scikit-learn", "xgboost", "numpy", "molgraph")
# what every evaluation reads from the command line: recorded as each part's settings
COMMON_OPTIONS = ("folds", "seed", "scaffold_seeds", "epochs", "batch_size", "max_steps", "rf_trees_classification",
                  "n_jobs")


def load_results(path: Path) -> dict[str, Any]:
    """The results file (empty ``runs`` and ``speed`` when there is none yet)."""
    results = harness.read_results(path)
    results.setdefault("runs", {})
    results.setdefault("speed", {})
    return results


def save_parts(path: Path, parts: list[harness.Part], run: harness.RunInfo) -> None:
    """Merge ``parts`` into the results file (locked, atomic), so that benchmark processes
    running at once all end up in it."""
    harness.update_results(path, parts, run, benchmark="ngram",
                           json_kwargs={"indent": 1, "sort_keys": True, "allow_nan": True})


def merge_files(out: Path, others: list[Path], run: harness.RunInfo) -> None:
    """Fold the runs (and a speed entry) of other results files into ``out``, each with its own record."""
    for other in others:
        data = load_results(other)
        parts = [harness.Part(("runs", key), entry, record=harness.part_record(data, ("runs", key))
                              or {"note": f"merged from {other}, which has no record for it"})
                 for key, entry in data["runs"].items()]
        if data["speed"]:
            parts.append(harness.Part("speed", data["speed"], record=harness.part_record(data, "speed")
                                      or {"note": f"merged from {other}, which has no record for it"}))
        save_parts(out, parts, run)


def _settings(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    return {**{k: getattr(args, k) for k in COMMON_OPTIONS}, **extra}


def predictor_params(name: str, task_type: str, args: argparse.Namespace) -> dict[str, Any]:
    if name == "rf" and task_type == "classification" and args.rf_trees_classification:
        return {"n_estimators": args.rf_trees_classification}
    return {}


def _molecules(name: str) -> tuple[list[str], np.ndarray]:
    """SMILES and ``(N, T)`` targets of a dataset (QM9 through its 3D loader, which holds its SMILES)."""
    if name == "qm9":
        from molgraph.data.qm9 import load_qm9

        ds = load_qm9()
        return [s.decode() for s in ds.smiles_bytes], ds.y.numpy().astype(np.float64)
    card = get_card(name)
    table = read_molecule_table(dataset_path(name), card.smiles_column, list(card.target_columns))
    return table.smiles, table.targets


def run_dataset(name: str, args: argparse.Namespace, run: harness.RunInfo, out: Path) -> None:
    card = get_card(name)
    cap, default_protocols, note = DATASETS[name]
    protocols = args.protocols or default_protocols
    smiles, targets = _molecules(name)
    config = NGramGraphConfig(epochs=args.epochs, batch_size=args.batch_size, max_steps=args.max_steps)
    for protocol in protocols:
        data = prepare_molecules(smiles, targets, max_atoms=cap if protocol == "cv" else None,
                                 n_jobs=args.n_jobs)
        for rep in args.representations:
            for pred in args.predictors:
                if rep == "morgan" and pred not in args.morgan_predictors:
                    continue
                key = f"{name}/{protocol}/{rep}/{pred}"
                load_start = harness.loadavg()
                start = time.perf_counter()
                params = predictor_params(pred, card.task_type, args)
                if protocol == "cv":
                    res = cross_validate(data, card.task_type, representation=rep, predictor=pred, folds=args.folds,
                                         seed=args.seed, task_names=list(card.target_columns), ngram_config=config,
                                         predictor_params=params, n_jobs=args.n_jobs)
                else:
                    res = scaffold_runs(data, card.task_type, rep, pred, list(card.target_columns), config, params,
                                        args, deterministic=protocol == "det_scaffold")
                res.pop("rejected_rows", None)
                res.update(dataset=name, atom_cap=cap if protocol == "cv" else None, note=note,
                           wall_seconds=round(time.perf_counter() - start, 1),
                           loadavg_at_start=load_start, loadavg_at_end=harness.loadavg())
                settings = _settings(args, protocol=protocol, representation=rep, predictor=pred,
                                     predictor_params=params, atom_cap=res["atom_cap"])
                save_parts(out, [harness.Part(("runs", key), res, settings)], run)
                summary = res["mean"]
                print(f"{key}: {json.dumps({k: round(v, 4) for k, v in summary.items()})} "
                      f"({res['wall_seconds']} s, load {load_start[0] if load_start else float('nan'):.1f})",
                      flush=True)


def scaffold_runs(data: Any, task_type: str, rep: str, pred: str, names: list[str], config: NGramGraphConfig,
                  params: dict[str, Any], args: argparse.Namespace, deterministic: bool = False) -> dict[str, Any]:
    """``evaluate_split`` on the balanced scaffold split of every seed; ``mean``/``std`` over seeds
    of the test metrics (mean over tasks)."""
    from molgraph.data.splits import Split

    runs = []
    method = "scaffold" if deterministic else "balanced_scaffold"
    seeds = [0] if deterministic else list(args.scaffold_seeds)  # the deterministic split has no seed
    for seed in seeds:
        # split the parsed molecules as the trainer does (positions), then hand over input rows
        pos = make_split(method, smiles=data.smiles, sizes=(0.8, 0.1, 0.1), seed=seed)
        rows = Split(data.rows[pos.train], data.rows[pos.val], data.rows[pos.test], pos.method, pos.seed, pos.sizes)
        res = evaluate_split(data, task_type, rows, representation=rep, predictor=pred, seed=seed, task_names=names,
                             ngram_config=config, predictor_params=params, n_jobs=args.n_jobs)
        res.pop("rejected_rows", None)
        runs.append(res)
    keys = list(runs[0]["test"]["mean"])
    return {"protocol": f"{method} split 0.8/0.1/0.1, seeds " + " ".join(map(str, seeds)),
            "representation": rep, "predictor": runs[0]["predictor"], "seeds": seeds,
            "mean": {k: float(np.mean([r["test"]["mean"][k] for r in runs])) for k in keys},
            "std": {k: float(np.std([r["test"]["mean"][k] for r in runs])) for k in keys},
            "val_mean": {k: float(np.mean([r["val"]["mean"][k] for r in runs])) for k in keys},
            "n_input": runs[0]["n_input"], "n_used": runs[0]["n_used"], "per_seed": runs}


def run_speed(args: argparse.Namespace, run: harness.RunInfo, out: Path) -> None:
    """Embed every HIV molecule; W fitted beforehand on 2000 HIV molecules (not timed)."""
    from molgraph.featurizers import MolGraphFeaturizer, iter_featurize
    from molgraph.methods.ngram.embedding import NGramGraph, ngram_graph_featurizer

    card = get_card("hiv")
    smiles = read_molecule_table(dataset_path("hiv"), card.smiles_column).smiles
    load_start = harness.loadavg()
    est = NGramGraph(epochs=args.epochs, batch_size=args.batch_size, max_steps=args.max_steps, seed=args.seed)
    t0 = time.perf_counter()
    est.fit(smiles[:2000], errors="skip")
    fit_s = time.perf_counter() - t0
    rates = {}
    for label, fz in (("ngram_featurizer", ngram_graph_featurizer()), ("ogb_featurizer", MolGraphFeaturizer.ogb())):
        t0 = time.perf_counter()
        n = sum(1 for _ in iter_featurize(smiles, fz, n_jobs=args.n_jobs, errors="skip"))
        rates[label] = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    emb = est.embed(smiles, n_jobs=args.n_jobs, errors="skip")
    embed_s = time.perf_counter() - t0
    speed = {
        "dataset": "hiv", "n_molecules": len(smiles), "n_embedded": int(len(emb.indices)),
        "n_rejected": len(emb.rejects), "n_jobs": args.n_jobs, "embed_seconds": round(embed_s, 2),
        "embeddings_per_s": round(len(emb.indices) / embed_s, 1),
        "featurizer_graphs_per_s": {k: round(v, 1) for k, v in rates.items()},
        "target_seconds": 60.0, "meets_target": embed_s < 60.0,
        "fit_seconds_2000_molecules": round(fit_s, 2), "fit_info": est.fit_info,
        "what": "NGramGraph.embed(all HIV SMILES): parse + ngram featurizer (n_jobs workers) + X W + walk sums",
        "loadavg_at_start": load_start, "loadavg_at_end": harness.loadavg(),
    }
    save_parts(out, [harness.Part("speed", speed, _settings(args, fit_molecules=2000))], run)
    print(f"HIV speed: {len(emb.indices)} embedded in {embed_s:.1f} s ({len(emb.indices) / embed_s:.0f}/s); "
          f"featurizers {speed['featurizer_graphs_per_s']} graphs/s", flush=True)


def format_table(payload: dict[str, Any]) -> str:
    """Markdown table of every run in the results: mean (sd over folds or seeds) of the main metric."""
    main_metric = {"regression": ("rmse", "mae"), "classification": ("roc_auc", "prc_auc")}
    lines = ["| dataset | protocol | metric | N-gram (CBoW W) | N-gram (random W) | Morgan r=2 1024 | predictor |",
             "|---|---|---|---:|---:|---:|---|"]
    groups: dict[tuple[str, str, str, str], dict[str, str]] = {}
    labels: dict[tuple[str, str, str, str], str] = {}
    for key, res in sorted(payload.get("runs", {}).items()):
        name, protocol, rep, pred = key.split("/")
        ttype = get_card(name).task_type
        for metric in main_metric[ttype]:
            if metric not in res["mean"]:
                continue
            if protocol == "cv":
                sds = [t[f"{metric}_std"] for t in res["tasks"].values()]
                sd = float(np.mean(sds)) if len(sds) == 1 else None
            else:
                sd = res["std"][metric]
            cell = f"{res['mean'][metric]:.3f}" + (f" ± {sd:.3f}" if sd is not None else "")
            groups.setdefault((name, protocol, pred, metric), {})[rep] = cell
            # the folds and seeds the run used (a quick run may use fewer than the defaults)
            labels[(name, protocol, pred, metric)] = {
                "cv": f"{res.get('folds', 5)}-fold CV", "scaffold": f"balanced scaffold x{len(res.get('seeds', [0, 1, 2]))}",
                "det_scaffold": "scaffold (deterministic)"}[protocol]
    for (name, protocol, pred, metric), cells in groups.items():
        proto = labels[(name, protocol, pred, metric)]
        lines.append(f"| {name} | {proto} | {metric} | {cells.get('ngram', '-')} | {cells.get('ngram_random', '-')} | "
                     f"{cells.get('morgan', '-')} | {pred} |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="*", default=[], choices=sorted(DATASETS),
                    help="datasets to run (default: none unless --all)")
    ap.add_argument("--all", action="store_true", help="every dataset in DATASETS")
    ap.add_argument("--protocols", nargs="+", choices=("cv", "scaffold", "det_scaffold"), default=None,
                    help="default: each dataset's own (cv for most; scaffold for bbbp/bace; both for esol/hiv); "
                         "det_scaffold: the deterministic scaffold split (ogbg-molhiv's rule), one run")
    ap.add_argument("--representations", nargs="+", default=["ngram", "ngram_random", "morgan"],
                    choices=("ngram", "ngram_random", "morgan"))
    default_preds = ["rf", "xgb" if xgboost_available() else "hgb"]
    ap.add_argument("--predictors", nargs="+", default=default_preds, choices=("rf", "hgb", "xgb"))
    ap.add_argument("--morgan-predictors", nargs="+", default=["rf", "hgb", "xgb"], choices=("rf", "hgb", "xgb"),
                    help="which predictors also run on the Morgan baseline (default: all requested)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--scaffold-seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="balanced-scaffold split seeds (default 0 1 2, as benchmarks/property.py)")
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--epochs", type=int, default=100, help="CBoW epochs (reference: 100)")
    ap.add_argument("--batch-size", type=int, default=128, help="CBoW batch (reference: 128)")
    ap.add_argument("--max-steps", type=int, default=None, help="cap on CBoW optimizer steps per fit")
    ap.add_argument("--rf-trees-classification", type=int, default=None,
                    help="random-forest trees for classification (default 500; the reference mostly uses 4000)")
    ap.add_argument("--n-jobs", type=int, default=1, help="predictor threads / featurizer workers")
    ap.add_argument("--speed", action="store_true", help="HIV embedding speed test")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--data-root", type=Path, default=None,
                    help="data root for HIV, MUV, QM7, QM8 (default: $MOLGRAPH_DATA, else ../shared/data if present)")
    ap.add_argument("--merge", type=Path, nargs="+", default=[], help="fold these result files into --out")
    ap.add_argument("--table", action="store_true", help="print a Markdown table of the results file")
    args = ap.parse_args(argv)
    if args.all:
        args.datasets = sorted(DATASETS)
    if not args.datasets and not args.speed and not args.merge and not args.table:
        ap.error("nothing to do: give --datasets NAME..., --all or --speed")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    shared = ROOT.parent / "shared" / "data"
    if args.data_root is not None:
        os.environ["MOLGRAPH_DATA"] = str(args.data_root)
    elif "MOLGRAPH_DATA" not in os.environ and shared.is_dir():
        os.environ["MOLGRAPH_DATA"] = str(shared)
    run = harness.start_run(argv, script=__file__, distributions=VERSIONED, output=args.out)
    merge_files(args.out, args.merge, run)
    for name in args.datasets:
        run_dataset(name, args, run, args.out)
    if args.speed:
        run_speed(args, run, args.out)
    if args.table:
        print(format_table(load_results(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
