"""N-gram graph (Liu et al., NeurIPS 2019): unsupervised molecule embeddings from walks of vertex embeddings.

Rooms: ``walks`` (the walk sums and the CBoW vertex embedding), ``embedding`` (``NGramGraph``:
fit, embed, save), ``features`` (N-gram as a learned molecule featurizer of the property
method), ``predictors`` (random forest / gradient boosting on the embeddings), ``evaluate`` (the
paper's protocol), ``cli`` (``molgraph ngram ...``), ``method`` (the registry entry).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {name: "molgraph.methods.ngram.embedding"
            for name in ("NGramEmbedding", "NGramGraph", "NGramGraphConfig", "ngram_graph_featurizer")}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # lazy: registering the method (molgraph.methods) must not import torch
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'molgraph.methods.ngram' has no attribute {name!r}")
