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

Method-specific presets:

* :meth:`AtomFeaturizer.ngram` — the N-gram graph's atom vector (Liu et al., NeurIPS 2019), 39
  columns in 8 segments, each ending in an unknown slot except the three 0/1 flags:

  ======================  =========================================  =======
  segment                 values                                     columns
  ======================  =========================================  =======
  element                 C, N, O, F, P, S, Cl, Br, I, other         10
  heavy-atom degree       0-5, >= 6                                  7
  total H count           0-5, >= 6                                  7
  implicit valence        0-4, >= 5                                  6
  formal charge           -2..2, other                               6
  aromatic                0/1                                        1
  H-bond acceptor         0/1 (RDKit ``BaseFeatures.fdef``)          1
  H-bond donor            0/1 (RDKit ``BaseFeatures.fdef``)          1
  ======================  =========================================  =======

  The reference code spends two columns ([is 0, is 1]) on each flag (42 columns); one column
  spans the same linear functions of the vector, since every other segment is one-hot and its
  weights absorb the constant. Hybridization and ring membership are not in the reference's
  vector and are left out here too.
"""

from __future__ import annotations

from rdkit import Chem
from rdkit.Chem import rdchem

from molgraph.featurizers.categorical import CategoricalFeaturizer, Feature
from molgraph.featurizers.hbond import is_hbond_acceptor, is_hbond_donor

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
    # hydrogens RDKit adds implicitly (GetImplicitValence is deprecated in RDKit 2026)
    "implicit_valence": lambda atom: atom.GetValence(Chem.ValenceType.IMPLICIT),
    "is_hbond_acceptor": is_hbond_acceptor,
    "is_hbond_donor": is_hbond_donor,
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
    _PRESETS = ("ogb", "pyg", "multihot", "ngram")

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

    @classmethod
    def ngram(cls) -> "AtomFeaturizer":
        """The N-gram graph's atom vector (39 columns; see the module docstring)."""
        return cls(
            [
                # C, N, O, F, P, S, Cl, Br, I (the reference's element list) + other
                Feature("atomic_num", (6, 7, 8, 9, 15, 16, 17, 35, 53)),
                Feature("heavy_degree", tuple(range(0, 6))),
                Feature("num_hs", tuple(range(0, 6))),
                Feature("implicit_valence", tuple(range(0, 5))),
                Feature("formal_charge", (-2, -1, 0, 1, 2)),
                Feature("is_aromatic", _BOOL, unknown_slot=False),
                Feature("is_hbond_acceptor", _BOOL, unknown_slot=False),
                Feature("is_hbond_donor", _BOOL, unknown_slot=False),
            ],
            encoding="onehot",
            preset="ngram",
        )
