"""The shared trainer: the Method interface, settings, the method-agnostic runner, tasks, metrics, checkpoints.

Every method in molgraph trains through :func:`~molgraph.train.runner.run_training`, which calls
the hooks of a :class:`~molgraph.train.method.Method`; models stay plain ``torch.nn.Module``s
wrapped by a :class:`~molgraph.train.task.Task`. Importing this package pulls in no method.

``TrainConfig``, ``PropertyTask``, ``Predictor`` and ``predict_values`` belong to the property
method (:mod:`molgraph.methods.property`); they are still importable from here, as in molgraph 0.1.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Method": "molgraph.train.method",
    "Prepared": "molgraph.train.method",
    "TrainerSettings": "molgraph.train.settings",
    "SectionedConfig": "molgraph.train.settings",
    "setting": "molgraph.train.settings",
    "Task": "molgraph.train.task",
    "GraphDataModule": "molgraph.train.datamodule",
    "run_training": "molgraph.train.runner",
    "RunResult": "molgraph.train.runner",
    "validate_config": "molgraph.train.runner",
    "save_model_file": "molgraph.train.checkpoint",
    "load_model_file": "molgraph.train.checkpoint",
    "CheckpointError": "molgraph.train.checkpoint",
    "compute_metrics": "molgraph.train.metrics",
    "masked_loss": "molgraph.train.metrics",
    "StandardScaler": "molgraph.train.scaling",
    "build_optimizer": "molgraph.train.optim",
    "register_optimizer": "molgraph.train.optim",
    # the property method's, kept here for molgraph 0.1 imports
    "TrainConfig": "molgraph.methods.property.config",
    "load_config_file": "molgraph.methods.property.config",
    "PropertyTask": "molgraph.methods.property.task",
    "Predictor": "molgraph.methods.property.predict",
    "predict_values": "molgraph.methods.property.predict",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # lazy: `import molgraph.train` should not pull in Lightning until something is used
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'molgraph.train' has no attribute {name!r}")
