"""RDKit layer: reading molecules with explicit errors, standardization, scaffolds."""

from molgraph.chem.errors import MoleculeError
from molgraph.chem.parse import (
    ParseOptions,
    canonical_smiles,
    mol_from_molblock,
    mol_from_smiles,
    prepare_mol,
    read_sdf,
)
from molgraph.chem.scaffold import murcko_scaffold

__all__ = [
    "MoleculeError",
    "ParseOptions",
    "canonical_smiles",
    "mol_from_molblock",
    "mol_from_smiles",
    "murcko_scaffold",
    "prepare_mol",
    "read_sdf",
]
