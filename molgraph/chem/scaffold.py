"""Bemis-Murcko scaffolds (the grouping used by MoleculeNet's scaffold split)."""

from __future__ import annotations

from rdkit import Chem
from rdkit.Chem.Scaffolds import MurckoScaffold

from molgraph.chem.parse import mol_from_smiles

__all__ = ["murcko_scaffold"]


def murcko_scaffold(
    mol: Chem.Mol | str,
    *,
    generic: bool = False,
    include_chirality: bool = False,
) -> str:
    """Canonical SMILES of a molecule's Bemis-Murcko scaffold.

    Args:
        mol: a molecule or a SMILES string.
        generic: replace every scaffold atom by carbon and every bond by a single bond
            (the "generic" or "framework" scaffold), so that e.g. pyridine and benzene match.
        include_chirality: keep stereo in the scaffold SMILES (MoleculeNet does not).

    Returns:
        The scaffold SMILES; ``""`` for acyclic molecules (they share one empty scaffold).
    """
    if isinstance(mol, str):
        mol = mol_from_smiles(mol)
    core = MurckoScaffold.GetScaffoldForMol(mol)
    if generic:
        if core.GetNumAtoms() == 0:
            return ""
        core = MurckoScaffold.MakeScaffoldGeneric(core)
        # MakeScaffoldGeneric keeps ring-exocyclic atoms as carbons; re-take the scaffold of
        # the generic graph so that only rings and linkers remain.
        core = MurckoScaffold.GetScaffoldForMol(core)
    return Chem.MolToSmiles(core, isomericSmiles=include_chirality)
