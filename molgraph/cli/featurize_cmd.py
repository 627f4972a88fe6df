"""``molgraph featurize``: a file of molecules -> a graph file, plus a rejects file.

Inputs: CSV/TSV (``.gz`` allowed; ``-s`` names the SMILES column), ``.smi`` (one SMILES per line,
optional name after whitespace), or SDF (``.sdf``/``.sdf.gz``). Output: ``.pt`` (loads with
``torch.load(..., weights_only=True)`` or :meth:`molgraph.data.collated.CollatedGraphs.load`) or
``.npz``. Rejects go to ``<OUT stem>.rejects.csv`` (row, input, reason).

A folder (``-o DIR/``: a path ending in ``/``, an existing folder, or ``--format shards``) gets a
sharded, memory-mapped dataset (:mod:`molgraph.data.shards`, read with
``ShardedGraphs.open(DIR)``), written shard by shard with bounded memory: shard ``k`` holds input
rows ``[k * N, (k + 1) * N)`` (``--shard-size N``), its rejects in ``DIR/shard-xxxxx/rejects.csv``;
``--target-columns`` stores CSV targets as ``y``; ``--resume`` continues an interrupted run (same
input and featurizer), skipping the shards already complete.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

if TYPE_CHECKING:
    import numpy as np

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
    # a str, not a Path: Path() drops the trailing "/" that asks for a shard folder
    p.add_argument("-o", "--output", required=True, help="output: a .pt or .npz file, or a folder DIR/ of shards")
    p.add_argument("--format", choices=("auto", "pt", "npz", "shards"), default="auto",
                   help="output format (default auto: from the suffix; a path ending in / or an existing "
                        "folder means shards)")
    p.add_argument("--shard-size", type=int, default=100_000, metavar="N",
                   help="shards: input rows per shard (default: 100000)")
    p.add_argument("--target-columns", nargs="+", default=[], metavar="COL",
                   help="shards: CSV columns stored as targets y (float32; empty or NaN = missing)")
    p.add_argument("--resume", action="store_true",
                   help="shards: continue an interrupted run into the same folder (the input and featurizer "
                        "must be the same); complete shards are skipped")
    p.add_argument("--engine", choices=("local", "dask"), default="local",
                   help="shards: local processes (--n-jobs; default) or a Dask cluster (the same folder, byte for "
                        "byte; needs molgraph-ml[dask])")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="--engine dask: a running scheduler, e.g. tcp://HOST:8786 (default: a local cluster of "
                        "--n-jobs worker processes); see molgraph.data.distributed for a real cluster")
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


def _molecules(args: argparse.Namespace) -> Iterator:
    from molgraph.data.table import iter_molecule_inputs

    return iter_molecule_inputs(args.input, args.smiles_column, keep_hs=args.keep_hs or args.add_hs)


def run(args: argparse.Namespace) -> int:
    from molgraph.chem import MoleculeError, ParseOptions
    from molgraph.data.collated import save_chunks
    from molgraph.featurizers.batch import Reject, iter_featurize_chunks
    from molgraph.featurizers.graph import MolGraphFeaturizer

    fmt = _output_format(args)
    if fmt is None:
        return 2
    args.output = Path(args.output)
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
    if args.engine == "dask" and fmt != "shards":
        print("error: --engine dask writes a folder of shards: give -o DIR/", file=sys.stderr)
        return 2
    if fmt == "shards" and args.engine == "dask":
        return _run_dask(args, featurizer)
    if fmt == "shards":
        return _run_shards(args, featurizer)
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


def _output_format(args: argparse.Namespace) -> str | None:
    """``"pt"``, ``"npz"`` or ``"shards"`` from ``--format`` and ``-o``; ``None`` after printing why not."""
    raw = str(args.output)
    output = Path(raw)
    suffix = output.suffix.lstrip(".")
    fmt = args.format
    if fmt == "auto":
        fmt = "shards" if raw.endswith(("/", os.sep)) or output.is_dir() else suffix
    if fmt in ("pt", "npz") and suffix != fmt:
        print(f"error: output must end in .pt or .npz, or be a folder of shards (DIR/), got {raw}", file=sys.stderr)
        return None
    if fmt not in ("pt", "npz", "shards"):
        print(f"error: output must end in .pt or .npz, or be a folder of shards (DIR/), got {raw}", file=sys.stderr)
        return None
    if fmt == "shards" and output.exists() and not output.is_dir():
        print(f"error: {raw} is a file; shards are written to a folder", file=sys.stderr)
        return None
    shard_options = [name for name, given in (("--resume", args.resume), ("--target-columns", args.target_columns),
                                              ("--shard-size", args.shard_size != 100_000)) if given]
    if fmt != "shards" and shard_options:
        print(f"error: {', '.join(shard_options)} apply to a shard folder output (-o DIR/), not to .{fmt}",
              file=sys.stderr)
        return None
    if args.shard_size < 1:
        print(f"error: --shard-size must be >= 1, got {args.shard_size}", file=sys.stderr)
        return None
    return fmt


# -- shard folders --------------------------------------------------------------------------------
def _is_csv(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    return not name.endswith((".sdf", ".smi"))


class _PendingRows:
    """The input's molecules for the rows of shards not yet complete, in row order.

    Iterating reads the whole input (rows of complete shards are read and dropped: reading is
    cheap next to featurizing) and counts every row in :attr:`n_rows`; with targets, each
    pending row's targets wait in a per-shard buffer until the shard is written.
    """

    def __init__(self, items: Iterable, shard_size: int, done: set[int], n_targets: int):
        self.items, self.shard_size, self.done, self.n_targets = items, shard_size, done, n_targets
        self.n_rows = 0
        self.targets: dict[int, np.ndarray] = {}

    def __iter__(self) -> Iterator:
        import numpy as np

        size, done = self.shard_size, self.done
        for row, item in enumerate(self.items):
            self.n_rows = row + 1
            shard = row // size
            if shard in done:
                continue
            if self.n_targets:
                item, values = item
                buf = self.targets.get(shard)
                if buf is None:
                    buf = self.targets[shard] = np.full((size, self.n_targets), np.nan, dtype=np.float32)
                buf[row - shard * size] = values
            yield item

    def pop_targets(self, shard: int, rows: np.ndarray) -> np.ndarray | None:
        """``(len(rows), T)`` float32 targets of input ``rows`` of ``shard`` (freed from the buffer)."""
        if not self.n_targets:
            return None
        buf = self.targets.pop(shard)
        return buf[rows - shard * self.shard_size]


def _pending_shards(done: set[int]) -> Iterator[int]:
    """Shard indices not in ``done``, ascending: the featurized stream's shards, in order."""
    k = 0
    while True:
        if k not in done:
            yield k
        k += 1


