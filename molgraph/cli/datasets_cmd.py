"""``molgraph datasets``: list the registry, show a dataset card, verify checksums.

Examples::

    molgraph datasets list
    molgraph datasets info esol
    molgraph datasets verify                 # every card; data-root files only if present
    molgraph datasets verify hiv --root /data
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Any, Sequence

__all__ = ["register", "run"]

_WIDTH = 100


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``datasets`` sub-command to the main parser's ``subparsers``."""
    parser = subparsers.add_parser(
        "datasets",
        help="list, describe and verify the registered datasets",
        description="List, describe and verify the datasets registered in datasets/<name>/card.toml.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    p_list = actions.add_parser("list", help="table of all datasets")
    p_list.add_argument("--root", default=None, help="data root (default: $MOLGRAPH_DATA or the user cache)")

    p_info = actions.add_parser("info", help="show one dataset's card")
    p_info.add_argument("name", help="dataset name, e.g. esol")
    p_info.add_argument("--root", default=None, help="data root (default: $MOLGRAPH_DATA or the user cache)")

    p_verify = actions.add_parser(
        "verify",
        help="re-check sha256 of data files (exit 1 on any mismatch)",
        description="Re-hash bundled files and, where present, data-root files. Exit code 1 if a file "
        "mismatches its card or a bundled file is missing; absent data-root files are reported, not failed.",
    )
    p_verify.add_argument("names", nargs="*", metavar="NAME", help="datasets to check (default: all)")
    p_verify.add_argument("--root", default=None, help="data root (default: $MOLGRAPH_DATA or the user cache)")

    parser.set_defaults(func=run, _datasets_parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Dispatch ``molgraph datasets ACTION``; returns the exit code."""
    action = getattr(args, "action", None)
    try:
        if action == "list":
            return _list(args.root)
        if action == "info":
            return _info(args.name, args.root)
        if action == "verify":
            return _verify(args.names, args.root)
    except KeyError as exc:
        # KeyError's str() adds quotes; print the message itself.
        print(f"molgraph datasets: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    args._datasets_parser.print_help()
    return 2


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in (header, *rows)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _list(root: str | None) -> int:
    from molgraph.data.registry import expected_path, get_card, list_datasets

    rows = []
    for name in list_datasets("all"):  # every kind: molecule tables, 3D, TU graphs, node graphs, temporal, generation
        card = get_card(name)
        # Presence only (no hashing): `list` must stay instant even with large data-root files.
        present = "yes" if expected_path(card.name, root).is_file() else "no"
        rows.append(
            [card.name, f"{card.n_rows:,}", card.task_type, str(card.n_targets), card.split, card.metric,
             card.location, present]
        )
    print(_table(["name", "rows", "task", "targets", "split", "metric", "where", "present"], rows))
    return 0


def _wrap(label: str, text: str) -> str:
    indent = " " * 16
    return _fill(text, initial_indent=f"{label:<16}", subsequent_indent=indent)


def _fill(text: str, initial_indent: str, subsequent_indent: str) -> str:
    # Never split URLs, paths or column names at hyphens.
    return textwrap.fill(
        text,
        _WIDTH,
        initial_indent=initial_indent,
        subsequent_indent=subsequent_indent,
        break_on_hyphens=False,
        break_long_words=False,
    )


def _short_list(items: Sequence[str], limit: int = 20) -> str:
    if len(items) <= limit:
        return ", ".join(items)
    return f"{', '.join(items[:5])}, ..., {', '.join(items[-2:])} ({len(items)} in total)"


def _info(name: str, root: str | None) -> int:
    from molgraph.data.registry import expected_path, get_card

    card = get_card(name)
    path = expected_path(card.name, root)
    out = [f"{card.name}: {card.title}", ""]
    out.append(_wrap("description", card.description))
    out.append(_wrap("task", f"{card.task_type}, {card.n_targets} target(s); split {card.split}; metric {card.metric}"))
    out.append(_wrap("rows", f"{card.n_rows:,}"))
    out.append(_wrap("smiles column", card.smiles_column))
    out.append(_wrap("targets", _short_list(card.target_columns)))
    where = "bundled" if card.bundled else f"data root ({card.root_path})"
    out.append(_wrap("file", f"{path} [{where}; {'present' if path.is_file() else 'absent'}]"))
    out.append(_wrap("sha256", card.sha256 + (f" ({card.size_bytes:,} bytes)" if card.size_bytes else "")))
    out.append(_wrap("url", card.url or "(none)"))
    if card.url_note:
        out.append(_wrap("", card.url_note))
    out.append(_wrap("source", card.source))
    out.append(_wrap("citation", card.citation))
    out.append(_wrap("license", card.license))
    if card.split_note:
        out.append(_wrap("split note", card.split_note))
    if card.metric_note:
        out.append(_wrap("metric note", card.metric_note))
    if card.rdkit_parse_failures is not None:
        out.append(_wrap("rdkit failures", str(card.rdkit_parse_failures)))
    if card.columns:
        out.append("columns")
        out.extend(_fill(f"{col}: {meaning}", "  ", "      ") for col, meaning in card.columns.items())
    if card.quirks:
        out.append("quirks")
        out.extend(_fill(quirk, "  - ", "    ") for quirk in card.quirks)
    print("\n".join(out))
    return 0


def _verify(names: Sequence[str], root: str | None) -> int:
    from molgraph.data.registry import verify

    results = verify(names or None, root=root)
    rows = [[r.name, r.status, "bundled" if r.bundled else "data root", str(r.path)] for r in results]
    print(_table(["name", "status", "where", "path"], rows))
    for r in results:
        if r.status == "mismatch":
            print(f"{r.name}: sha256 {r.actual}, expected {r.expected}", file=sys.stderr)
    counts = {s: sum(r.status == s for r in results) for s in ("ok", "mismatch", "missing", "absent")}
    print(", ".join(f"{n} {s}" for s, n in counts.items()))
    return 1 if any(r.failed for r in results) else 0
