"""``molgraph evaluate``: metrics of a trained model on a labelled CSV.

The file must have the model's target columns (missing labels may be empty). Prints the metrics
as JSON (mean over tasks and per task); ``-o`` also writes them to a file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from molgraph.cli.common import error_exit


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("evaluate", help="metrics of a trained model on a labelled file", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-i", "--input", "--test-path", dest="input", required=True, type=Path, help="CSV/TSV(.gz) file")
    p.add_argument("-s", "--smiles-column", default=None, help="SMILES column (default: the training one)")
    p.add_argument("--model", "--model-path", dest="model", required=True, type=Path, help="run folder or model.pt")
    p.add_argument("--metrics", nargs="+", default=None, help="default: the task type's metrics")
    p.add_argument("-o", "--output", type=Path, default=None, help="also write the metrics JSON here")
    p.add_argument("--n-jobs", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("-b", "--batch-size", type=int, default=256)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from molgraph.methods.property.cli import load_inputs
    from molgraph.data.sources import atomic_output
    from molgraph.train.checkpoint import CheckpointError
    from molgraph.train.metrics import compute_metrics, default_metrics

    try:
        predictor, frame, _, smiles = load_inputs(args)
        missing = [c for c in predictor.target_names if c not in frame.columns]
        if missing:
            raise ValueError(f"{args.input}: no label column(s) {missing}; the model predicts {predictor.target_names}")
        raw = frame[predictor.target_names].astype(str).apply(lambda col: col.str.strip())
        present = (raw != "").to_numpy() & ~raw.apply(lambda col: col.str.lower().isin(["nan", "na"])).to_numpy()
        y = raw.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float, copy=True)
        y[~present] = np.nan
        bad = present & np.isnan(y)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise ValueError(f"{args.input}: row {r}, column {predictor.target_names[c]!r}: not a number")
        metrics = args.metrics or default_metrics(predictor.task_type)
        mean, _, kept, rejects = predictor.predict_smiles(smiles, n_jobs=args.n_jobs, batch_size=args.batch_size,
                                                          device=args.device)
        scores = compute_metrics(mean, y[kept], predictor.task_type, metrics, predictor.target_names)
    except (ValueError, FileNotFoundError, CheckpointError) as exc:
        return error_exit(str(exc))
    scores["n"] = int(len(kept))
    scores["n_rejected"] = len(rejects)
    text = json.dumps(scores, indent=2)
    print(text)
    if rejects:
        print(f"{len(rejects)} molecule(s) could not be read and were not scored, e.g. row {rejects[0].index}: "
              f"{rejects[0].reason}", file=sys.stderr)
    if args.output:
        with atomic_output(args.output, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return 0
