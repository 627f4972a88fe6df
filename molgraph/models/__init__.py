"""Models: :class:`PropertyModel` and named presets (:data:`MODEL_PRESETS`, :func:`build_model`);
:class:`GraphClassifier`, the GIN graph classifier of the GraphNorm paper's TU experiments.

A preset fixes the architecture; the input and task sizes come from the data::

    model = build_model("dmpnn", num_tasks=1, **featurizer_input_kwargs(featurizer))
"""

from __future__ import annotations

import copy
from typing import Any

from molgraph.models.graph_classifier import GraphClassifier
from molgraph.models.property_model import (
    ENCODERS,
    PropertyModel,
    featurizer_input_kwargs,
)

__all__ = ["ENCODERS", "MODEL_PRESETS", "GraphClassifier", "PropertyModel", "build_model", "featurizer_input_kwargs"]

MODEL_PRESETS: dict[str, dict[str, Any]] = {
    # chemprop v2 defaults (hidden 300, depth 3, FFN one hidden layer of 300, no dropout), with a
    # mean readout (chemprop's own default is "norm", the sum / 100; pass readout="norm" for it).
    "dmpnn": {
        "encoder": "dmpnn",
        "hidden_dim": 300,
        "depth": 3,
        "dropout": 0.0,
        "readout": "mean",
        "ffn_hidden_dim": 300,
        "ffn_layers": 1,
        "activation": "relu",
    },
    # Hu et al. 2020 GIN(E): 5 layers of 300, batch norm, mean pooling (their default readout).
    "gin": {
        "encoder": "gine",
        "hidden_dim": 300,
        "depth": 5,
        "dropout": 0.0,
        "readout": "mean",
        "ffn_hidden_dim": 300,
        "ffn_layers": 1,
        "batch_norm": True,
        "activation": "relu",
    },
}
# Hu et al. 2020 (OGB) GCN baseline: GIN's settings (5 x 300, batch norm, mean pooling) on the GCN block.
MODEL_PRESETS["gcn"] = {**MODEL_PRESETS["gin"], "encoder": "gcn"}


def build_model(name: str, **overrides: Any) -> PropertyModel:
    """A :class:`PropertyModel` from preset ``name`` with ``overrides`` on top.

    ``num_tasks``, ``atom_dim`` and ``bond_dim`` (and cardinalities for index-encoded input) are
    not in the presets and must be given.

    Raises:
        ValueError: unknown preset (the message lists the names).
        TypeError: a required argument is missing or an override is not a constructor argument.
    """
    if name not in MODEL_PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(MODEL_PRESETS)}")
    kwargs = copy.deepcopy(MODEL_PRESETS[name])
    kwargs.update(overrides)
    return PropertyModel(**kwargs)
