"""Train chemprop v2 on one dataset + split and write its predictions and timings as JSON.

Usage::

    python benchmarks/chemprop_runner.py JOB.json OUT.json

This script runs in chemprop's own Python environment (chemprop is not a molgraph dependency) and
deliberately imports nothing from molgraph: only the standard library, numpy, pandas, torch,
lightning and chemprop. ``benchmarks/property.py`` writes JOB.json with the same split and seed it
gives molgraph's D-MPNN, runs this script with the chemprop environment's interpreter, and reads
OUT.json back.

JOB.json keys (``*`` = required)::

    csv*             path to the CSV (read with pandas.read_csv)
    smiles_column*   name of the SMILES column
    target_columns*  list of target column names
    task_type*       "regression" | "classification" (binary, multi-task; empty/NaN = missing)
    split*           {"train": [rows], "val": [rows], "test": [rows]}, 0-based CSV row indices
    seed*            int: lightning seed_everything, model init and the train shuffle sampler
    epochs*          int >= 1
    batch_size 64, hidden_dim 300, depth 3, ffn_hidden_dim 300, ffn_layers 1, dropout 0.0,
    aggregation "mean" ("mean" | "sum" | "norm"), warmup_epochs 2, init_lr 1e-4, max_lr 1e-3,
    final_lr 1e-4, batch_norm false, num_workers 0, threads (optional: torch.set_num_threads),
    extra_features_npy (optional: a .npy of scaled molecule features, one row per CSV row, given to
    chemprop as X_d without further scaling),
    deterministic true (Trainer(deterministic=...)), uncertainty "none" ("mve" | "evidential" for
    regression, "dirichlet" for classification: chemprop v2's MveFFN, EvidentialFFN,
    BinaryDirichletFFN), mc_dropout_samples 0 (MC-dropout passes at prediction; needs dropout)

The model is built the way ``chemprop train`` (chemprop/cli/train.py) builds it with default
options: ``MoleculeDatapoint.from_smi`` (no explicit H, stereo kept),
``SimpleMoleculeMolGraphFeaturizer()`` (v2 multi-hot atom and bond features), ``MoleculeDataset``,
train-set ``StandardScaler`` on regression targets (``normalize_targets`` on train and val,
``UnscaleTransform`` on the predictor's output), ``BondMessagePassing`` (no bias, ReLU, directed),
the chosen aggregation (norm = 100 for "norm"), ``RegressionFFN`` (MSE) or
``BinaryClassificationFFN`` (BCE), ``MPNN`` with the Noam-like LR schedule, Adam, and a
``ModelCheckpoint`` on ``val_loss`` (min); ``seed`` plays both ``--pytorch-seed`` and
``--data-seed``. With the same split (``--splits-file``), seed and settings, ``chemprop train``
gives the same test predictions (checked with chemprop 2.3.1 to float32 rounding, regression and
classification). NOTE: ``chemprop train`` defaults to ``--aggregation norm``; this runner defaults
to "mean", so pass ``"aggregation": "norm"`` to mimic the CLI's defaults. Differences from the
CLI: the CLI's ``EarlyStopping(patience=epochs)`` is left out (it cannot stop a run before its
last epoch); the validation loader never drops its last batch (the CLI drops it when batch_norm is
on, which changes only the val loss, as batch norm is in eval mode there); the test set is cached
before training like train and val, so that no featurization falls inside any timing.

Featurization (SMILES parsing + ``MolGraph`` building for train, val and test, via
``dataset.cache = True``) is done before training and timed on its own (``featurize_seconds``).
A callback times each training epoch from ``on_train_epoch_start`` to ``on_validation_start``
(or ``on_train_epoch_end`` when no validation runs that epoch): training batches only, collate
included, validation excluded. ``train_molecules_per_second`` is the molecules per training epoch
(``n_train``, less the dropped last batch when batch_norm is on) over the median of those times over
the epochs after the first (or over the only epoch).

Exit status: 0 on success, 2 for a bad job file (message on stderr), 1 for other failures.
"""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

