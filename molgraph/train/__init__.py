"""The shared trainer: Lightning tasks, data module, optimizers, metrics, checkpoints, runs.

Every method in molgraph trains through :class:`~molgraph.train.task.Task` (a LightningModule
owning loss, metrics and target scaling) with models that stay plain ``torch.nn.Module``s.
``molgraph train`` is :func:`~molgraph.train.runner.run_training`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Task": "molgraph.train.task",
    "PropertyTask": "molgraph.train.task",
    "GraphDataModule": "molgraph.train.datamodule",
    "TrainConfig": "molgraph.train.config",
    "load_config_file": "molgraph.train.config",
    "run_training": "molgraph.train.runner",
    "RunResult": "molgraph.train.runner",
    "Predictor": "molgraph.methods.property.predict",
    "predict_values": "molgraph.methods.property.predict",
    "save_model_file": "molgraph.train.checkpoint",
    "load_model_file": "molgraph.train.checkpoint",
    "CheckpointError": "molgraph.train.checkpoint",
    "compute_metrics": "molgraph.train.metrics",
    "masked_loss": "molgraph.train.metrics",
    "StandardScaler": "molgraph.train.scaling",
    "build_optimizer": "molgraph.train.optim",
    "register_optimizer": "molgraph.train.optim",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # lazy: `import molgraph.train` should not pull in Lightning until something is used
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'molgraph.train' has no attribute {name!r}")
