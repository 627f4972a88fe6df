"""Entry point of the ``molgraph`` console script.

Each sub-command lives in its own module exposing ``register(subparsers)``, which adds a parser
whose ``func`` default takes the parsed arguments and returns the exit code. The core's commands
are ``molgraph.cli.<name>_cmd``; a method adds its own through its ``commands`` (modules, found
in :data:`molgraph.registry.METHODS`; ``molgraph ngram ...``). When the command line names a
command, only its module is imported (some import pandas or torch at the top), else all of them
(``--help``, errors).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from molgraph import __version__

_COMMAND_MODULES = (
    "molgraph.cli.featurize_cmd",
    "molgraph.cli.split_cmd",
    "molgraph.cli.datasets_cmd",
    "molgraph.cli.train_cmd",
    "molgraph.cli.hpopt_cmd",
    "molgraph.cli.predict_cmd",
    "molgraph.cli.generate_cmd",
    "molgraph.cli.evaluate_cmd",
    "molgraph.cli.demo_cmd",
    "molgraph.cli.conformers_cmd",
    "molgraph.cli.cache_cmd",
    "molgraph.cli.tasks_cmd",
)


def _method_command_modules(command: str | None) -> tuple[str, ...]:
    """The command modules of the registered methods (only the one named ``command``'s, if any)."""
    from molgraph.registry import METHODS

    if command in METHODS:
        return tuple(METHODS[command].commands)
    return tuple(m for name in METHODS for m in METHODS[name].commands)


def build_parser(command: str | None = None, argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser with every sub-command, or only ``command``'s when it names one of them."""
    import importlib

    parser = argparse.ArgumentParser(prog="molgraph", description="Graph and molecule machine learning.")
    parser.add_argument("--version", action="version", version=f"molgraph {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = [m for m in _COMMAND_MODULES if m.rsplit(".", 1)[-1] == f"{command}_cmd"]
    if not modules and command is not None:
        modules = list(_method_command_modules(command))
    if not modules:
        modules = list(_COMMAND_MODULES + _method_command_modules(None))
    for name in modules:
        module = importlib.import_module(name)
        if getattr(module, "WANTS_ARGV", False):  # options that depend on the command line (train --method)
            module.register(subparsers, argv)
        else:
            module.register(subparsers)
    if command is not None and command not in subparsers.choices and len(modules) < len(_COMMAND_MODULES):
        return build_parser(None, argv)  # the module registers another name: fall back to all of them
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a sub-command; ``argv=None`` (the console script) reads ``sys.argv``."""
    as_program = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and not argv[0].startswith("-") else None
    try:
        parser = build_parser(command, argv)
    except ImportError as exc:  # a plugin named in $MOLGRAPH_PLUGINS or an entry point that fails to import
        if "plugin" not in str(exc) and "entry point" not in str(exc):
            raise
        print(f"molgraph: error: {exc}", file=sys.stderr)
        return 2
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "accepts_unknown", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # opt-in: bounded heap growth for long predictions at ~17% more time (molgraph.io.limit_heap_growth)
    malloc = os.environ.get("MOLGRAPH_MALLOC", "").strip().lower()
    if as_program and (malloc == "bounded" or malloc.isdigit()):
        from molgraph.io import limit_heap_growth

        limit_heap_growth(int(malloc) if malloc.isdigit() else None)
    code = int(args.func(args) or 0)
    if as_program:
        # The process exits next. Interpreter shutdown runs the cyclic collector over every object
        # still alive, which takes ~0.3 s once torch is imported; frozen objects are skipped (their
        # memory goes back with the process, as it would anyway).
        import gc

        gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(main())
