"""QM9 with B3LYP geometries as PyG ``Data(z, pos, y, smiles)``, cached for loading in seconds.

:meth:`QM9Dataset.to_graphs` gives the molecules as radius graphs (fields ``z``, ``pos``, ``y``,
``qm9_id``) in a :class:`~molgraph.data.collated.CollatedGraphs`, for
:class:`~molgraph.data.loader.GraphBatcher` batches.

Targets (``y`` columns, in this order; raw QM9 units unless converted):

============  ==========================================  ====================================
target        meaning                                     unit (``energy_unit="hartree"``/``"eV"``/``"meV"``)
============  ==========================================  ====================================
``mu``        dipole moment                               Debye
``alpha``     isotropic polarizability                    bohr^3
``homo``      HOMO energy                                 Hartree / eV
``lumo``      LUMO energy                                 Hartree / eV
``gap``       HOMO-LUMO gap                               Hartree / eV
``r2``        electronic spatial extent                   bohr^2
``zpve``      zero-point vibrational energy               Hartree / eV
``U0``        internal energy at 0 K                      Hartree / eV (atomization with atomref)
``U``         internal energy at 298.15 K                 Hartree / eV (atomization with atomref)
``H``         enthalpy at 298.15 K                        Hartree / eV (atomization with atomref)
``G``         free energy at 298.15 K                     Hartree / eV (atomization with atomref)
``Cv``        heat capacity at 298.15 K                   cal/(mol K) (minus 2.981 per atom with atomref)
============  ==========================================  ====================================

``atomref=True`` subtracts the sum of the isolated-atom reference values (``atomref.txt``,
B3LYP/6-31G(2df,p)) from ``zpve`` (0 per atom), ``U0``, ``U``, ``H``, ``G`` and ``Cv``, as
Cormorant's ``--subtract-thermo`` does; U0 then is the (negative) atomization energy.
Positions are angstrom. Hartree -> eV uses 27.211386246 (CODATA 2018, as PyG).

The processed arrays are written once to the cache folder as ``qm9-<key>.npz`` (key: sha256 of
the source files, the options and the molgraph version; atomic write; a line on stderr says where
and how large) and read back with ``allow_pickle=False``; ``cache=False`` neither reads nor writes it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

import molgraph
from molgraph.data.collated import CollatedGraphs, ranges
from molgraph.data.geometry import radius_graph
from molgraph.data.registry import dataset_file, dataset_path
from molgraph.data.sources import (
    announce_cache_write,
    atomic_output,
    cache_dir as default_cache_dir,
    sha256_file_cached,
)
from molgraph.data.splits import Split, check_sizes, part_sizes

__all__ = ["TARGETS", "TARGET_UNITS", "HARTREE_TO_EV", "QM9Dataset", "load_qm9", "read_atomref"]

TARGETS = ("mu", "alpha", "homo", "lumo", "gap", "r2", "zpve", "U0", "U", "H", "G", "Cv")
HARTREE_TO_EV = 27.211386246
_ENERGIES = frozenset({"homo", "lumo", "gap", "zpve", "U0", "U", "H", "G"})
_ATOMREF_COLUMNS = ("zpve", "U0", "U", "H", "G", "Cv")  # atomref.txt column order
_ELEMENTS = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}
TARGET_UNITS = {
    "hartree": {"mu": "D", "alpha": "bohr^3", "r2": "bohr^2", "Cv": "cal/(mol K)",
                **{t: "Hartree" for t in _ENERGIES}},
    "eV": {"mu": "D", "alpha": "bohr^3", "r2": "bohr^2", "Cv": "cal/(mol K)", **{t: "eV" for t in _ENERGIES}},
    # the unit of Cormorant's and later papers' QM9 tables
    "meV": {"mu": "D", "alpha": "bohr^3", "r2": "bohr^2", "Cv": "cal/(mol K)", **{t: "meV" for t in _ENERGIES}},
}
_EV_SCALE = {"hartree": 1.0, "eV": HARTREE_TO_EV, "meV": HARTREE_TO_EV * 1000.0}
_CACHE_FORMAT = "molgraph.qm9_cache/1"


def read_atomref(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """``atomref.txt`` as {column: (10,) array indexed by atomic number}; Hartree, Cv in cal/(mol K)."""
    table = {c: np.zeros(10) for c in _ATOMREF_COLUMNS}
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) == 7 and parts[0] in _ELEMENTS:
            for col, value in zip(_ATOMREF_COLUMNS, parts[1:]):
                table[col][_ELEMENTS[parts[0]]] = float(value)
    if not all(table["U0"][z] for z in _ELEMENTS.values()):
        raise ValueError(f"{path}: atomref table incomplete (need H, C, N, O, F rows)")
    return table


class QM9Dataset(Dataset):
    """QM9 molecules; ``ds[i]`` is ``Data(z, pos, y, smiles, idx)``.

    Attributes:
        z: (A,) int64 atomic numbers of all atoms, molecule i at ``ptr[i]:ptr[i+1]``.
        pos: (A, 3) float32 positions, angstrom.
        ptr: (N+1,) int64 atom offsets.
        y: (N, T) float64 targets (columns :attr:`targets`; units :attr:`units`).
        qm9_index: (N,) int64 QM9 ids (1-based ``dsgdb9nsd`` numbers).
        smiles_bytes: (N,) GDB-17 SMILES (no stereo) as bytes.
        from_cache: whether the arrays were read from the processed cache.
    """

    def __init__(self, arrays: dict[str, np.ndarray], targets: Sequence[str], energy_unit: str,
                 atomref: bool, split_path: Path | None, from_cache: bool):
        self.z = torch.from_numpy(arrays["z"].astype(np.int64))
        self.pos = torch.from_numpy(arrays["pos"])
        self.ptr = torch.from_numpy(arrays["ptr"])
        self.y = torch.from_numpy(arrays["y"])
        self.qm9_index = arrays["index"].astype(np.int64)
        self.smiles_bytes = arrays["smiles"]
        self.targets = tuple(targets)
        self.energy_unit = energy_unit
        self.atomref = atomref
        self.units = {t: TARGET_UNITS[energy_unit][t] for t in self.targets}
        self._split_path = split_path
        self.from_cache = from_cache

    def __len__(self) -> int:
        return len(self.qm9_index)

    def __getitem__(self, i: int):
        from torch_geometric.data import Data

        if i < 0:
            i += len(self)
        a, b = int(self.ptr[i]), int(self.ptr[i + 1])
        return Data(z=self.z[a:b], pos=self.pos[a:b], y=self.y[i : i + 1], smiles=self.smiles(i),
                    idx=int(self.qm9_index[i]), num_nodes=b - a)

    def smiles(self, i: int) -> str:
        return self.smiles_bytes[i].decode()

    def position_of(self, qm9_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Row positions of QM9 ids (raises KeyError for ids not in the set)."""
        ids = np.asarray(qm9_ids, dtype=np.int64)
        pos = np.searchsorted(self.qm9_index, ids)
        bad = (pos >= len(self.qm9_index)) | (self.qm9_index[np.minimum(pos, len(self) - 1)] != ids)
        if bad.any():
            raise KeyError(f"QM9 ids not in this dataset: {ids[bad][:10].tolist()}")
        return pos

    def cormorant_split(self) -> Split:
        """Cormorant's 100,000 / 17,748 / 13,083 split (row positions; see the card's split_note)."""
        if self._split_path is None:
            raise FileNotFoundError("the Cormorant split file was not found in the data root")
        with np.load(self._split_path, allow_pickle=False) as f:
            parts = [np.sort(self.position_of(f[k])) for k in ("train", "valid", "test")]
        n = len(self)
        return Split(train=parts[0], val=parts[1], test=parts[2], method="cormorant", seed=None,
                     sizes=tuple(len(p) / n for p in parts),
                     info={"n_rows": n, "source": "risilab/cormorant gen_splits_gdb9 (np.random.seed(0))"})

    def random_split(self, sizes: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> Split:
        """A random split of the rows; ``sizes`` are fractions or counts (as in molgraph.data.splits)."""
        n = len(self)
        if all(float(s).is_integer() and s > 1 for s in sizes[:2]):
            counts = [int(sizes[0]), int(sizes[1])]
            counts.append(n - sum(counts))
        else:
            counts = list(part_sizes(n, check_sizes(sizes)))
        order = np.random.default_rng(seed).permutation(n)
        a, b = counts[0], counts[0] + counts[1]
        return Split(train=np.sort(order[:a]), val=np.sort(order[a:b]), test=np.sort(order[b : b + counts[2]]),
                     method="random", seed=seed, sizes=tuple(c / n for c in counts), info={"n_rows": n})

    def to_graphs(self, cutoff: float = 5.0, indices: Sequence[int] | np.ndarray | None = None) -> CollatedGraphs:
        """Molecules as radius graphs in a :class:`~molgraph.data.collated.CollatedGraphs`.

        Args:
            cutoff: join atoms closer than this (angstrom, strict); 5.0 joins nearly every pair
                of QM9's small molecules (about 281 directed edges per molecule on average, 36.8
                million for the whole set, about 590 MB of int64 ``edge_index``).
            indices: rows to convert, in that order (default: all).

        Returns:
            Graphs with fields ``z`` (node, ``(A,)`` int64 atomic numbers), ``pos`` (node,
            ``(A, 3)`` float32 angstrom), ``y`` (graph, ``(N, T)`` float64, columns
            :attr:`targets` in :attr:`units`) and ``qm9_id`` (graph, ``(N,)`` int64 QM9 id);
            edges from :func:`molgraph.data.geometry.radius_graph` (both directions, no self
            loops, reverse of edge ``e`` at ``e ^ 1``); ``rows`` are the dataset rows;
            ``meta`` records targets, units, ``energy_unit``, ``atomref`` and ``cutoff``.
        """
        rows = np.arange(len(self), dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            bad = int(rows[(rows < 0) | (rows >= len(self))][0])
            raise IndexError(f"QM9 row {bad} out of range for {len(self)} molecules")
        ptr = self.ptr.numpy()
        counts = ptr[rows + 1] - ptr[rows]
        atoms = torch.from_numpy(ranges(ptr[rows], counts))
        new_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        pos = self.pos.index_select(0, atoms)
        edge_index, edge_ptr = radius_graph(pos, new_ptr, cutoff)
        t_rows = torch.from_numpy(rows)
        meta = {"dataset": "qm9", "targets": list(self.targets), "units": dict(self.units),
                "energy_unit": self.energy_unit, "atomref": self.atomref, "cutoff": float(cutoff),
                "pos_unit": "angstrom"}
        return CollatedGraphs(
            None, torch.from_numpy(edge_index), None, torch.from_numpy(new_ptr), torch.from_numpy(edge_ptr),
            [self.smiles(int(i)) for i in rows], pos=pos, z=self.z.index_select(0, atoms), meta=meta, rows=t_rows,
            fields={"y": ("graph", self.y.index_select(0, t_rows)),
                    "qm9_id": ("graph", torch.from_numpy(self.qm9_index[rows]))},
        )

    def __repr__(self) -> str:
        return (f"QM9Dataset({len(self)} molecules, targets={list(self.targets)}, energy_unit={self.energy_unit!r}, "
                f"atomref={self.atomref})")


def _process(core: Path, atomref_path: Path | None, targets: Sequence[str], energy_unit: str, atomref: bool):
    with np.load(core, allow_pickle=False) as f:
        z = f["Z"].astype(np.int8)
        ptr = f["atom_ptr"].astype(np.int64)
        cols = [f[t].astype(np.float64) for t in targets]
        arrays = {"z": z, "pos": f["pos"].astype(np.float32), "ptr": ptr, "index": f["index"].astype(np.int64),
                  "smiles": f["smiles"]}
    y = np.stack(cols, axis=1)
    if atomref:
        table = read_atomref(atomref_path)
        mol_of_atom = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
        for j, t in enumerate(targets):
            if t in table:
                y[:, j] -= np.bincount(mol_of_atom, weights=table[t][z], minlength=len(ptr) - 1)
    if energy_unit != "hartree":
        for j, t in enumerate(targets):
            if t in _ENERGIES:
                y[:, j] *= _EV_SCALE[energy_unit]
    arrays["y"] = y
    return arrays


def load_qm9(
    root: str | os.PathLike[str] | None = None,
    *,
    targets: Sequence[str] = TARGETS,
    energy_unit: str = "hartree",
    atomref: bool = False,
    cache: bool = True,
    cache_dir: str | os.PathLike[str] | bool | None = None,
    force_reload: bool = False,
) -> QM9Dataset:
    """Load QM9 from the data root (``3d/qm9/``), through the processed cache.

    Args:
        root: data root (else ``$MOLGRAPH_DATA``, else the user cache).
        targets: target columns (default the 12 standard ones, in :data:`TARGETS` order).
        energy_unit: ``"hartree"`` (QM9's own), ``"eV"`` or ``"meV"`` for homo/lumo/gap/zpve/U0/U/H/G.
        atomref: subtract atomic reference values (atomization energies).
        cache: read and write the processed cache (``False``: process the files, write nothing).
        cache_dir: processed-cache folder (default ``MOLGRAPH_CACHE`` / user cache); False: no cache.
        force_reload: rebuild the cache.
    """
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ValueError(f"unknown QM9 target(s) {unknown}; choose from {list(TARGETS)}")
    if energy_unit not in TARGET_UNITS:
        raise ValueError(f"energy_unit must be one of {list(TARGET_UNITS)}, got {energy_unit!r}")
    core = dataset_path("qm9", root=root)
    atomref_path = dataset_file("qm9", "3d/qm9/atomref.txt", root=root) if atomref else None
    try:
        split_path = dataset_file("qm9", "3d/qm9/cormorant_split_gdb_index.npz", root=root)
    except FileNotFoundError:
        split_path = None
    key = {
        "format": _CACHE_FORMAT, "core_sha256": sha256_file_cached(core),
        "atomref_sha256": sha256_file_cached(atomref_path) if atomref_path else None,
        "targets": list(targets), "energy_unit": energy_unit, "atomref": atomref,
        "molgraph_version": molgraph.__version__,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    cache_path = None
    if cache and cache_dir is not False:
        base = Path(cache_dir) if cache_dir not in (None, True) else default_cache_dir()
        cache_path = base / f"qm9-{digest}.npz"
    if cache_path is not None and cache_path.is_file() and not force_reload:
        try:
            with np.load(cache_path, allow_pickle=False) as f:
                if json.loads(str(f["key"])) == key:
                    arrays = {k: f[k] for k in ("z", "pos", "ptr", "index", "smiles", "y")}
                    return QM9Dataset(arrays, targets, energy_unit, atomref, split_path, from_cache=True)
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is rebuilt below
    arrays = _process(core, atomref_path, targets, energy_unit, atomref)
    if cache_path is not None:
        what = f"QM9 arrays ({len(arrays['index'])} molecules, {len(targets)} targets, {energy_unit})"
        try:
            with atomic_output(cache_path, "wb") as fh:
                np.savez(fh, key=np.array(json.dumps(key, sort_keys=True)), **arrays)
        except OSError as exc:  # a read-only cache folder must not stop the user's work
            announce_cache_write(cache_path, what, error=exc)
        else:
            announce_cache_write(cache_path, what)
    return QM9Dataset(arrays, targets, energy_unit, atomref, split_path, from_cache=False)
