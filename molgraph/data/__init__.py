"""Datasets, loaders, splits and caches: molecule tables, 3D molecules, graphs, node graphs,
temporal event streams and molecule sets for generation.

Names are imported lazily, so ``molgraph datasets list`` does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CollatedGraphs": "molgraph.data.collated",
    "MoleculeCSVDataset": "molgraph.data.csv_dataset",
    "MoleculeTable": "molgraph.data.table",
    "read_molecule_table": "molgraph.data.table",
    "DatasetCard": "molgraph.data.registry",
    "get_card": "molgraph.data.registry",
    "list_datasets": "molgraph.data.registry",
    "load_dataset": "molgraph.data.registry",
    "list_3d_datasets": "molgraph.data.registry",
    "load_qm9": "molgraph.data.qm9",
    "QM9Dataset": "molgraph.data.qm9",
    "load_rmd17": "molgraph.data.rmd17",
    "RMD17Dataset": "molgraph.data.rmd17",
    "dataset_path": "molgraph.data.registry",
    "verify": "molgraph.data.registry",
    "data_root": "molgraph.data.sources",
    "cache_dir": "molgraph.data.sources",
    "Split": "molgraph.data.splits",
    "make_split": "molgraph.data.splits",
    "random_split": "molgraph.data.splits",
    "scaffold_split": "molgraph.data.splits",
    "balanced_scaffold_split": "molgraph.data.splits",
    "stratified_split": "molgraph.data.splits",
    "kfold": "molgraph.data.splits",
    "stratified_kfold": "molgraph.data.splits",
    "load_split_file": "molgraph.data.splits",
    "per_class_split": "molgraph.data.splits",
    "chronological_split": "molgraph.data.splits",
    "inductive_split": "molgraph.data.splits",
    "GraphBatcher": "molgraph.data.loader",
    "Collate": "molgraph.data.loader",
    "graph_loader": "molgraph.data.loader",
    "radius_graph": "molgraph.data.geometry",
    "NodeGraph": "molgraph.data.node_graph",
    "NodeBatcher": "molgraph.data.node_graph",
    "load_node_graph": "molgraph.data.node_graph",
    "load_base_certificates": "molgraph.data.node_graph",
    "TemporalEvents": "molgraph.data.temporal",
    "TemporalNeighbors": "molgraph.data.temporal",
    "EventBatcher": "molgraph.data.temporal",
    "load_temporal": "molgraph.data.temporal",
    "MoleculeSet": "molgraph.data.moses",
    "load_moses": "molgraph.data.moses",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'molgraph.data' has no attribute {name!r}")
