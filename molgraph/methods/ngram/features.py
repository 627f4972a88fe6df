"""Molecule featurizers that learn from data (the N-gram graph's vertex embedding ``W``).

Names in ``molecule_featurizers``:

* ``ngram``: an :class:`~molgraph.methods.ngram.embedding.NGramGraph` (default settings, ``seed`` = the run's
  model seed, CBoW capped at :data:`NGRAM_MAX_STEPS` optimizer steps) whose ``W`` is fitted on the
  run's **training** molecules only, after the split, so validation and test molecules never
  shape the features. The cap is the reference's 100 epochs for a training set of about 15,000
  atoms (ESOL's); past that, W has long converged, and 100 epochs of HIV would take an hour.
* ``ngram:PATH.npz``: an estimator fitted beforehand and saved with
  ``molgraph ngram embed ... --save-model PATH.npz`` (or ``NGramGraph.save``); used as is.

Either way the fitted ``W`` and the estimator's settings go into the model file
(:func:`learned_state`), so ``molgraph predict`` needs neither the training data nor ``PATH``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

__all__ = ["NGRAM", "NGRAM_MAX_STEPS", "is_learned", "check_learned_name", "fit_learned_featurizers", "learned_state",
           "learned_from_state"]

NGRAM = "ngram"
NGRAM_MAX_STEPS = 10_000


def is_learned(name: str) -> bool:
    """True for ``ngram`` and ``ngram:PATH``."""
    return name == NGRAM or name.startswith(NGRAM + ":")


def check_learned_name(name: str) -> None:
    """Raise ValueError naming the problem with an ``ngram[:PATH]`` featurizer name."""
    if name == NGRAM:
        return
    path = Path(name.split(":", 1)[1])
    if path.suffix != ".npz":
        raise ValueError(f"molecule featurizer {name!r}: an N-gram model file ends in .npz (NGramGraph.save)")
    if not path.is_file():
        raise ValueError(f"molecule featurizer {name!r}: no such file {path}")


def fit_learned_featurizers(
    names: Sequence[str], smiles: Sequence[str], train: np.ndarray, *, seed: int, n_jobs: int = 1,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Fitted estimators for the learned featurizers among ``names`` (others are ignored).

    Args:
        smiles: every molecule of the run, ``N`` SMILES.
        train: ``(N_train,)`` positions of the training molecules; only these are fitted on.
        seed: the estimator's seed for ``ngram`` (its CBoW initialisation and batch order).
    """
    from molgraph.methods.ngram.embedding import NGramGraph, NGramGraphConfig

    fitted: dict[str, Any] = {}
    for name in names:
        if not is_learned(name):
            continue
        check_learned_name(name)
        if name == NGRAM:
            est = NGramGraph(NGramGraphConfig(seed=seed, max_steps=NGRAM_MAX_STEPS))
            est.fit([smiles[int(i)] for i in train], n_jobs=n_jobs, errors="skip", progress=progress)
        else:
            est = NGramGraph.load(name.split(":", 1)[1])
        fitted[name] = est
    return fitted


def learned_state(est: Any) -> dict[str, Any]:
    """What a model file keeps of a fitted estimator: its settings and ``W`` (a tensor, so the file
    still loads with ``weights_only=True``)."""
    return {"estimator": est.to_config(), "W": torch.from_numpy(np.ascontiguousarray(est.W)),
            "fit_info": {k: v for k, v in est.fit_info.items() if isinstance(v, (int, float, str))}}


def learned_from_state(state: Mapping[str, Any]) -> Any:
    """Inverse of :func:`learned_state`."""
    from molgraph.methods.ngram.embedding import NGramGraph

    est = NGramGraph.from_config(dict(state["estimator"]))
    W = state["W"].detach().cpu().numpy().astype(np.float32)
    if W.shape != (est.in_dim, est.config.dim):
        raise ValueError(f"model file: N-gram W is {W.shape}, expected {(est.in_dim, est.config.dim)}")
    est.W = W
    est.fit_info = dict(state.get("fit_info", {}))
    return est


def _register() -> None:
    from molgraph.registry import MOLECULE_FEATURIZERS

    # learned: fitted on the training split by the property method (fit_learned_featurizers);
    # `ngram:MODEL.npz` names a fitted model file instead
    MOLECULE_FEATURIZERS.register(NGRAM, fit_learned_featurizers,
                                  help="N-gram graph, W fitted on the training split (ngram:MODEL.npz: a fitted model)")


_register()
