"""``molgraph predict`` and ``molgraph evaluate`` for property models: a CSV of SMILES in, a CSV out.

The predictions file keeps every input column, in order, and adds for each target ``T`` the
column ``T_pred`` (the prediction; for classification the probability of class 1), plus
``T_std`` when the model gives an uncertainty (ensembles, MC dropout, the MVE, evidential and
Dirichlet heads; calibrated when the model file holds a calibration), ``T_prob`` (the calibrated
probability of class 1) for a classification model with a calibration, and then one column
``uncertainty_method`` naming what gave them (e.g. ``mve+zscale``). The names do not depend on
the input: a labelled file keeps its ``T`` column beside ``T_pred``, an unlabelled one gets
``T_pred`` too, as in the run's ``test_predictions.csv``. An input that already has a column of
one of these names is refused rather than overwritten.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_predict_arguments", "predict_command", "load_inputs"]


PREDICTION_COLUMNS_HELP = ("output: the input's columns, then per target T the column T_pred (plus T_std for "
                           "models with an uncertainty, T_prob for calibrated classifiers), whether or not the "
                           "input has a T column, then uncertainty_method when there is a T_std or T_prob")

UNCERTAINTY_COLUMN = "uncertainty_method"


def prediction_columns(target: str, with_std: bool, with_prob: bool = False) -> list[str]:
    """The columns ``molgraph predict`` adds for ``target``: ``T_pred``, with an uncertainty ``T_std``, with a
    probability calibration ``T_prob``."""
    return [f"{target}_pred"] + ([f"{target}_std"] if with_std else []) + ([f"{target}_prob"] if with_prob else [])


def add_predict_arguments(parser: argparse.ArgumentParser | Any) -> None:
    """The property method's options of ``molgraph predict`` (and the output columns, in its group's help)."""
    # ``molgraph predict`` passes an argument group; its description is printed in --help
    if isinstance(parser, argparse._ArgumentGroup) and not parser.description:
        parser.description = PREDICTION_COLUMNS_HELP
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
    """Predict every row of ``args.input``; write ``args.output`` (and the rejects file).

    Output columns: the input's, then ``T_pred`` (and ``T_std`` with an uncertainty) per target
    ``T``, always under these names (see the module docstring). Rows whose molecule cannot be
    read keep empty predictions and are listed in ``<OUT stem>.rejects.csv``.

    Raises:
        ValueError: if the input already has a column the predictions would take (e.g. a
            predictions file given again as input), naming the column.
    """
    import numpy as np

    from molgraph.methods.property.config import is_shard_dir

    if is_shard_dir(args.input):
        return _predict_shards(predictor, args)
    from molgraph.io import atomic_output

    frame, column, smiles = _table(args, predictor)
    # checked before predicting (a clash found after minutes of featurizing would waste them), and
    # T_std too even for a model without uncertainty: a stale T_std beside fresh T_pred would mislead
    taken = [c for name in predictor.target_names for c in prediction_columns(name, True, True) if c in frame.columns]
    if (predictor.has_uncertainty or predictor.calibrates_probability) and UNCERTAINTY_COLUMN in frame.columns:
        taken.append(UNCERTAINTY_COLUMN)
    if taken:
        raise ValueError(f"{args.input} already has column(s) {taken}, which the predictions would overwrite "
                         "(is it a predictions file?); rename or drop them first")
    mean, std, kept, rejects = predictor.predict_smiles(
        smiles, n_jobs=args.n_jobs, batch_size=args.batch_size, device=args.device
    )
    out = frame.copy()
    prob = predictor.calibrated_prob(mean) if predictor.calibrates_probability else None
    for t, name in enumerate(predictor.target_names):
        columns = {f"{name}_pred": mean}
        if std is not None:
            columns[f"{name}_std"] = std
        if prob is not None:
            columns[f"{name}_prob"] = prob
        for col, arr in columns.items():
            values = np.full(len(frame), np.nan)
            values[kept] = arr[:, t]
            out[col] = values
    if std is not None or prob is not None:
        out[UNCERTAINTY_COLUMN] = predictor.uncertainty
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
          + (f" (uncertainty: {predictor.uncertainty})" if std is not None or prob is not None else "")
          + (f"; {len(rejects)} rejected -> {rej_path}" if rejects else ""), file=sys.stderr)
    return 0


def _predict_shards(predictor: Any, args: argparse.Namespace) -> int:
    """``-i DIR/``: a folder of featurized shards, read lazily; writes ``row, smiles, T_pred[, T_std]``.

    ``row`` is the molecule's row in the file that was featurized; the molecules featurization
    rejected are in the shards' ``rejects.csv`` files and get no output row.
    """
    import csv

    import numpy as np

    from molgraph.data.shards import ShardedGraphs
    from molgraph.io import atomic_output

    shards = ShardedGraphs.open(args.input)
    mean, std = predictor.predict_shards(shards, batch_size=args.batch_size, device=args.device)
    prob = predictor.calibrated_prob(mean) if predictor.calibrates_probability else None
    header = ["row", "smiles"]
    for name in predictor.target_names:
        header += prediction_columns(name, std is not None, prob is not None)
    tagged = std is not None or prob is not None
    if tagged:
        header.append(UNCERTAINTY_COLUMN)
    rows = shards.rows
    chunk = 100_000  # SMILES are read from the mapped shards a chunk at a time
    with atomic_output(args.output, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for start in range(0, len(shards), chunk):
            idx = np.arange(start, min(start + chunk, len(shards)))
            for i, smi in zip(idx, shards.smiles_list(idx)):
                line: list[Any] = [int(rows[i]), smi]
                for t in range(len(predictor.target_names)):
                    line.append(float(mean[i, t]))
                    if std is not None:
                        line.append(float(std[i, t]))
                    if prob is not None:
                        line.append(float(prob[i, t]))
                if tagged:
                    line.append(predictor.uncertainty)
                w.writerow(line)
    print(f"predicted {len(shards)} molecules from {args.input} -> {args.output} "
          f"({shards.num_rejected} rejected at featurization: see the shards' rejects.csv)", file=sys.stderr)
    return 0
