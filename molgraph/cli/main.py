"""Entry point of the ``molgraph`` console script.

Each sub-command lives in its own module exposing ``register(subparsers)``, which adds a parser
whose ``func`` default takes the parsed arguments and returns the exit code.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from molgraph import __version__

_COMMAND_MODULES = (
    "molgraph.cli.featurize_cmd",
    "molgraph.cli.split_cmd",
    "molgraph.cli.datasets_cmd",
    "molgraph.cli.train_cmd",
    "molgraph.cli.predict_cmd",
    "molgraph.cli.evaluate_cmd",
    "molgraph.cli.demo_cmd",
    "molgraph.cli.conformers_cmd",
    "molgraph.cli.ngram_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="molgraph", description="Graph and molecule machine learning.")
    parser.add_argument("--version", action="version", version=f"molgraph {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
