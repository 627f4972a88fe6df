"""Many graphs in a few tensors: the storage behind datasets, caches and ``molgraph featurize`` files.

All graphs' node rows are concatenated into one ``x``, their edges into one ``edge_index``
(node indices local to each graph) and ``edge_attr``; ``atom_ptr``/``edge_ptr`` (length
``num_graphs + 1``) mark where each graph starts. Indexing returns a ``Data`` whose tensors are
views (no copy). The file format is a plain dict of tensors, lists and strings, so it loads with
``torch.load(path, weights_only=True)`` (no pickled code), or an ``.npz`` with the same keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch_geometric.data import Data

from molgraph.data.sources import atomic_output
from molgraph.featurizers.graph import GraphArrays

__all__ = ["CollatedGraphs"]

FORMAT = "molgraph.collated_graphs/1"


class CollatedGraphs(Sequence[Data]):
    """A read-only sequence of graphs stored as concatenated tensors.

    Attributes:
        x: ``(total_atoms, atom_dim)``.
        edge_index: ``(2, total_edges)``, node indices local to each graph.
        edge_attr: ``(total_edges, bond_dim)``.
        atom_ptr, edge_ptr: ``(num_graphs + 1,)`` int64 offsets.
        smiles: one string per graph.
        pos: ``(total_atoms, 3)`` float32 angstrom, or ``None`` (only kept when every graph has it).
        z: ``(total_atoms,)`` atomic numbers, with ``pos``.
        meta: free JSON-serializable metadata (featurizer config, source file, ...).
        rows: ``(num_graphs,)`` int64 position of each graph's molecule in its input, or ``None``.
    """

    def __init__(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        edge_attr: torch.Tensor,
        atom_ptr: torch.Tensor,
        edge_ptr: torch.Tensor,
        smiles: list[str],
        pos: torch.Tensor | None = None,
        z: torch.Tensor | None = None,
        meta: dict[str, Any] | None = None,
        rows: torch.Tensor | None = None,
    ):
        if rows is not None and len(rows) != len(smiles):
            raise ValueError("rows needs one entry per graph")
        if len(atom_ptr) != len(smiles) + 1 or len(edge_ptr) != len(smiles) + 1:
            raise ValueError("atom_ptr and edge_ptr need num_graphs + 1 entries")
        if int(atom_ptr[-1]) != x.shape[0] or int(edge_ptr[-1]) != edge_index.shape[1]:
            raise ValueError("pointers do not match the concatenated tensors")
        self.x, self.edge_index, self.edge_attr = x, edge_index, edge_attr
        self.atom_ptr, self.edge_ptr = atom_ptr, edge_ptr
        self.smiles = list(smiles)
        self.pos, self.z = pos, z
        self.meta = dict(meta or {})
        self.rows = rows
        # python ints: indexing a tensor element per __getitem__ would cost more than the slicing
        self._a = atom_ptr.tolist()
        self._e = edge_ptr.tolist()

    # -- building --------------------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        graphs: Iterable[GraphArrays],
        meta: dict[str, Any] | None = None,
        rows: Sequence[int] | None = None,
    ) -> "CollatedGraphs":
        """Concatenate featurized molecules (keeps the order); ``rows``: their input positions."""
        graphs = list(graphs)
        if not graphs:
            raise ValueError("no graphs to collate")
        atom_counts = [g.x.shape[0] for g in graphs]
        edge_counts = [g.edge_index.shape[1] for g in graphs]
        with_pos = all(g.pos is not None for g in graphs)
        return cls(
            x=torch.from_numpy(np.concatenate([g.x for g in graphs])),
            edge_index=torch.from_numpy(np.concatenate([g.edge_index for g in graphs], axis=1)),
            edge_attr=torch.from_numpy(np.concatenate([g.edge_attr for g in graphs])),
            atom_ptr=torch.from_numpy(np.concatenate([[0], np.cumsum(atom_counts)]).astype(np.int64)),
            edge_ptr=torch.from_numpy(np.concatenate([[0], np.cumsum(edge_counts)]).astype(np.int64)),
            smiles=[g.smiles for g in graphs],
            pos=torch.from_numpy(np.concatenate([g.pos for g in graphs])) if with_pos else None,
            z=torch.from_numpy(np.concatenate([g.z for g in graphs])) if with_pos else None,
            meta=meta,
            rows=torch.tensor(list(rows), dtype=torch.long) if rows is not None else None,
        )

    # -- sequence protocol -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.smiles)

    def __getitem__(self, index: int) -> Data:  # type: ignore[override]
        if isinstance(index, slice):
            raise TypeError("slice a CollatedGraphs with .subset(indices)")
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"graph index {index} out of range for {n} graphs")
        a0, a1 = self._a[index], self._a[index + 1]
        e0, e1 = self._e[index], self._e[index + 1]
        data = Data(
            x=self.x[a0:a1], edge_index=self.edge_index[:, e0:e1], edge_attr=self.edge_attr[e0:e1],
            smiles=self.smiles[index],
        )
        if self.pos is not None:
            data.pos = self.pos[a0:a1]
            data.z = self.z[a0:a1]
        return data

    def __iter__(self) -> Iterator[Data]:
        return (self[i] for i in range(len(self)))

    @property
    def num_atoms(self) -> torch.Tensor:
        """Atoms per graph, ``(num_graphs,)``."""
        return self.atom_ptr[1:] - self.atom_ptr[:-1]

    # -- files -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "x": self.x, "edge_index": self.edge_index, "edge_attr": self.edge_attr,
            "atom_ptr": self.atom_ptr, "edge_ptr": self.edge_ptr, "smiles": self.smiles,
            "meta_json": json.dumps(self.meta, sort_keys=True),
        }
        if self.pos is not None:
            out["pos"], out["z"] = self.pos, self.z
        if self.rows is not None:
            out["rows"] = self.rows
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CollatedGraphs":
        if d.get("format") != FORMAT:
            raise ValueError(f"not a molgraph graph file (format {d.get('format')!r}, expected {FORMAT!r})")
        return cls(
            d["x"], d["edge_index"], d["edge_attr"], d["atom_ptr"], d["edge_ptr"], list(d["smiles"]),
            d.get("pos"), d.get("z"), json.loads(d.get("meta_json", "{}")), d.get("rows"),
        )

    def save(self, path: str | Path) -> Path:
        """Write atomically to ``.pt`` (torch, weights-only loadable) or ``.npz``."""
        path = Path(path)
        d = self.to_dict()
        with atomic_output(path, "wb") as fh:
            if path.suffix == ".npz":
                arrays = {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in d.items()}
                arrays["smiles"] = np.asarray(self.smiles, dtype=object).astype(str)
                np.savez_compressed(fh, **arrays)
            else:
                torch.save(d, fh)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "CollatedGraphs":
        """Read a file written by :meth:`save`; never unpickles code."""
        path = Path(path)
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                d = {k: f[k] for k in f.files}
            d = {k: (torch.from_numpy(v) if v.dtype.kind in "iuf" else v) for k, v in d.items()}
            d["format"] = str(d["format"])
            d["meta_json"] = str(d.get("meta_json", "{}"))
            d["smiles"] = [str(s) for s in d["smiles"]]
            return cls.from_dict(d)
        return cls.from_dict(torch.load(path, weights_only=True))
