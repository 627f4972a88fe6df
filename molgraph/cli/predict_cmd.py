"""``molgraph predict``: predictions from a trained model of any method that predicts.

Needs only the input and the model (a run folder or its ``model.pt``): the model file names its
method, and the method reads the input and writes the output. Property models: the featurizer,
scalers, targets and task come from the model file; the output keeps every input column and adds
one ``<target>_pred`` column per target (plus ``<target>_std`` for ensembles / MC dropout); rows whose molecule
cannot be read get empty predictions and go, with the reason, to ``<OUT stem>.rejects.csv``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from molgraph.cli.common import error_exit


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("predict", help="predict with a trained model", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-i", "--input", "--test-path", dest="input", required=True, type=Path, help="input file")
    p.add_argument("--model", "--model-path", dest="model", required=True, type=Path, help="run folder or model.pt")
    p.add_argument("-o", "--output", "--preds-path", dest="output", required=True, type=Path, help="output file")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("-b", "--batch-size", type=int, default=256)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    from molgraph.registry import METHODS

    for name in METHODS:  # each method's own options, in a group named after it
        group = p.add_argument_group(f"{name} models")
        METHODS[name].add_predict_arguments(group)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from molgraph.registry import METHODS
    from molgraph.train.checkpoint import CheckpointError, load_model_file

    if args.output.exists() and not args.overwrite:
        return error_exit(f"{args.output} exists; choose another -o or pass --overwrite")
    try:
        path = args.model / "model.pt" if args.model.is_dir() else args.model
        payload = load_model_file(path)
        name = payload["method"]
        if name not in METHODS:
            raise CheckpointError(f"{path} was written by method {name!r}, which is not registered here "
                                  f"(registered: {', '.join(METHODS)}); a plugin method is found through "
                                  "$MOLGRAPH_PLUGINS or the molgraph.plugins entry points")
        method = METHODS[name]
        predictor = method.load(payload[name], payload)
        return method.predict_command(predictor, args)
    except (ValueError, FileNotFoundError, CheckpointError, KeyError) as exc:
        return error_exit(str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc))
