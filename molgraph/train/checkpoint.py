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

__all__ = ["MODEL_FORMAT", "CheckpointError", "save_model_file", "load_model_file", "library_versions", "safe_torch_load", "plain"]

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

    # str(): torch.__version__ is a TorchVersion, which weights_only loading does not accept
    return {
        "molgraph": str(molgraph.__version__),
        "torch": str(torch.__version__),
        "torch_geometric": str(torch_geometric.__version__),
        "rdkit": str(rdkit.__version__),
        "lightning": str(lightning.__version__),
        "python": platform.python_version(),
    }


def plain(obj: Any, where: str = "payload") -> Any:
    """``obj`` as only dicts, lists, str, int, float, bool, None and tensors (what loads safely).

    numpy scalars and arrays become Python numbers and tensors, tuples become lists; anything
    else is a ``TypeError`` naming where it sits, so a model file can never need unpickling.
    """
    import numpy as np

    if obj is None or isinstance(obj, (bool, int, float)) and type(obj) in (bool, int, float):
        return obj
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {str(k): plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise TypeError(f"{where}: {type(obj).__name__} cannot go in a model file")


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
            f"{_reason(exc)})"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable torch file ({exc})") from None


def _reason(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if "Unsupported global" in ln or "Unsupported operand" in ln]
    return lines[0] if lines else str(exc).splitlines()[0]


def save_model_file(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write a model file atomically (a crash leaves either the old file or none, never half)."""
    missing = [k for k in _REQUIRED if k not in payload]
    if missing:
        raise ValueError(f"model payload lacks {missing}")
    payload = {"format": MODEL_FORMAT, **payload}
    payload.setdefault("versions", library_versions())
    payload = plain(payload)
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
