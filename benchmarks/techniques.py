"""Techniques on the shared trainer, measured against the trainer's defaults under one protocol.

Sections (``--sections``, comma-separated; results merge into ``--out`` by section):

* ``adamp``: GIN + BatchNorm and GIN + GraphNorm on ESOL and Tox21 (the recipes'
  splits), Adam vs AdamP, seeds 0..n-1.
* ``hopfield``: GIN on BBBP and BACE with the property benchmark's scaffold split (balanced
  scaffold, split seed = model seed): readout mean, sum, attention and hopfield, seeds 0..n-1
  (ROC-AUC). (The deterministic ``scaffold`` split leaves BACE a one-class test set.)
* ``tag``: Tox21's 12 tasks. Per seed: one joint run that records lookahead affinities
  (:class:`molgraph.train.task_grouping.TaskAffinityCallback`); the TAG groups chosen from them;
  one model per group, each task scored by the model of its serving group; the same number of
  groups drawn at random (``--random-groupings`` draws); and the increased-transfer run (total vs
  PCGrad gradient by lookahead). Mean test ROC-AUC over the 12 tasks; the affinity heat map.
* ``encoders``: the graph transformer beside GINE and the D-MPNN (each dataset's gin / dmpnn recipe,
  the same budget) on ESOL, Lipophilicity and Tox21: test metric and seconds per training epoch.
* ``transformer``: the graph transformer measurements of ``benchmarks/techniques_transformer.py``.

Every run uses the recipe in ``models/`` for the dataset with the budget overrides printed in the
results (``--hidden-dim``, ``--depth``, ``--epochs``, ``--batch-size``): a CPU-sized protocol,
the same for the technique and its baseline. Test sets are only read after training; nothing is
selected on them.

Self-checks: each run's saved config must carry the technique it was asked for (a technique that
silently fell back to the default would otherwise tie exactly), and a technique whose test
predictions equal the baseline's for every seed fails the benchmark.

Usage::

    python benchmarks/techniques.py --sections adamp,hopfield,tag --seeds 3 --out benchmarks/results/techniques.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

TOX21_TASKS = ["NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma",
               "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53"]


def _config(recipe: str, out_dir: Path, budget: dict[str, Any], **overrides: Any) -> Any:
    from molgraph.methods.property.config import TrainConfig
    from molgraph.train.settings import load_toml

    flat = {k: v for section in load_toml(ROOT / "models" / recipe).values() for k, v in section.items()}
    flat.update(budget)
    flat.update(overrides)
    flat.update(output_dir=str(out_dir), progress=False, accelerator="cpu")
    return TrainConfig(**flat)


RUN_CACHE: dict[str, Any] = {}  # run name -> result, kept in --runs-file so an interrupted benchmark resumes
RUNS_FILE: Path | None = None


def train_once(recipe: str, out_dir: Path, budget: dict[str, Any], callbacks: tuple = (), **overrides: Any) -> dict:
    """Train one model; returns its test metrics, wall time and test predictions (for the self-check).

    Runs without callbacks are kept in ``--runs-file`` under their run name, recipe, budget and
    settings, and taken from there when the same run is asked for again.
    """
    key = json.dumps([out_dir.name, recipe, budget, overrides], sort_keys=True, default=str)
    if not callbacks and key in RUN_CACHE:
        cached = dict(RUN_CACHE[key])
        cached["_preds"] = np.asarray(cached["_preds"], float)
        return cached
    result = _train(recipe, out_dir, budget, callbacks, **overrides)
    if not callbacks and RUNS_FILE is not None:
        RUN_CACHE[key] = {**result, "_preds": result["_preds"].tolist()}
        tmp = RUNS_FILE.with_name(RUNS_FILE.name + ".tmp")
        tmp.write_text(json.dumps(RUN_CACHE))
        tmp.replace(RUNS_FILE)
    return result


def _train(recipe: str, out_dir: Path, budget: dict[str, Any], callbacks: tuple = (), **overrides: Any) -> dict:
    import pandas as pd

    from molgraph.train.runner import run_training
    from molgraph.train.settings import load_toml

    cfg = _config(recipe, out_dir, budget, **overrides)
    t0 = time.perf_counter()
    run_training(cfg, callbacks=list(callbacks), say=lambda _m: None)
    wall = time.perf_counter() - t0
    saved = {k: v for s in load_toml(out_dir / "config.toml").values() if isinstance(s, dict) for k, v in s.items()}
    for key, value in overrides.items():
        if key in saved and saved[key] != value:
            raise SystemExit(f"self-check: {out_dir} was asked for {key}={value!r} but its config says {saved[key]!r}")
    metrics = json.loads((out_dir / "metrics.json").read_text())
    preds = pd.read_csv(out_dir / "test_predictions.csv")
    pred_cols = [c for c in preds.columns if c.endswith("_pred")]
    return {"test": metrics["test"], "val": metrics["val"], "wall_seconds": wall, "timing": metrics.get("timing"),
            "pred_digest": float(np.nansum(preds[pred_cols].to_numpy(dtype=float))),
            "_preds": preds[pred_cols].to_numpy(dtype=float)}


def _summary(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0, "n": int(arr.size)}


def _verdict(tech: list[float], base: list[float], higher_is_better: bool) -> str:
    """helps / neutral / hurts: the mean difference against the seeds' spread (paired by seed)."""
    d = np.asarray(tech, float) - np.asarray(base, float)
    if not higher_is_better:
        d = -d
    if d.size < 2:
        return "one seed: no verdict"
    se = d.std(ddof=1) / np.sqrt(d.size)
    if d.mean() > 2 * se and d.mean() > 0:
        return "helps"
    if d.mean() < -2 * se and d.mean() < 0:
        return "hurts"
    return "neutral (within 2 standard errors of the paired differences)"


