"""Property-prediction benchmark: molgraph's D-MPNN (and GIN) vs the issue's anchors and chemprop v2.

For every (dataset, split, seed) the script

1. runs ``molgraph train`` (subprocess, ``--threads`` torch threads) into a run folder,
2. gives chemprop v2 the *same* split (file rows from ``RUN/splits.json``), seed and settings
   through ``benchmarks/chemprop_runner.py``, run with chemprop's own interpreter
   (``--chemprop-python``; chemprop is not a molgraph dependency),
3. scores both with the same metric code (``molgraph.train.metrics``) on the same test rows, and
   compares training throughput (molecules/s over the training batches of an epoch, median over
   epochs after the first; featurization and validation excluded) measured in the same run.

Usage::

    python benchmarks/property.py                        # all anchors, 3 seeds, molgraph only
    python benchmarks/property.py --chemprop-python .venv-chemprop/bin/python --jobs 2
    python benchmarks/property.py --only esol_scaffold --seeds 0 --epochs 5   # a quick look
    python benchmarks/property.py --only freesolv_random --merge ...   # rerun one anchor, keep the rest

Writes ``benchmarks/results/property.json`` (atomically) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from molgraph.data.registry import dataset_path, get_card  # noqa: E402
from molgraph.data.sources import atomic_output  # noqa: E402
from molgraph.data.table import read_molecule_table  # noqa: E402
from molgraph.train.metrics import compute_metrics  # noqa: E402

# (name, dataset, split, metric, anchor, "<=" or ">=", molecule featurizers); anchors from the issue
# (its ESOL scaffold anchor 1.05 is Yang et al. 2019's D-MPNN RMSE of 1.050 as recalled, not read from a
# cited table of the paper). Molecule featurizers follow the
# dataset's recipe (models/dmpnn_<dataset>.toml): RDKit descriptors for ESOL and FreeSolv, where
# they lowered the *validation* RMSE on all three seeds (test numbers played no part), as Yang et
# al.'s "D-MPNN + features"; not for Lipophilicity, where they raised it on 2 of 3 seeds.
# chemprop gets the same scaled matrix as X_d.
ANCHORS = [
    ("esol_scaffold", "esol", "scaffold", "rmse", 1.05, "<=", ()),
    ("esol_random", "esol", "random", "rmse", 0.60, "<=", ("rdkit_descriptors",)),
    ("freesolv_random", "freesolv", "random", "rmse", 1.15, "<=", ("rdkit_descriptors",)),
    ("lipophilicity_scaffold", "lipophilicity", "scaffold", "rmse", 0.70, "<=", ()),
    ("bbbp_scaffold", "bbbp", "scaffold", "roc_auc", 0.70, ">=", ()),
    ("tox21_random", "tox21", "random", "roc_auc", 0.84, ">=", ()),
    ("bace_scaffold", "bace", "scaffold", "roc_auc", 0.80, ">=", ()),
]

# matched settings: chemprop v2's defaults except the readout (mean for both; chemprop's CLI
# default is "norm")
SETTINGS = dict(hidden_dim=300, depth=3, ffn_hidden_dim=300, ffn_layers=1, dropout=0.0, batch_size=64,
                warmup_epochs=2, init_lr=1e-4, max_lr=1e-3, final_lr=1e-4, aggregation="mean")


def _env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore")
    return env


def run_molgraph(name: str, dataset: str, split: str, seed: int, epochs: int, model: str, workdir: Path,
                 threads: int, extra: list[str]) -> dict[str, Any]:
    run_dir = workdir / f"molgraph-{model}-{name}-seed{seed}"
    cmd = [sys.executable, "-m", "molgraph.cli.main", "train", "--dataset", dataset, "--split", split,
           "--data-seed", str(seed), "--seed", str(seed), "--epochs", str(epochs), "--model", model,
           "--accelerator", "cpu", "--no-progress", "-o", str(run_dir),
           "-b", str(SETTINGS["batch_size"]), "--warmup-epochs", str(SETTINGS["warmup_epochs"]),
           "--init-lr", str(SETTINGS["init_lr"]), "--max-lr", str(SETTINGS["max_lr"]),
           "--final-lr", str(SETTINGS["final_lr"]), *extra]
    if model == "dmpnn":
        cmd += ["--hidden-dim", str(SETTINGS["hidden_dim"]), "--depth", str(SETTINGS["depth"]),
                "--ffn-hidden-dim", str(SETTINGS["ffn_hidden_dim"]), "--readout", SETTINGS["aggregation"]]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(threads), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"molgraph train failed for {name} seed {seed}:\n{proc.stderr[-3000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"run_dir": str(run_dir), "wall_seconds": time.perf_counter() - t0, "test": metrics["test"],
            "val": metrics["val"], "train_molecules_per_second": metrics["timing"]["train_molecules_per_second"]}


def _shared_extra_features(run_dir: Path, dataset: str, workdir: Path, tag: str) -> str | None:
    """The molgraph run's scaled molecule features for every CSV row (zeros for unreadable rows)."""
    from molgraph.train.checkpoint import load_model_file
    from molgraph.methods.ngram.features import learned_from_state
    from molgraph.methods.property.prepare import molecule_features, scale_extra
    from molgraph.train.scaling import StandardScaler

    mf = load_model_file(run_dir / "model.pt").get("molecule_features")
    if not mf:
        return None
    card = get_card(dataset)
    table = read_molecule_table(dataset_path(dataset), card.smiles_column, list(card.target_columns))
    scaler = StandardScaler.from_dict(mf["scaler"])
    learned = {name: learned_from_state(st) for name, st in (mf.get("learned") or {}).items()}
    rows = []
    for smi in table.smiles:
        try:
            raw, _ = molecule_features(mf["featurizers"], [smi], learned)
            rows.append(scale_extra(raw, scaler).numpy()[0])
        except Exception:  # noqa: BLE001 - unreadable rows are in no split; chemprop rejects them
            rows.append(np.zeros(len(mf["names"]), dtype=np.float32))
    path = workdir / f"{tag}.extra.npy"
    np.save(path, np.stack(rows).astype(np.float32))
    return str(path)


