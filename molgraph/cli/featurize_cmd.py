"""``molgraph featurize``: a file of molecules -> a graph file, plus a rejects file.

Inputs: CSV/TSV (``.gz`` allowed; ``-s`` names the SMILES column), ``.smi`` (one SMILES per line,
optional name after whitespace), or SDF (``.sdf``/``.sdf.gz``). Output: ``.pt`` (loads with
``torch.load(..., weights_only=True)`` or :meth:`molgraph.data.collated.CollatedGraphs.load`) or
``.npz``. Rejects go to ``<OUT stem>.rejects.csv`` (row, input, reason).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from molgraph.featurizers import Reject

# RDKit is imported inside run(): `molgraph --help` and the other sub-commands should not pay for
# it. torch is imported only to write a .pt file, and PyG never: graphs are collated and written
# as numpy arrays (importing torch_geometric alone takes seconds).
PRESETS = ("ogb", "pyg", "multihot")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "featurize",
        help="featurize a CSV/SMI/SDF file of molecules into graph tensors",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-i", "--input", required=True, type=Path, help="CSV/TSV(.gz), .smi or .sdf(.gz) file")
    p.add_argument("-s", "--smiles-column", default="smiles", help="SMILES column of a CSV (default: smiles)")
    p.add_argument("-o", "--output", required=True, type=Path, help="output file, .pt or .npz")
    p.add_argument("--featurizer", default="ogb", choices=PRESETS, help="atom/bond preset (default: ogb)")
    p.add_argument("--n-jobs", type=int, default=1, help="worker processes (-1: all cores)")
    p.add_argument("--errors", choices=("raise", "skip"), default="raise",
                   help="raise: stop at the first bad molecule (default); skip: write it to the rejects file")
    p.add_argument("--add-hs", action="store_true", help="add explicit hydrogens")
    p.add_argument("--keep-hs", action="store_true", help="keep hydrogens written in the input")
    p.add_argument("--largest-fragment", action="store_true", help="keep the largest fragment (strip salts)")
    p.add_argument("--neutralize", action="store_true", help="neutralize charges where possible")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: on a terminal only)")
    p.set_defaults(func=run)
    return p


def rejects_path(output: Path) -> Path:
    return output.with_name(output.name.split(".")[0] + ".rejects.csv")


def _read_smi(path: Path) -> Iterator[str]:
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.strip():
                yield line.split()[0]


def _molecules(args: argparse.Namespace) -> Iterator:
    from molgraph.chem import ParseOptions, read_sdf
    from molgraph.data.table import iter_smiles_column

    name = args.input.name.lower().removesuffix(".gz")
    if name.endswith(".sdf"):
        options = ParseOptions(keep_hs=args.keep_hs or args.add_hs)
        return (mol for _, mol, _ in read_sdf(args.input, options))
    if name.endswith(".smi"):
        return _read_smi(args.input)
    # header and column checked up front (a missing column fails before any work); rows stream
    return iter_smiles_column(args.input, args.smiles_column)


def run(args: argparse.Namespace) -> int:
    from molgraph.chem import MoleculeError, ParseOptions
    from molgraph.data.collated import save_chunks
    from molgraph.featurizers.batch import Reject, iter_featurize_chunks
    from molgraph.featurizers.graph import MolGraphFeaturizer

    if args.output.suffix not in (".pt", ".npz"):
        print(f"error: output must end in .pt or .npz, got {args.output}", file=sys.stderr)
        return 2
    if not args.input.is_file():
        print(f"error: input file not found: {args.input}", file=sys.stderr)
        return 2
    featurizer = MolGraphFeaturizer.from_preset(
        args.featurizer,
        parse_options=ParseOptions(
            add_hs=args.add_hs, keep_hs=args.keep_hs,
            largest_fragment=args.largest_fragment, neutralize=args.neutralize,
        ),
    )
    start = time.perf_counter()
    rejects: list[Reject] = []
    chunks = []  # (start, PackedChunk): a few arrays per chunk of molecules, collated once at the end
    preload: threading.Thread | None = None
    try:
        molecules = _molecules(args)
        for chunk_start, chunk in iter_featurize_chunks(
            molecules, featurizer, n_jobs=args.n_jobs, errors=args.errors, progress=args.progress
        ):
            rejects += chunk.rejects
            chunks.append((chunk_start, chunk))
            if preload is None and args.output.suffix == ".pt" and _uses_workers(args.n_jobs):
                # the workers exist by now (never fork during an import); this process only
                # waits on them, so it imports torch for the .pt write meanwhile (~1 s)
                preload = _import_in_background("torch")
    except MoleculeError as err:
        # nothing has been written yet: the output and rejects files appear only on success
        print(f"error: row {err.index}: {err.input!r}: {err.reason}", file=sys.stderr)
        print("nothing written; use --errors skip to write bad rows to a rejects file", file=sys.stderr)
        return 1
    except (KeyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if preload is not None:
            preload.join()
    elapsed = time.perf_counter() - start
    n_graphs = sum(len(chunk.smiles) for _, chunk in chunks)
    total = n_graphs + len(rejects)
    if not n_graphs:
        print(f"error: none of the {total} molecules could be featurized", file=sys.stderr)
        _write_rejects(rejects_path(args.output), rejects)
        return 1
    written = save_chunks(
        args.output, chunks, meta={"featurizer": featurizer.to_config(), "input": str(args.input), "n_input": total},
    )
    del chunks
    rpath = rejects_path(args.output)
    if args.errors == "skip":
        _write_rejects(rpath, rejects)
    print(f"featurized {n_graphs} of {total} molecules in {elapsed:.1f} s "
          f"({total / max(elapsed, 1e-9):.0f} mol/s) -> {args.output}")
    print(f"atoms {written.num_atoms}, directed edges {written.num_edges}, "
          f"atom features {featurizer.atom_dim}, bond features {featurizer.bond_dim} ({args.featurizer})")
    if args.errors == "skip":
        print(f"rejected {len(rejects)} -> {rpath}")
    return 0


def _uses_workers(n_jobs: int) -> bool:
    return (os.cpu_count() or 1) > 1 if n_jobs == -1 else n_jobs > 1


def _import_in_background(module: str) -> threading.Thread:
    """Import ``module`` in a thread (a failure is left for the real import to report)."""
    import importlib

    def target() -> None:
        try:
            importlib.import_module(module)
        except Exception:
            pass

    thread = threading.Thread(target=target, name=f"import {module}", daemon=True)
    thread.start()
    return thread


def _write_rejects(path: Path, rejects: list[Reject]) -> None:
    from molgraph.data.sources import atomic_output

    with atomic_output(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["row", "input", "reason"])
        writer.writerows([r.index, r.input, r.reason] for r in rejects)
