"""The extended graph of CGCF: every atom (hydrogens included), edges between atoms 1..3 bonds apart.

Edge ``(u, v)`` with ``u < v`` is stored once (one distance per atom pair); message passing uses
both directions. Edge type: the RDKit bond type for bonds (single, double, triple, aromatic),
otherwise ``4 + order - 2`` for 2-hop ("angle") and 3-hop ("dihedral") pairs, as in the
reference's ``AddHigherOrderEdges``. The target of the flow is the vector of the distances
(angstrom) on these edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from rdkit import Chem

__all__ = ["BOND_TYPES", "N_EDGE_TYPES", "ExtendedGraph", "GraphBatch", "extended_graph", "collate", "edge_distances"]

BOND_TYPES = (Chem.BondType.SINGLE, Chem.BondType.DOUBLE, Chem.BondType.TRIPLE, Chem.BondType.AROMATIC)
#: bond types + one type per higher hop order (2, 3, and 4 when max_hops = 4)
N_EDGE_TYPES = len(BOND_TYPES) + 3


@dataclass
class ExtendedGraph:
    """One molecule's extended graph (numpy, for storage and collation).

    Attributes:
        z: (n,) atomic numbers.
        edges: (E, 2) atom pairs, ``u < v``.
        order: (E,) hop distance 1..max_hops.
        etype: (E,) edge type in ``0 .. N_EDGE_TYPES - 1``.
        topo: (n, n) topological distance matrix (bonds), for the energy network.
        pos: (n, 3) coordinates in angstrom, or None.
    """

    z: np.ndarray
    edges: np.ndarray
    order: np.ndarray
    etype: np.ndarray
    topo: np.ndarray
    pos: np.ndarray | None = None

    @property
    def n_atoms(self) -> int:
        return len(self.z)

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    def distances(self, pos: np.ndarray | None = None) -> np.ndarray:
        """(E,) distances on the edges (angstrom) of ``pos`` (default: the stored geometry)."""
        p = self.pos if pos is None else pos
        if p is None:
            raise ValueError("the graph has no geometry")
        return np.linalg.norm(p[self.edges[:, 0]] - p[self.edges[:, 1]], axis=-1)


def extended_graph(mol: Chem.Mol, max_hops: int = 3, conf_id: int | None = None) -> ExtendedGraph:
    """The extended graph of ``mol`` (which must carry explicit hydrogens if they are to be modelled).

    Args:
        mol: RDKit molecule; its atom order is kept.
        max_hops: largest hop distance that becomes an edge (the reference uses 3).
        conf_id: conformer whose coordinates to store (default: the first, if any; -2 for none).

    Raises:
        ValueError: a bond type outside single/double/triple/aromatic (named with its atoms), or a
            molecule of fewer than 2 atoms.
    """
    n = mol.GetNumAtoms()
    if n < 2:
        raise ValueError(f"a conformer needs at least 2 atoms, got {n}")
    topo = Chem.GetDistanceMatrix(mol).astype(np.int64) if mol.GetNumBonds() else np.full((n, n), 10**6)
    topo = np.where(topo > 10**5, 10**6, topo)  # disconnected fragments: "far"
    iu, ju = np.triu_indices(n, k=1)
    hop = topo[iu, ju]
    keep = (hop >= 1) & (hop <= max_hops)
    edges = np.stack([iu[keep], ju[keep]], axis=1).astype(np.int64)
    order = hop[keep].astype(np.int64)
    etype = np.empty(len(edges), dtype=np.int64)
    for k, (u, v) in enumerate(edges):
        if order[k] == 1:
            bt = mol.GetBondBetweenAtoms(int(u), int(v)).GetBondType()
            if bt not in BOND_TYPES:
                raise ValueError(f"bond {u}-{v} has type {bt}, which CGCF does not model (single, double, triple, aromatic)")
            etype[k] = BOND_TYPES.index(bt)
        else:
            etype[k] = len(BOND_TYPES) + order[k] - 2
    pos = None
    if mol.GetNumConformers() and conf_id != -2:
        pos = mol.GetConformer(-1 if conf_id is None else conf_id).GetPositions().astype(np.float64)
    z = np.array([a.GetAtomicNum() for a in mol.GetAtoms()], dtype=np.int64)
    return ExtendedGraph(z=z, edges=edges, order=order, etype=etype, topo=np.minimum(topo, 10**6), pos=pos)


@dataclass
class GraphBatch:
    """Several extended graphs as one disjoint graph (torch).

    Attributes:
        z: (N,) atomic numbers; ``node_batch`` (N,) molecule of each atom.
        edges: (E, 2) global atom indices; ``order``, ``etype``, ``edge_batch``: (E,).
        pair_index: (2, P) all ordered atom pairs i != j within a molecule (energy network);
            ``pair_topo``: (P,) their topological distance capped at 5.
        n_graphs: number of molecules; ``n_edges``: (B,) edges per molecule.
    """

    z: torch.Tensor
    node_batch: torch.Tensor
    edges: torch.Tensor
    order: torch.Tensor
    etype: torch.Tensor
    edge_batch: torch.Tensor
    pair_index: torch.Tensor
    pair_topo: torch.Tensor
    n_graphs: int
    n_edges: torch.Tensor
    atom_ptr: torch.Tensor
    edge_ptr: torch.Tensor

    def to(self, device: torch.device | str) -> "GraphBatch":
        """The same batch with every tensor on ``device`` (itself when already there)."""
        device = torch.device(device)
        if self.z.device == device:
            return self
        return GraphBatch(**{name: (value.to(device) if isinstance(value, torch.Tensor) else value)
                             for name, value in self.__dict__.items()})


def collate(graphs: list[ExtendedGraph]) -> GraphBatch:
    """Concatenate graphs (atom indices offset); edges keep each graph's order."""
    if not graphs:
        raise ValueError("collate needs at least one graph")
    n_atoms = np.array([g.n_atoms for g in graphs])
    n_edges = np.array([g.n_edges for g in graphs])
    atom_ptr = np.concatenate([[0], np.cumsum(n_atoms)])
    edge_ptr = np.concatenate([[0], np.cumsum(n_edges)])
    pairs, topo = [], []
    for g, off in zip(graphs, atom_ptr[:-1]):
        i, j = np.nonzero(~np.eye(g.n_atoms, dtype=bool))
        pairs.append(np.stack([i, j]) + off)
        topo.append(np.minimum(g.topo[i, j], 5))
    return GraphBatch(
        z=torch.from_numpy(np.concatenate([g.z for g in graphs])),
        node_batch=torch.from_numpy(np.repeat(np.arange(len(graphs)), n_atoms)),
        edges=torch.from_numpy(np.concatenate([g.edges + off for g, off in zip(graphs, atom_ptr[:-1])])),
        order=torch.from_numpy(np.concatenate([g.order for g in graphs])),
        etype=torch.from_numpy(np.concatenate([g.etype for g in graphs])),
        edge_batch=torch.from_numpy(np.repeat(np.arange(len(graphs)), n_edges)),
        pair_index=torch.from_numpy(np.concatenate(pairs, axis=1)),
        pair_topo=torch.from_numpy(np.concatenate(topo)),
        n_graphs=len(graphs),
        n_edges=torch.from_numpy(n_edges),
        atom_ptr=torch.from_numpy(atom_ptr),
        edge_ptr=torch.from_numpy(edge_ptr),
    )


def edge_distances(pos: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """(E,) distances of ``pos`` (N, 3) on ``edges`` (E, 2); differentiable in ``pos``."""
    diff = pos[edges[:, 0]] - pos[edges[:, 1]]
    # the epsilon keeps the gradient finite for coincident atoms (random starts)
    return torch.sqrt((diff * diff).sum(-1) + 1e-12)
