"""Old home of the property networks, kept so that imports written for molgraph 0.1 still work.

The networks moved into their methods: :mod:`molgraph.methods.property` (``PropertyModel``,
``MODEL_PRESETS``, ``build_model``) and :mod:`molgraph.methods.graph_classification`
(``GraphClassifier``). Importing a name from here warns once and returns the moved object.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

_MOVED = {
    "ENCODERS": "molgraph.methods.property.model",
    "MODEL_PRESETS": "molgraph.methods.property.model",
    "PropertyModel": "molgraph.methods.property.model",
    "build_model": "molgraph.methods.property.model",
    "featurizer_input_kwargs": "molgraph.methods.property.model",
    "GraphClassifier": "molgraph.methods.graph_classification.model",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(f"molgraph.models.{name} moved to {_MOVED[name]}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'molgraph.models' has no attribute {name!r}")
