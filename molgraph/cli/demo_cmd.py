"""``molgraph demo``: the whole package on bundled data in about two minutes on 2 CPU cores.

1. Featurize every bundled dataset and split it the standard way (cards -> sha256-checked files
   -> graphs with rejects -> splits).
2. Train a D-MPNN on ESOL with a scaffold split (``models/dmpnn_esol.toml`` settings), print the
   test RMSE, then predict a few new molecules with the saved model file alone.

Where it writes: a demo folder, kept when the demo ends. By default ``./demo-run`` in the
current folder; when that already holds files (an earlier demo), the next free one of
``./demo-run-2``, ``./demo-run-3``, ... so an earlier run is never overwritten. ``-o DIR``
writes to DIR instead, which must not exist or be empty (a folder with files is refused).
The folder holds:

  rejects.csv         every molecule the demo could not read, with RDKit's full reason
                      (the screen shows them shortened)
  new_molecules.csv   the demo's new molecules (name, smiles), input for `molgraph predict`
  esol_dmpnn/         the training run: model.pt, metrics.json, test_predictions.csv, plots,
                      config.toml, splits.json, logs/
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
import time
from pathlib import Path
from typing import Iterable

DEMO_MOLECULES = [
    ("caffeine", "Cn1cnc2c1c(=O)n(C)c(=O)n2C"),
    ("aspirin", "CC(=O)Oc1ccccc1C(=O)O"),
    ("ibuprofen", "CC(C)Cc1ccc(cc1)C(C)C(=O)O"),
    ("naphthalene", "c1ccc2ccccc2c1"),
    ("glucose", "OC[C@H]1OC(O)[C@H](O)[C@@H](O)[C@@H]1O"),
    ("not a molecule", "C1CC(("),
]

DEFAULT_DIR = Path("demo-run")
RUN_NAME = "esol_dmpnn"
REJECTS_FILE = "rejects.csv"
MOLECULES_FILE = "new_molecules.csv"
ELLIPSIS = "\u2026"
# reject reasons on screen are cut to this many characters; rejects.csv keeps them whole
SHOWN_REASON_CHARS = 90


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("demo", help="featurize the bundled datasets, train on ESOL, predict",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--featurizer", default="ogb", choices=("ogb", "pyg", "multihot"),
                   help="featurizer for the dataset summary (training uses the recipe's)")
    p.add_argument("--n-jobs", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="seed of the random/balanced splits and of the model")
    p.add_argument("--epochs", type=int, default=None, help="training epochs for the ESOL model (default: the recipe's 50)")
    p.add_argument("-o", "--output-dir", type=Path, default=None,
                   help="demo folder to create; must not exist or be empty (default: ./demo-run, or the next "
                        "free ./demo-run-N when that holds an earlier demo)")
    p.add_argument("--skip-training", action="store_true", help="only the featurize/split summary")
    p.set_defaults(func=run)
    return p


def shorten(text: str, width: int = SHOWN_REASON_CHARS) -> str:
    """``text`` on one line in at most ``width`` characters, cut at a word boundary with "…".

    Runs of whitespace (RDKit's messages hold double spaces and newlines) become one space. A text
    that fits is returned whole. Otherwise it is cut after the last whole word that fits with the
    "…" (so "SMILES Parse Error: Failed while parsing" in 30 characters is "SMILES Parse Error: Failed…",
    never "…Error: Fail"), dropping punctuation left at the cut. A first word longer than the
    width is cut inside the word, the one case where a word boundary cannot be had.

    Raises:
        ValueError: if ``width`` < 1 (no room even for the "…").
    """
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    room = width - len(ELLIPSIS)
    head = flat[: room + 1]  # one more character: tells whether the cut falls at a word's end
    if len(head) > room and head[room] == " ":
        kept = head[:room]
    else:
        space = head.rfind(" ", 0, room + 1)
        kept = head[:space] if space > 0 else head[:room]
    return kept.rstrip(" ,;:.-") + ELLIPSIS


def choose_output_dir(requested: Path | None, default: Path = DEFAULT_DIR) -> Path:
    """The demo folder: ``requested`` if it is new or empty, else the first new or empty one of
    ``default``, ``default-2``, ``default-3``, ...

    Raises:
        FileExistsError: if ``requested`` is a file or a folder holding anything (nothing in it is
            touched; the message says to choose another ``-o``).
    """
    if requested is not None:
        if _usable(requested):
            return requested
        what = "a file" if not requested.is_dir() else "a folder that is not empty"
        raise FileExistsError(f"{requested} is {what}: the demo never writes into used folders; "
                              f"choose a new -o DIR, or leave -o out for the next free ./{default.name}-N")
    for k in itertools.count(1):
        candidate = default if k == 1 else default.with_name(f"{default.name}-{k}")
        if _usable(candidate):
            return candidate
    raise AssertionError("unreachable")  # itertools.count never ends


def _usable(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def _write_rejects(path: Path, rows: Iterable[tuple[str, int, str, str]]) -> int:
    """Write ``source,row,input,reason`` rows (full reasons) and return how many there were."""
    rows = list(rows)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["source", "row", "input", "reason"])
        writer.writerows(rows)
    return len(rows)


def _summary(args: argparse.Namespace) -> list[tuple[str, int, str, str]]:
    """Featurize and split every bundled dataset, print one line each; returns the rejects."""
    from molgraph.data.registry import get_card, list_datasets, load_dataset
    from molgraph.data.splits import make_split
    from molgraph.featurizers import MolGraphFeaturizer

    featurizer = MolGraphFeaturizer.from_preset(args.featurizer)
    header = f"{'dataset':<14}{'rows':>7}{'graphs':>8}{'rejects':>8}{'atoms/mol':>10}{'tasks':>6}  {'task':<15}{'split':<10}{'train/val/test':>18}{'secs':>6}"
    print(f"featurizer {args.featurizer}: {featurizer.atom_dim} atom and {featurizer.bond_dim} bond columns")
    print(header)
    print("-" * len(header))
    total = 0
    rejects: list[tuple[str, int, str, str]] = []
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
        rejects += [(name, r.index, r.input, r.reason) for r in ds.rejects]
        for reject in ds.rejects[:2]:
            print(f"    reject row {reject.index}: {shorten(reject.reason)}")
        if len(ds.rejects) > 2:
            print(f"    ... and {len(ds.rejects) - 2} more rejects")
    print(f"{total} molecules featurized; cached featurizations are reused on the next run\n")
    return rejects


def _train_and_predict(args: argparse.Namespace, out_dir: Path) -> list[tuple[str, int, str, str]]:
    """Train on ESOL into ``out_dir/esol_dmpnn``, predict the demo molecules; returns their rejects."""
    import logging

    from molgraph.methods.property.config import TrainConfig, load_config_file, resolve_config
    from molgraph.methods.property.predict import Predictor
    from molgraph.train.runner import run_training

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    run_dir = out_dir / RUN_NAME
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
        print(f"  row {r.index} rejected: {shorten(r.reason, 80)}")
    print(f"\nthe run, in {run_dir}: model.pt, metrics.json, test_predictions.csv, parity_test.png, "
          f"learning_curves.png, config.toml, splits.json, logs/")
    print(f"next: molgraph predict -i {out_dir / MOLECULES_FILE} --model {run_dir} -o {out_dir / 'predictions.csv'}")
    return [(MOLECULES_FILE, r.index, r.input, r.reason) for r in rejects]


def _recipe_path() -> Path | None:
    # the recipe lives in the source tree's models/ (not installed with a wheel)
    path = Path(__file__).resolve().parents[2] / "models" / "dmpnn_esol.toml"
    return path if path.is_file() else None


def run(args: argparse.Namespace) -> int:
    """Run ``molgraph demo``; returns the exit code (2 when ``-o`` names a used folder)."""
    try:
        out_dir = choose_output_dir(args.output_dir)
    except FileExistsError as exc:
        print(f"molgraph demo: error: {exc}", file=sys.stderr)
        return 2
    # made now, before minutes of work, so that a second demo started meanwhile picks another
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"writing the demo to {out_dir} (kept afterwards)\n")
    with (out_dir / MOLECULES_FILE).open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("name", "smiles"), *DEMO_MOLECULES])
    rejects = _summary(args)
    if not args.skip_training:
        rejects += _train_and_predict(args, out_dir)
    n = _write_rejects(out_dir / REJECTS_FILE, rejects)
    print(f"\n{n} rejected molecules with RDKit's full reasons: {out_dir / REJECTS_FILE}")
    print(f"demo folder kept: {out_dir}")
    return 0
