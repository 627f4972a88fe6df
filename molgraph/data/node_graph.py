"""One large graph for node classification: Cora-ML and Citeseer, and their certificate versions.

A :class:`NodeGraph` holds ``N`` nodes with sparse binary attributes and one class label each,
and an undirected, unweighted, loop-free adjacency:

* ``adj``: ``(N, N)`` ``scipy.sparse.csr_matrix`` float32, symmetric, entries 1, empty diagonal;
* ``attr``: ``(N, D)`` ``scipy.sparse.csr_matrix`` float32, entries 1 (bag of words, binarised);
* ``labels``: ``(N,)`` int64 class indices ``0 .. C-1``;
* ``node_ids``: ``(N,)`` int64 row of each node in the source file (so a subgraph's nodes can be
  traced back; the identity for a whole graph).

:func:`load_node_graph` reads the source files of the data root (``graphs/cora_ml/cora_ml.npz``,
``graphs/citeseer/citeseer.npz``: plain CSR arrays, read with ``allow_pickle=False``) and
standardises them as the sparse-smoothing and collective-certificate code does (notes in the
shared folder, ``certificates.md``): symmetrise, drop self loops, unit weights, binarise the
attributes. ``lcc=True`` keeps the largest connected component with nodes in ascending original
order: that is exactly the graph of the collective-certificate repository (Cora-ML: 2,810 nodes,
7,981 edges; Citeseer: 2,110 nodes, 3,668 edges), rebuilt without unpickling its file; when the
data root has the derived ``*_lcc_index.npy``, the rebuilt node set is checked against it.

:func:`load_base_certificates` reads the pre-computed base-certificate grids shipped for Cora-ML.
:class:`NodeBatcher` is a :class:`~molgraph.data.loader.Collate`: full-graph batches naming the
nodes whose loss counts, for :func:`~molgraph.data.loader.graph_loader`.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from molgraph.data.registry import dataset_file, dataset_path, get_card
from molgraph.data.sources import sha256_file_cached

__all__ = ["NODE_GRAPHS", "NodeGraph", "NodeBatcher", "load_node_graph", "load_base_certificates"]

# name -> (raw graph file, derived LCC index file), paths under the data root
NODE_GRAPHS: Mapping[str, tuple[str, str]] = {
    "cora_ml": ("graphs/cora_ml/cora_ml.npz", "graphs/cora_ml/collective_robustness/cora_ml_lcc_index.npy"),
    "citeseer": ("graphs/citeseer/citeseer.npz", "graphs/citeseer/collective_robustness/citeseer_lcc_index.npy"),
}
# citeseer.npz keeps its class names in a pickled dict (idx_to_class), which is never unpickled
# here; these are its values, as listed in the shared folder's PROVENANCE.md.
_CITESEER_CLASSES = ("AI", "Agents", "DB", "HCI", "IR", "ML")
_BASE_CERTS = {
    "cora_ml": {
        "attr_grid": ("graphs/cora_ml/collective_robustness/base_certs/attr_grid.npy", ("node", "attr_add", "attr_del")),
        "adj_grid": ("graphs/cora_ml/collective_robustness/base_certs/adj_grid.npy", ("node", "adj_del")),
    },
}


@dataclass(frozen=True, eq=False)
class NodeGraph:
    """One attributed, labelled, undirected graph (see the module doc for shapes and units).

    Attributes:
        name: dataset name (``"cora_ml"``, ``"citeseer"``).
        adj: ``(N, N)`` CSR float32, symmetric, unit weights, no self loops.
        attr: ``(N, D)`` CSR float32 binary attributes.
        labels: ``(N,)`` int64 classes.
        node_ids: ``(N,)`` int64 row of each node in the source file.
        class_names: name of each class, or ``()`` when unknown.
        provenance: the files read: path -> sha256.
    """

    name: str
    adj: sp.csr_matrix
    attr: sp.csr_matrix
    labels: np.ndarray
    node_ids: np.ndarray
    class_names: tuple[str, ...] = ()
    provenance: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.adj.shape[0]
        if self.adj.shape != (n, n):
            raise ValueError(f"{self.name}: adjacency must be square, got {self.adj.shape}")
        for what, rows in (("attr", self.attr.shape[0]), ("labels", len(self.labels)), ("node_ids", len(self.node_ids))):
            if rows != n:
                raise ValueError(f"{self.name}: {what} has {rows} rows for {n} nodes")

    @property
    def num_nodes(self) -> int:
        return int(self.adj.shape[0])

    @property
    def num_features(self) -> int:
        return int(self.attr.shape[1])

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1 if self.labels.size else 0

    @property
    def num_edges(self) -> int:
        """Undirected edges (each stored twice in :attr:`adj` and :attr:`edge_index`)."""
        return int(self.adj.nnz // 2)

    @property
    def edge_index(self) -> np.ndarray:
        """``(2, 2 * num_edges)`` int64, both directions, sorted by source then target."""
        coo = self.adj.tocoo()
        return np.stack([coo.row, coo.col]).astype(np.int64)

    def subgraph(self, nodes: Sequence[int] | np.ndarray) -> "NodeGraph":
        """The graph induced by ``nodes`` (kept in the order given; ``node_ids`` follow along)."""
        idx = np.asarray(nodes, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_nodes):
            raise IndexError(f"{self.name}: node {int(idx[(idx < 0) | (idx >= self.num_nodes)][0])} out of range "
                             f"for {self.num_nodes} nodes")
        return replace(self, adj=self.adj[idx][:, idx].tocsr(), attr=self.attr[idx].tocsr(),
                       labels=self.labels[idx], node_ids=self.node_ids[idx])

    def components(self) -> np.ndarray:
        """``(N,)`` int64 connected-component id of every node (scipy's numbering)."""
        from scipy.sparse.csgraph import connected_components

        return connected_components(self.adj, directed=False)[1].astype(np.int64)

    def largest_connected_component(self) -> "NodeGraph":
        """The subgraph of the largest connected component, nodes in ascending order.

        A tie between equally large components (none in Cora-ML or Citeseer) goes to the one
        holding the lowest node.
        """
        comp = self.components()
        sizes = np.bincount(comp)
        largest = int(np.flatnonzero(sizes == sizes.max())[0])  # scipy numbers components by first node
        return self.subgraph(np.flatnonzero(comp == largest))

    def x(self) -> "Any":
        """Dense ``(N, D)`` float32 attribute tensor (Cora-ML: 34 MB, Citeseer LCC: 31 MB)."""
        import torch

        return torch.from_numpy(self.attr.toarray().astype(np.float32, copy=False))

    def to_data(self) -> "Any":
        """A PyG ``Data(x, edge_index, y, node_id)`` (``x`` dense float32; ``node_id`` = :attr:`node_ids`)."""
        import torch
        from torch_geometric.data import Data

        return Data(x=self.x(), edge_index=torch.from_numpy(self.edge_index), y=torch.from_numpy(self.labels),
                    node_id=torch.from_numpy(self.node_ids), num_nodes=self.num_nodes)

    def to_collated(self) -> "Any":
        """The graph as a one-graph :class:`~molgraph.data.collated.CollatedGraphs`.

        Node fields ``x`` (dense float32 attributes), ``y`` (labels) and ``node_id``; no edge
        attributes; ``meta`` records the name, class names and provenance.
        """
        import torch

        from molgraph.data.collated import CollatedGraphs

        n, e = self.num_nodes, 2 * self.num_edges
        return CollatedGraphs(
            self.x(), torch.from_numpy(self.edge_index), None, torch.tensor([0, n]), torch.tensor([0, e]), [self.name],
            meta={"dataset": self.name, "class_names": list(self.class_names), "provenance": dict(self.provenance)},
            fields={"y": ("node", torch.from_numpy(self.labels)), "node_id": ("node", torch.from_numpy(self.node_ids))},
        )

    def __repr__(self) -> str:
        return (f"NodeGraph({self.name}: {self.num_nodes} nodes, {self.num_edges} edges, {self.num_features} "
                f"binary attributes, {self.num_classes} classes)")


def standardize(adj: sp.spmatrix, attr: sp.spmatrix) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Symmetric unit-weight loop-free adjacency and binary attributes (both CSR float32).

    An edge exists between ``i`` and ``j`` if either direction is stored with a non-zero weight.
    """
    a = sp.csr_matrix(adj, dtype=np.float32)
    a = ((a + a.T) != 0).astype(np.float32).tolil()
    a.setdiag(0)
    a = a.tocsr()
    a.eliminate_zeros()
    a.sort_indices()
    x = (sp.csr_matrix(attr) != 0).astype(np.float32).tocsr()
    x.sort_indices()
    return a, x


def _read_csr(f: Any, prefix: str, path: Path) -> sp.csr_matrix:
    keys = [f"{prefix}_{k}" for k in ("data", "indices", "indptr", "shape")]
    missing = [k for k in keys if k not in f.files]
    if missing:
        raise ValueError(f"{path}: no {', '.join(missing)} array(s); expected the g2g/nettack CSR layout")
    parts = [f[k] for k in keys]
    return sp.csr_matrix(tuple(parts[:3]), shape=tuple(int(s) for s in parts[3]))


def load_node_graph(
    name: str = "cora_ml",
    root: str | os.PathLike[str] | None = None,
    *,
    lcc: bool = False,
) -> NodeGraph:
    """Load Cora-ML or Citeseer from the data root, standardised (see the module doc).

    Args:
        name: ``"cora_ml"`` (2,995 nodes, 2,879 attributes, 7 classes) or ``"citeseer"``
            (3,312 nodes, 3,703 attributes, 6 classes).
        root: data root (else ``$MOLGRAPH_DATA``, else the user cache).
        lcc: keep only the largest connected component (the collective-certificate graph).

    Raises:
        KeyError: unknown name. FileNotFoundError / ChecksumError: as
        :func:`~molgraph.data.registry.dataset_path`. ValueError: the rebuilt LCC differs from the
        data root's ``*_lcc_index.npy``.
    """
    key = name.strip().lower()
    if key not in NODE_GRAPHS:
        raise KeyError(f"unknown node-classification graph {name!r}; choose from {', '.join(NODE_GRAPHS)}")
    path = dataset_path(key, root=root)
    provenance = {str(path): sha256_file_cached(path)}
    with np.load(path, allow_pickle=False) as f:
        adj, attr = _read_csr(f, "adj", path), _read_csr(f, "attr", path)
        labels = f["labels"].astype(np.int64)
        class_names = tuple(str(c) for c in f["class_names"]) if "class_names" in f.files else _CITESEER_CLASSES
    adj, attr = standardize(adj, attr)
    graph = NodeGraph(key, adj, attr, labels, np.arange(adj.shape[0], dtype=np.int64), class_names, provenance)
    if not lcc:
        return graph
    graph = graph.largest_connected_component()
    index_rel = NODE_GRAPHS[key][1]
    try:
        index_path = dataset_file(key, index_rel, root=root)
    except FileNotFoundError:
        return graph  # the check needs the derived index file; the LCC itself does not
    expected = np.load(index_path, allow_pickle=False)
    if not np.array_equal(expected, graph.node_ids):
        raise ValueError(f"{key}: the largest connected component rebuilt from {path} ({graph.num_nodes} nodes) "
                         f"differs from {index_path} ({expected.size} nodes)")
    return replace(graph, provenance={**provenance, str(index_path): sha256_file_cached(index_path)})


def load_base_certificates(name: str = "cora_ml", root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The pre-computed base-certificate grids of the collective-certificate repository.

    Returns:
        ``{grid name: (bool array, dimension names)}``; for Cora-ML ``attr_grid`` ``(2810, 7,
        22)`` over (node, attribute additions 0..6, deletions 0..21) and ``adj_grid``
        ``(2810, 13)`` over (node, edge deletions 0..12). ``grid[v, a, d]`` is true when node
        ``v``'s smoothed prediction is certified for ``a`` additions and ``d`` deletions; nodes
        are those of ``load_node_graph(name, lcc=True)``. The smoothing parameters behind them
        are not recorded by the source.

    Raises:
        KeyError: no grids are shipped for ``name`` (Citeseer: compute them).
    """
    key = name.strip().lower()
    if key not in _BASE_CERTS:
        raise KeyError(f"no pre-computed base certificates for {name!r} (shipped for: {', '.join(_BASE_CERTS)}); "
                       f"compute them with the smoothing code")
    get_card(key)  # unknown-dataset errors come from the registry
    out = {}
    for grid, (rel, dims) in _BASE_CERTS[key].items():
        arr = np.load(dataset_file(key, rel, root=root), allow_pickle=False)
        if arr.dtype != np.bool_ or arr.ndim != len(dims):
            raise ValueError(f"{rel}: expected a {len(dims)}-D bool grid, got {arr.dtype} {arr.shape}")
        out[grid] = (arr, dims)
    return out


class NodeBatcher:
    """:class:`~molgraph.data.loader.Collate` for full-graph node classification.

    Every batch is the whole graph (the same ``x`` and ``edge_index`` tensors, no copy) plus
    ``input_id``: the ``(B,)`` int64 nodes of the batch, whose predictions the loss or metric
    uses (``y[input_id]``), following PyG's loader convention. ``len()`` is the node count.
    """

    def __init__(self, graph: NodeGraph):
        self.graph = graph
        self._data = graph.to_data()

    def __len__(self) -> int:
        return self.graph.num_nodes

    def __call__(self, indices: np.ndarray) -> "Any":
        import torch

        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"node {int(idx[(idx < 0) | (idx >= len(self))][0])} out of range for {len(self)} nodes")
        batch = copy.copy(self._data)  # shallow: the graph's tensors are shared, not copied
        batch.input_id = torch.from_numpy(idx)
        return batch
