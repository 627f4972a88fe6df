"""``molgraph conformers generate|evaluate``: conformer generation to SDF, and COV/MAT evaluation.

generate: CSV/TSV (``-s`` names the SMILES column), ``.smi`` or SDF in; one SDF record per
conformer out, written atomically; molecules that fail go to ``<OUT stem>.rejects.csv`` with the
reason, and the counts are printed.

evaluate: two SDF files (generated, reference) grouped into molecules by canonical SMILES
(default) or name; prints mean/median COV-R, MAT-R, COV-P, MAT-P and writes them, with the
protocol and per-molecule rows, to a JSON file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Iterator


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("conformers", help="generate conformers (ETKDG + MMFF) or evaluate them (COV/MAT)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="conformers_command", metavar="{generate,evaluate}")

    g = sub.add_parser("generate", help="generate conformers for a file of molecules -> SDF")
    g.add_argument("-i", "--input", required=True, type=Path, help="CSV/TSV(.gz), .smi or .sdf(.gz)")
    g.add_argument("-s", "--smiles-column", default="smiles", help="SMILES column of a CSV (default: smiles)")
    g.add_argument("-n", "--n-confs", type=int, default=10, help="conformers per molecule (default 10)")
    g.add_argument("-o", "--output", required=True, type=Path, help="output .sdf")
    g.add_argument("--method", default="ETKDGv3",
                   help="ETKDGv3 (default), srETKDGv3, ETKDGv2, ETKDG, ETDG, KDG, cgcf (a learned model: needs --model), "
                        "or hybrid (an ETKDGv3 pool ranked by a learned model, a diverse top n kept; docs/cgcf.md)")
    g.add_argument("--model", type=Path, default=None,
                   help="with --method cgcf or hybrid: run folder or model.pt of `molgraph cgcf train` (docs/cgcf.md)")
    g.add_argument("--hybrid-pool", type=int, default=None,
                   help="--method hybrid: ETKDGv3 conformers embedded (and optimized) per molecule (default 50)")
    g.add_argument("--hybrid-score", default=None, choices=("energy", "flow", "tilted", "mmff"),
                   help="--method hybrid: ranking of the pool: energy (-E of the model's energy network; default), "
                        "flow (log p_flow), tilted (log p_flow - E), mmff (lowest force-field energy; no --model)")
    g.add_argument("--hybrid-prune", type=float, default=None,
                   help="--method hybrid: going down the ranking, keep a conformer only if its heavy-atom RMSD to "
                        "every kept one exceeds this (angstrom; default 0.5; 0: the plain top n)")
    g.add_argument("--optimize", default="mmff", choices=("mmff", "uff", "none"),
                   help="force field: mmff (UFF where MMFF lacks parameters; default), uff, none")
    g.add_argument("--prune-rms", type=float, default=None, help="prune conformers closer than this (angstrom)")
    g.add_argument("--seed", type=int, default=42, help="seed (default 42; 0 is fine): each molecule's RDKit seed is a prime drawn from it and "
                        "the molecule (recorded as molgraph_rdkit_seed)")
    g.add_argument("--max-attempts", type=int, default=0, help="RDKit maxIterations per conformer (0: default)")
    g.add_argument("--timeout", type=float, default=0.0, help="RDKit embedding timeout, seconds (0: none)")
    g.add_argument("--n-jobs", type=int, default=1, help="worker processes (-1: all cores)")
    g.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: on a terminal only)")
    g.set_defaults(func=run_generate)

    e = sub.add_parser("evaluate", help="COV/MAT of generated conformers against reference conformers")
    e.add_argument("--generated", required=True, type=Path, help="SDF of generated conformers")
    e.add_argument("--reference", required=True, type=Path, help="SDF of reference conformers")
    e.add_argument("--threshold", type=float, default=0.5,
                   help="COV threshold in angstrom (default 0.5; 1.25 is the drug-size convention)")
    e.add_argument("--exclusive", action="store_true",
                   help="covered means rmsd < threshold, the GeoMol / torsional-diffusion comparison (default <=)")
    # the old name of --exclusive; it was never torsional diffusion's "strict" symmetry rule
    e.add_argument("--strict", dest="exclusive", action="store_true", help=argparse.SUPPRESS)
    e.add_argument("--all-atoms", action="store_true", help="RMSD over all atoms (default heavy atoms)")
    e.add_argument("--no-symmetrize", action="store_true",
                   help="do not treat conjugated terminal O/N (carboxylate, nitro) as interchangeable")
    e.add_argument("--key", default="smiles", help="match molecules by smiles (default), isomeric, name or prop:NAME")
    e.add_argument("--n-jobs", type=int, default=1, help="worker processes")
    e.add_argument("-o", "--output", type=Path, default=None,
                   help="results JSON (default: <generated stem>.coverage.json)")
    e.set_defaults(func=run_evaluate)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    return p


def _items(args: argparse.Namespace) -> Iterator:
    from molgraph.chem import ParseOptions, read_sdf
    from molgraph.data.table import iter_smiles_column

    name = args.input.name.lower().removesuffix(".gz")
    if name.endswith(".sdf"):
        return (mol for _, mol, _ in read_sdf(args.input, ParseOptions(keep_hs=True)))
    if name.endswith(".smi"):
        from molgraph.data.table import iter_smi

        return iter_smi(args.input)
    import itertools

    rows = iter_smiles_column(args.input, args.smiles_column)
    # the generator checks the header on its first step: take it now, so a wrong column fails
    # before any output file is opened
    first = list(itertools.islice(rows, 1))
    return itertools.chain(first, rows)


def run_generate(args: argparse.Namespace) -> int:
    from molgraph.conformers import GenerationOptions, generate_batch
    from molgraph.data.conformer_sdf import rejects_path_for, write_conformers_sdf

    if args.output.suffix != ".sdf":
        print(f"error: output must end in .sdf, got {args.output}", file=sys.stderr)
        return 2
    if not args.input.is_file():
        print(f"error: input file not found: {args.input}", file=sys.stderr)
        return 2
    if args.method == "hybrid":
        return _run_generate_hybrid(args)
    given = [name for name in ("hybrid_pool", "hybrid_score", "hybrid_prune") if getattr(args, name) is not None]
    if given:
        print(f"error: --{given[0].replace('_', '-')} is a setting of --method hybrid, not of {args.method}",
              file=sys.stderr)
        return 2
    if args.method == "cgcf" or args.model is not None:
        return _run_generate_cgcf(args)
    try:
        options = GenerationOptions(
            n_confs=args.n_confs, method=args.method, optimize=None if args.optimize == "none" else args.optimize,
            prune_rms=args.prune_rms, seed=args.seed, max_attempts=args.max_attempts, timeout=args.timeout,
        )
        items = _items(args)
    except (KeyError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    start = time.perf_counter()
    rejects = rejects_path_for(args.output)
    counts = write_conformers_sdf(generate_batch(items, options=options, n_jobs=args.n_jobs, progress=progress),
                                  args.output, rejects)
    elapsed = time.perf_counter() - start
    print(f"generated {counts.n_conformers} conformers for {counts.n_ok} of {counts.n_molecules} molecules "
          f"in {elapsed:.1f} s -> {args.output}")
    print(f"failed {counts.n_failed} -> {rejects}; molecules that needed a fallback: {counts.n_with_notes} "
          f"(see the molgraph_notes SD property)")
    return 0 if counts.n_ok else 1


def _run_generate_cgcf(args: argparse.Namespace) -> int:
    """``--method cgcf --model RUN``: conformers from a learned CGCF model (molgraph.methods.cgcf)."""
    from molgraph.data.conformer_sdf import rejects_path_for, write_conformers_sdf
    from molgraph.methods.cgcf.generate import generate_results
    from molgraph.methods.cgcf.model import load_model
    from molgraph.train.checkpoint import CheckpointError

    if args.method != "cgcf" or args.model is None:
        print("error: a learned model needs both --method cgcf and --model RUN", file=sys.stderr)
        return 2
    try:
        model = load_model(args.model)
        items = _items(args)
    except (KeyError, ValueError, FileNotFoundError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    rejects = rejects_path_for(args.output)
    results = generate_results(model, items, args.n_confs, seed=args.seed,
                               optimize=None if args.optimize == "none" else args.optimize)
    counts = write_conformers_sdf(results, args.output, rejects)
    print(f"generated {counts.n_conformers} conformers (CGCF) for {counts.n_ok} of {counts.n_molecules} molecules "
          f"in {time.perf_counter() - start:.1f} s -> {args.output}")
    print(f"failed {counts.n_failed} -> {rejects}; molecules with notes: {counts.n_with_notes}")
    return 0 if counts.n_ok else 1


def _run_generate_hybrid(args: argparse.Namespace) -> int:
    """``--method hybrid``: an ETKDGv3 pool ranked by a CGCF model (molgraph.methods.cgcf.hybrid)."""
    from molgraph.conformers import GenerationOptions
    from molgraph.data.conformer_sdf import rejects_path_for, write_conformers_sdf
    from molgraph.methods.cgcf.hybrid import check_score, hybrid_results
    from molgraph.methods.cgcf.model import load_model
    from molgraph.train.checkpoint import CheckpointError

    # the defaults, set here so that the other methods can refuse these options when given
    args.hybrid_pool = 50 if args.hybrid_pool is None else args.hybrid_pool
    args.hybrid_score = "energy" if args.hybrid_score is None else args.hybrid_score
    args.hybrid_prune = 0.5 if args.hybrid_prune is None else args.hybrid_prune
    if args.model is None and args.hybrid_score != "mmff":
        print(f"error: --method hybrid with --hybrid-score {args.hybrid_score} needs --model RUN", file=sys.stderr)
        return 2
    try:
        model = load_model(args.model) if args.model is not None else None
        check_score(model, args.hybrid_score)
        options = GenerationOptions(
            n_confs=args.hybrid_pool, optimize=None if args.optimize == "none" else args.optimize,
            prune_rms=args.prune_rms, seed=args.seed, max_attempts=args.max_attempts, timeout=args.timeout,
        )
        start = time.perf_counter()
        # settings are checked here, before the output is opened
        results = hybrid_results(model, _items(args), args.n_confs, pool=args.hybrid_pool, score=args.hybrid_score,
                                 prune=args.hybrid_prune, options=options, n_jobs=args.n_jobs,
                                 progress=sys.stderr.isatty() if args.progress is None else args.progress)
    except (KeyError, ValueError, FileNotFoundError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rejects = rejects_path_for(args.output)
    counts = write_conformers_sdf(results, args.output, rejects)
    print(f"generated {counts.n_conformers} conformers (hybrid, {args.hybrid_score}) for {counts.n_ok} of "
          f"{counts.n_molecules} molecules in {time.perf_counter() - start:.1f} s -> {args.output}")
    print(f"failed {counts.n_failed} -> {rejects}; molecules with notes: {counts.n_with_notes}")
    return 0 if counts.n_ok else 1


def run_evaluate(args: argparse.Namespace) -> int:
    from molgraph.conformers import CoverageProtocol, evaluate_ensembles, summarize
    from molgraph.conformers.ensembles import read_ensembles
    from molgraph.data.sources import atomic_write_bytes

    for path in (args.generated, args.reference):
        if not path.is_file():
            print(f"error: file not found: {path}", file=sys.stderr)
            return 2
    protocol = CoverageProtocol(threshold=args.threshold, inclusive=not args.exclusive, heavy_atoms=not args.all_atoms,
                                symmetrize_conjugated_terminal=not args.no_symmetrize)
    try:
        gen, gen_rejects = read_ensembles(args.generated, args.key)
        ref, ref_rejects = read_ensembles(args.reference, args.key)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    common = [k for k in ref if k in gen]
    results = evaluate_ensembles(((k, gen[k], ref[k]) for k in common), protocol, n_jobs=args.n_jobs)
    summary = summarize(results, protocol)
    summary["unmatched_reference"] = [k for k in ref if k not in gen]
    summary["unmatched_generated"] = [k for k in gen if k not in ref]
    summary["rejected_records"] = gen_rejects + ref_rejects
    summary["molecules"] = [r.__dict__ for r in results]
    summary["inputs"] = {"generated": str(args.generated), "reference": str(args.reference), "key": args.key}
    out = args.output or args.generated.with_name(args.generated.name.split(".")[0] + ".coverage.json")
    atomic_write_bytes(out, json.dumps(summary, indent=2, default=str).encode())
    cmp = protocol.to_dict()["comparison"]
    print(f"{summary['n_evaluated']} molecules evaluated ({summary['n_failed']} could not be compared; "
          f"{len(summary['unmatched_reference'])} reference / {len(summary['unmatched_generated'])} generated "
          f"molecules unmatched; {len(summary['rejected_records'])} records rejected)")
    print(f"threshold {protocol.threshold} A ({cmp}), {'heavy atoms' if protocol.heavy_atoms else 'all atoms'}")
    print(f"{'':8}{'mean':>8}{'median':>8}")
    for name in ("cov_r", "mat_r", "cov_p", "mat_p"):
        s = summary[name]
        print(f"{name.upper().replace('_', '-'):8}{s['mean']:8.3f}{s['median']:8.3f}")
    print(f"-> {out}")
    return 0 if summary["n_evaluated"] else 1
