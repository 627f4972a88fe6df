"""RDKit layer: reading molecules with explicit errors, standardization, scaffolds.

``murcko_scaffold`` is imported on first use: its module pulls in ``rdkit.Chem.AllChem``, which
reading and featurizing molecules do not need.
"""

from __future__ import annotations

from typing import Any

from molgraph.chem.errors import MoleculeError
from molgraph.chem.parse import (
    ParseOptions,
    canonical_smiles,
    mol_from_molblock,
    mol_from_smiles,
    prepare_mol,
    read_sdf,
)

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


def __getattr__(name: str) -> Any:
    if name == "murcko_scaffold":
        from molgraph.chem.scaffold import murcko_scaffold

        globals()[name] = murcko_scaffold
        return murcko_scaffold
    raise AttributeError(f"module 'molgraph.chem' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"murcko_scaffold"})
