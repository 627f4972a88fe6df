"""``molgraph predict`` and ``molgraph evaluate`` for property models: a CSV of SMILES in, a CSV out."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_predict_arguments", "predict_command", "load_inputs"]


def add_predict_arguments(parser: argparse.ArgumentParser | Any) -> None:
    """The property method's options of ``molgraph predict``."""
    parser.add_argument("-s", "--smiles-column", default=None,
                        help="SMILES column (default: the training one, else 'smiles')")
    parser.add_argument("--n-jobs", type=int, default=1, help="featurization processes")


def _table(args: argparse.Namespace, predictor: Any):
    import pandas as pd

    from molgraph.data.table import _read_options

    trained_col = predictor.payload.get("smiles_column") or predictor.payload.get("config", {}).get("smiles_column")
    frame = pd.read_csv(args.input, **_read_options(args.input))
    column = args.smiles_column or (trained_col if trained_col in frame.columns else "smiles")
    if column not in frame.columns:
        raise ValueError(f"{args.input}: no SMILES column {column!r} (columns: {list(frame.columns)}); use -s")
    smiles = ["" if pd.isna(v) else str(v) for v in frame[column]]
    return frame, column, smiles


def load_inputs(args: argparse.Namespace):
    """The model, the table and its SMILES column (``molgraph evaluate``)."""
    from molgraph.methods.property.predict import Predictor

    predictor = Predictor.load(args.model)
    frame, column, smiles = _table(args, predictor)
    return predictor, frame, column, smiles


def predict_command(predictor: Any, args: argparse.Namespace) -> int:
    """Predict every row of ``args.input``; write ``args.output`` (and the rejects file)."""
    import numpy as np

    from molgraph.io import atomic_output

    frame, column, smiles = _table(args, predictor)
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
