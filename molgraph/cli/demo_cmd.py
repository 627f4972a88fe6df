"""``molgraph demo``: the whole package on bundled data in about two minutes on 2 CPU cores.

1. Featurize every bundled dataset and split it the standard way (cards -> sha256-checked files
   -> graphs with rejects -> splits).
2. Train a D-MPNN on ESOL with a scaffold split (``models/dmpnn_esol.toml`` settings), print the
   test RMSE, then predict a few new molecules with the saved model file alone.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

DEMO_MOLECULES = [
    ("caffeine", "Cn1cnc2c1c(=O)n(C)c(=O)n2C"),
    ("aspirin", "CC(=O)Oc1ccccc1C(=O)O"),
    ("ibuprofen", "CC(C)Cc1ccc(cc1)C(C)C(=O)O"),
    ("naphthalene", "c1ccc2ccccc2c1"),
    ("glucose", "OC[C@H]1OC(O)[C@H](O)[C@@H](O)[C@@H]1O"),
    ("not a molecule", "C1CC(("),
]


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("demo", help="featurize the bundled datasets, train on ESOL, predict",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--featurizer", default="ogb", choices=("ogb", "pyg", "multihot"),
                   help="featurizer for the dataset summary (training uses the recipe's)")
    p.add_argument("--n-jobs", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="seed of the random/balanced splits and of the model")
    p.add_argument("--epochs", type=int, default=None, help="training epochs for the ESOL model (default: the recipe's 50)")
    p.add_argument("-o", "--output-dir", type=Path, default=None,
                   help="run folder for the ESOL model (default: a new temporary folder)")
    p.add_argument("--skip-training", action="store_true", help="only the featurize/split summary")
    p.set_defaults(func=run)
    return p


def _summary(args: argparse.Namespace) -> None:
    from molgraph.data.registry import get_card, list_datasets, load_dataset
    from molgraph.data.splits import make_split
    from molgraph.featurizers import MolGraphFeaturizer

    featurizer = MolGraphFeaturizer.from_preset(args.featurizer)
    header = f"{'dataset':<14}{'rows':>7}{'graphs':>8}{'rejects':>8}{'atoms/mol':>10}{'tasks':>6}  {'task':<15}{'split':<10}{'train/val/test':>18}{'secs':>6}"
    print(f"featurizer {args.featurizer}: {featurizer.atom_dim} atom and {featurizer.bond_dim} bond columns")
    print(header)
    print("-" * len(header))
    total = 0
    for name in list_datasets():
        card = get_card(name)
        if not card.bundled:
            continue
        start = time.perf_counter()
        ds = load_dataset(name, featurizer=featurizer, n_jobs=args.n_jobs, progress=False)
        labels = ds.targets if card.task_type == "classification" and card.split == "stratified" else None
        split = make_split(card.split, smiles=ds.smiles, labels=labels, sizes=(0.8, 0.1, 0.1), seed=args.seed)
        secs = time.perf_counter() - start
        counts = "/".join(str(len(p)) for p in (split.train, split.val, split.test))
        atoms = float(ds.graphs.num_atoms.float().mean())
        print(f"{name:<14}{card.n_rows:>7}{len(ds):>8}{len(ds.rejects):>8}{atoms:>10.1f}{ds.num_tasks:>6}  "
              f"{card.task_type:<15}{card.split:<10}{counts:>18}{secs:>6.1f}")
        total += len(ds)
        for reject in ds.rejects[:2]:
            print(f"    reject row {reject.index}: {reject.reason[:90]}")
        if len(ds.rejects) > 2:
            print(f"    ... and {len(ds.rejects) - 2} more rejects")
    print(f"{total} molecules featurized; cached featurizations are reused on the next run\n")


def _train_and_predict(args: argparse.Namespace) -> None:
    import logging

    from molgraph.methods.property.config import TrainConfig, load_config_file, resolve_config
    from molgraph.methods.property.predict import Predictor
    from molgraph.train.runner import run_training

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    run_dir = args.output_dir or Path(tempfile.mkdtemp(prefix="molgraph-demo-")) / "esol_dmpnn"
    recipe = _recipe_path()
    values = load_config_file(recipe) if recipe else {"dataset": "esol", "split": "scaffold"}
    config: TrainConfig = resolve_config(
        values, {"split": "scaffold", "epochs": args.epochs or values.get("epochs", 50), "seed": args.seed, "output_dir": str(run_dir), "progress": False,
                 "accelerator": "cpu"})
    print(f"training a D-MPNN on ESOL ({config.split} split, {config.epochs} epochs"
          f"{', recipe ' + str(recipe) if recipe else ''}) ...")
    start = time.perf_counter()
    result = run_training(config, say=lambda msg: print("  " + msg))
    secs = time.perf_counter() - start
    test = result.metrics["test"]
    print(f"test RMSE {test['rmse']:.3f} log(mol/L), MAE {test['mae']:.3f}, R2 {test['r2']:.3f} "
          f"({test['n']} scaffold-held-out molecules; trained in {secs:.0f} s)")

    predictor = Predictor.load(result.model_path)
    names, smiles = zip(*DEMO_MOLECULES)
    mean, _, kept, rejects = predictor.predict_smiles(list(smiles))
    print("\npredicted aqueous solubility, log(mol/L), from the model file alone:")
    values = dict(zip(kept.tolist(), mean[:, 0].tolist()))
    for i, (name, smi) in enumerate(DEMO_MOLECULES):
        shown = f"{values[i]:7.2f}" if i in values else "  reject"
        print(f"  {name:<16}{shown}   {smi}")
    for r in rejects:
        print(f"  row {r.index} rejected: {r.reason[:80]}")
    print(f"\noutputs in {run_dir}: model.pt, metrics.json, test_predictions.csv, parity_test.png, "
          f"learning_curves.png, config.toml, splits.json, logs/")
    print(f"next: molgraph predict -i YOUR.csv --model {run_dir} -o preds.csv")


def _recipe_path() -> Path | None:
    # the recipe lives in the source tree's models/ (not installed with a wheel)
    path = Path(__file__).resolve().parents[2] / "models" / "dmpnn_esol.toml"
    return path if path.is_file() else None


def run(args: argparse.Namespace) -> int:
    _summary(args)
    if not args.skip_training:
        _train_and_predict(args)
    return 0
