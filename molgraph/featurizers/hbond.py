"""Hydrogen-bond donor and acceptor atoms, as RDKit's ``BaseFeatures.fdef`` defines them.

The N-gram graph's atom vector (Liu et al. 2019) flags atoms that RDKit's chemical-feature factory
reports in the ``Donor`` and ``Acceptor`` families. Building the factory and asking it for all
feature families of every molecule is slow (it also matches hydrophobes, ionizable groups, ...),
so the SMARTS of just those two families are read out of the factory once and matched directly;
``tests/test_ngram_featurizer.py`` checks the result equals the factory's on real molecules.

The flags are per molecule, while atom featurizers call one getter per atom; the getters below
compute the whole molecule's flags on the first atom asked and keep them as private atom
properties (``_molgraph_hba`` / ``_molgraph_hbd``, never written out by RDKit) for the others.
"""

from __future__ import annotations

import functools
import os

import numpy as np
from rdkit import Chem, RDConfig

__all__ = ["hbond_flags", "is_hbond_acceptor", "is_hbond_donor"]

_ACCEPTOR_PROP = "_molgraph_hba"
_DONOR_PROP = "_molgraph_hbd"


@functools.lru_cache(maxsize=1)
def _patterns() -> tuple[tuple[Chem.Mol, ...], tuple[Chem.Mol, ...]]:
    """Compiled SMARTS of the ``Acceptor`` and ``Donor`` families of ``BaseFeatures.fdef``."""
    from rdkit.Chem import ChemicalFeatures

    factory = ChemicalFeatures.BuildFeatureFactory(os.path.join(RDConfig.RDDataDir, "BaseFeatures.fdef"))
    acceptors, donors = [], []
    for name, smarts in factory.GetFeatureDefs().items():
        family = name.split(".", 1)[0]
        if family in ("Acceptor", "Donor"):
            pattern = Chem.MolFromSmarts(smarts)
            if pattern is None:  # pragma: no cover - RDKit ships valid definitions
                raise RuntimeError(f"RDKit's BaseFeatures.fdef has an unreadable SMARTS for {name}")
            (acceptors if family == "Acceptor" else donors).append(pattern)
    return tuple(acceptors), tuple(donors)


def _matched_atoms(mol: Chem.Mol, patterns: tuple[Chem.Mol, ...]) -> np.ndarray:
    flags = np.zeros(mol.GetNumAtoms(), dtype=bool)
    for pattern in patterns:
        for match in mol.GetSubstructMatches(pattern, uniquify=False, maxMatches=mol.GetNumAtoms() + 1):
            flags[list(match)] = True
    return flags


def hbond_flags(mol: Chem.Mol) -> tuple[np.ndarray, np.ndarray]:
    """Acceptor and donor flags of every atom, two boolean arrays of shape ``(num_atoms,)``."""
    acceptors, donors = _patterns()
    return _matched_atoms(mol, acceptors), _matched_atoms(mol, donors)


def _flag(atom: Chem.Atom, prop: str) -> bool:
    if not atom.HasProp(prop):
        mol = atom.GetOwningMol()
        acceptor, donor = hbond_flags(mol)
        for i in range(mol.GetNumAtoms()):
            a = mol.GetAtomWithIdx(i)
            a.SetBoolProp(_ACCEPTOR_PROP, bool(acceptor[i]))
            a.SetBoolProp(_DONOR_PROP, bool(donor[i]))
    return atom.GetBoolProp(prop)


def is_hbond_acceptor(atom: Chem.Atom) -> bool:
    """Whether ``atom`` is an H-bond acceptor (RDKit ``BaseFeatures.fdef``)."""
    return _flag(atom, _ACCEPTOR_PROP)


def is_hbond_donor(atom: Chem.Atom) -> bool:
    """Whether ``atom`` is an H-bond donor (RDKit ``BaseFeatures.fdef``)."""
    return _flag(atom, _DONOR_PROP)
