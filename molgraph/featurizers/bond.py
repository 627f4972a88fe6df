"""Bond featurizers with named presets (see :mod:`molgraph.featurizers.atom` for the scheme).

* :meth:`BondFeaturizer.ogb` — OGB's 3 bond features (type, stereo, conjugation), index-encoded,
  cardinalities ``[5, 6, 2]``.
* :meth:`BondFeaturizer.pyg` — the same properties with PyG ``from_smiles`` vocabularies.
* :meth:`BondFeaturizer.multihot` — chemprop-v2-style: bond type one-hot (+ unknown),
  conjugated bit, in-ring bit, stereo one-hot (+ unknown); 14 columns.
"""

from __future__ import annotations

from rdkit import Chem
from rdkit.Chem import rdchem

from molgraph.featurizers.categorical import CategoricalFeaturizer, Feature

__all__ = ["BondFeaturizer"]

_B = Chem.Bond

_BOND_GETTERS = {
    "bond_type": _B.GetBondType,
    "stereo": _B.GetStereo,
    "is_conjugated": _B.GetIsConjugated,
    "is_in_ring": _B.IsInRing,
    "is_aromatic": _B.GetIsAromatic,
}
_BOND_ENUMS = {"bond_type": rdchem.BondType, "stereo": rdchem.BondStereo}
_BOOL = (False, True)
_STEREO6 = ("STEREONONE", "STEREOZ", "STEREOE", "STEREOCIS", "STEREOTRANS", "STEREOANY")


class BondFeaturizer(CategoricalFeaturizer):
    """Maps RDKit bonds to feature rows; both directions of a bond get the same row."""

    _GETTERS = _BOND_GETTERS
    _ENUMS = _BOND_ENUMS
    _ITEM = "bond"
    _PRESETS = ("ogb", "pyg", "multihot")

    @classmethod
    def ogb(cls) -> "BondFeaturizer":
        return cls(
            [
                Feature("bond_type", ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC")),
                Feature("stereo", _STEREO6, unknown_slot=False),
                Feature("is_conjugated", _BOOL, unknown_slot=False),
            ],
            encoding="index",
            preset="ogb",
        )

    @classmethod
    def pyg(cls) -> "BondFeaturizer":
        return cls(
            [
                Feature(
                    "bond_type",
                    (
                        "UNSPECIFIED", "SINGLE", "DOUBLE", "TRIPLE", "QUADRUPLE", "QUINTUPLE", "HEXTUPLE",
                        "ONEANDAHALF", "TWOANDAHALF", "THREEANDAHALF", "FOURANDAHALF", "FIVEANDAHALF",
                        "AROMATIC", "IONIC", "HYDROGEN", "THREECENTER", "DATIVEONE", "DATIVE", "DATIVEL",
                        "DATIVER", "OTHER", "ZERO",
                    ),
                    unknown_slot=False,
                ),
                Feature(
                    "stereo",
                    ("STEREONONE", "STEREOANY", "STEREOZ", "STEREOE", "STEREOCIS", "STEREOTRANS"),
                    unknown_slot=False,
                ),
                Feature("is_conjugated", _BOOL, unknown_slot=False),
            ],
            encoding="index",
            preset="pyg",
        )

    @classmethod
    def multihot(cls) -> "BondFeaturizer":
        return cls(
            [
                Feature("bond_type", ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC")),
                Feature("is_conjugated", _BOOL, unknown_slot=False),
                Feature("is_in_ring", _BOOL, unknown_slot=False),
                Feature("stereo", ("STEREONONE", "STEREOANY", "STEREOZ", "STEREOE", "STEREOCIS", "STEREOTRANS")),
            ],
            encoding="onehot",
            preset="multihot",
        )
