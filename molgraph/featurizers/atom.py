"""Atom featurizers with named presets.

Presets:

* :meth:`AtomFeaturizer.ogb` — the 9 categorical features of OGB's ``atom_to_feature_vector``
  (and of ``ogbg-mol*`` datasets), index-encoded; cardinalities ``[119, 5, 12, 12, 10, 6, 6, 2, 2]``
  so OGB-style ``AtomEncoder`` embedding tables fit.
* :meth:`AtomFeaturizer.pyg` — the same 9 properties with the vocabularies of PyG's
  ``torch_geometric.utils.from_smiles`` (identical codes for every in-vocabulary atom).
* :meth:`AtomFeaturizer.multihot` — a chemprop-v2-style multi-hot vector (element, degree,
  formal charge, chirality, H count, hybridization one-hots with an unknown slot each, an
  aromaticity bit and mass / 100), 72 columns.

Method-specific presets (e.g. the N-gram graph's) are added next to these.
"""

from __future__ import annotations

from rdkit import Chem
from rdkit.Chem import rdchem

from molgraph.featurizers.categorical import CategoricalFeaturizer, Feature

__all__ = ["AtomFeaturizer"]

_A = Chem.Atom

_ATOM_GETTERS = {
    "atomic_num": _A.GetAtomicNum,
    "chirality": _A.GetChiralTag,
    "degree": _A.GetTotalDegree,  # heavy neighbours + all hydrogens, as OGB and PyG
    "heavy_degree": _A.GetDegree,  # explicit graph neighbours only
    "formal_charge": _A.GetFormalCharge,
    "num_hs": _A.GetTotalNumHs,
    "num_radical_electrons": _A.GetNumRadicalElectrons,
    "hybridization": _A.GetHybridization,
    "is_aromatic": _A.GetIsAromatic,
    "is_in_ring": _A.IsInRing,
    "isotope": _A.GetIsotope,
}
_ATOM_ENUMS = {"chirality": rdchem.ChiralType, "hybridization": rdchem.HybridizationType}
_ATOM_SCALARS = {"mass": lambda atom: atom.GetMass() * 0.01}  # daltons / 100, chemprop's scale

_BOOL = (False, True)


class AtomFeaturizer(CategoricalFeaturizer):
    """Maps RDKit atoms to feature rows; see the module docstring for the presets.

    Args:
        features: the categorical features, in column order.
        encoding: ``"index"`` (int64 codes, one column per feature) or ``"onehot"`` (float32).
        scalars: continuous features appended after the one-hot blocks (``"mass"``).
        preset: the preset's name, recorded in the config for readability.
    """

    _GETTERS = _ATOM_GETTERS
    _ENUMS = _ATOM_ENUMS
    _SCALARS = _ATOM_SCALARS
    _ITEM = "atom"
    _PRESETS = ("ogb", "pyg", "multihot")

    @classmethod
    def ogb(cls) -> "AtomFeaturizer":
        return cls(
            [
                Feature("atomic_num", tuple(range(1, 119))),
                Feature("chirality", ("CHI_UNSPECIFIED", "CHI_TETRAHEDRAL_CW", "CHI_TETRAHEDRAL_CCW", "CHI_OTHER")),
                Feature("degree", tuple(range(0, 11))),
                Feature("formal_charge", tuple(range(-5, 6))),
                Feature("num_hs", tuple(range(0, 9))),
                Feature("num_radical_electrons", tuple(range(0, 5))),
                Feature("hybridization", ("SP", "SP2", "SP3", "SP3D", "SP3D2")),
                Feature("is_aromatic", _BOOL, unknown_slot=False),
                Feature("is_in_ring", _BOOL, unknown_slot=False),
            ],
            encoding="index",
            preset="ogb",
        )

    @classmethod
    def pyg(cls) -> "AtomFeaturizer":
        return cls(
            [
                Feature("atomic_num", tuple(range(0, 119)), unknown_slot=False),
                Feature(
                    "chirality",
                    (
                        "CHI_UNSPECIFIED", "CHI_TETRAHEDRAL_CW", "CHI_TETRAHEDRAL_CCW", "CHI_OTHER",
                        "CHI_TETRAHEDRAL", "CHI_ALLENE", "CHI_SQUAREPLANAR", "CHI_TRIGONALBIPYRAMIDAL",
                        "CHI_OCTAHEDRAL",
                    ),
                    unknown_slot=False,
                ),
                Feature("degree", tuple(range(0, 11)), unknown_slot=False),
                Feature("formal_charge", tuple(range(-5, 7)), unknown_slot=False),
                Feature("num_hs", tuple(range(0, 9)), unknown_slot=False),
                Feature("num_radical_electrons", tuple(range(0, 5)), unknown_slot=False),
                Feature(
                    "hybridization",
                    ("UNSPECIFIED", "S", "SP", "SP2", "SP3", "SP3D", "SP3D2", "OTHER"),
                    unknown_slot=False,
                ),
                Feature("is_aromatic", _BOOL, unknown_slot=False),
                Feature("is_in_ring", _BOOL, unknown_slot=False),
            ],
            encoding="index",
            preset="pyg",
        )

    @classmethod
    def multihot(cls) -> "AtomFeaturizer":
        return cls(
            [
                Feature("atomic_num", tuple(range(1, 37)) + (53,)),
                Feature("degree", tuple(range(0, 6))),
                Feature("formal_charge", (-1, -2, 1, 2, 0)),
                Feature("chirality", ("CHI_UNSPECIFIED", "CHI_TETRAHEDRAL_CW", "CHI_TETRAHEDRAL_CCW", "CHI_OTHER")),
                Feature("num_hs", tuple(range(0, 5))),
                Feature("hybridization", ("S", "SP", "SP2", "SP2D", "SP3", "SP3D", "SP3D2")),
                Feature("is_aromatic", _BOOL, unknown_slot=False),
            ],
            encoding="onehot",
            scalars=("mass",),
            preset="multihot",
        )
