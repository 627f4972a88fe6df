"""Batches straight from :class:`~molgraph.data.collated.CollatedGraphs` storage.

PyG's ``Batch.from_data_list`` builds one ``Data`` per molecule and concatenates them field by
field in Python; for small molecules that dominates a training step on CPU. Here a batch is a few
vectorized gathers on the concatenated tensors: node and edge index arrays are computed with
numpy from the graphs' offsets, then one ``index_select`` per field.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torch_geometric.data import Batch

from molgraph.data.collated import CollatedGraphs

__all__ = ["GraphBatcher", "IndexDataset", "graph_loader"]


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for each (s, n), without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths  # where each range starts in the output
    return np.repeat(starts - offsets, lengths) + np.arange(total, dtype=np.int64)


class GraphBatcher:
    """``collate_fn`` turning a list of graph indices into a PyG ``Batch``.

    Args:
        graphs: the stored graphs.
        y: ``(num_graphs, num_tasks)`` targets (NaN = missing), or ``None``.
        extra: ``(num_graphs, extra_dim)`` float molecule-level features, or ``None``.

    The batch has ``x``, ``edge_index`` (offset to batch numbering), ``edge_attr``, ``batch``,
    ``ptr``, ``index`` (the graphs' indices, ``(B,)``) and ``y``/``extra`` when given. Each
    graph's edges stay contiguous and even in number, so the reverse of edge ``e`` is still
    ``e ^ 1``.
    """

    def __init__(self, graphs: CollatedGraphs, y: torch.Tensor | None = None, extra: torch.Tensor | None = None):
        n = len(graphs)
        for name, t in (("y", y), ("extra", extra)):
            if t is not None and t.shape[0] != n:
                raise ValueError(f"{name} has {t.shape[0]} rows for {n} graphs")
        self.graphs, self.y, self.extra = graphs, y, extra
        self._a = graphs.atom_ptr.numpy()
        self._e = graphs.edge_ptr.numpy()

    def __call__(self, indices: Sequence[int]) -> Batch:
        idx = np.asarray(indices, dtype=np.int64)
        a0, n_atoms = self._a[idx], self._a[idx + 1] - self._a[idx]
        e0, n_edges = self._e[idx], self._e[idx + 1] - self._e[idx]
        atom_sel = torch.from_numpy(_ranges(a0, n_atoms))
        edge_sel = torch.from_numpy(_ranges(e0, n_edges))
        new_start = np.cumsum(n_atoms) - n_atoms  # first node of each graph in the batch
        shift = torch.from_numpy(np.repeat(new_start, n_edges))
        g = self.graphs
        batch = Batch(
            x=g.x.index_select(0, atom_sel),
            edge_index=g.edge_index.index_select(1, edge_sel) + shift,
            edge_attr=g.edge_attr.index_select(0, edge_sel),
            batch=torch.from_numpy(np.repeat(np.arange(len(idx), dtype=np.int64), n_atoms)),
            ptr=torch.from_numpy(np.concatenate([[0], np.cumsum(n_atoms)]).astype(np.int64)),
            index=torch.from_numpy(idx),
        )
        t_idx = torch.from_numpy(idx)
        if self.y is not None:
            batch.y = self.y.index_select(0, t_idx)
        if self.extra is not None:
            batch.extra = self.extra.index_select(0, t_idx)
        return batch


class IndexDataset(Dataset):
    """Positions ``indices[0..n)``: the loader yields graph indices, the batcher gathers them."""

    def __init__(self, indices: Sequence[int]):
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> int:
        return int(self.indices[i])


def graph_loader(
    batcher: GraphBatcher,
    indices: Sequence[int],
    *,
    batch_size: int = 64,
    sampler: Sampler | None = None,
    shuffle: bool = False,
    num_workers: int = 0,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """A ``DataLoader`` over ``indices`` (positions in ``batcher.graphs``) yielding ``Batch``es."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return DataLoader(
        IndexDataset(indices),
        batch_size=batch_size,
        sampler=sampler,
        shuffle=shuffle if sampler is None else False,
        num_workers=num_workers,
        collate_fn=batcher,
        generator=generator,
        drop_last=drop_last,
        persistent_workers=num_workers > 0,
    )
