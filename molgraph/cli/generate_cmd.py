"""``molgraph generate``: sample molecules from a trained generative model.

Needs only the model (a run folder or its ``model.pt``); the model file names its method, which
must generate molecules (``graphcnf``). Writes one row per sample to the output CSV (``smiles``
empty for an invalid sample, ``valid``, ``reason``, the largest fragment) and the validity report
to ``<OUT stem>.report.json`` (validity, validity of the largest fragment, uniqueness, novelty
against the training molecules, invalid samples counted by reason, sampling rate). The same seed
gives the same molecules.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from molgraph.cli.common import error_exit


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("generate", help="sample molecules from a trained generative model", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path, help="run folder or model.pt")
    p.add_argument("-n", "--num-samples", type=int, default=1000, help="molecules to sample (default 1000)")
    p.add_argument("-o", "--output", required=True, type=Path, help="output CSV")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("-b", "--batch-size", type=int, default=256, help="molecules per batch (default 256)")
    p.add_argument("--temperature", type=float, default=1.0, help="scale of the prior samples (default 1.0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import json

    from molgraph.registry import METHODS
    from molgraph.train.checkpoint import CheckpointError, load_model_file

    report_path = args.output.with_name(args.output.stem + ".report.json")
    for path in (args.output, report_path):
        if path.exists() and not args.overwrite:
            return error_exit(f"{path} exists; choose another -o or pass --overwrite")
    if args.num_samples < 1:
        return error_exit(f"-n must be >= 1, got {args.num_samples}")
    try:
        path = args.model / "model.pt" if args.model.is_dir() else args.model
        payload = load_model_file(path)
        name = payload["method"]
        if name not in METHODS:
            raise CheckpointError(f"{path} was written by method {name!r}, which is not registered here")
        model = METHODS[name].load(payload[name], payload)
        if not hasattr(model, "generate_file"):
            raise CheckpointError(f"{path} is a {name!r} model, which does not generate molecules")
        report = model.generate_file(args.output, args.num_samples, seed=args.seed, batch_size=args.batch_size,
                                     temperature=args.temperature)
    except (ValueError, FileNotFoundError, CheckpointError, KeyError) as exc:
        return error_exit(str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc))
    shown = {k: report.get(k) for k in ("n", "valid", "validity", "validity_largest_fragment", "uniqueness", "novelty",
                                        "molecules_per_second")}
    print(json.dumps(shown))
    if report.get("invalid_reasons"):
        print("invalid: " + ", ".join(f"{r} {n}" for r, n in report["invalid_reasons"].items()))
    print(f"wrote {args.output} and {report['report_file']}")
    return 0
