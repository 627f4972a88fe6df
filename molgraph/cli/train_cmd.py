"""``molgraph train``: train a model of any registered method and write a run folder.

``--method NAME`` picks the method (default ``property``: graph-level properties from SMILES with
D-MPNN, GIN or GCN); its settings become the options below, one group per section of its
config. Settings come from (lowest to highest priority) the defaults, ``--config FILE.toml`` and
the command line; the resolved settings are written to ``RUN_DIR/config.toml`` (one table per
section, and the method's name). File keys are the option names in lower case with underscores
(``--split-file`` -> ``split_file``). ``molgraph train --resume RUN_DIR`` continues an
interrupted run from those settings alone.

Batch size is per process: with ``--devices N`` (or ``--num-nodes``), the effective batch is
N times larger. Several GPUs: ``molgraph train ... --accelerator gpu --devices 4``; several nodes:
start the same command on each node under SLURM (``srun``) or ``torchrun --nnodes M
--nproc-per-node N -m molgraph.cli.main train ... --devices N --num-nodes M``; RUN_DIR must be on
a file system all nodes share.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

from molgraph.cli.common import error_exit

WANTS_ARGV = True  # molgraph.cli.main passes the command line: the options depend on --method


def _message(exc: BaseException) -> str:
    """An exception's message with its notes (where a failed run says how to go on)."""
    # KeyError's str() adds quotes around the message
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return "\n".join([text, *getattr(exc, "__notes__", ())])


def _option_value(argv: Sequence[str], names: tuple[str, ...]) -> str | None:
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def method_name_from_argv(argv: Sequence[str] | None) -> str:
    """The method a ``train`` command line asks for: ``--method``, else the ``method`` key of the
    ``--resume`` folder's or the ``--config`` file's settings, else ``property``."""
    argv = list(argv or ())
    name = _option_value(argv, ("--method",))
    if name:
        return name
    from molgraph.train.settings import load_toml

    resume = _option_value(argv, ("--resume",))
    config = _option_value(argv, ("--config", "--config-path"))
    for path in ([Path(resume) / "config.toml"] if resume else []) + ([Path(config)] if config else []):
        try:
            found = load_toml(path).get("method")
        except (FileNotFoundError, ValueError):
            continue  # reported with its reason when the command runs
        if isinstance(found, str):
            return found
    return "property"


def register(subparsers: argparse._SubParsersAction, argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    from molgraph.registry import METHODS
    from molgraph.train.settings import add_arguments

    name = method_name_from_argv(argv)
    p = subparsers.add_parser(
        "train",
        help="train a model (any method; default: property models, D-MPNN/GIN/GCN) and write a run folder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,  # "not given": lets the config file supply the value
    )
    # default: the method the command line implies (--method, else the resumed run's or the
    # --config file's `method`), so `--resume RUN_DIR` alone continues a run of any method
    p.add_argument("--method", choices=list(METHODS), default=name,
                   help="the method (default property): " + "; ".join(f"{n}: {METHODS.entry(n).help}" for n in METHODS))
    p.add_argument("--config", "--config-path", dest="config", type=Path, help="TOML settings file (a models/ recipe)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run")
    if name in METHODS and METHODS[name].config_class is not None:
        add_arguments(p, METHODS[name].config_class)
    else:  # a method that does not train here, or an unknown one: run() says so, whatever the options
        p.set_defaults(accepts_unknown=True)
    p.set_defaults(func=run)
    return p


def _load_settings(args: argparse.Namespace, method: Any) -> Any:
    """The method's config from the defaults, the file (``--config`` or the resumed run's) and the options."""
    from molgraph.train.settings import config_from_dict, flatten, load_toml

    values = {k: v for k, v in vars(args).items() if k not in ("func", "command", "config", "resume", "method")}
    if "split_sizes" in values:
        values["split_sizes"] = list(values["split_sizes"])
    if "devices" in values:
        values["devices"] = str(values["devices"])
    resume = getattr(args, "resume", None)
    if resume is not None:
        saved = Path(resume) / "config.toml"
        if not saved.is_file():
            raise FileNotFoundError(f"--resume {resume}: no config.toml there, so it is not the folder of a "
                                    "molgraph train run")
        file_values = load_toml(saved)
        source = str(saved)
        if values.get("output_dir") not in (None, str(resume)):
            raise ValueError("--resume continues RUN_DIR in place; drop -o")
        values["output_dir"] = str(resume)
    elif getattr(args, "config", None):
        file_values = load_toml(args.config)
        source = str(args.config)
    else:
        file_values, source = {}, "config"
    # a file without `method` (molgraph 0.1 recipes, hand-written ones) is read as the chosen method's
    saved_method = file_values.get("method", method.name)
    if saved_method != method.name:
        raise ValueError(f"{source} holds settings of method {saved_method!r}, not {method.name!r}: "
                         f"give --method {saved_method} or another file")
    merged = flatten({k: v for k, v in file_values.items() if k != "method"})
    merged.update({k: v for k, v in values.items() if v is not None})
    return config_from_dict(method.config_class, merged, source=source)


def run(args: argparse.Namespace) -> int:
    from molgraph.registry import METHODS
    from molgraph.train.runner import validate_config

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        method = METHODS[getattr(args, "method", "property")]
    except KeyError as exc:  # a run of a plugin method whose plugin is not loaded
        return error_exit(f"{_message(exc)} (a plugin method is found through $MOLGRAPH_PLUGINS or the "
                          "molgraph.plugins entry points)")
    resume = getattr(args, "resume", None)
    if method.config_class is None:
        return error_exit(f"method {method.name!r} does not train through `molgraph train`: {method.help}")
    try:
        config = _load_settings(args, method)
    except (ValueError, FileNotFoundError) as exc:
        return error_exit(str(exc))
    try:
        validate_config(config, method)
    except (ValueError, KeyError) as exc:
        if resume is None:
            return error_exit(_message(exc))
        # the saved settings are bad (written by an older version, or edited): say how to mend them
        return error_exit(f"{Path(resume) / 'config.toml'}: {_message(exc)}\ngive a valid value on the command line "
                          f"with --resume (it overrides the saved one) or correct it in that file")

    from molgraph.train.runner import run_training

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)  # after import: Lightning sets INFO on import

    say = logging.getLogger("molgraph.train").info
    try:
        result = run_training(config, method=method, resume=resume is not None, say=say)
    except (ValueError, FileNotFoundError, FileExistsError, KeyError) as exc:
        return error_exit(_message(exc))
    except KeyboardInterrupt as exc:
        return error_exit(str(exc) or f"interrupted; continue with: molgraph train --resume {config.output_dir}", code=130)
    if result is None:  # a non-zero DDP rank: rank 0 reports
        return 0
    primary = result.metrics.get("primary_metric")
    for part in ("val", "test"):
        if part in result.metrics:
            scores = result.metrics[part]
            shown = json.dumps({k: round(v, 4) for k, v in scores.items()
                                if "/" not in k and k != "n" and isinstance(v, (int, float))})
            head = f"{part} {primary}: {scores[primary]:.4f}  " if primary in scores else f"{part}: "
            print(head + shown)
    print(f"run folder: {result.run_dir}  (model file: {result.model_path})")
    return 0
