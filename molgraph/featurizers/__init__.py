"""Featurizers: atoms, bonds, whole-molecule graphs, fingerprints and descriptors.

The fingerprint and descriptor names are imported on first use (RDKit's descriptor module is
not needed to featurize graphs); nothing here imports torch or PyG until a ``Data`` is built.
"""

from __future__ import annotations

import importlib
from typing import Any

from molgraph.featurizers.atom import AtomFeaturizer
from molgraph.featurizers.bond import BondFeaturizer
from molgraph.featurizers.categorical import Feature
from molgraph.featurizers.graph import GraphArrays, MolGraphFeaturizer

__all__ = ["AtomFeaturizer", "BondFeaturizer", "Feature", "GraphArrays", "MolGraphFeaturizer"]

from molgraph.featurizers.batch import FeaturizeResult, Reject, featurize_smiles, iter_featurize  # noqa: E402

__all__ += ["FeaturizeResult", "Reject", "featurize_smiles", "iter_featurize"]

_LAZY = {
    "MorganFingerprint": "molgraph.featurizers.fingerprints",
    "RDKitDescriptors": "molgraph.featurizers.fingerprints",
    "morgan_fingerprints": "molgraph.featurizers.fingerprints",
    "rdkit_descriptors": "molgraph.featurizers.fingerprints",
}

__all__ += list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'molgraph.featurizers' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
