"""``molgraph ngram``: N-gram graph embeddings (Liu et al., NeurIPS 2019) and their evaluation.

Examples::

    molgraph ngram embed -i molecules.csv -s smiles -o emb.npy --fit-on train.csv
    molgraph ngram embed -i molecules.smi -o emb.npz --model ngram.npz
    molgraph ngram evaluate --dataset esol --predictor rf --folds 5 --seed 123

``embed`` learns ``W`` on ``--fit-on`` (default: the input itself) or loads a saved estimator
(``--model``), then writes the embeddings: ``.npy`` has one row per input row (NaN rows for the
rejected ones), ``.npz`` holds ``embeddings`` (embedded rows only), ``rows`` and
``feature_names``. Rejected rows (unparsable, or over ``--max-atoms``) go to
``<OUT stem>.rejects.csv`` (row, input, reason), written on every run.

``evaluate`` runs the paper's protocol on a registry dataset or a CSV (k-fold CV, ``W`` fitted
inside each fold on the training molecules, one predictor per task) or a split; the last line
of stdout is one JSON object with per-task and mean metrics (``rmse``, ``mae``, ``r2`` or
``roc_auc``, ``prc_auc``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from molgraph.io import error_exit

__all__ = ["register"]

# the paper's atom caps; other datasets get 55
_PAPER_CAPS = {"clintox": 100, "hiv": 100}


def _add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("N-gram graph settings")
    g.add_argument("--dim", type=int, default=100, help="vertex-embedding width r (default 100)")
    g.add_argument("--n-grams", type=int, default=6, help="longest walk T in vertices (default 6)")
    g.add_argument("--vertex-embedding", choices=("cbow", "random"), default="cbow",
                   help="cbow: learn W (default); random: untrained seeded W (ablation)")
    g.add_argument("--epochs", type=int, default=100, help="CBoW epochs (default 100)")
    g.add_argument("--batch-size", type=int, default=128, help="CBoW batch size in atoms (default 128)")
    g.add_argument("--max-steps", type=int, default=None, help="cap on CBoW optimizer steps")
    g.add_argument("--self-loops", action="store_true", help="walk on A + I (off in the paper)")
    g.add_argument("--seed", type=int, default=None, help="seed (embed default 0; evaluate default 123)")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("ngram", help="N-gram graph embeddings: embed molecules, evaluate with RF/GBM",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="ngram_command", metavar="ACTION")

    e = sub.add_parser("embed", help="embed a file of molecules (writes .npy/.npz and a rejects file)")
    e.add_argument("-i", "--input", required=True, type=Path, help="CSV/TSV(.gz) or .smi file")
    e.add_argument("-s", "--smiles-column", default="smiles", help="SMILES column of a CSV (default: smiles)")
    e.add_argument("-o", "--output", required=True, type=Path, help="output .npy or .npz")
    src = e.add_mutually_exclusive_group()
    src.add_argument("--fit-on", type=Path, help="learn W on this file's molecules (default: on the input)")
    src.add_argument("--model", type=Path, help="a fitted estimator saved with --save-model (skips fitting)")
    e.add_argument("--fit-smiles-column", default=None, help="SMILES column of --fit-on (default: -s)")
    e.add_argument("--save-model", type=Path, help="save the fitted estimator (.npz, no pickle)")
    e.add_argument("--max-atoms", type=int, default=None, help="reject molecules with more heavy atoms")
    e.add_argument("--errors", choices=("raise", "skip"), default="skip",
                   help="skip: write bad rows to the rejects file (default); raise: stop at the first")
    e.add_argument("--n-jobs", type=int, default=1, help="featurizer worker processes (-1: all cores)")
    e.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    _add_model_options(e)
    e.set_defaults(func=run_embed)

    v = sub.add_parser("evaluate", help="k-fold CV (or a split) with RF / XGBoost / HistGradientBoosting")
    data = v.add_mutually_exclusive_group(required=True)
    data.add_argument("--dataset", help="registry dataset name (see `molgraph datasets list`)")
    data.add_argument("-i", "--input", type=Path, help="CSV with SMILES and targets")
    v.add_argument("-s", "--smiles-column", default="smiles")
    v.add_argument("--target-columns", nargs="+", help="target columns of -i")
    v.add_argument("-t", "--task-type", choices=("regression", "classification"), help="task type of -i")
    v.add_argument("--predictor", choices=("rf", "xgb", "hgb"), default="rf",
                   help="rf (default), xgb (needs xgboost; else runs hgb) or hgb")
    v.add_argument("--representation", choices=("ngram", "ngram_random", "morgan"), default="ngram",
                   help="ngram (default), ngram_random (untrained W) or morgan (r=2, 1024 bits)")
    v.add_argument("--folds", type=int, default=5, help="CV folds (default 5)")
    v.add_argument("--split", choices=("cv", "balanced_scaffold", "scaffold", "random"), default="cv",
                   help="cv (default: the paper's) or a train/val/test split (0.8/0.1/0.1, seed --seed)")
    v.add_argument("--split-file", type=Path, help="a split file (splits.json or CSV), as `molgraph train` reads")
    v.add_argument("--max-atoms", type=int, default=None,
                   help="drop molecules with more atoms (CV default: 55, 100 for clintox/hiv; splits: none)")
    v.add_argument("--trees", type=int, default=None, help="n_estimators (rf/xgb) or max_iter (hgb)")
    v.add_argument("--n-jobs", type=int, default=1, help="predictor threads and featurizer workers")
    v.add_argument("--output", type=Path, help="also write the full result JSON here")
    _add_model_options(v)
    v.set_defaults(func=run_evaluate)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    return p


# -- helpers -------------------------------------------------------------------------------------
def _read_molecules(path: Path, smiles_column: str) -> Iterator[str]:
    from molgraph.data.table import iter_smiles_column

    if path.name.lower().removesuffix(".gz").endswith(".smi"):
        import gzip

        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            yield from (line.split()[0] for line in fh if line.strip())
        return
    yield from iter_smiles_column(path, smiles_column)


def rejects_path(output: Path) -> Path:
    return output.with_name(output.name.split(".")[0] + ".rejects.csv")


def _write_rejects(path: Path, rejects: list) -> None:
    from molgraph.data.sources import atomic_output

    with atomic_output(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["row", "input", "reason"])
        writer.writerows([r.index, r.input, r.reason] for r in rejects)


def _config(args: argparse.Namespace, default_seed: int, max_atoms: int | None):
    from molgraph.methods.ngram.embedding import NGramGraphConfig

    return NGramGraphConfig(
        dim=args.dim, n_grams=args.n_grams, vertex_embedding=args.vertex_embedding, epochs=args.epochs,
        batch_size=args.batch_size, max_steps=args.max_steps, self_loops=args.self_loops, max_atoms=max_atoms,
        seed=default_seed if args.seed is None else args.seed,
    )


# -- embed ---------------------------------------------------------------------------------------
def run_embed(args: argparse.Namespace) -> int:
    if args.output.suffix not in (".npy", ".npz"):
        return error_exit(f"output must end in .npy or .npz, got {args.output}", 2)
    for path in (args.input, args.fit_on, args.model):
        if path is not None and not path.is_file():
            return error_exit(f"file not found: {path}", 2)
    import numpy as np

    from molgraph.chem import MoleculeError
    from molgraph.data.sources import atomic_output
    from molgraph.methods.ngram.embedding import NGramGraph

    try:
        config = _config(args, 0, args.max_atoms)
        start = time.perf_counter()
        if args.model is not None:
            est = NGramGraph.load(args.model)
            fitted_on = f"loaded {args.model}"
        else:
            est = NGramGraph(config)
            fit_path = args.fit_on or args.input
            fit_smiles = list(_read_molecules(fit_path, args.fit_smiles_column or args.smiles_column))
            # bad molecules in the fitting file are skipped (they are not outputs), but counted
            est.fit(fit_smiles, n_jobs=args.n_jobs, errors="skip", progress=args.progress)
            fitted_on = f"fitted on {fit_path} ({est.fit_info['n_molecules']} molecules, " \
                        f"{est.fit_info.get('rejects', 0)} skipped, {est.fit_info['seconds']:.1f} s)"
        fit_s = time.perf_counter() - start
        smiles = list(_read_molecules(args.input, args.smiles_column))
        start = time.perf_counter()
        res = est.embed(smiles, n_jobs=args.n_jobs, errors=args.errors, progress=args.progress)
        embed_s = time.perf_counter() - start
    except MoleculeError as err:
        print(f"error: row {err.index}: {err.input!r}: {err.reason}", file=sys.stderr)
        print("nothing written; use --errors skip to write bad rows to a rejects file", file=sys.stderr)
        return 1
    except (KeyError, ValueError) as err:
        return error_exit(str(err), 2)
    with atomic_output(args.output, "wb") as fh:
        if args.output.suffix == ".npy":
            full = np.full((len(smiles), est.out_dim), np.nan, dtype=np.float32)
            full[res.indices] = res.embeddings
            np.save(fh, full)
        else:
            np.savez(fh, embeddings=res.embeddings, rows=res.indices, feature_names=np.asarray(est.feature_names))
    rpath = rejects_path(args.output)
    _write_rejects(rpath, res.rejects)
    if args.save_model is not None:
        est.save(args.save_model)
    n = len(res.indices)
    print(f"W {fitted_on}")
    print(f"embedded {n} of {len(smiles)} molecules in {embed_s:.1f} s ({n / max(embed_s, 1e-9):.0f} mol/s), "
          f"{est.out_dim} columns -> {args.output}")
    print(f"rejected {len(res.rejects)} -> {rpath}")
    return 0 if n else 1


# -- evaluate ------------------------------------------------------------------------------------
def _load_data(args: argparse.Namespace) -> tuple[list[str], Any, list[str], str, str]:
    from molgraph.data.table import read_molecule_table

    if args.dataset:
        from molgraph.data.registry import dataset_path, get_card

        card = get_card(args.dataset)
        table = read_molecule_table(dataset_path(card.name), card.smiles_column, list(card.target_columns))
        return table.smiles, table.targets, list(card.target_columns), card.task_type, card.name
    if not args.target_columns or not args.task_type:
        raise ValueError("-i needs --target-columns and -t/--task-type")
    table = read_molecule_table(args.input, args.smiles_column, args.target_columns)
    return table.smiles, table.targets, list(args.target_columns), args.task_type, str(args.input)


def _compact(result: dict[str, Any], protocol_key: str) -> dict[str, Any]:
    """Per-task and mean metrics only (the last stdout line)."""
    if protocol_key == "cv":
        tasks = {t: {k: v for k, v in m.items() if k != "folds"} for t, m in result["tasks"].items()}
        mean = result["mean"]
    else:
        tasks, mean = result["test"]["tasks"], result["test"]["mean"]
    return {"dataset": result["dataset"], "protocol": result["protocol"], "representation": result["representation"],
            "predictor": result["predictor"], "n_used": result["n_used"], "n_rejected": result["n_rejected"],
            "tasks": tasks, "mean": mean}


def run_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from molgraph.data.sources import atomic_output
    from molgraph.data.splits import Split, load_split_file, make_split
    from molgraph.methods.ngram.evaluate import cross_validate, evaluate_split, prepare_molecules

    try:
        smiles, y, names, task_type, label = _load_data(args)
        use_cv = args.split == "cv" and args.split_file is None
        seed = 123 if args.seed is None else args.seed
        if args.max_atoms is not None:
            cap = args.max_atoms
        else:
            cap = _PAPER_CAPS.get(str(args.dataset).lower(), 55) if use_cv else None
        config = _config(args, seed, None)
        params: dict[str, Any] = {}
        if args.trees is not None:
            params["max_iter" if args.predictor == "hgb" else "n_estimators"] = args.trees
        data = prepare_molecules(smiles, y, max_atoms=cap, n_jobs=args.n_jobs)
        common = dict(representation=args.representation, predictor=args.predictor, task_names=names,
                      ngram_config=config, predictor_params=params, n_jobs=args.n_jobs)
        if use_cv:
            result = cross_validate(data, task_type, folds=args.folds, seed=seed, **common)
        else:
            if args.split_file is not None:
                split = load_split_file(args.split_file, n=len(smiles))
            else:
                # split the parsed molecules as `molgraph train --split S --data-seed SEED` does
                pos = make_split(args.split, smiles=data.smiles, sizes=(0.8, 0.1, 0.1), seed=seed)
                split = Split(data.rows[pos.train], data.rows[pos.val], data.rows[pos.test], pos.method, pos.seed,
                              pos.sizes)
            result = evaluate_split(data, task_type, split, seed=seed, **common)
    except (KeyError, ValueError, FileNotFoundError) as err:
        return error_exit(str(err).strip("'\""), 2)
    result["dataset"] = label
    result["atom_cap"] = cap
    if data.rejects:
        print(f"left out {len(data.rejects)} of {data.n_input} molecules "
              f"({data.reject_summary()['n_over_atom_cap']} over the atom cap {cap}); first: {data.rejects[0]}",
              file=sys.stderr)
    if args.output is not None:
        with atomic_output(args.output, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1, default=lambda o: o.tolist() if isinstance(o, np.ndarray) else str(o))
    print(json.dumps(_compact(result, "cv" if use_cv else "split")))
    return 0