def run_chemprop(python: str, name: str, dataset: str, seed: int, epochs: int, run_dir: Path, workdir: Path,
                 threads: int) -> dict[str, Any]:
    card = get_card(dataset)
    splits = json.loads((run_dir / "splits.json").read_text())
    extra = _shared_extra_features(run_dir, dataset, workdir, f"{run_dir.name}")
    job = {"extra_features_npy": extra, "csv": str(dataset_path(dataset)), "smiles_column": card.smiles_column,
           "target_columns": list(card.target_columns), "task_type": card.task_type,
           "split": {k: splits[k] for k in ("train", "val", "test")}, "seed": seed, "epochs": epochs,
           "threads": threads, **SETTINGS}
    job_path = workdir / f"chemprop-{name}-seed{seed}.job.json"
    out_path = workdir / f"chemprop-{name}-seed{seed}.out.json"
    job_path.write_text(json.dumps(job))
    t0 = time.perf_counter()
    proc = subprocess.run([python, str(ROOT / "benchmarks" / "chemprop_runner.py"), str(job_path), str(out_path)],
                          cwd=ROOT, env=_env(threads), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"chemprop failed for {name} seed {seed}:\n{proc.stderr[-3000:]}")
    out = json.loads(out_path.read_text())
    table = read_molecule_table(dataset_path(dataset), card.smiles_column, list(card.target_columns))
    y = table.targets[np.asarray(out["test_rows"], dtype=np.int64)]
    preds = np.asarray(out["test_predictions"], dtype=float)
    test = compute_metrics(preds, y, card.task_type, None, list(card.target_columns))
    return {"wall_seconds": time.perf_counter() - t0, "test": test, "chemprop_version": out.get("chemprop_version"),
            "train_molecules_per_second": out["train_molecules_per_second"], "n_test": len(out["test_rows"])}


