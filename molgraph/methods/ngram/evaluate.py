"""The N-gram graph paper's evaluation: k-fold CV (or a fixed split) with tree predictors.

Protocol (Liu et al. 2019, reference code): molecules over an atom cap are dropped (and
reported); ``k``-fold CV shuffled with ``seed``, ``KFold`` for regression (one set of folds for
every task), ``StratifiedKFold`` per task for classification (rows without that task's label are
dropped first, so each task has its own folds); inside every fold the vertex embedding ``W`` is
fitted on the training molecules only, all molecules are embedded with it, and one predictor
per task is trained on the training rows. Metrics per task and fold; reported per task (mean and
standard deviation over folds) and averaged over tasks.

Representations compared in the same run: ``"ngram"`` (CBoW ``W``), ``"ngram_random"`` (the
seeded untrained ``W``) and ``"morgan"`` (RDKit Morgan bits, radius 2, 1024 bits), all on the
same molecules (those the atom cap and the parser keep).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Sequence

import numpy as np

from molgraph.data.splits import Split, kfold, stratified_kfold
from molgraph.featurizers.fingerprints import MorganFingerprint
from molgraph.methods.ngram.embedding import NGramGraph, NGramGraphConfig
from molgraph.methods.ngram.predictors import fit_predict_tasks, resolve_predictor

__all__ = ["REPRESENTATIONS", "classification_metrics", "cross_validate", "evaluate_split",
           "prepare_molecules", "regression_metrics"]

REPRESENTATIONS = ("ngram", "ngram_random", "morgan")
MORGAN = MorganFingerprint(radius=2, n_bits=1024)

FoldHook = Callable[[dict[str, Any]], None]


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {"rmse": float(np.sqrt(mean_squared_error(y, pred))), "mae": float(mean_absolute_error(y, pred)),
            "r2": float(r2_score(y, pred)) if len(y) > 1 else float("nan")}


def classification_metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """ROC-AUC and PRC-AUC (average precision); NaN when the test rows hold one class only."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    if np.unique(y).size < 2:
        return {"roc_auc": float("nan"), "prc_auc": float("nan")}
    return {"roc_auc": float(roc_auc_score(y, score)), "prc_auc": float(average_precision_score(y, score))}