def _run_dask(args: argparse.Namespace, featurizer: Any) -> int:
    """``--engine dask``: the shard folder written by tasks on a Dask cluster (molgraph.data.distributed)."""
    try:
        from molgraph.data.distributed import featurize_to_shards_dask, require_dask

        require_dask()
    except ImportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from molgraph.chem import MoleculeError
    from molgraph.data.shards import ShardError

    start = time.perf_counter()
    # --n-jobs 1 is the default of the local engine; a local cluster of one worker would only add overhead
    n_workers = None if args.scheduler or args.n_jobs == 1 else (args.n_jobs if args.n_jobs > 0 else os.cpu_count() or 1)
    try:
        manifest = featurize_to_shards_dask(
            args.input, args.output, smiles_column=args.smiles_column if _is_csv(args.input) else None,
            target_columns=list(args.target_columns), featurizer=featurizer, shard_size=args.shard_size,
            errors=args.errors, scheduler=args.scheduler, n_workers=n_workers, resume=args.resume,
            progress=args.progress,
        )
    except MoleculeError as err:  # errors=raise: the first bad row, as the local engine says it
        print(f"error: row {err.index}: {err}", file=sys.stderr)
        return 1
    except (ShardError, ValueError, FileNotFoundError, KeyError, RuntimeError) as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) and err.args else err}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    totals = manifest.get("totals", {})
    n = int(totals.get("n_graphs", 0))
    print(f"featurized {n} molecules on Dask in {seconds:.1f} s ({n / max(seconds, 1e-9):.0f} mol/s) -> "
          f"{args.output}/ ({len(manifest.get('shards', []))} shards, {totals.get('n_rejected', 0)} rejected)",
          file=sys.stderr)
    return 0


