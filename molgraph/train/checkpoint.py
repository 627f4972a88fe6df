"""Model files: everything needed to predict, in one file that loads without executing code.

A model file is a ``torch.save``d dict of plain containers, strings, numbers and tensors, with
one section per method:

=====================  ============================================================
``format``             ``"molgraph.model/2"``
``method``             registry name of the method that wrote it (``property``, ...)
``section_version``    version of the method's section layout
``<method>``           the method's section: what its ``load`` needs (network config,
                       featurizer, scalers, target names, ...)
``members``            list of state dicts (one per ensemble member)
``config``             the resolved settings, by section
``metrics``            validation/test metrics at save time
``versions``           molgraph, torch, torch-geometric, rdkit, lightning, python
=====================  ============================================================

Files of molgraph 0.1 (``"molgraph.model/1"``: the property method's fields at the top level)
load as a ``property`` section (:func:`load_model_file` converts them in memory).

Loading always uses ``torch.load(..., weights_only=True)``: a file carrying any pickled object
other than those plain types is refused with :class:`CheckpointError` and nothing in it runs.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch

from molgraph.io import atomic_output
from molgraph.io import safe_torch_load as _safe_load

__all__ = ["MODEL_FORMAT", "LEGACY_FORMAT", "CheckpointError", "save_model_file", "load_model_file", "library_versions", "safe_torch_load", "plain"]

MODEL_FORMAT = "molgraph.model/2"
LEGACY_FORMAT = "molgraph.model/1"
_REQUIRED = ("method", "members", "config")
# the top-level keys of a format-1 file that are not the property method's own
_LEGACY_COMMON = ("format", "members", "config", "metrics", "versions")


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
    return _safe_load(path, map_location, error=CheckpointError)


def save_model_file(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write a model file atomically (a crash leaves either the old file or none, never half)."""
    missing = [k for k in _REQUIRED if k not in payload]
    if missing:
        raise ValueError(f"model payload lacks {missing}")
    if payload["method"] not in payload:
        raise ValueError(f"model payload lacks the section of its method {payload['method']!r}")
    payload = {"format": MODEL_FORMAT, **payload}
    payload.setdefault("versions", library_versions())
    payload = plain(payload)
    path = Path(path)
    with atomic_output(path, "wb") as fh:
        torch.save(payload, fh)
    return path


def load_model_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a model file; a molgraph 0.1 file is returned in the current layout."""
    payload = safe_torch_load(path)
    found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
    if found == LEGACY_FORMAT:
        payload = _from_legacy(payload, path)
    elif found != MODEL_FORMAT:
        raise CheckpointError(f"{path}: not a molgraph model file (format {found!r}, expected {MODEL_FORMAT!r})")
    missing = [k for k in _REQUIRED if k not in payload]
    if missing:
        raise CheckpointError(f"{path}: model file lacks {missing}")
    if not isinstance(payload.get(payload["method"]), dict):
        raise CheckpointError(f"{path}: model file lacks the section of its method {payload['method']!r}")
    return payload


def _from_legacy(payload: dict[str, Any], path: Any) -> dict[str, Any]:
    """A format-1 file (molgraph 0.1, property models only) in the format-2 layout."""
    legacy_required = ("model_class", "model_config", "members", "featurizer", "task_type", "target_names")
    missing = [k for k in legacy_required if k not in payload]
    if missing:
        raise CheckpointError(f"{path}: model file (format {LEGACY_FORMAT}) lacks {missing}")
    section = {k: v for k, v in payload.items() if k not in _LEGACY_COMMON}
    return {
        "format": MODEL_FORMAT,
        "converted_from": LEGACY_FORMAT,
        "method": "property",
        "section_version": 1,
        "members": payload["members"],
        "config": payload.get("config", {}),
        "metrics": payload.get("metrics", {}),
        "versions": payload.get("versions", {}),
        "property": section,
    }
