"""GraphCNF benchmark: train on MOSES molecules with at most 20 heavy atoms on CPU, then measure.

Usage (CPU; see docs/graphcnf.md for the measured table)::

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 5 python benchmarks/graphcnf.py \
        --data-root ../shared/data --time-limit 35 --out benchmarks/results/graphcnf.json

One run trains ``molgraph train --method graphcnf`` (a seeded shuffle of MOSES train, molecules
with <= ``--max-atoms`` heavy atoms, ``--max-molecules`` of them, 500 held out for validation)
until ``--time-limit`` minutes have passed (the epoch in progress finishes), then reports:

* ``likelihood``: bits per atom (beta = 1, the ELBO bound) on the validation molecules and on
  ``--test-molecules`` molecules of MOSES test with the same size limit, against the factorized
  i.i.d. baseline (atom types and pair types independent, frequencies of the training molecules);
  encode -> decode reconstruction on both;
* ``samples``: ``--samples`` molecules (seeded): validity (RDKit round trip + connected),
  validity of the largest fragment, uniqueness, novelty against the run's training molecules and
  against all of MOSES train, internal diversity (IntDiv1), scaffold novelty against the run's
  training molecules, invalid samples by reason, sampling rate;
* ``random_graphs``: the same numbers for graphs whose sizes, atom types and pair types are drawn
  independently from the training marginals (the validity baseline);
* ``curve``: validation bits per atom and validity of ``--val-samples`` samples after every epoch;
* ``goals``: the CPU goals (docs/graphcnf.md), each true or false.

Self-checks (the script fails, naming the check, when one does not hold): the same seed gives the
same samples; every valid SMILES parses and is one fragment; the report's uniqueness and novelty
equal a recount from the SMILES; the MOSES-train lookup finds the run's own training molecules
(else "novelty against MOSES train" would be silently inflated by a SMILES-format mismatch);
training molecules fed in as samples count as 0 % novel.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._harness import Part, start_run, update_results  # noqa: E402


class CheckFailed(RuntimeError):
    pass


def check(cond: bool, what: str) -> None:
    if not cond:
        raise CheckFailed(f"self-check failed: {what}")


def train(args: argparse.Namespace, run_dir: Path) -> None:
    from molgraph.methods.graphcnf.config import GraphCNFConfig
    from molgraph.train.runner import run_training

    node_flows, bond_flows, pair_flows = (int(v) for v in args.flows.split(","))
    config = GraphCNFConfig(
        dataset="moses", data_root=args.data_root, max_atoms=args.max_atoms, max_molecules=args.max_molecules,
        val_size=args.val_size, data_seed=args.seed, hidden=args.hidden, edge_hidden=args.edge_hidden,
        gnn_layers=args.gnn_layers, node_flows=node_flows, bond_flows=bond_flows, pair_flows=pair_flows,
        beta_start=args.beta_start, beta_half_life=args.beta_half_life, beta_end=args.beta_end,
        encoder_separation=args.encoder_separation, val_samples=args.val_samples, eval_samples=0,
        steps_per_epoch=args.steps_per_epoch, time_limit=args.time_limit, epochs=10_000, batch_size=args.batch_size,
        max_lr=args.lr, accelerator="cpu", seed=args.seed, output_dir=str(run_dir), progress=False)
    run_training(config, method="graphcnf", say=lambda m: print(m, flush=True))


def moses_test_graphs(args: argparse.Namespace, vocab):
    """``--test-molecules`` MOSES test molecules with <= ``--max-atoms`` heavy atoms, in a
    seeded order: the molecules every measurement of this script scores."""
    from molgraph.data.dense_graphs import DenseMolGraphs
    from molgraph.data.moses import load_moses

    test = load_moses("moses", args.data_root, part="test")
    order = np.random.default_rng(args.seed).permutation(len(test))
    graphs, _ = DenseMolGraphs.from_smiles((test.smiles[i] for i in order), vocab=vocab, max_atoms=args.max_atoms,
                                           limit=args.test_molecules)
    return graphs


def errors_of(args: argparse.Namespace) -> int:
    """Print where encode -> decode goes wrong for a finished run (3 noise draws x the test molecules)."""
    from molgraph.methods.graphcnf.method import reconstruction_errors
    from molgraph.methods.graphcnf.predict import GraphCNFGenerator
    from molgraph.train.checkpoint import load_model_file

    payload = load_model_file(args.errors_of / "model.pt")
    gen = GraphCNFGenerator.from_section(payload["graphcnf"], payload)
    graphs = moses_test_graphs(args, gen.vocab)
    errors = reconstruction_errors(gen.model, graphs, np.arange(len(graphs)), seeds=(0, 1, 2))
    print(json.dumps({"run": str(args.errors_of), **errors}))
    return 0


def curve(run_dir: Path) -> list[dict]:
    """Per-epoch validation numbers from the run's CSV log."""
    import pandas as pd

    rows = []
    for path in sorted((run_dir / "logs").rglob("metrics.csv")):
        frame = pd.read_csv(path)
        for _, r in frame.iterrows():
            if "val_loss" in r and not np.isnan(r.get("val_loss", np.nan)):
                rows.append({"epoch": int(r["epoch"]), "step": int(r["step"]), "val_bits_per_atom": float(r["val_loss"]),
                             "val_validity": float(r["val_validity"]) if "val_validity" in r and
                             not np.isnan(r["val_validity"]) else None})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"), help="holds zinc/moses/")
    p.add_argument("--max-atoms", type=int, default=20, help="heavy-atom limit (default 20)")
    p.add_argument("--max-molecules", type=int, default=30_500, help="train + val molecules (default 30500)")
    p.add_argument("--val-size", type=int, default=500, help="validation molecules (default 500)")
    p.add_argument("--time-limit", type=float, default=35.0, help="training minutes (default 35)")
    p.add_argument("--steps-per-epoch", type=int, default=100, help="batches per epoch (default 100)")
    p.add_argument("--batch-size", type=int, default=64, help="molecules per batch (default 64)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--hidden", type=int, default=64, help="node width (default 64)")
    p.add_argument("--edge-hidden", type=int, default=32, help="pair width (default 32)")
    p.add_argument("--gnn-layers", type=int, default=2, help="message-passing rounds (default 2)")
    p.add_argument("--flows", default="2,3,3", help="blocks of steps 1,2,3 (default 2,3,3)")
    p.add_argument("--beta-half-life", type=float, default=1000.0, help="steps (default 1000)")
    p.add_argument("--beta-start", type=float, default=3.0,
                   help="initial beta (default 3.0; attempts 1 and 2 ran with the paper's 2.0)")
    p.add_argument("--beta-end", type=float, default=3.0,
                   help="the value beta settles at (default 3.0; attempts 1 and 2 ran with the paper's 1.0)")
    p.add_argument("--encoder-separation", type=float, default=48.0,
                   help="scale bound of the atom/bond encoders (default 48; 0 = free, as attempts 1 and 2 ran)")
    p.add_argument("--val-samples", type=int, default=200, help="samples per validation (default 200)")
    p.add_argument("--samples", type=int, default=2000, help="molecules sampled for the metrics (default 2000)")
    p.add_argument("--test-molecules", type=int, default=1000, help="MOSES test molecules scored (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of data, model and sampling (default 0)")
    p.add_argument("--run-dir", type=Path, default=None, help="keep the run here (default: a temporary folder)")
    p.add_argument("--reuse-run", type=Path, default=None, help="measure this finished run instead of training")
    p.add_argument("--train-seconds", type=float, default=None,
                   help="with --reuse-run: the training time the run took (its own log), recorded as given")
    p.add_argument("--errors-of", type=Path, default=None,
                   help="only print where encode -> decode goes wrong for this finished run (3 noise draws x "
                        "the test molecules; writes no results)")
    p.add_argument("--part", default="cpu", help="results part (default cpu)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "graphcnf.json")
    args = p.parse_args(argv)
    if args.errors_of is not None:
        return errors_of(args)
    run = start_run(argv, output=args.out)

    import torch
    from rdkit import Chem

    from molgraph.data.dense_graphs import DenseGraphBatcher, DenseMolGraphs
    from molgraph.data.moses import load_moses
    from molgraph.methods.graphcnf.method import iid_baseline_bits, reconstruction_errors, reconstruction_rate
    from molgraph.methods.graphcnf.predict import GraphCNFGenerator
    from molgraph.methods.graphcnf.sampling import generation_metrics, judge, random_graphs, scaffold_set
    from molgraph.methods.graphcnf.task import evaluate_bits
    from molgraph.train.checkpoint import load_model_file

    tmp = None
    if args.reuse_run is not None:
        run_dir = args.reuse_run
        train_seconds = args.train_seconds
    else:
        if args.run_dir is None:
            tmp = tempfile.TemporaryDirectory(prefix="graphcnf_bench_")
            run_dir = Path(tmp.name) / "run"
        else:
            run_dir = args.run_dir
        t0 = time.perf_counter()
        train(args, run_dir)
        train_seconds = time.perf_counter() - t0
    payload = load_model_file(run_dir / "model.pt")
    section = payload["graphcnf"]
    gen = GraphCNFGenerator.from_section(section, payload)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    vocab = gen.vocab
    train_smiles = list(section["train_smiles"])
    n_params = sum(p.numel() for p in gen.model.parameters())
    print(f"model: {n_params} parameters; {len(train_smiles)} training molecules", flush=True)

    # -- likelihood ----------------------------------------------------------------------------------
    train_graphs, _ = DenseMolGraphs.from_smiles(train_smiles, vocab=vocab, max_atoms=args.max_atoms)
    test_graphs = moses_test_graphs(args, vocab)
    both = DenseMolGraphs(
        np.concatenate([np.pad(train_graphs.types, ((0, 0), (0, args.max_atoms - train_graphs.max_atoms))),
                        np.pad(test_graphs.types, ((0, 0), (0, args.max_atoms - test_graphs.max_atoms)))]),
        np.concatenate([np.pad(train_graphs.adj, ((0, 0), (0, args.max_atoms - train_graphs.max_atoms),
                                                  (0, args.max_atoms - train_graphs.max_atoms))),
                        np.pad(test_graphs.adj, ((0, 0), (0, args.max_atoms - test_graphs.max_atoms),
                                                 (0, args.max_atoms - test_graphs.max_atoms)))]),
        np.concatenate([train_graphs.lengths, test_graphs.lengths]), train_graphs.smiles + test_graphs.smiles, vocab,
        np.arange(len(train_graphs) + len(test_graphs)))
    fit = np.arange(len(train_graphs))
    tidx = np.arange(len(train_graphs), len(both))
    bits = evaluate_bits(gen.model, DenseGraphBatcher(both), tidx, seed=args.seed)
    atoms = both.lengths[tidx]
    likelihood = {
        "val": metrics["val"],
        "test": {"n": int(tidx.size), "bits_per_atom": float((bits * atoms).sum() / atoms.sum()),
                 "iid_baseline_bits_per_atom": iid_baseline_bits(both, fit, tidx),
                 "reconstruction": reconstruction_rate(gen.model, both, tidx, seed=args.seed)},
        # the same on training molecules (the ones the encoders were fitted to)
        "train_reconstruction": {"n": int(min(fit.size, args.test_molecules)),
                                 "rate": reconstruction_rate(gen.model, both, fit[:args.test_molecules],
                                                             seed=args.seed)},
        # where it goes wrong: 3 noise draws x the test molecules (see reconstruction_errors)
        "test_errors": reconstruction_errors(gen.model, both, tidx, seeds=(0, 1, 2)),
    }
    print("likelihood:", json.dumps(likelihood), flush=True)

    # -- samples ---------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    checks, report = gen.generate(args.samples, seed=args.seed)
    sample_seconds = time.perf_counter() - t0
    valid = [c.smiles for c in checks if c.valid]
    # novelty against all of MOSES train: its SMILES are RDKit-canonical; the lookup must find the
    # run's own training molecules, or a format mismatch would make everything look novel
    moses_train = set(load_moses("moses", args.data_root, part="train").smiles)
    found = float(np.mean([s in moses_train for s in train_smiles[:5000]]))
    check(found >= 0.99, f"only {found:.2%} of the run's training SMILES are found in MOSES train as written")
    report["novelty_moses_train"] = (sum(1 for s in valid if s not in moses_train) / len(valid)) if valid else None
    report["novelty_moses_train_unique"] = (sum(1 for s in set(valid) if s not in moses_train) / len(set(valid))
                                            if valid else None)
    report["run_train_smiles_found_in_moses_train"] = found
    scafs_train = scaffold_set(train_smiles)
    more = generation_metrics(checks, set(train_smiles), train_scaffolds=scafs_train)
    report["scaffold_novelty"] = more["scaffold_novelty"]
    report["distinct_scaffolds"] = more["distinct_scaffolds"]
    report["sampling_seconds"] = sample_seconds
    print("samples:", json.dumps({k: v for k, v in report.items() if k != "invalid_reasons"}), flush=True)
    print("invalid:", report["invalid_reasons"], flush=True)

    # -- self-checks -----------------------------------------------------------------------------------
    again, _ = gen.generate(64, seed=args.seed + 1)
    again2, _ = gen.generate(64, seed=args.seed + 1)
    check([c.smiles + c.reason for c in again] == [c.smiles + c.reason for c in again2],
          "the same seed gave different samples")
    for s in valid:
        mol = Chem.MolFromSmiles(s)
        check(mol is not None and "." not in s, f"a valid sample {s!r} does not parse or has several fragments")
    check(abs(report["uniqueness"] - len(set(valid)) / len(valid)) < 1e-12 if valid else True, "uniqueness recount")
    check(abs(report["novelty"] - sum(s not in set(train_smiles) for s in valid) / len(valid)) < 1e-12
          if valid else True, "novelty recount")
    planted = generation_metrics([type(checks[0])(True, s, "", True, s, 0) for s in train_smiles[:50]],
                                 set(train_smiles))
    check(planted["novelty"] == 0.0 and all(s in moses_train for s in train_smiles[:50]),
          "training molecules fed in as samples are not 0 % novel")
    dup_train = sum(1 for s in set(valid) if s in set(train_smiles))
    check(dup_train == round((1 - (report["novelty_unique"] or 0)) * len(set(valid))),
          "distinct samples equal to training molecules do not match the reported novelty")

    # -- random graphs with the same marginals ---------------------------------------------------------------
    pa = train_graphs.atom_frequencies()
    pp = train_graphs.pair_frequencies()
    rt, ra, rl = random_graphs(pa, pp, section["length_hist"], args.samples, seed=args.seed)
    rchecks = judge(rt, ra, rl, vocab)
    rand = generation_metrics(rchecks, set(train_smiles))
    rand["novelty_moses_train"] = (sum(1 for c in rchecks if c.valid and c.smiles not in moses_train) /
                                   max(rand["valid"], 1)) if rand["valid"] else None
    print("random graphs:", json.dumps({k: rand[k] for k in ("validity", "validity_largest_fragment",
                                                              "largest_fragment_mean_atom_share")}), flush=True)

    goals = {  # plain bools: numpy's are not JSON
        "bits_below_iid_baseline_test": likelihood["test"]["bits_per_atom"] < likelihood["test"]["iid_baseline_bits_per_atom"],
        "validity_at_least_2x_random": report["validity"] >= 2 * rand["validity"] and report["validity"] > 0,
        "validity_at_least_40pct": report["validity"] >= 0.40,
        "validity_largest_fragment_at_least_80pct": report["validity_largest_fragment"] >= 0.80,
        "uniqueness_at_least_90pct": (report["uniqueness"] or 0) >= 0.90,
        "training_under_40_min": train_seconds is not None and train_seconds < 40 * 60,
    }
    goals = {k: bool(v) for k, v in goals.items()}
    entry = {
        "model": {"parameters": n_params, "config": section["model_config"] | {"atom_freq": None},
                  "vocab": section["vocab"]},
        "data": section["data"],
        "training": {"seconds": train_seconds, "run_dir": str(run_dir), "epochs_run": metrics.get("timing", {}).get("epochs_run"),
                     "epoch_seconds_median": metrics.get("timing", {}).get("train_epoch_seconds_median"),
                     "steps": (curve(run_dir)[-1]["step"] if curve(run_dir) else None)},
        "curve": curve(run_dir),
        "likelihood": likelihood,
        "samples": report,
        "random_graphs": rand,
        "goals": goals,
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("out",)}
    update_results(args.out, [Part(args.part, entry, settings)], run, benchmark="graphcnf")
    print("goals:", json.dumps(goals), flush=True)
    print(f"wrote {args.out} (part {args.part})")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