def _run_shards(args: argparse.Namespace, featurizer: Any) -> int:
    """``molgraph featurize ... -o DIR/``: stream the input into a shard folder, one shard in memory."""
    import numpy as np

    from molgraph.chem import MoleculeError
    from molgraph.data.shards import ShardBuilder, ShardError, ShardWriter
    from molgraph.data.sources import format_size, sha256_file
    from molgraph.data.table import iter_rows_with_targets
    from molgraph.featurizers.batch import default_progress, iter_featurize_chunks

    out_dir, size = args.output, args.shard_size
    targets = list(args.target_columns)
    csv_input = _is_csv(args.input)
    if targets and not csv_input:
        print(f"error: --target-columns needs a CSV/TSV input, got {args.input}", file=sys.stderr)
        return 2
    start_time = time.perf_counter()
    fresh = not out_dir.exists()
    was_empty = fresh or (out_dir.is_dir() and not any(out_dir.iterdir()))
    try:
        writer = ShardWriter(
            out_dir, featurizer_config=featurizer.to_config(), input_path=args.input,
            input_sha256=sha256_file(args.input), smiles_column=args.smiles_column if csv_input else None,
            target_columns=targets, shard_size=size, resume=args.resume,
        )
    except ShardError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for note in writer.notes:
        print(f"note: {note}", file=sys.stderr)
    done = writer.done_shards
    if done:
        print(f"resuming {out_dir}: {len(done)} shard(s) already complete", file=sys.stderr)
    quiet_bar = not default_progress(args.progress)  # per-shard lines only when no bar is drawn
    pending_order: list[int] = []
    pending_iter = _pending_shards(done)

    def shard_at(k: int) -> int:  # the k-th pending shard
        while len(pending_order) <= k:
            pending_order.append(next(pending_iter))
        return pending_order[k]

    def stream_row(p: int) -> int:  # input row of position p of the featurized stream
        shard, offset = divmod(p, size)
        return shard_at(shard) * size + offset

    def flush(builder: ShardBuilder, n_rows: int) -> None:
        rows = np.concatenate(builder.rows) if builder.rows else np.zeros(0, dtype=np.int64)
        writer.write_built(builder, reader.pop_targets(builder.index, rows), n_rows)
        if quiet_bar:
            print(f"{out_dir / ('shard-%05d' % builder.index)}: rows {builder.first_row}-{builder.first_row + n_rows - 1}"
                  f", {builder.n_graphs} graphs, {len(builder.rejects)} rejected", file=sys.stderr)

    try:
        molecules = (iter_rows_with_targets(args.input, args.smiles_column, targets) if targets
                     else _molecules(args))
        reader = _PendingRows(molecules, size, done, len(targets))
        builder: ShardBuilder | None = None
        featurized = 0
        for chunk_start, chunk in iter_featurize_chunks(
            reader, featurizer, n_jobs=args.n_jobs, errors=args.errors, progress=args.progress
        ):
            n, a = len(chunk.kinds), 0
            featurized += n
            while a < n:  # a chunk may straddle two shards: cut it at the boundary
                k, offset = divmod(chunk_start + a, size)
                shard = shard_at(k)
                if builder is None:
                    builder = ShardBuilder(shard, shard * size)
                take = min(n - a, size - offset)
                builder.add_packed(chunk, shard * size + offset, a, a + take)
                a += take
                if offset + take == size:
                    flush(builder, size)
                    builder = None
        if builder is not None:  # the input's last shard, shorter than the others
            flush(builder, reader.n_rows - builder.first_row)
            builder = None
        manifest = writer.close(reader.n_rows)
    except MoleculeError as err:
        row = stream_row(err.index) if err.index is not None else None
        print(f"error: row {row}: {err.input!r}: {err.reason}", file=sys.stderr)
        _after_failure(writer, out_dir, fresh, was_empty)
        print("use --errors skip to write bad rows to the shards' rejects files", file=sys.stderr)
        return 1
    except (KeyError, ValueError) as err:  # ShardError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        _after_failure(writer, out_dir, fresh, was_empty)
        return 2
    elapsed = time.perf_counter() - start_time
    totals = manifest["totals"]
    n_graphs, total = totals["n_graphs"], totals["n_input_rows"]
    print(f"featurized {n_graphs} of {total} molecules in {elapsed:.1f} s "
          f"({featurized / max(elapsed, 1e-9):.0f} mol/s{f' over the {featurized} rows this run featurized' if done else ''}) -> "
          f"{out_dir}/ ({totals['n_shards']} shards, {format_size(totals['nbytes'])})")
    print(f"atoms {totals['n_nodes']}, directed edges {totals['n_edges']}, "
          f"atom features {featurizer.atom_dim}, bond features {featurizer.bond_dim} ({args.featurizer})")
    if args.errors == "skip":
        print(f"rejected {totals['n_rejected']} -> {out_dir}/shard-*/rejects.csv")
    if not n_graphs:
        print(f"error: none of the {total} molecules could be featurized", file=sys.stderr)
        return 1
    return 0


def _after_failure(writer: Any, out_dir: Path, fresh: bool, was_empty: bool) -> None:
    """Say what a failed shard run leaves. A folder that was empty (or absent) and got no shard is
    left as it was: an empty manifest would only make the next run ask for --resume."""
    done = writer.done_shards
    if done or not was_empty:
        print(f"{len(done)} complete shard(s) stay in {out_dir} (incomplete: --resume continues it with the same "
              f"input)", file=sys.stderr)
        return
    (out_dir / "manifest.json").unlink(missing_ok=True)
    if fresh:
        try:
            out_dir.rmdir()
        except OSError:  # something else appeared in it meanwhile: left alone
            pass
    print("nothing written", file=sys.stderr)


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
