"""Reference molecules from raw geometries: a SMILES graph plus (Z, xyz) in some other atom order.

QM9 gives a SMILES and an xyz geometry whose atom orders differ. :func:`mol_from_geometry` maps
the coordinates onto the SMILES graph (with explicit hydrogens) and takes the stereo from the
geometry (QM9's SMILES carry none):

1. connectivity of the geometry from covalent radii (``rdDetermineBonds.DetermineConnectivity``);
2. the SMILES heavy-atom graph is matched as a *subgraph* of the geometry's heavy-atom graph
   (connect-the-dots over-bonds short non-bonded contacts, e.g. 1,3 C..C in
   bicyclo[1.1.1]pentanes, so an exact isomorphism test would fail); among the matches the one
   with the smallest total bond length wins;
3. each hydrogen goes to its nearest heavy atom; the counts must agree with the SMILES;
4. ``AssignStereochemistryFrom3D`` sets the chiral tags and double-bond stereo.
"""

from __future__ import annotations

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdDetermineBonds

from molgraph.chem.errors import MoleculeError
from molgraph.chem.parse import mol_from_smiles

__all__ = ["mol_from_geometry", "mol_from_xyz_arrays"]


def mol_from_xyz_arrays(z: np.ndarray, pos: np.ndarray) -> Chem.Mol:
    """An RDKit molecule of atoms only (no bonds) with one conformer; ``pos`` in angstrom."""
    rw = Chem.RWMol()
    for atomic_number in np.asarray(z, dtype=int):
        rw.AddAtom(Chem.Atom(int(atomic_number)))
    conf = Chem.Conformer(len(z))
    for i, xyz in enumerate(np.asarray(pos, dtype=float)):
        conf.SetAtomPosition(i, (float(xyz[0]), float(xyz[1]), float(xyz[2])))
    mol = rw.GetMol()
    mol.AddConformer(conf, assignId=True)
    return mol


def _plain_graph(mol: Chem.Mol, atoms: list[int]) -> Chem.Mol:
    """Elements and connectivity of ``atoms`` only: every bond single, no charges or H counts."""
    index = {a: i for i, a in enumerate(atoms)}
    rw = Chem.RWMol()
    for a in atoms:
        atom = Chem.Atom(mol.GetAtomWithIdx(a).GetAtomicNum())
        atom.SetNoImplicit(True)
        rw.AddAtom(atom)
    for bond in mol.GetBonds():
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        if i in index and j in index:
            rw.AddBond(index[i], index[j], Chem.BondType.SINGLE)
    out = rw.GetMol()
    out.UpdatePropertyCache(strict=False)
    return out


def _with_hydrogens(n_atoms, heavy_s, h_lists, heavy_map, h_geo, pos) -> np.ndarray | None:
    """Full atom mapping (SMILES atom -> geometry atom), hydrogens by nearest heavy atom; None if counts differ."""
    mapping = np.full(n_atoms, -1)
    mapping[heavy_s] = heavy_map
    if len(h_geo):
        d = np.linalg.norm(pos[h_geo][:, None, :] - pos[heavy_map][None, :, :], axis=-1)
        owner = np.argmin(d, axis=1)  # position in heavy_s
        for k, hs_s in enumerate(h_lists):
            hs_g = h_geo[owner == k]
            if len(hs_s) != len(hs_g):
                return None
            mapping[hs_s] = hs_g
    return mapping if (mapping >= 0).all() else None


def mol_from_geometry(
    smiles: str,
    z: np.ndarray,
    pos: np.ndarray,
    *,
    max_matches: int = 20_000,
    name: str | None = None,
) -> Chem.Mol:
    """The SMILES molecule with explicit hydrogens and the geometry as its conformer.

    Args:
        smiles: the molecule's SMILES (stereo, if any, is replaced by the geometry's).
        z: (n,) atomic numbers, in the geometry's order.
        pos: (n, 3) coordinates in angstrom, same order.
        max_matches: cap on subgraph matches examined.
        name: stored as ``_Name``.

    Raises:
        MoleculeError: the SMILES does not parse, the formulas differ, or no consistent mapping
            exists (the reason says which).
    """
    mol = Chem.AddHs(mol_from_smiles(smiles))
    z = np.asarray(z, dtype=int)
    pos = np.asarray(pos, dtype=float)
    if mol.GetNumAtoms() != len(z) or sorted(a.GetAtomicNum() for a in mol.GetAtoms()) != sorted(z.tolist()):
        raise MoleculeError("the SMILES formula (with H) differs from the geometry's atoms", smiles)
    geo = mol_from_xyz_arrays(z, pos)
    try:
        rdDetermineBonds.DetermineConnectivity(geo)
    except Exception as exc:  # RDKit raises ValueError/RuntimeError variants
        raise MoleculeError(f"could not determine connectivity from the geometry: {exc}", smiles) from exc

    heavy_s = [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() > 1]
    heavy_g = [i for i, n in enumerate(z) if n > 1]
    query, target = _plain_graph(mol, heavy_s), _plain_graph(geo, heavy_g)
    found = target.GetSubstructMatches(query, uniquify=False, maxMatches=max_matches)
    if not found:
        raise MoleculeError("the SMILES heavy-atom graph is not a subgraph of the geometry's bonds", smiles)
    g_idx = np.asarray(heavy_g)
    bonds = np.asarray([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in query.GetBonds()], dtype=int).reshape(-1, 2)
    matches = g_idx[np.asarray(found)]  # (M, n_heavy): query atom -> geometry atom
    lengths = np.linalg.norm(pos[matches[:, bonds[:, 0]]] - pos[matches[:, bonds[:, 1]]], axis=-1).sum(axis=1)
    h_geo = np.flatnonzero(z == 1)
    h_lists = [[n.GetIdx() for n in mol.GetAtomWithIdx(a).GetNeighbors() if n.GetAtomicNum() == 1] for a in heavy_s]
    mapping = None
    # shortest total bond length first; the hydrogen counts must also fit (they reject a match
    # that swapped a real bond for a short non-bonded contact)
    for m in np.argsort(lengths, kind="stable"):
        mapping = _with_hydrogens(mol.GetNumAtoms(), heavy_s, h_lists, matches[m], h_geo, pos)
        if mapping is not None:
            break
    if mapping is None:
        raise MoleculeError(
            f"no mapping of the SMILES onto the geometry fits both the bonds and the hydrogen counts "
            f"({len(matches)} heavy-atom matches tried)", smiles
        )

    conf = Chem.Conformer(mol.GetNumAtoms())
    for i, xyz in enumerate(pos[mapping]):
        conf.SetAtomPosition(i, (float(xyz[0]), float(xyz[1]), float(xyz[2])))
    conf.Set3D(True)
    mol.AddConformer(conf, assignId=True)
    Chem.AssignStereochemistryFrom3D(mol)
    if name:
        mol.SetProp("_Name", name)
    return mol
