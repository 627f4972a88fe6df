"""``molgraph split``: split a CSV of molecules into train/val/test and write ``splits.json``.

Example::

    molgraph split -i BBBP.csv -s smiles --split scaffold --sizes 0.8 0.1 0.1 -o splits.json

Row indices in the output are 0-based positions among the CSV's data rows (the header and
blank lines are not counted), i.e. pandas row positions. Rows whose SMILES cannot be parsed are
put in no part and listed in ``<out stem>.rejects.csv`` (columns ``row,input,reason``), which is
always written (header only when there are none) so that a stale file never lingers.

``--format chemprop`` writes the split as chemprop v2's ``--splits-file`` JSON instead of
molgraph's ``splits.json``: a list holding one object ``{"train": [...], "val": [...],
"test": [...]}`` of the same 0-based data-row indices (chemprop v2 ``chemprop train
--splits-file``: "a list of dictionaries with keys train, val, and test and values as lists of
indices"), so ``chemprop train --data-path IN.csv --splits-file OUT.json`` trains on exactly
these rows. Method, seed and sizes are not stored in that format. chemprop v2 stops at any SMILES
RDKit cannot parse anywhere in its data file, even in a row that is in no part, so when rows are
rejected the command says so: remove or fix them in the CSV and split again. ``molgraph train
--splits-file`` reads both formats.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from molgraph.data.splits import SPLIT_METHODS, Split, _atomic_write_text, check_sizes, make_split
from molgraph.data.splits.base import SPLIT_FILE_FORMATS

__all__ = ["register", "rejects_path", "run"]

# Exit codes: 2 for problems with the command line or input file, 1 when splitting fails.
_EXIT_USAGE = 2
_EXIT_FAILED = 1


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``split`` sub-command to ``subparsers`` (from ``add_subparsers()``)."""
    parser = subparsers.add_parser(
        "split",
        help="split a molecule CSV into train/val/test (writes splits.json)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("-i", "--input", required=True, type=Path, help="CSV file (.csv or .csv.gz)")
    parser.add_argument("-s", "--smiles-column", default="smiles", help="column holding SMILES (default: smiles)")
    parser.add_argument(
        "--split",
        dest="method",
        choices=SPLIT_METHODS,
        default="scaffold",
        help="split method (default: scaffold, deterministic; its seed is not used)",
    )
    parser.add_argument(
        "--sizes",
        nargs=3,
        type=float,
        default=[0.8, 0.1, 0.1],
        metavar=("TRAIN", "VAL", "TEST"),
        help="fractions summing to 1 (default: 0.8 0.1 0.1)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("-o", "--output", type=Path, default=Path("splits.json"), help="output JSON (default: splits.json)")
    parser.add_argument(
        "--format",
        choices=SPLIT_FILE_FORMATS,
        default="molgraph",
        help="molgraph: splits.json with method, seed and sizes (default); chemprop: chemprop v2's "
        "--splits-file JSON, [{\"train\": [...], \"val\": [...], \"test\": [...]}], same row indices",
    )
    parser.add_argument("--target-column", help="label column to stratify on (needed for --split stratified)")
    parser.add_argument("--generic", action="store_true", help="scaffold splits: group by generic scaffolds")
    parser.set_defaults(func=run)
    return parser


def _fail(message: str, code: int = _EXIT_USAGE) -> int:
    print(f"molgraph split: error: {message}", file=sys.stderr)
    return code


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_table(path: Path) -> pd.DataFrame:
    # pandas infers gzip etc. from the suffix and copes with CRLF and quoted fields.
    return pd.read_csv(path, skip_blank_lines=True)


def _smiles_values(column: pd.Series) -> list[str]:
    # An empty cell reads as NaN; pass "" so the reject reason says "empty SMILES".
    return [v if isinstance(v, str) else ("" if pd.isna(v) else str(v)) for v in column.tolist()]


def rejects_path(output: Path) -> Path:
    """``splits.json`` -> ``splits.rejects.csv`` in the same folder."""
    return output.with_name(f"{output.stem}.rejects.csv")


def _write_rejects(path: Path, split: Split) -> None:
    frame = pd.DataFrame(split.rejected, columns=["row", "input", "reason"])
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    _atomic_write_text(path, buffer.getvalue())


def _summary(split: Split, rejects: Path) -> str:
    counts = split.counts
    kept = sum(counts.values())
    parts = "  ".join(
        f"{name}: {count} ({100 * count / kept:.1f}%)" if kept else f"{name}: 0" for name, count in counts.items()
    )
    seed = "no seed" if split.seed is None else f"seed {split.seed}"
    lines = [f"{split.method} split ({seed}) of {split.info.get('n_rows', kept)} rows", parts]
    if "n_scaffolds" in split.info:
        lines.append(f"scaffolds: {split.info['n_scaffolds']}")
    lines.append(f"rejected: {len(split.rejected)}" + (f" (see {rejects})" if split.rejected else ""))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``molgraph split``; returns the exit code."""
    try:
        sizes = check_sizes(args.sizes)
    except ValueError as exc:
        return _fail(str(exc))
    if args.method == "stratified" and not args.target_column:
        return _fail("--split stratified needs --target-column")
    path: Path = args.input
    if not path.is_file():
        return _fail(f"input file not found: {path}")
    try:
        table = _read_table(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        return _fail(f"cannot read {path} as CSV: {exc}")
    wanted = [c for c in (args.smiles_column, args.target_column) if c]
    missing = [c for c in wanted if c not in table.columns]
    if missing:
        available = ", ".join(map(str, table.columns))
        return _fail(f"column {missing[0]!r} not in {path} (columns: {available})")

    labels = table[args.target_column].to_numpy() if args.target_column else None
    try:
        split = make_split(
            args.method,
            smiles=_smiles_values(table[args.smiles_column]),
            labels=labels,
            sizes=sizes,
            seed=args.seed,
            errors="skip",
            generic=args.generic,
        )
    except ValueError as exc:
        return _fail(str(exc), _EXIT_FAILED)
    split.info.update(
        {
            "input": str(path),
            "input_sha256": _sha256(path),
            "smiles_column": args.smiles_column,
            "target_column": args.target_column,
        }
    )

    output: Path = args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    written = split.save(output, format=args.format)
    rejects = rejects_path(written)
    _write_rejects(rejects, split)
    print(_summary(split, rejects))
    print(f"wrote {written}" + (" (chemprop v2 --splits-file format)" if args.format == "chemprop" else ""))
    if args.format == "chemprop" and split.rejected:
        # chemprop builds a molecule from every row of --data-path before it splits, and stops at
        # the first one RDKit cannot parse: rows left out of every part here still stop it
        print(
            f"note: chemprop v2 stops at any unparsable SMILES in its data file, including the "
            f"{len(split.rejected)} row(s) put in no part here (see {rejects}); remove or fix them in "
            f"{path} and split again before `chemprop train --splits-file {written}`",
            file=sys.stderr,
        )
    return 0
