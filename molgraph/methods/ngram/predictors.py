"""Tree-ensemble predictors on fixed-length molecule vectors (N-gram graph, fingerprints).

* ``"rf"``: scikit-learn random forest. Defaults from the N-gram graph reference code's most
  common per-task settings: regression 400 trees with every feature tried at each split;
  classification ``log2`` features and balanced class weights (the reference mostly uses 4000
  trees for classification; 500 are used here by default to fit a 2-core budget, pass
  ``n_estimators=4000`` for theirs).
* ``"xgb"``: XGBoost (optional extra ``molgraph-ml[ngram]``), histogram trees.
* ``"hgb"``: scikit-learn ``HistGradientBoosting*``: gradient boosting without the extra
  dependency; ``"xgb"`` falls back to it when xgboost is not installed (:func:`resolve_predictor`).

:func:`fit_predict_tasks` trains one model per task, dropping the rows whose label for that task
is missing (NaN), as the reference does for multi-task sets.
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any, Callable

import numpy as np

__all__ = ["PREDICTORS", "default_params", "fit_predict_tasks", "make_predictor", "resolve_predictor",
           "xgboost_available"]

PREDICTORS = ("rf", "hgb", "xgb")

_DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    ("rf", "regression"): {"n_estimators": 400, "max_features": None, "min_samples_leaf": 1},
    ("rf", "classification"): {"n_estimators": 500, "max_features": "log2", "min_samples_leaf": 1,
                               "class_weight": "balanced"},
    ("hgb", "regression"): {"max_iter": 500, "learning_rate": 0.05, "early_stopping": False},
    ("hgb", "classification"): {"max_iter": 300, "learning_rate": 0.05, "early_stopping": False},
    ("xgb", "regression"): {"n_estimators": 500, "learning_rate": 0.05, "max_depth": 6, "subsample": 0.8,
                            "colsample_bytree": 0.5, "tree_method": "hist"},
    ("xgb", "classification"): {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 6, "subsample": 0.8,
                                "colsample_bytree": 0.5, "tree_method": "hist"},
}


def xgboost_available() -> bool:
    return importlib.util.find_spec("xgboost") is not None


def resolve_predictor(name: str) -> str:
    """The predictor that will actually run: ``"xgb"`` becomes ``"hgb"`` (with a warning) when
    xgboost is not installed."""
    if name not in PREDICTORS:
        raise ValueError(f"unknown predictor {name!r}; choose from {list(PREDICTORS)}")
    if name == "xgb" and not xgboost_available():
        warnings.warn("xgboost is not installed (pip install 'molgraph-ml[ngram]'); using scikit-learn's "
                      "HistGradientBoosting instead", stacklevel=2)
        return "hgb"
    return name


def default_params(name: str, task_type: str) -> dict[str, Any]:
    """The default hyper-parameters of predictor ``name`` for ``task_type`` (a copy)."""
    if task_type not in ("regression", "classification"):
        raise ValueError(f"task_type must be regression or classification, got {task_type!r}")
    return dict(_DEFAULTS[(resolve_predictor(name), task_type)])


def make_predictor(name: str, task_type: str, *, seed: int = 0, n_jobs: int = 1, **params: Any) -> Any:
    """A fresh, seeded scikit-learn-compatible estimator; ``params`` override the defaults."""
    name = resolve_predictor(name)
    kwargs = {**default_params(name, task_type), **params}
    reg = task_type == "regression"
    if name == "rf":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        cls = RandomForestRegressor if reg else RandomForestClassifier
        return cls(random_state=seed, n_jobs=n_jobs, **kwargs)
    if name == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        # HGB's thread count comes from OpenMP (threadpoolctl limits it in fit_predict_tasks)
        cls = HistGradientBoostingRegressor if reg else HistGradientBoostingClassifier
        return cls(random_state=seed, **kwargs)
    import xgboost

    cls = xgboost.XGBRegressor if reg else xgboost.XGBClassifier
    objective = "reg:squarederror" if reg else "binary:logistic"
    return cls(random_state=seed, n_jobs=n_jobs, objective=objective, **kwargs)


def _scores(model: Any, X: np.ndarray, task_type: str) -> np.ndarray:
    if task_type == "regression":
        return np.asarray(model.predict(X), dtype=np.float64)
    proba = model.predict_proba(X)
    classes = list(model.classes_)
    return np.asarray(proba[:, classes.index(1)] if 1 in classes else np.zeros(len(X)), dtype=np.float64)


def fit_predict_tasks(
    name: str,
    task_type: str,
    X_train: np.ndarray,
    Y_train: np.ndarray,
    X_test: np.ndarray,
    *,
    seed: int = 0,
    n_jobs: int = 1,
    params: dict[str, Any] | None = None,
    on_task: Callable[[int, Any], None] | None = None,
) -> np.ndarray:
    """One model per task; rows with a missing label for that task are left out of its training.

    Args:
        X_train: ``(n_train, d)``; Y_train: ``(n_train, n_tasks)`` with NaN = missing.
        X_test: ``(n_test, d)``.
        on_task: called with ``(task, fitted_model)`` after each task (e.g. to inspect it).

    Returns:
        ``(n_test, n_tasks)`` predictions (regression) or probabilities of class 1
        (classification); a task with no labelled training row, or a single class, predicts
        NaN / that constant.
    """
    from threadpoolctl import threadpool_limits

    Y_train = np.asarray(Y_train, dtype=np.float64).reshape(len(X_train), -1)
    out = np.full((len(X_test), Y_train.shape[1]), np.nan)
    with threadpool_limits(limits=n_jobs, user_api="openmp"):
        for t in range(Y_train.shape[1]):
            keep = ~np.isnan(Y_train[:, t])
            if not keep.any():
                continue
            y = Y_train[keep, t]
            if task_type == "classification":
                y = y.astype(np.int64)
                if np.unique(y).size < 2:
                    out[:, t] = float(y[0])
                    continue
            model = make_predictor(name, task_type, seed=seed, n_jobs=n_jobs, **(params or {}))
            model.fit(X_train[keep], y)
            out[:, t] = _scores(model, X_test, task_type)
            if on_task is not None:
                on_task(t, model)
    return out