def _metrics(task_type: str, y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return regression_metrics(y, pred) if task_type == "regression" else classification_metrics(y, pred)


class PreparedMolecules:
    """The molecules an evaluation uses: n-gram graphs of the kept rows and their labels.

    Attributes:
        graphs: :class:`~molgraph.data.collated.CollatedGraphs` of the kept molecules.
        rows: ``(n_kept,)`` input row of each kept molecule.
        y: ``(n_kept, n_tasks)`` labels (NaN = missing).
        rejects: rows left out: unparsable, or over the atom cap (reason says which).
        n_input: number of input rows.
        seconds: featurization time.
    """

    def __init__(self, smiles: Sequence[str], y: np.ndarray, config: NGramGraphConfig, *, n_jobs: int = 1,
                 progress: bool | None = None):
        start = time.perf_counter()
        self.n_input = len(smiles)
        graphs, self.rejects = NGramGraph(config).featurize(smiles, n_jobs=n_jobs, errors="skip", progress=progress)
        if graphs is None:
            raise ValueError(f"none of the {len(smiles)} molecules could be featurized")
        self.graphs = graphs
        self.rows = graphs.rows.numpy()
        self.y = np.asarray(y, dtype=np.float64).reshape(self.n_input, -1)[self.rows]
        self.seconds = time.perf_counter() - start
        self._morgan: np.ndarray | None = None

    @property
    def smiles(self) -> list[str]:
        return self.graphs.smiles

    def morgan(self) -> np.ndarray:
        if self._morgan is None:
            self._morgan = MORGAN(self.graphs.smiles).astype(np.float32)
        return self._morgan

    def reject_summary(self) -> dict[str, Any]:
        capped = [r for r in self.rejects if "max_atoms" in r.reason]
        return {"n_input": self.n_input, "n_used": len(self.rows), "n_rejected": len(self.rejects),
                "n_over_atom_cap": len(capped), "rejected_rows": [int(r.index) for r in self.rejects]}


def prepare_molecules(smiles: Sequence[str], y: np.ndarray, *, max_atoms: int | None, n_jobs: int = 1,
                      progress: bool | None = None) -> PreparedMolecules:
    """Featurize once for every representation and fold (drops rows over ``max_atoms``)."""
    return PreparedMolecules(smiles, y, NGramGraphConfig(max_atoms=max_atoms), n_jobs=n_jobs, progress=progress)


def _features(rep: str, data: PreparedMolecules, train: np.ndarray, config: NGramGraphConfig,
              hook_info: dict[str, Any]) -> tuple[np.ndarray, float]:
    """Features of every kept molecule for one fold; ``W`` (if any) sees ``train`` only."""
    start = time.perf_counter()
    if rep == "morgan":
        return data.morgan(), time.perf_counter() - start
    cfg = dataclasses.replace(config, vertex_embedding="random" if rep == "ngram_random" else "cbow")
    est = NGramGraph(cfg).fit_graphs(data.graphs, train)
    hook_info["W"] = est.W
    hook_info["fit_info"] = est.fit_info
    return est.transform_graphs(data.graphs), time.perf_counter() - start


def _fold_plan(data: PreparedMolecules, task_type: str, folds: int, seed: int) -> list[tuple[list[int], list[tuple[np.ndarray, np.ndarray]]]]:
    """Groups of tasks that share folds, with their (train, test) positions into ``data``."""
    n_tasks = data.y.shape[1]
    if task_type == "regression":
        return [(list(range(n_tasks)), kfold(len(data.rows), folds, seed))]
    plan = []
    for t in range(n_tasks):
        labelled = np.flatnonzero(~np.isnan(data.y[:, t]))
        split = stratified_kfold(data.y[labelled, t], folds, seed)
        plan.append(([t], [(labelled[tr], labelled[te]) for tr, te in split]))
    return plan


def _nanmean(values: Sequence[float]) -> float:
    """Mean of the finite values; NaN (without numpy's warning) when there is none."""
    arr = np.asarray(values, dtype=np.float64)
    return float(arr[np.isfinite(arr)].mean()) if np.isfinite(arr).any() else float("nan")


def _summarise(per_task: dict[str, list[dict[str, float]]]) -> tuple[dict[str, Any], dict[str, float]]:
    tasks: dict[str, Any] = {}
    for name, fold_metrics in per_task.items():
        keys = fold_metrics[0].keys() if fold_metrics else []
        entry: dict[str, Any] = {}
        for k in keys:
            vals = np.array([m[k] for m in fold_metrics], dtype=np.float64)
            entry[k] = _nanmean(vals)
            entry[f"{k}_std"] = float(np.std(vals[np.isfinite(vals)])) if np.isfinite(vals).any() else float("nan")
        entry["folds"] = fold_metrics
        tasks[name] = entry
    metric_keys = [k for k in next(iter(tasks.values())) if k != "folds" and not k.endswith("_std")] if tasks else []
    mean = {k: _nanmean([tasks[t][k] for t in tasks]) for k in metric_keys}
    return tasks, mean


def cross_validate(
    data: PreparedMolecules,
    task_type: str,
    *,
    representation: str = "ngram",
    predictor: str = "rf",
    folds: int = 5,
    seed: int = 123,
    task_names: Sequence[str] | None = None,
    ngram_config: NGramGraphConfig | None = None,
    predictor_params: dict[str, Any] | None = None,
    n_jobs: int = 1,
    fold_hook: FoldHook | None = None,
) -> dict[str, Any]:
    """k-fold CV of one representation and predictor (see the module docstring).

    Args:
        data: from :func:`prepare_molecules` (featurize once, evaluate many ways).
        representation: ``"ngram"``, ``"ngram_random"`` or ``"morgan"``.
        predictor: ``"rf"``, ``"hgb"`` or ``"xgb"`` (``"xgb"`` runs as ``"hgb"`` without xgboost).
        seed: shuffles the folds; also seeds ``W`` and the predictors.
        ngram_config: CBoW and walk settings (``dim``, ``n_grams``, ``epochs``, ...); its seed is
            replaced by ``seed``.
        fold_hook: called once per (task group, fold) with ``{"tasks", "fold", "train", "test"}``
            positions and, for n-gram representations, the fitted ``W`` (tests use it to show
            that ``W`` never depends on test molecules).

    Returns:
        JSON-ready dict: ``tasks`` (per task: metric means, ``*_std``, per-fold values),
        ``mean`` (metric means over tasks), settings, molecule counts and timings.
    """
    if representation not in REPRESENTATIONS:
        raise ValueError(f"unknown representation {representation!r}; choose from {list(REPRESENTATIONS)}")
    if task_type not in ("regression", "classification"):
        raise ValueError(f"task_type must be regression or classification, got {task_type!r}")
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    ran = resolve_predictor(predictor)
    config = dataclasses.replace(ngram_config or NGramGraphConfig(), seed=seed)
    names = list(task_names) if task_names is not None else [f"task{t}" for t in range(data.y.shape[1])]
    per_task: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    t_repr = t_pred = 0.0
    for tasks, fold_list in _fold_plan(data, task_type, folds, seed):
        for f, (train, test) in enumerate(fold_list):
            info: dict[str, Any] = {"tasks": tasks, "fold": f, "train": train, "test": test}
            X, seconds = _features(representation, data, train, config, info)
            t_repr += seconds
            start = time.perf_counter()
            pred = fit_predict_tasks(ran, task_type, X[train], data.y[np.ix_(train, tasks)], X[test], seed=seed,
                                     n_jobs=n_jobs, params=predictor_params)
            t_pred += time.perf_counter() - start
            for j, t in enumerate(tasks):
                y_test = data.y[test, t]
                keep = ~np.isnan(y_test)
                if keep.sum() == 0:
                    continue
                per_task[names[t]].append(_metrics(task_type, y_test[keep], pred[keep, j]))
            if fold_hook is not None:
                fold_hook(info)
    tasks_out, mean = _summarise(per_task)
    return {
        "representation": representation, "predictor": ran, "predictor_requested": predictor,
        "task_type": task_type, "protocol": f"{folds}-fold CV" + (" stratified per task" if task_type != "regression" else ""),
        "folds": folds, "seed": seed, **data.reject_summary(),
        "ngram_config": config.to_config() if representation != "morgan" else None,
        "predictor_params": predictor_params or {},
        "tasks": tasks_out, "mean": mean,
        "seconds": {"featurize": round(data.seconds, 2), "representation": round(t_repr, 2),
                    "predictor": round(t_pred, 2)},
    }


def evaluate_split(
    data: PreparedMolecules,
    task_type: str,
    split: Split,
    *,
    representation: str = "ngram",
    predictor: str = "rf",
    seed: int = 0,
    task_names: Sequence[str] | None = None,
    ngram_config: NGramGraphConfig | None = None,
    predictor_params: dict[str, Any] | None = None,
    n_jobs: int = 1,
) -> dict[str, Any]:
    """Train on ``split.train`` (``W`` too), score ``split.val`` and ``split.test``.

    ``split`` holds *input rows* (as :func:`molgraph.data.make_split` and split files do); rows
    the featurizer rejected are reported in ``rows_not_used`` and left out.
    """
    if representation not in REPRESENTATIONS:
        raise ValueError(f"unknown representation {representation!r}; choose from {list(REPRESENTATIONS)}")
    ran = resolve_predictor(predictor)
    config = dataclasses.replace(ngram_config or NGramGraphConfig(), seed=seed)
    where = {int(r): i for i, r in enumerate(data.rows)}
    parts, missing = {}, {}
    for name, idx in split.parts().items():
        pos = [where.get(int(r), -1) for r in idx]
        parts[name] = np.asarray([p for p in pos if p >= 0], dtype=np.int64)
        missing[name] = [int(r) for r, p in zip(idx, pos) if p < 0]
    if len(parts["train"]) == 0:
        raise ValueError("no training molecule left after featurization")
    info: dict[str, Any] = {}
    X, t_repr = _features(representation, data, parts["train"], config, info)
    names = list(task_names) if task_names is not None else [f"task{t}" for t in range(data.y.shape[1])]
    start = time.perf_counter()
    scored = {k: v for k, v in parts.items() if k != "train" and len(v)}
    stacked = np.concatenate(list(scored.values())) if scored else np.zeros(0, np.int64)
    pred = fit_predict_tasks(ran, task_type, X[parts["train"]], data.y[parts["train"]], X[stacked], seed=seed,
                             n_jobs=n_jobs, params=predictor_params)
    t_pred = time.perf_counter() - start
    out_parts: dict[str, Any] = {}
    offset = 0
    for part, pos in scored.items():
        p = pred[offset : offset + len(pos)]
        offset += len(pos)
        per_task = {}
        for t, name in enumerate(names):
            y = data.y[pos, t]
            keep = ~np.isnan(y)
            if keep.any():
                per_task[name] = _metrics(task_type, y[keep], p[keep, t])
        keys = next(iter(per_task.values())).keys() if per_task else []
        mean = {k: _nanmean([m[k] for m in per_task.values()]) for k in keys}
        out_parts[part] = {"tasks": per_task, "mean": mean, "n": int(len(pos))}
    return {
        "representation": representation, "predictor": ran, "predictor_requested": predictor,
        "task_type": task_type, "protocol": f"{split.method} split", "split_sizes": list(split.sizes), "seed": seed,
        **data.reject_summary(), "rows_not_used": missing,
        "ngram_config": config.to_config() if representation != "morgan" else None,
        "predictor_params": predictor_params or {}, **out_parts,
        "seconds": {"featurize": round(data.seconds, 2), "representation": round(t_repr, 2),
                    "predictor": round(t_pred, 2)},
    }
