"""Checking that a generated conformer has the stereochemistry its input asked for.

Only stereo elements *specified* in the input are checked: a tetrahedral centre with a chiral
tag, a double bond with E/Z (or cis/trans) stereo. ETKDG places unspecified elements at random,
so they are not errors. The check reads each conformer's geometry with RDKit
(``AssignAtomChiralTagsFromStructure``) for centres and a numpy dihedral for double bonds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rdkit import Chem

__all__ = ["StereoSpec", "stereo_spec", "conformer_stereo_ok"]

_TETRAHEDRAL = (Chem.ChiralType.CHI_TETRAHEDRAL_CW, Chem.ChiralType.CHI_TETRAHEDRAL_CCW)
# RDKit's stereo atoms of a STEREOZ/STEREOE bond are its CIP-highest neighbours, so Z means those
# two are cis; STEREOCIS/STEREOTRANS are defined directly on the stereo atoms.
_CIS = (Chem.BondStereo.STEREOZ, Chem.BondStereo.STEREOCIS)
_TRANS = (Chem.BondStereo.STEREOE, Chem.BondStereo.STEREOTRANS)


@dataclass(frozen=True)
class StereoSpec:
    """The specified stereo elements of a molecule (indices into the molecule with hydrogens).

    Attributes:
        centers: ``(atom index, chiral tag)`` for each specified tetrahedral centre.
        double_bonds: ``(a, b, c, d, cis)``: stereo atoms ``a``/``d`` on bond ``b=c``; ``cis`` True
            when ``a`` and ``d`` must be on the same side.
    """

    centers: tuple[tuple[int, Chem.ChiralType], ...]
    double_bonds: tuple[tuple[int, int, int, int, bool], ...]

    def __bool__(self) -> bool:
        return bool(self.centers or self.double_bonds)


def stereo_spec(mol: Chem.Mol) -> StereoSpec:
    """Collect the stereo elements specified in ``mol`` (as parsed, before embedding)."""
    centers = tuple(
        (a.GetIdx(), a.GetChiralTag()) for a in mol.GetAtoms() if a.GetChiralTag() in _TETRAHEDRAL
    )
    bonds = []
    for bond in mol.GetBonds():
        stereo = bond.GetStereo()
        if stereo in _CIS or stereo in _TRANS:
            a, d = bond.GetStereoAtoms()
            b, c = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
            # stereo atom a belongs to the begin atom, d to the end atom
            if not mol.GetBondBetweenAtoms(a, b):
                b, c = c, b
            bonds.append((a, b, c, d, stereo in _CIS))
    return StereoSpec(centers, tuple(bonds))


def _dihedral_cos(pos: np.ndarray, a: int, b: int, c: int, d: int) -> float:
    """Cosine of the a-b-c-d dihedral; positive means a and d are cis."""
    b1, b2, b3 = pos[b] - pos[a], pos[c] - pos[b], pos[d] - pos[c]
    n1, n2 = np.cross(b1, b2), np.cross(b2, b3)
    denom = np.linalg.norm(n1) * np.linalg.norm(n2)
    return float(np.dot(n1, n2) / denom) if denom > 0 else 0.0


def conformer_stereo_ok(mol: Chem.Mol, spec: StereoSpec, conf_ids: list[int] | None = None) -> list[bool]:
    """For each conformer of ``mol`` (with hydrogens), whether it matches ``spec``.

    ``mol`` must have the same atom order as the molecule ``spec`` was taken from. Returns one
    bool per conformer id in ``conf_ids`` (default: all, in order).
    """
    ids = [c.GetId() for c in mol.GetConformers()] if conf_ids is None else list(conf_ids)
    if not spec:
        return [True] * len(ids)
    work = Chem.Mol(mol)  # one copy; chiral tags are rewritten per conformer below
    ok = []
    for cid in ids:
        good = True
        if spec.centers:
            Chem.AssignAtomChiralTagsFromStructure(work, confId=cid, replaceExistingTags=True)
            good = all(work.GetAtomWithIdx(i).GetChiralTag() == tag for i, tag in spec.centers)
        if good and spec.double_bonds:
            pos = mol.GetConformer(cid).GetPositions()
            good = all((_dihedral_cos(pos, a, b, c, d) > 0) == cis for a, b, c, d, cis in spec.double_bonds)
        ok.append(good)
    return ok