def _check_differs(rows: dict[str, list[dict]], base: str) -> None:
    for name, runs in rows.items():
        if name == base:
            continue
        if all(np.allclose(a["_preds"], b["_preds"], equal_nan=True) for a, b in zip(runs, rows[base])):
            raise SystemExit(f"self-check: {name} gave the baseline's test predictions for every seed; "
                             "the option did not reach the model")


def section_adamp(args: argparse.Namespace, tmp: Path) -> dict:
    out: dict[str, Any] = {}
    for dataset, metric, higher in (("esol", "rmse", False), ("tox21", "roc_auc", True)):
        for norm in ("batch", "graph"):
            rows: dict[str, list[dict]] = {"adam": [], "adamp": []}
            for seed in range(args.seeds):
                for opt in rows:
                    run = tmp / f"adamp_{dataset}_{norm}_{opt}_{seed}"
                    rows[opt].append(train_once(f"gin_{dataset}.toml", run, args.budget[dataset], norm=norm,
                                                optimizer=opt, seed=seed))
                    print(f"adamp {dataset} {norm} {opt} seed {seed}: test {metric} "
                          f"{rows[opt][-1]['test'][metric]:.4f}", flush=True)
            _check_differs(rows, "adam")
            vals = {opt: [r["test"][metric] for r in runs] for opt, runs in rows.items()}
            out[f"{dataset}_{norm}"] = {
                "metric": metric, "per_seed": vals, **{opt: _summary(v) for opt, v in vals.items()},
                "verdict_adamp": _verdict(vals["adamp"], vals["adam"], higher),
                "seconds": {opt: _summary([r["wall_seconds"] for r in runs]) for opt, runs in rows.items()},
            }
    return out


def section_hopfield(args: argparse.Namespace, tmp: Path) -> dict:
    out: dict[str, Any] = {}
    for dataset in ("bbbp", "bace"):
        rows: dict[str, list[dict]] = {k: [] for k in ("mean", "sum", "attention", "hopfield")}
        for seed in range(args.seeds):
            for readout in rows:
                run = tmp / f"hop_{dataset}_{readout}_{seed}"
                rows[readout].append(train_once(f"gin_{dataset}.toml", run, args.budget[dataset], readout=readout,
                                                split="balanced_scaffold", data_seed=seed, seed=seed))
                print(f"hopfield {dataset} {readout} seed {seed}: test roc_auc "
                      f"{rows[readout][-1]['test']['roc_auc']:.4f}", flush=True)
        _check_differs(rows, "mean")
        vals = {k: [r["test"]["roc_auc"] for r in runs] for k, runs in rows.items()}
        out[dataset] = {"metric": "roc_auc", "split": "balanced_scaffold (data_seed = seed)", "per_seed": vals,
                        **{k: _summary(v) for k, v in vals.items()},
                        "verdict_hopfield_vs": {k: _verdict(vals["hopfield"], vals[k], True)
                                                for k in ("mean", "sum", "attention")}}
    return out