def _table(entries: list[dict[str, Any]]) -> list[str]:
    """Markdown rows: ours vs anchor and chemprop, accuracy and speed ratios (``-`` without chemprop)."""
    lines = ["| benchmark | metric | anchor | molecule features | molgraph (mean ± sd) | pass | chemprop v2 | "
             "accuracy ratio | molgraph mol/s | chemprop mol/s | speed ratio |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        args = e.get("train_args", [])
        feats = " ".join(args[args.index("--molecule-featurizers") + 1:]) if "--molecule-featurizers" in args else "-"
        cp = e.get("chemprop")
        cells = [e["name"], e["metric"], f"{e['op']} {e['anchor']}", feats,
                 f"{e['molgraph']['mean']:.3f} ± {e['molgraph']['std']:.3f}", "yes" if e["pass"] else "NO",
                 f"{cp['mean']:.3f} ± {cp['std']:.3f}" if cp else "-",
                 f"{e['accuracy_ratio']:.3f}" if cp else "-", f"{e['molgraph_molecules_per_second']['mean']:.0f}",
                 f"{e['chemprop_molecules_per_second']['mean']:.0f}" if cp else "-",
                 f"{e['speed_ratio']:.2f}" if cp else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _train_args(anchor: tuple, args: argparse.Namespace) -> list[str]:
    features = () if args.no_molecule_features else anchor[6]
    return ([*args.train_args, "--molecule-featurizers", *features] if features else list(args.train_args))


def _summary(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0, "n": int(arr.size)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", default=None, help=f"anchors to run: {[a[0] for a in ANCHORS]}")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--model", default="dmpnn", choices=("dmpnn", "gin"))
    ap.add_argument("--scaffold-split", default="balanced_scaffold", choices=("balanced_scaffold", "scaffold"),
                    help="split for the *_scaffold anchors (default balanced_scaffold: the protocol of Yang et "
                         "al. 2019, whose ESOL RMSE, recalled as 1.050, is the anchor; 'scaffold' is the deterministic "
                         "largest-scaffolds-to-train split, the same for every seed)")
    ap.add_argument("--chemprop-python", default=None,
                    help="interpreter of an environment with chemprop v2 (default: .venv-chemprop/bin/python if present)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per training process")
    ap.add_argument("--jobs", type=int, default=1, help="training processes at once")
    ap.add_argument("--workdir", type=Path, default=None, help="keep run folders here (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "property.json")
    ap.add_argument("--no-molecule-features", action="store_true",
                    help="ignore the anchors' molecule featurizers (graph only, as chemprop's defaults)")
    ap.add_argument("--merge", action="store_true",
                    help="keep the other anchors of an existing --out file (with --only: rerun some anchors)")
    ap.add_argument("--train-args", nargs=argparse.REMAINDER, default=[], help="extra `molgraph train` flags")
    args = ap.parse_args(argv)

    python = args.chemprop_python
    if python is None and (ROOT / ".venv-chemprop" / "bin" / "python").exists():
        python = str(ROOT / ".venv-chemprop" / "bin" / "python")
    anchors = [a for a in ANCHORS if args.only is None or a[0] in args.only]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="molgraph-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)

    def job(anchor: tuple, seed: int) -> tuple[str, int, dict[str, Any]]:
        name, dataset, split = anchor[:3]
        if split == "scaffold":
            split = args.scaffold_split
        res: dict[str, Any] = {"molgraph": run_molgraph(name, dataset, split, seed, args.epochs, args.model,
                                                        workdir, args.threads, _train_args(anchor, args))}
        if python:
            res["chemprop"] = run_chemprop(python, name, dataset, seed, args.epochs, Path(res["molgraph"]["run_dir"]),
                                           workdir, args.threads)
        print(f"{name} seed {seed}: " + ", ".join(
            f"{k} {anchor[3]}={v['test'][anchor[3]]:.4f} ({v['train_molecules_per_second']:.0f} mol/s)"
            for k, v in res.items()), file=sys.stderr, flush=True)
        return name, seed, res

    tasks = [(a, s) for a in anchors for s in args.seeds]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        done = list(pool.map(lambda t: job(*t), tasks))

    results: dict[str, Any] = {
        "settings": {**SETTINGS, "epochs": args.epochs, "seeds": args.seeds, "model": args.model,
                     "scaffold_split": args.scaffold_split,
                     "threads": args.threads, "jobs": args.jobs, "train_args": args.train_args},
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "anchors": {},
    }
    if args.merge and args.out.exists():
        previous = json.loads(args.out.read_text())
        if previous.get("settings", {}).get("epochs") != args.epochs:
            raise SystemExit(f"--merge: {args.out} was run with other settings; rerun all anchors instead")
        rerun = {a[0] for a in anchors}
        results["anchors"] = {k: v for k, v in previous.get("anchors", {}).items() if k not in rerun}
        results["merged_from_earlier_run"] = sorted(results["anchors"])
    for spec in anchors:
        name, dataset, split, metric, anchor, op = spec[:6]
        runs = {seed: res for n, seed, res in done if n == name}
        ours = _summary([r["molgraph"]["test"][metric] for r in runs.values()])
        ok = ours["mean"] <= anchor if op == "<=" else ours["mean"] >= anchor
        entry: dict[str, Any] = {"dataset": dataset, "split": args.scaffold_split if split == "scaffold" else split,
                                 "metric": metric, "anchor": anchor, "op": op, "molgraph": ours, "pass": bool(ok),
                                 "runs": {str(k): v for k, v in runs.items()},
                                 "train_args": _train_args(spec, args), "seeds": args.seeds}
        entry["molgraph_molecules_per_second"] = _summary([r["molgraph"]["train_molecules_per_second"]
                                                           for r in runs.values()])
        if python:
            theirs = _summary([r["chemprop"]["test"][metric] for r in runs.values()])
            cp_speed = _summary([r["chemprop"]["train_molecules_per_second"] for r in runs.values()])
            # accuracy ratio > 1 means molgraph is better (error ratio inverted for RMSE)
            acc_ratio = theirs["mean"] / ours["mean"] if metric == "rmse" else ours["mean"] / theirs["mean"]
            entry.update(chemprop=theirs, chemprop_molecules_per_second=cp_speed, accuracy_ratio=acc_ratio,
                         speed_ratio=entry["molgraph_molecules_per_second"]["mean"] / cp_speed["mean"])
        results["anchors"][name] = entry
    lines = _table([results["anchors"][a[0]] | {"name": a[0]} for a in ANCHORS if a[0] in results["anchors"]])
    results["table"] = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(args.out, "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=2)
    print(results["table"])
    print(f"results: {args.out}; run folders: {workdir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
