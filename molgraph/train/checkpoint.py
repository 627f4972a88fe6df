"""Model files: everything needed to predict, in one file that loads without executing code.

A model file is a ``torch.save``d dict of plain containers, strings, numbers and tensors:

=====================  ============================================================
``format``             ``"molgraph.model/1"``
``model_class``        registry name of the network class (``PropertyModel``)
``model_config``       the network's constructor kwargs
``members``            list of state dicts (one per ensemble member)
``featurizer``         ``MolGraphFeaturizer.to_config()`` used for training
``task_type``          ``regression`` | ``classification``
``target_names``       list of target column names
``target_scaler``      ``StandardScaler.to_dict()`` or ``None``
``molecule_features``  ``{"names": [...], "scaler": {...}}`` or ``None``
``split``, ``config``  the split (file rows) and the resolved training settings
``metrics``            validation/test metrics at save time
``versions``           molgraph, torch, torch-geometric, rdkit, lightning, python
=====================  ============================================================

Loading always uses ``torch.load(..., weights_only=True)``: a file carrying any pickled object
other than those plain types is refused with :class:`CheckpointError` and nothing in it runs.
"""

from __future__ import annotations

import os
import pickle
import platform
from pathlib import Path
from typing import Any

import torch

from molgraph.data.sources import atomic_output

__all__ = ["MODEL_FORMAT", "CheckpointError", "save_model_file", "load_model_file", "library_versions", "safe_torch_load"]

MODEL_FORMAT = "molgraph.model/1"
_REQUIRED = ("model_class", "model_config", "members", "featurizer", "task_type", "target_names")


class CheckpointError(ValueError):
    """A model or checkpoint file that cannot or must not be loaded."""


def library_versions() -> dict[str, str]:
    """Versions of the libraries a model file depends on."""
    import lightning
    import rdkit
    import torch_geometric

    import molgraph

    return {
        "molgraph": molgraph.__version__,
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "rdkit": rdkit.__version__,
        "lightning": lightning.__version__,
        "python": platform.python_version(),
    }


def safe_torch_load(path: str | os.PathLike[str], map_location: Any = "cpu") -> Any:
    """``torch.load`` with ``weights_only=True``; a pickle payload becomes :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused to load: the file contains pickled objects other than tensors and plain "
            f"containers, which could run code when loaded (weights_only=True rejected it: "
            f"{str(exc).splitlines()[0]})"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable torch file ({exc})") from None


def save_model_file(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write a model file atomically (a crash leaves either the old file or none, never half)."""
    missing = [k for k in _REQUIRED if k not in payload]
    if missing:
        raise ValueError(f"model payload lacks {missing}")
    payload = {"format": MODEL_FORMAT, **payload}
    payload.setdefault("versions", library_versions())
    path = Path(path)
    with atomic_output(path, "wb") as fh:
        torch.save(payload, fh)
    return path


def load_model_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a model file written by :func:`save_model_file`."""
    payload = safe_torch_load(path)
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path}: not a molgraph model file (format {found!r}, expected {MODEL_FORMAT!r})")
    missing = [k for k in _REQUIRED if k not in payload]
    if missing:
        raise CheckpointError(f"{path}: model file lacks {missing}")
    return payload
