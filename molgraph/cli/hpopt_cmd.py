"""``molgraph hpopt``: search hyper-parameters of a recipe with Optuna (TPE), pruning on validation curves.

    molgraph hpopt --config models/dmpnn_lipophilicity.toml --trials 30 --timeout 7200 -o STUDY_DIR
    molgraph train --config STUDY_DIR/best.toml -o RUN_DIR      # the best settings, on the recipe's split

The searched settings are those whose declaration carries a range (``molgraph hpopt --config
RECIPE --list`` shows them); ``--params`` picks some. Trials train on the recipe's training rows
and are judged on its validation rows (the monitored value, best epoch); the test rows are left
out of every trial. Running the same command again continues the study in STUDY_DIR (a trial that
was killed is run again). Other settings given here override the recipe's for every trial
(``--epochs 20``). Outputs: ``study.db``, ``trials.csv``, ``trials.png``, ``best.toml``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from molgraph.cli.common import error_exit

WANTS_ARGV = True  # the options are the method's settings (--method, or the recipe's `method`)


def register(subparsers: argparse._SubParsersAction, argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    from molgraph.cli.train_cmd import method_name_from_argv
    from molgraph.registry import METHODS
    from molgraph.train.settings import add_arguments

    name = method_name_from_argv(argv)
    p = subparsers.add_parser("hpopt", help="hyper-parameter search of a recipe (Optuna TPE, pruned on validation)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                              argument_default=argparse.SUPPRESS)
    p.add_argument("--method", choices=list(METHODS), default=name, help="the method (default: the recipe's, else property)")
    p.add_argument("--config", "--config-path", dest="config", type=Path, help="the recipe (TOML settings file)")
    p.add_argument("-o", "--study-dir", dest="study_dir", type=Path, help="the study folder (created, or continued)")
    p.add_argument("--trials", type=int, default=30, help="finished trials to reach, earlier ones counted (default 30)")
    p.add_argument("--timeout", type=float, default=None, help="seconds after which no new trial starts (default: none)")
    p.add_argument("--params", nargs="+", default=None, metavar="SETTING",
                   help="the settings to search (default: every one that declares a range); NAME=LOW:HIGH narrows "
                        "a declared range (e.g. hidden_dim=100:400 to bound the cost of a CPU search)")
    p.add_argument("--sampler-seed", type=int, default=None, help="the TPE sampler's seed (default: the recipe's seed)")
    p.add_argument("--list", action="store_true", default=False, help="print the searchable settings and their ranges")
    if name in METHODS and METHODS[name].config_class is not None:
        add_arguments(p, METHODS[name].config_class, skip=("output_dir",))
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from molgraph.registry import METHODS
    from molgraph.train.hpopt import run_hpopt, search_space

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    method = METHODS[args.method]
    if method.config_class is None:
        return error_exit(f"method {method.name!r} does not train through molgraph train, so it has no search")
    if args.list:
        for key, spec in search_space(method.config_class).items():
            print(f"{key}: {spec}")
        return 0
    if getattr(args, "study_dir", None) is None:
        return error_exit("give the study folder: -o STUDY_DIR")
    from molgraph.cli.train_cmd import _load_settings
    from molgraph.train.settings import flatten, load_toml

    given = argparse.Namespace(**{k: v for k, v in vars(args).items()
                                  if k not in ("study_dir", "trials", "timeout", "params", "sampler_seed", "list")})
    try:
        config = _load_settings(given, method)
        recipe = flatten({k: v for k, v in load_toml(args.config).items() if k != "method"}) if args.config else {}
        overrides = {k: v for k, v in vars(given).items()
                     if k not in ("func", "command", "config", "resume", "method") and v is not None}
        recipe.update(overrides)
        for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)
        result = run_hpopt(config, args.study_dir, trials=args.trials, timeout=args.timeout, params=args.params,
                           recipe_values=recipe, method=method, seed=args.sampler_seed,
                           say=logging.getLogger("molgraph.hpopt").info)
    except (ValueError, FileNotFoundError, FileExistsError, KeyError, TypeError) as exc:
        return error_exit(str(exc))
    except KeyboardInterrupt:
        return error_exit(f"interrupted; the same command continues the study in {args.study_dir}", code=130)
    print(f"{result.n_complete} complete, {result.n_pruned} pruned trials in {result.seconds:.0f} s; "
          f"best {config.monitor} {result.best_value:.5g}: {result.best_params}")
    print(f"best recipe: {result.best_recipe}  (molgraph train --config {result.best_recipe} -o RUN_DIR)")
    return 0
