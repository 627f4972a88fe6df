"""QM9 DFT geometries as CGCF training data: molecules with hydrogens, mapped coordinates, stereo from 3D.

Reads ``3d/qm9/qm9_core.npz`` (one B3LYP minimum per molecule) and the Cormorant split
(``3d/qm9/cormorant_split_gdb_index.npz``) from the data root, maps each xyz geometry onto its
SMILES graph (:func:`molgraph.conformers.mol_from_geometry`, which also assigns stereo from
the geometry) and builds the extended graph. Molecules that cannot be mapped are skipped and
counted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rdkit import Chem

from molgraph.conformers import mol_from_geometry
from molgraph.methods.cgcf.graph import ExtendedGraph, extended_graph

__all__ = ["QM9Molecules", "load_qm9_molecules", "qm9_root"]


def qm9_root(data_root: str | os.PathLike[str] | None = None) -> Path:
    """The folder of the QM9 files (``$MOLGRAPH_DATA`` or ``../shared/data`` beside the repository)."""
    if data_root is None:
        data_root = os.environ.get("MOLGRAPH_DATA") or Path(__file__).resolve().parents[4] / "shared" / "data"
    root = Path(data_root) / "3d" / "qm9"
    for name in ("qm9_core.npz", "cormorant_split_gdb_index.npz"):
        if not (root / name).is_file():
            raise FileNotFoundError(f"QM9 file {root / name} not found (set MOLGRAPH_DATA to the data root)")
    return root


@dataclass
class QM9Molecules:
    """Mapped QM9 molecules of one split part.

    Attributes:
        mols: RDKit molecules with hydrogens, the DFT geometry as conformer 0, stereo from 3D.
        graphs: their extended graphs (with the DFT positions).
        qm9_index: (M,) GDB indices.
        skipped: ``{qm9_index: reason}`` for molecules that could not be mapped or featurized.
    """

    mols: list[Chem.Mol]
    graphs: list[ExtendedGraph]
    qm9_index: np.ndarray
    skipped: dict[int, str] = field(default_factory=dict)


def load_qm9_molecules(part: str, n: int | None, *, seed: int = 0, max_hops: int = 3,
                       data_root: str | os.PathLike[str] | None = None,
                       exclude_single_heavy: bool = True) -> QM9Molecules:
    """``n`` molecules of a Cormorant split part (``train``, ``valid`` or ``test``), seeded shuffle.

    Args:
        part: split part name in the split file.
        n: how many (None: all of the part).
        seed: order of the shuffle (the first ``n`` after it are used).
        exclude_single_heavy: drop molecules with fewer than 2 heavy atoms (no heavy-atom RMSD).
    """
    root = qm9_root(data_root)
    with np.load(root / "cormorant_split_gdb_index.npz", allow_pickle=False) as f:
        if part not in f.files:
            raise KeyError(f"split part {part!r} not in {root / 'cormorant_split_gdb_index.npz'} (has {f.files})")
        ids = np.sort(f[part])
    with np.load(root / "qm9_core.npz", allow_pickle=False) as f:
        index, ptr, z, pos, smi = f["index"], f["atom_ptr"], f["Z"], f["pos"], f["smiles"]
    order = np.random.default_rng(seed).permutation(len(ids))
    out = QM9Molecules([], [], np.zeros(0, dtype=np.int64))
    kept = []
    for k in order:
        if n is not None and len(kept) >= n:
            break
        gdb = int(ids[k])
        r = int(np.searchsorted(index, gdb))
        a, b = ptr[r], ptr[r + 1]
        try:
            mol = mol_from_geometry(smi[r].decode(), z[a:b], pos[a:b], name=str(gdb))
            if exclude_single_heavy and mol.GetNumHeavyAtoms() < 2:
                out.skipped[gdb] = "fewer than 2 heavy atoms"
                continue
            graph = extended_graph(mol, max_hops=max_hops)
        except Exception as err:  # MoleculeError or an unsupported bond type: recorded, not dropped silently
            out.skipped[gdb] = str(err)
            continue
        out.mols.append(mol)
        out.graphs.append(graph)
        kept.append(gdb)
    out.qm9_index = np.asarray(kept, dtype=np.int64)
    return out