DEFAULTS: dict[str, Any] = {
    "batch_size": 64,
    "hidden_dim": 300,
    "depth": 3,
    "ffn_hidden_dim": 300,
    "ffn_layers": 1,
    "dropout": 0.0,
    "aggregation": "mean",
    "warmup_epochs": 2,
    "init_lr": 1e-4,
    "max_lr": 1e-3,
    "final_lr": 1e-4,
    "batch_norm": False,
    "num_workers": 0,
    "threads": None,
    "extra_features_npy": None,
    "deterministic": True,
    "uncertainty": "none",
    "mc_dropout_samples": 0,
}
REQUIRED = ("csv", "smiles_column", "target_columns", "task_type", "split", "seed", "epochs")
TASK_TYPES = ("regression", "classification")
AGGREGATIONS = ("mean", "sum", "norm")
# chemprop v2's uncertainty heads: MveFFN, EvidentialFFN (regression), BinaryDirichletFFN (classification)
UNCERTAINTY_HEADS = {"none": ("regression", "classification"), "mve": ("regression",),
                     "evidential": ("regression",), "dirichlet": ("classification",)}
SPLITS = ("train", "val", "test")


class JobError(ValueError):
    """The job file is unusable; the message says why."""


# --------------------------------------------------------------------------- job file


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def load_job(path: str | Path) -> dict[str, Any]:
    """Read and check JOB.json (keys and types only; CSV-dependent checks come later)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise JobError(f"job file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise JobError(f"job file {path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise JobError(f"job file {path} must hold a JSON object, got {type(raw).__name__}")
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise JobError(f"job file {path} is missing required key(s): {', '.join(missing)}")
    unknown = sorted(set(raw) - set(REQUIRED) - set(DEFAULTS))
    if unknown:
        print(f"warning: ignoring unknown job key(s): {', '.join(unknown)}", file=sys.stderr)
    job = {**DEFAULTS, **{k: v for k, v in raw.items() if v is not None or k == "threads"}}

    if not isinstance(job["csv"], str) or not job["csv"]:
        raise JobError("'csv' must be a non-empty path string")
    csv = Path(job["csv"])
    if not csv.is_absolute():  # relative paths are taken relative to the job file
        csv = path.parent / csv if (path.parent / csv).exists() else csv
    job["csv"] = str(csv)
    if not isinstance(job["smiles_column"], str):
        raise JobError("'smiles_column' must be a string")
    tc = job["target_columns"]
    if not isinstance(tc, list) or not tc or not all(isinstance(c, str) for c in tc):
        raise JobError("'target_columns' must be a non-empty list of column names")
    if len(set(tc)) != len(tc):
        raise JobError(f"'target_columns' has duplicates: {tc}")
    if job["task_type"] not in TASK_TYPES:
        raise JobError(
            f"unknown task_type {job['task_type']!r}; expected one of {', '.join(TASK_TYPES)}"
        )
    if job["aggregation"] not in AGGREGATIONS:
        raise JobError(
            f"unknown aggregation {job['aggregation']!r}; expected one of {', '.join(AGGREGATIONS)}"
        )
    for key in ("seed",):
        if not _is_int(job[key]):
            raise JobError(f"'{key}' must be an integer, got {job[key]!r}")
    for key in ("epochs", "batch_size", "hidden_dim", "depth", "ffn_hidden_dim", "ffn_layers"):
        if not _is_int(job[key]) or job[key] < 1:
            raise JobError(f"'{key}' must be an integer >= 1, got {job[key]!r}")
    for key in ("warmup_epochs", "num_workers"):
        if not _is_int(job[key]) or job[key] < 0:
            raise JobError(f"'{key}' must be an integer >= 0, got {job[key]!r}")
    if job["threads"] is not None and (not _is_int(job["threads"]) or job["threads"] < 1):
        raise JobError(f"'threads' must be an integer >= 1 or null, got {job['threads']!r}")
    for key in ("init_lr", "max_lr", "final_lr"):
        if not _is_number(job[key]) or job[key] <= 0:
            raise JobError(f"'{key}' must be a positive number, got {job[key]!r}")
    if not _is_number(job["dropout"]) or not 0 <= job["dropout"] < 1:
        raise JobError(f"'dropout' must be a number in [0, 1), got {job['dropout']!r}")
    for key in ("batch_norm", "deterministic"):
        if not isinstance(job[key], bool):
            raise JobError(f"'{key}' must be true or false, got {job[key]!r}")
    if job["uncertainty"] not in UNCERTAINTY_HEADS:
        raise JobError(f"unknown uncertainty {job['uncertainty']!r}; expected one of {', '.join(UNCERTAINTY_HEADS)}")
    if job["task_type"] not in UNCERTAINTY_HEADS[job["uncertainty"]]:
        raise JobError(f"uncertainty {job['uncertainty']!r} does not apply to {job['task_type']}")
    if not _is_int(job["mc_dropout_samples"]) or job["mc_dropout_samples"] < 0:
        raise JobError(f"'mc_dropout_samples' must be an integer >= 0, got {job['mc_dropout_samples']!r}")
    if job["mc_dropout_samples"] and job["dropout"] == 0:
        raise JobError("'mc_dropout_samples' needs dropout > 0")

    split = job["split"]
    if not isinstance(split, dict):
        raise JobError("'split' must be an object with keys train, val, test")
    missing = [k for k in SPLITS if k not in split]
    if missing:
        raise JobError(f"'split' is missing key(s): {', '.join(missing)}")
    for name in SPLITS:
        rows = split[name]
        if not isinstance(rows, list) or not all(_is_int(i) for i in rows):
            raise JobError(f"split[{name!r}] must be a list of integer row indices")
    for name in ("train", "val"):
        if not split[name]:
            raise JobError(
                f"split[{name!r}] is empty (train is needed to fit, val to pick the best epoch)"
            )
    return job


def check_rows(job: dict[str, Any], n_rows: int) -> None:
    """Every split index must be a row of the CSV; overlaps only warn."""
    seen: dict[int, str] = {}
    for name in SPLITS:
        rows = job["split"][name]
        bad = [i for i in rows if not 0 <= i < n_rows]
        if bad:
            raise JobError(
                f"split[{name!r}] has {len(bad)} index(es) out of range for a CSV of {n_rows} "
                f"rows (valid: 0..{n_rows - 1}), first: {bad[0]}"
            )
        if len(set(rows)) != len(rows):
            print(f"warning: split[{name!r}] repeats row indices", file=sys.stderr)
        clash = [i for i in set(rows) if i in seen]
        if clash:
            print(
                f"warning: {len(clash)} row(s) are in both split[{seen[clash[0]]!r}] and "
                f"split[{name!r}] (first: {min(clash)})",
                file=sys.stderr,
            )
        seen.update((i, name) for i in rows)


# --------------------------------------------------------------------------- helpers


def _write_json_atomic(path: Path, obj: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=1, allow_nan=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _float_or_none(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _rows_as_lists(arr) -> list[list[float | None]]:
    return [[_float_or_none(v) for v in row] for row in arr]


def _quiet_lightning() -> None:
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (
        r".*does not have many workers.*",
        r".*number of training batches.*smaller than the logging interval.*",
        r".*Checkpoint directory .* exists and is not empty.*",
        r".*isinstance\(treespec, LeafSpec\).*",
    ):
        warnings.filterwarnings("ignore", message=pattern)


# --------------------------------------------------------------------------- main work


def run(job: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    # ---- read CSV and targets (before the slow imports, so bad jobs fail fast)
    csv = Path(job["csv"])
    if not csv.is_file():
        raise JobError(f"CSV not found: {csv}")
    df = pd.read_csv(csv)
    for col in [job["smiles_column"], *job["target_columns"]]:
        if col not in df.columns:
            raise JobError(f"column {col!r} not in {csv} (columns: {list(df.columns)})")
    check_rows(job, len(df))
    try:
        Y_all = df[job["target_columns"]].apply(pd.to_numeric, errors="raise").to_numpy(float)
    except (ValueError, TypeError) as exc:
        raise JobError(f"target columns must be numeric (empty cells allowed): {exc}") from None
    if job["task_type"] == "classification":
        labels = Y_all[np.isfinite(Y_all)]
        if not np.isin(labels, (0.0, 1.0)).all():
            raise JobError("classification targets must be 0, 1 or empty")
    smiles_all = df[job["smiles_column"]].tolist()

    import torch

    if job["threads"] is not None:
        torch.set_num_threads(job["threads"])

    import chemprop
    import lightning
    from chemprop import data as cdata
    from chemprop import featurizers, models
    from chemprop import nn as cnn
    from chemprop.conf import LIGHTNING_26_COMPAT_ARGS
    from lightning import pytorch as pl
    from lightning.pytorch.callbacks import Callback, ModelCheckpoint

    _quiet_lightning()

    # ---- featurize (timed separately, before any training)
    featurizer = featurizers.SimpleMoleculeMolGraphFeaturizer()  # v2 multi-hot atoms + bonds
    rejects: list[dict[str, Any]] = []
    kept: dict[str, list[int]] = {}
    # molecule-level features given by the caller, one row per CSV row, already scaled: both
    # libraries then see exactly the same extra inputs (chemprop's X_d, no further transform)
    X_extra = None
    if job["extra_features_npy"]:
        X_extra = np.load(job["extra_features_npy"]).astype(np.float32)
        if X_extra.ndim != 2 or X_extra.shape[0] != len(smiles_all):
            raise JobError(f"extra_features_npy must be (n_rows={len(smiles_all)}, D), got {X_extra.shape}")
    datasets: dict[str, Any] = {}
    t0 = time.perf_counter()
    for name in SPLITS:
        points, rows = [], []
        for i in job["split"][name]:
            smi = smiles_all[i]
            reason = None
            if not isinstance(smi, str) or not smi.strip():
                reason = "empty or missing SMILES"
            else:
                try:
                    x_d = None if X_extra is None else X_extra[i].copy()
                    dp = cdata.MoleculeDatapoint.from_smi(smi, Y_all[i].copy(), x_d=x_d)
                # chemprop raises RuntimeError when RDKit returns None; anything else RDKit
                # raises on a malformed cell is also a reject, not a crash
                except Exception as exc:  # noqa: BLE001
                    reason = f"{type(exc).__name__}: {exc}"
                else:
                    if dp.mol.GetNumAtoms() == 0:
                        reason = "molecule has no atoms"
            if reason is not None:
                rejects.append(
                    {
                        "row": i,
                        "split": name,
                        "smiles": smi if isinstance(smi, str) else None,
                        "reason": reason,
                    }
                )
                continue
            points.append(dp)
            rows.append(i)
        kept[name] = rows
        datasets[name] = cdata.MoleculeDataset(points, featurizer) if points else None
    for name in ("train", "val"):
        if datasets[name] is None:
            raise JobError(f"no valid molecule left in split[{name!r}] after rejecting SMILES")
    train_dset, val_dset, test_dset = (datasets[n] for n in SPLITS)

    output_transform = None
    if job["task_type"] == "regression":
        if not np.isfinite(train_dset.Y).any(axis=0).all():
            raise JobError("a regression target has no value in the training split")
        scaler = train_dset.normalize_targets()
        val_dset.normalize_targets(scaler)
        output_transform = cnn.UnscaleTransform.from_standard_scaler(scaler)
    for dset in datasets.values():
        if dset is not None:
            dset.cache = True  # builds every MolGraph now
    featurize_seconds = time.perf_counter() - t0

    # ---- loaders (as chemprop train: seeded shuffle, drop_last=batch_norm for training)
    bs, nw = job["batch_size"], job["num_workers"]
    n_train = len(train_dset)
    # molecules in the training batches of one epoch (fewer than n_train if the last is dropped)
    n_seen = (n_train // bs) * bs if job["batch_norm"] else n_train
    if n_seen == 0:
        raise JobError(
            f"batch_norm drops the last incomplete batch, and the {n_train} training molecules "
            f"do not fill one batch of {bs}: lower batch_size"
        )
    train_loader = cdata.build_dataloader(
        train_dset, bs, nw, seed=job["seed"], shuffle=True, drop_last=job["batch_norm"]
    )
    val_loader = cdata.build_dataloader(val_dset, bs, nw, shuffle=False, drop_last=False)

    def predict_loader(dset):
        return cdata.build_dataloader(dset, bs, nw, shuffle=False, drop_last=False)

    # ---- model
    pl.seed_everything(job["seed"], workers=True, verbose=False)
    torch.manual_seed(job["seed"])
    mp = cnn.BondMessagePassing(
        d_v=featurizer.atom_fdim,
        d_e=featurizer.bond_fdim,
        d_h=job["hidden_dim"],
        depth=job["depth"],
        dropout=job["dropout"],
    )
    if job["aggregation"] == "mean":
        agg = cnn.MeanAggregation()
    elif job["aggregation"] == "sum":
        agg = cnn.SumAggregation()
    else:
        agg = cnn.NormAggregation(norm=100.0)  # chemprop train's --aggregation-norm default
    if job["uncertainty"] == "mve":
        ffn_cls = cnn.MveFFN  # Gaussian NLL; predicts (mean, variance), unscaled
    elif job["uncertainty"] == "evidential":
        ffn_cls = cnn.EvidentialFFN  # Amini et al.'s loss (v_kl 0.2); predicts (mean, v, alpha, beta)
    elif job["uncertainty"] == "dirichlet":
        ffn_cls = cnn.BinaryDirichletFFN  # Sensoy et al.'s loss (v_kl 0.2); predicts (p, 2 / S)
    elif job["task_type"] == "regression":
        ffn_cls = cnn.RegressionFFN  # MSE loss on standardized targets
    else:
        ffn_cls = cnn.BinaryClassificationFFN  # BCE loss, sigmoid outputs when predicting
    ffn = ffn_cls(
        n_tasks=len(job["target_columns"]),
        input_dim=mp.output_dim + (0 if X_extra is None else X_extra.shape[1]),
        hidden_dim=job["ffn_hidden_dim"],
        n_layers=job["ffn_layers"],
        dropout=job["dropout"],
        output_transform=output_transform,
    )
    model = models.MPNN(
        mp,
        agg,
        ffn,
        batch_norm=job["batch_norm"],
        warmup_epochs=job["warmup_epochs"],
        init_lr=job["init_lr"],
        max_lr=job["max_lr"],
        final_lr=job["final_lr"],
    )
    n_parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)

    class EpochTimer(Callback):
        """Wall time of the training batches of each epoch (validation excluded)."""

        def __init__(self) -> None:
            self.seconds: list[float] = []
            self.val_losses: list[float | None] = []
            self._start: float | None = None

        def _stop(self) -> None:
            if self._start is not None:
                self.seconds.append(time.perf_counter() - self._start)
                self._start = None

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self._start = time.perf_counter()

        def on_validation_start(self, trainer, pl_module) -> None:
            if not trainer.sanity_checking:
                self._stop()

        def on_validation_end(self, trainer, pl_module) -> None:
            if not trainer.sanity_checking:
                v = trainer.callback_metrics.get("val_loss")
                self.val_losses.append(None if v is None else _float_or_none(v))

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            self._stop()

    timer = EpochTimer()
    with tempfile.TemporaryDirectory(prefix="chemprop_runner_") as tmp:
        checkpoint = ModelCheckpoint(
            dirpath=tmp,
            filename="best-{epoch}",
            monitor="val_loss",
            mode="min",
            save_top_k=1,
            save_last=False,
        )
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=1,
            max_epochs=job["epochs"],
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[checkpoint, timer],
            default_root_dir=tmp,
            deterministic=job["deterministic"],
        )
        t_fit = time.perf_counter()
        trainer.fit(model, train_loader, val_loader)
        fit_seconds = time.perf_counter() - t_fit

        best_path = checkpoint.best_model_path
        if not best_path:
            raise RuntimeError("no checkpoint was saved (val_loss never logged?)")
        ckpt = torch.load(best_path, map_location="cpu", weights_only=False)
        best_epoch = int(ckpt["epoch"])
        best_model = models.MPNN.load_from_checkpoint(best_path, map_location="cpu")
        best_val_loss = _float_or_none(checkpoint.best_model_score)

        predictor = pl.Trainer(
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=tmp,
            deterministic=job["deterministic"],
        )

        def moments(preds: Any) -> tuple[Any, Any]:
            """(mean, variance or None) from the predictor's output (B, T[, k])."""
            preds = preds.double()
            kind = job["uncertainty"]
            if kind == "mve":
                return preds[..., 0], preds[..., 1]
            if kind == "evidential":
                # the total variance, chemprop's EvidentialTotalEstimator: (1 + 1/v) beta / (alpha - 1)
                mean, v, alpha, beta = preds.unbind(-1)
                return mean, (1 + 1 / v) * beta / (alpha - 1)
            if kind == "dirichlet":
                p, u = preds.unbind(-1)  # u = 2 / S
                return p, p * (1 - p) / (2 / u + 1)  # the Beta's variance
            return (preds[..., 0] if preds.dim() == 3 else preds), None

        def predict(dset) -> tuple[list[list[float | None]], list[list[float | None]] | None]:
            if dset is None:
                return [], None
            if job["mc_dropout_samples"]:
                # MC dropout: dropout layers on at prediction, every other module in eval mode; the
                # draws' mean and variance (plus the head's own variance)
                best_model.eval()
                for m in best_model.modules():
                    if isinstance(m, torch.nn.Dropout):
                        m.train()
                torch.manual_seed(job["seed"])
                draws = []
                with torch.no_grad():
                    for _ in range(job["mc_dropout_samples"]):
                        outs = [best_model(b.bmg, b.V_d, b.X_d) for b in predict_loader(dset)]
                        draws.append(moments(torch.cat(outs, 0)))
                best_model.eval()
                means = torch.stack([d[0] for d in draws])
                var = means.var(0)
                if draws[0][1] is not None:
                    var = var + torch.stack([d[1] for d in draws]).mean(0)
                return _rows_as_lists(means.mean(0).numpy()), _rows_as_lists(var.numpy())
            out = predictor.predict(
                best_model, dataloaders=predict_loader(dset), **LIGHTNING_26_COMPAT_ARGS
            )
            mean, var = moments(torch.cat(out, 0))
            return _rows_as_lists(mean.numpy()), (None if var is None else _rows_as_lists(var.numpy()))

        t_pred = time.perf_counter()
        val_predictions, val_variances = predict(val_dset)
        test_predictions, test_variances = predict(test_dset)
        predict_seconds = time.perf_counter() - t_pred

    secs = timer.seconds
    steady = secs[1:] if len(secs) > 1 else secs
    median = statistics.median(steady) if steady else float("nan")
    return {
        "chemprop_version": chemprop.__version__,
        "torch_version": torch.__version__,
        "lightning_version": lightning.__version__,
        "task_type": job["task_type"],
        "target_columns": job["target_columns"],
        "seed": job["seed"],
        "epochs": job["epochs"],
        "settings": {k: job[k] for k in DEFAULTS},
        "torch_threads": torch.get_num_threads(),
        "n_train": n_train,
        "n_val": len(kept["val"]),
        "n_test": len(kept["test"]),
        "rejects": rejects,
        "featurize_seconds": featurize_seconds,
        "train_epoch_seconds": secs,
        "train_molecules_per_epoch": n_seen,
        "train_molecules_per_second": _float_or_none(n_seen / median) if median > 0 else None,
        "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
        "best_epoch": best_epoch,
        "best_val_loss": best_val_loss,
        "val_losses": timer.val_losses,
        "val_predictions": val_predictions,
        "test_predictions": test_predictions,
        # predicted variances in target units^2 (uncertainty heads, MC dropout); None otherwise
        "val_variances": val_variances,
        "test_variances": test_variances,
        "val_rows": kept["val"],
        "test_rows": kept["test"],
        "n_parameters": n_parameters,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] in ("-h", "--help"):
        usage = "usage: python benchmarks/chemprop_runner.py JOB.json OUT.json"
        print(f"{__doc__.splitlines()[0]}\n\n{usage}", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    job_path, out_path = Path(argv[0]), Path(argv[1])
    try:
        job = load_job(job_path)
        result = run(job)
    except JobError as exc:
        print(f"chemprop_runner: bad job {job_path}: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(
            f"chemprop_runner: {exc}. Run this script with the chemprop environment's Python "
            "(see benchmarks/README.md).",
            file=sys.stderr,
        )
        return 1
    _write_json_atomic(out_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
