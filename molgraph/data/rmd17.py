"""Revised MD17 (rMD17) frames as PyG ``Data(z, pos, energy, forces)``, with the official splits.

One :class:`RMD17Dataset` is one split file: 1,000 frames of one molecule. Units: positions in
angstrom; energy in kcal/mol and forces in kcal/mol/angstrom (the files' units), or eV and
eV/angstrom with ``unit="eV"`` (1 kcal/mol = 0.0433641 eV); forces are the negative gradient
of the energy. Files are read with ``allow_pickle=False`` and checked against the card's sha256.
:meth:`RMD17Dataset.to_graphs` gives the frames as radius graphs (fields ``z``, ``pos``,
``forces``, ``energy``, ``frame``) in a :class:`~molgraph.data.collated.CollatedGraphs`.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from rdkit import Chem
from torch.utils.data import Dataset

from molgraph.data.collated import CollatedGraphs
from molgraph.data.geometry import radius_graph
from molgraph.data.registry import dataset_file

__all__ = ["RMD17_MOLECULES", "RMD17_SMILES", "KCAL_PER_MOL_TO_EV", "RMD17Dataset", "load_rmd17"]

# the molecules in this copy -> SMILES (malonaldehyde: the frames fit the dialdehyde, not the enol)
RMD17_SMILES = {
    "aspirin": "CC(=O)Oc1ccccc1C(=O)O",
    "ethanol": "CCO",
    "malonaldehyde": "O=CCC=O",
    "uracil": "O=c1cc[nH]c(=O)[nH]1",
}
RMD17_MOLECULES = tuple(RMD17_SMILES)
KCAL_PER_MOL_TO_EV = 0.0433641153087705  # 4.184 kJ/mol / 96.485332 kJ/mol per eV


class RMD17Dataset(Dataset):
    """Frames of one rMD17 split file; ``ds[i]`` is ``Data(z, pos, energy, forces, frame)``.

    Attributes:
        molecule, split, part: which file (``part`` is ``"train"`` or ``"test"``).
        z: (n_atoms,) int64 atomic numbers (same order in every frame).
        pos: (F, n_atoms, 3) float64 positions, angstrom.
        energy: (F,) float64, kcal/mol or eV (:attr:`unit`).
        forces: (F, n_atoms, 3) float64, kcal/mol/angstrom or eV/angstrom.
        old_indices: (F,) frame index in the original MD17 trajectory.
        smiles: the molecule's SMILES (:data:`RMD17_SMILES`).
    """

    def __init__(self, molecule: str, split: int, part: str, arrays: dict[str, np.ndarray], unit: str):
        self.molecule, self.split, self.part, self.unit = molecule, split, part, unit
        scale = KCAL_PER_MOL_TO_EV if unit == "eV" else 1.0
        self.z = torch.from_numpy(arrays["nuclear_charges"].astype(np.int64))
        self.pos = torch.from_numpy(arrays["coords"].astype(np.float64))
        self.energy = torch.from_numpy(arrays["energies"].astype(np.float64) * scale)
        self.forces = torch.from_numpy(arrays["forces"].astype(np.float64) * scale)
        self.old_indices = arrays["old_indices"].astype(np.int64)
        self.smiles = RMD17_SMILES[molecule]

    def __len__(self) -> int:
        return int(self.pos.shape[0])

    def __getitem__(self, i: int):
        from torch_geometric.data import Data

        return Data(z=self.z, pos=self.pos[i], energy=self.energy[i : i + 1], forces=self.forces[i],
                    frame=int(self.old_indices[i]), num_nodes=int(self.z.shape[0]))

    def frame_ensemble(self, frames: Sequence[int]) -> tuple[Chem.Mol | None, int]:
        """The given frames as conformers of one RDKit molecule (explicit hydrogens), a thermal
        ensemble for coverage benchmarks.

        Args:
            frames: frame indices into this file, in the order the conformers get.

        Returns:
            The molecule (``None`` when no frame maps) and the number of frames whose geometry
            does not map onto the SMILES (e.g. malonaldehyde frames with the proton between the
            oxygens), which are left out.
        """
        from molgraph.chem.errors import MoleculeError
        from molgraph.conformers import mol_from_geometry

        z = self.z.numpy()
        ref, failed = None, 0
        for fr in frames:
            try:
                one = mol_from_geometry(self.smiles, z, self.pos[int(fr)].numpy())
            except MoleculeError:
                failed += 1
                continue
            if ref is None:
                ref = one
            else:
                ref.AddConformer(Chem.Conformer(one.GetConformer()), assignId=True)
        return ref, failed

    def to_graphs(self, cutoff: float = 5.0) -> CollatedGraphs:
        """Frames as radius graphs in a :class:`~molgraph.data.collated.CollatedGraphs` (one graph per frame).

        Args:
            cutoff: join atoms closer than this (angstrom, strict). Aspirin (21 atoms) spans up
                to about 8.7 angstrom: at 5.0 a frame keeps about 302 of its 420 directed pairs;
                ethanol and malonaldehyde are (nearly) fully connected at 5.0, uracil keeps
                about 129 of 132 (split 1 train frames).

        Returns:
            Graphs with fields ``z`` (node, ``(F * n_atoms,)`` int64), ``pos`` (node, float64
            angstrom), ``forces`` (node, ``(F * n_atoms, 3)`` float64 kcal/mol/angstrom, or
            eV/angstrom with ``unit="eV"``), ``energy`` (graph, ``(F,)`` float64 kcal/mol or eV;
            float64 because total energies are about -10^5 kcal/mol and float32 would keep only
            about 0.01 kcal/mol of them) and ``frame`` (graph, ``(F,)`` int64 index in the
            original MD17 trajectory). Edges from :func:`molgraph.data.geometry.radius_graph`;
            ``meta`` records the molecule, split, part, units and cutoff.
        """
        n_frames, n_atoms = int(self.pos.shape[0]), int(self.z.shape[0])
        ptr = np.arange(n_frames + 1, dtype=np.int64) * n_atoms
        pos = self.pos.reshape(n_frames * n_atoms, 3)
        edge_index, edge_ptr = radius_graph(pos, ptr, cutoff)
        energy_unit = "eV" if self.unit == "eV" else "kcal/mol"
        meta = {"dataset": "rmd17", "molecule": self.molecule, "split": self.split, "part": self.part,
                "units": {"energy": energy_unit, "forces": f"{energy_unit}/angstrom", "pos": "angstrom"},
                "cutoff": float(cutoff)}
        return CollatedGraphs(
            None, torch.from_numpy(edge_index), None, torch.from_numpy(ptr), torch.from_numpy(edge_ptr),
            [self.smiles] * n_frames, pos=pos, z=self.z.repeat(n_frames), meta=meta,
            fields={"forces": ("node", self.forces.reshape(n_frames * n_atoms, 3)),
                    "energy": ("graph", self.energy), "frame": ("graph", torch.from_numpy(self.old_indices))},
        )

    def __repr__(self) -> str:
        return f"RMD17Dataset({self.molecule}, split {self.split}, {self.part}, {len(self)} frames, unit={self.unit!r})"


def load_rmd17(
    molecule: str = "aspirin",
    split: int = 1,
    part: str = "train",
    *,
    root: str | os.PathLike[str] | None = None,
    unit: str = "kcal/mol",
) -> RMD17Dataset:
    """Load one official rMD17 split file from the data root (``3d/rmd17/``).

    Args:
        molecule: one of :data:`RMD17_MOLECULES`.
        split: official split index, 1..5.
        part: ``"train"`` or ``"test"`` (1,000 frames each, disjoint).
        root: data root (else ``$MOLGRAPH_DATA``, else the user cache).
        unit: ``"kcal/mol"`` (the files') or ``"eV"``.
    """
    if molecule not in RMD17_SMILES:
        raise ValueError(f"unknown rMD17 molecule {molecule!r}; this copy has {list(RMD17_MOLECULES)}")
    if split not in range(1, 6):
        raise ValueError(f"split must be 1..5, got {split!r}")
    if part not in ("train", "test"):
        raise ValueError(f"part must be 'train' or 'test', got {part!r}")
    if unit not in ("kcal/mol", "eV"):
        raise ValueError(f"unit must be 'kcal/mol' or 'eV', got {unit!r}")
    path = dataset_file("rmd17", f"3d/rmd17/rmd17_{molecule}_{part}_{split:02d}.npz", root=root)
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in ("nuclear_charges", "coords", "energies", "forces", "old_indices")}
    return RMD17Dataset(molecule, split, part, arrays, unit)
