"""``molgraph predict``: predictions for a CSV of molecules from a trained model.

Needs only the input and the model (a run folder or its ``model.pt``): the featurizer, scalers,
targets and task come from the model file. The output keeps every input column and adds one
column per target (plus ``<target>_std`` for ensembles / MC dropout). Rows whose molecule cannot
be read get empty predictions and go, with the reason, to ``<OUT stem>.rejects.csv``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from molgraph.cli.common import error_exit


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("predict", help="predict properties with a trained model", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-i", "--input", "--test-path", dest="input", required=True, type=Path, help="CSV/TSV(.gz) file")
    p.add_argument("-s", "--smiles-column", default=None, help="SMILES column (default: the training one, else 'smiles')")
    p.add_argument("--model", "--model-path", dest="model", required=True, type=Path, help="run folder or model.pt")
    p.add_argument("-o", "--output", "--preds-path", dest="output", required=True, type=Path, help="output CSV")
    p.add_argument("--n-jobs", type=int, default=1, help="featurization processes")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("-b", "--batch-size", type=int, default=256)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run)
    return p


def load_inputs(args: argparse.Namespace):
    """The model, the table and its SMILES column; shared with ``molgraph evaluate``."""
    import pandas as pd

    from molgraph.data.table import _read_options
    from molgraph.methods.property.predict import Predictor

    predictor = Predictor.load(args.model)
    trained_col = predictor.payload.get("config", {}).get("smiles_column")
    frame = pd.read_csv(args.input, **_read_options(args.input))
    column = args.smiles_column or (trained_col if trained_col in frame.columns else "smiles")
    if column not in frame.columns:
        raise ValueError(f"{args.input}: no SMILES column {column!r} (columns: {list(frame.columns)}); use -s")
    smiles = ["" if pd.isna(v) else str(v) for v in frame[column]]
    return predictor, frame, column, smiles


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from molgraph.data.sources import atomic_output
    from molgraph.train.checkpoint import CheckpointError

    if args.output.exists() and not args.overwrite:
        return error_exit(f"{args.output} exists; choose another -o or pass --overwrite")
    try:
        predictor, frame, column, smiles = load_inputs(args)
    except (ValueError, FileNotFoundError, CheckpointError) as exc:
        return error_exit(str(exc))
    mean, std, kept, rejects = predictor.predict_smiles(
        smiles, n_jobs=args.n_jobs, batch_size=args.batch_size, device=args.device
    )
    out = frame.copy()
    for t, name in enumerate(predictor.target_names):
        col = name if name not in frame.columns else f"{name}_pred"
        values = np.full(len(frame), np.nan)
        values[kept] = mean[:, t]
        out[col] = values
        if std is not None:
            s = np.full(len(frame), np.nan)
            s[kept] = std[:, t]
            out[f"{name}_std"] = s
    with atomic_output(args.output, "w", newline="", encoding="utf-8") as fh:
        out.to_csv(fh, index=False)
    rej_path = args.output.with_name(args.output.name.split(".")[0] + ".rejects.csv")
    if rejects:
        import csv

        with atomic_output(rej_path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["row", "smiles", "reason"])
            w.writerows((r.index, r.input, r.reason) for r in rejects)
    print(f"predicted {len(kept)} of {len(frame)} molecules -> {args.output}"
          + (f"; {len(rejects)} rejected -> {rej_path}" if rejects else ""), file=sys.stderr)
    return 0
