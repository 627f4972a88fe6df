"""Featurizers: atoms, bonds, whole-molecule graphs, fingerprints and descriptors."""

from molgraph.featurizers.atom import AtomFeaturizer
from molgraph.featurizers.bond import BondFeaturizer
from molgraph.featurizers.categorical import Feature
from molgraph.featurizers.graph import GraphArrays, MolGraphFeaturizer

__all__ = ["AtomFeaturizer", "BondFeaturizer", "Feature", "GraphArrays", "MolGraphFeaturizer"]

from molgraph.featurizers.batch import FeaturizeResult, Reject, featurize_smiles, iter_featurize  # noqa: E402

__all__ += ["FeaturizeResult", "Reject", "featurize_smiles", "iter_featurize"]

from molgraph.featurizers.fingerprints import (  # noqa: E402
    MorganFingerprint,
    RDKitDescriptors,
    morgan_fingerprints,
    rdkit_descriptors,
)

__all__ += ["MorganFingerprint", "RDKitDescriptors", "morgan_fingerprints", "rdkit_descriptors"]