def section_encoders(args: argparse.Namespace, tmp: Path) -> dict:
    """(d) of the graph transformer: side by side with GINE and the D-MPNN, same budget and seeds."""
    out: dict[str, Any] = {}
    for dataset, metric, higher in (("esol", "rmse", False), ("lipophilicity", "rmse", False),
                                    ("tox21", "roc_auc", True)):
        budget = args.budget["tox21" if dataset == "tox21" else "esol"]
        rows: dict[str, list[dict]] = {"gin": [], "dmpnn": [], "graph_transformer": []}
        for seed in range(args.seeds):
            for model in rows:
                recipe = f"{'dmpnn' if model == 'dmpnn' else 'gin'}_{dataset}.toml"
                run = tmp / f"enc_{dataset}_{model}_{seed}"
                rows[model].append(train_once(recipe, run, budget, model=model, seed=seed))
                print(f"encoders {dataset} {model} seed {seed}: test {metric} {rows[model][-1]['test'][metric]:.4f}",
                      flush=True)
        vals = {m: [r["test"][metric] for r in runs] for m, runs in rows.items()}
        out[dataset] = {"metric": metric, "per_seed": vals, **{m: _summary(v) for m, v in vals.items()},
                        "epoch_seconds": {m: _summary([r["timing"]["train_epoch_seconds_median"] for r in runs])
                                          for m, runs in rows.items()},
                        "verdict_transformer_vs": {m: _verdict(vals["graph_transformer"], vals[m], higher)
                                                   for m in ("gin", "dmpnn")}}
    return out


def _task_aucs(run: dict, tasks: list[str]) -> dict[str, float]:
    return {t: run["test"][f"roc_auc/{t}"] for t in tasks}


