"""Reading conformer ensembles from SDF files, grouped into one molecule per key.

Records are grouped by a key: ``"smiles"`` (canonical SMILES without stereo, of the heavy-atom
graph: robust to hydrogens and to stereo perceived differently from 3D), ``"isomeric"``
(canonical isomeric SMILES) or ``"name"`` (the record's title line, or an SD property given as
``"prop:NAME"``). Within a group every conformer is renumbered onto the first record's atom
order; records whose graph differs are rejected with a reason, never dropped silently.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

from rdkit import Chem

from molgraph.chem.errors import MoleculeError
from molgraph.chem.parse import ParseOptions, read_sdf
from molgraph.conformers.coverage import stack_conformers

__all__ = ["record_key", "read_ensembles"]


def record_key(mol: Chem.Mol, key: str) -> str:
    """The grouping key of one record (see the module docstring)."""
    if key == "smiles":
        return Chem.MolToSmiles(Chem.RemoveAllHs(mol), isomericSmiles=False)
    if key == "isomeric":
        return Chem.MolToSmiles(Chem.RemoveHs(mol))
    if key == "name":
        return mol.GetProp("_Name") if mol.HasProp("_Name") else ""
    if key.startswith("prop:"):
        prop = key[5:]
        if not mol.HasProp(prop):
            raise KeyError(f"record has no SD property {prop!r}")
        return mol.GetProp(prop)
    raise ValueError(f"key must be 'smiles', 'isomeric', 'name' or 'prop:NAME', got {key!r}")


def read_ensembles(path: str | Path, key: str = "smiles") -> tuple["OrderedDict[str, Chem.Mol]", list[dict[str, Any]]]:
    """Group the records of an SDF (``.sdf`` / ``.sdf.gz``, hydrogens kept) into ensembles.

    Returns:
        ``(ensembles, rejects)``: key -> molecule holding all its conformers, in file order of
        first appearance; and one ``{"file", "record", "key", "reason"}`` dict per record that
        could not be read or did not fit its group.
    """
    groups: OrderedDict[str, list[tuple[int, Chem.Mol]]] = OrderedDict()
    rejects: list[dict[str, Any]] = []
    for index, mol, _ in read_sdf(path, ParseOptions(keep_hs=True)):
        if isinstance(mol, MoleculeError):
            rejects.append({"file": str(path), "record": index, "key": "", "reason": mol.reason})
            continue
        try:
            k = record_key(mol, key)
        except KeyError as err:
            rejects.append({"file": str(path), "record": index, "key": "", "reason": str(err)})
            continue
        groups.setdefault(k, []).append((index, mol))
    ensembles: OrderedDict[str, Chem.Mol] = OrderedDict()
    for k, members in groups.items():
        stacked, bad = stack_conformers([m for _, m in members])
        for pos, reason in bad:
            rejects.append({"file": str(path), "record": members[pos][0], "key": k, "reason": reason})
        ensembles[k] = stacked
    return ensembles, rejects
