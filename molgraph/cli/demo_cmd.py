"""``molgraph demo``: featurize every bundled dataset and split it the standard way.

Until the trainer lands this is the package's main job on bundled data: it shows the whole
core path (cards -> sha256-checked files -> graphs with rejects -> standard splits) in seconds.
"""

from __future__ import annotations

import argparse
import time


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("demo", help="featurize and split the bundled datasets, print a summary",
                              description=__doc__)
    p.add_argument("--featurizer", default="ogb", choices=("ogb", "pyg", "multihot"))
    p.add_argument("--n-jobs", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="seed of the random/balanced splits")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
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
    print(f"{total} molecules featurized; cached featurizations are reused on the next run")
    return 0