def section_tag(args: argparse.Namespace, tmp: Path) -> dict:
    from molgraph.train.task_grouping import (
        TaskAffinityCallback,
        TransferenceCallback,
        plot_affinity,
        random_groupings,
        select_groups,
        serving_group,
    )

    budget = args.budget["tox21"]
    tasks = TOX21_TASKS
    seeds_out = []
    for seed in range(args.seeds):
        rec = {}
        aff = TaskAffinityCallback(every=args.affinity_every)
        joint = train_once("gin_tox21.toml", tmp / f"tag_joint_{seed}", budget, callbacks=(aff,), seed=seed,
                           target_columns=tasks)
        z = aff.affinity
        rec["joint"] = {"mean_auc": float(np.mean(list(_task_aucs(joint, tasks).values()))),
                        "wall_seconds": joint["wall_seconds"], "affinity_seconds": aff.seconds,
                        "affinity_steps": aff.steps, "train_seconds": aff.train_seconds}
        rec["affinity"] = z.tolist()
        groups = select_groups(z, args.groups, seed=seed)
        serve = serving_group(z, groups)

        def grouped(groupings: list[list[int]], serving: list[int], tag: str) -> dict:
            per_group = []
            for k, g in enumerate(groupings):
                names = [tasks[i] for i in g]
                run = train_once("gin_tox21.toml", tmp / f"tag_{tag}_{seed}_{k}", budget, seed=seed,
                                 target_columns=names)
                per_group.append(_task_aucs(run, names))
            aucs = {tasks[j]: per_group[serving[j]][tasks[j]] for j in range(len(tasks))}
            return {"groups": [[tasks[i] for i in g] for g in groupings], "per_task": aucs,
                    "mean_auc": float(np.mean(list(aucs.values())))}

        rec["tag"] = grouped(groups, serve, "tag")
        rec["random"] = []
        for r, part in enumerate(random_groupings(len(tasks), args.groups, args.random_groupings, seed=100 + seed)):
            serving = [next(k for k, g in enumerate(part) if j in g) for j in range(len(tasks))]
            rec["random"].append(grouped(part, serving, f"rand{r}"))
        transfer = TransferenceCallback(seed=seed)
        it = train_once("gin_tox21.toml", tmp / f"tag_transfer_{seed}", budget, callbacks=(transfer,), seed=seed,
                        target_columns=tasks)
        rec["transference"] = {"mean_auc": float(np.mean(list(_task_aucs(it, tasks).values()))),
                               "chosen": transfer.chosen, "seconds_in_callback": transfer.seconds,
                               "wall_seconds": it["wall_seconds"]}
        print(f"tag seed {seed}: joint {rec['joint']['mean_auc']:.4f}  tag {rec['tag']['mean_auc']:.4f}  random "
              f"{np.mean([x['mean_auc'] for x in rec['random']]):.4f}  transference "
              f"{rec['transference']['mean_auc']:.4f}", flush=True)
        seeds_out.append(rec)
    mean_z = np.nanmean([np.asarray(r["affinity"]) for r in seeds_out], axis=0)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    plot_affinity(mean_z, tasks, args.results_dir / "techniques_tox21_affinity.png")
    joint = [r["joint"]["mean_auc"] for r in seeds_out]
    tag = [r["tag"]["mean_auc"] for r in seeds_out]
    rand = [float(np.mean([x["mean_auc"] for x in r["random"]])) for r in seeds_out]
    trans = [r["transference"]["mean_auc"] for r in seeds_out]
    return {"dataset": "tox21", "n_groups": args.groups, "affinity_every": args.affinity_every,
            "seeds": seeds_out, "mean_affinity": mean_z.tolist(),
            "summary": {"joint": _summary(joint), "tag": _summary(tag), "random": _summary(rand),
                        "transference": _summary(trans)},
            "verdict_tag_vs_joint": _verdict(tag, joint, True), "verdict_tag_vs_random": _verdict(tag, rand, True),
            "verdict_transference_vs_joint": _verdict(trans, joint, True),
            "affinity_overhead": {
                "seconds_per_recorded_step": float(np.mean([r["joint"]["affinity_seconds"] / max(r["joint"]["affinity_steps"], 1)
                                                            for r in seeds_out])),
                "share_of_training_time": float(np.mean([r["joint"]["affinity_seconds"] / r["joint"]["train_seconds"]
                                                         for r in seeds_out]))},
            "transference_overhead_share": float(np.mean([r["transference"]["seconds_in_callback"]
                                                          / r["transference"]["wall_seconds"] for r in seeds_out]))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sections", default="adamp,hopfield,tag", help="adamp, hopfield, tag, transformer")
    p.add_argument("--seeds", type=int, default=3, help="seeds per configuration (default 3)")
    p.add_argument("--hidden-dim", type=int, default=64, help="GIN width for the CPU protocol (default 64)")
    p.add_argument("--depth", type=int, default=3, help="GIN layers (default 3)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--epochs-small", type=int, default=30, help="epochs on ESOL, BBBP, BACE (default 30)")
    p.add_argument("--epochs-tox21", type=int, default=15, help="epochs on Tox21 (default 15)")
    p.add_argument("--groups", type=int, default=3, help="TAG: number of task groups (default 3)")
    p.add_argument("--random-groupings", type=int, default=2, help="TAG: random groupings per seed (default 2)")
    p.add_argument("--affinity-every", type=int, default=10, help="TAG: record affinities every N steps (default 10)")
    p.add_argument("--accelerator", default="cpu", help="Lightning accelerator (default cpu)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "techniques.json"), help="results JSON")
    p.add_argument("--runs-file", default=None, help="JSON of finished runs, to resume an interrupted benchmark "
                                                     "(default: none)")
    args = p.parse_args(argv)
    global RUNS_FILE
    if args.runs_file:
        RUNS_FILE = Path(args.runs_file)
        if RUNS_FILE.is_file():
            RUN_CACHE.update(json.loads(RUNS_FILE.read_text()))
    common = {"hidden_dim": args.hidden_dim, "ffn_hidden_dim": args.hidden_dim, "depth": args.depth,
              "batch_size": args.batch_size}
    args.budget = {d: {**common, "epochs": args.epochs_small} for d in ("esol", "bbbp", "bace")}
    args.budget["tox21"] = {**common, "epochs": args.epochs_tox21}
    out = Path(args.out)
    args.results_dir = out.parent
    result = json.loads(out.read_text()) if out.is_file() else {"sections": {}}
    import torch

    result["machine"] = {"platform": platform.platform(), "torch_threads": torch.get_num_threads()}
    sections = {"adamp": section_adamp, "hopfield": section_hopfield, "tag": section_tag,
                "encoders": section_encoders}
    for name in args.sections.split(","):
        if name == "transformer":
            import techniques_transformer

            result["sections"]["transformer"] = {"see": "benchmarks/results/techniques_transformer.json",
                                                 "ran": techniques_transformer.main([])}
            continue
        if name not in sections:
            raise SystemExit(f"unknown section {name!r}; choose from adamp, hopfield, tag, encoders, transformer")
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            res = sections[name](args, Path(tmp))
        res["settings"] = {"budget": args.budget, "seeds": args.seeds, "wall_seconds": time.perf_counter() - t0,
                           "date": time.strftime("%Y-%m-%d"),
                           "command": "python benchmarks/techniques.py " + " ".join(sys.argv[1:] if argv is None else argv)}
        result["sections"][name] = res
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
