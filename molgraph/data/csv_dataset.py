"""A dataset of featurized molecules with labels, read from a user's CSV (or a bundled dataset).

Featurized graphs are cached on disk under a key made of the file's sha256, the featurizer's
config, the column choice and the package version, so a cache is never served for a changed file
or a different featurization; caches are written atomically and read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset
from torch_geometric.data import Data

import molgraph
from molgraph.chem import MoleculeError
from molgraph.data.collated import CollatedGraphs
from molgraph.data.sources import atomic_output, cache_dir as default_cache_dir, sha256_file_cached
from molgraph.data.table import read_molecule_table
from molgraph.featurizers import MolGraphFeaturizer, Reject, iter_featurize

__all__ = ["MoleculeCSVDataset"]

TASK_TYPES = ("regression", "classification")
_CACHE_FORMAT = "molgraph.csv_dataset_cache/1"


class MoleculeCSVDataset(Dataset):
    """Molecules from a CSV file as PyG graphs with targets.

    ``dataset[i]`` is a ``Data`` with the featurizer's fields plus ``y`` of shape
    ``(1, num_tasks)`` (float32, NaN = missing label) and ``row`` (the molecule's 0-based data row
    in the file). Works with ``torch_geometric.loader.DataLoader``.

    Args:
        path: CSV/TSV file (``.gz`` allowed).
        smiles_column: name of the SMILES column.
        target_columns: label columns (may be empty for unlabeled data).
        task_type: ``"regression"`` or ``"classification"`` (binary labels 0/1 per task).
        name: a name for messages and cache files (default: the file stem).
        featurizer: default ``MolGraphFeaturizer.ogb()``.
        n_jobs: featurization processes.
        errors: ``"skip"`` (default: bad molecules go to :attr:`rejects`, with row and reason) or
            ``"raise"`` (the first bad molecule raises :class:`~molgraph.chem.MoleculeError`).
        cache_dir: where featurized caches live (default: ``MOLGRAPH_CACHE`` or the user cache);
            ``False`` disables caching.
        force_reload: featurize again even when a matching cache exists (and rewrite it).
        progress: progress bar (default: only on a terminal).
    """

    def __init__(
        self,
        path: str | Path,
        smiles_column: str,
        target_columns: Sequence[str] = (),
        task_type: str = "regression",
        *,
        name: str | None = None,
        featurizer: MolGraphFeaturizer | None = None,
        n_jobs: int = 1,
        errors: str = "skip",
        cache_dir: str | Path | bool | None = None,
        force_reload: bool = False,
        progress: bool | None = None,
    ):
        if task_type not in TASK_TYPES:
            raise ValueError(f"task_type must be one of {TASK_TYPES}, got {task_type!r}")
        if errors not in ("skip", "raise"):
            raise ValueError(f"errors must be 'skip' or 'raise', got {errors!r}")
        self.path = Path(path)
        self.smiles_column = smiles_column
        self.target_columns = list(target_columns)
        self.task_type = task_type
        self.name = name or self.path.name.split(".")[0]
        self.featurizer = featurizer or MolGraphFeaturizer.ogb()
        self.from_cache = False

        key_material = {
            "format": _CACHE_FORMAT,
            "file_sha256": sha256_file_cached(self.path) if self.path.is_file() else None,
            "smiles_column": smiles_column,
            "target_columns": self.target_columns,
            "featurizer": self.featurizer.to_config(),
            "molgraph_version": molgraph.__version__,
        }
        if key_material["file_sha256"] is None:
            raise FileNotFoundError(f"molecule file not found: {self.path}")
        self.cache_key = hashlib.sha256(json.dumps(key_material, sort_keys=True).encode()).hexdigest()
        cache_path = None
        if cache_dir is not False:
            base = Path(cache_dir) if cache_dir not in (None, True) else default_cache_dir()
            cache_path = base / f"{self.name}-{self.cache_key[:20]}.pt"
        self.cache_path = cache_path

        loaded = None
        if cache_path is not None and cache_path.is_file() and not force_reload:
            loaded = self._read_cache(cache_path, key_material)
        if loaded is None:
            loaded = self._process(n_jobs, progress)
            if cache_path is not None:
                self._write_cache(cache_path, key_material, *loaded)
        else:
            self.from_cache = True
        self.graphs, self.y, self.rejects = loaded
        if errors == "raise" and self.rejects:
            first = self.rejects[0]
            raise MoleculeError(first.reason, first.input, first.index)

    # -- building ------------------------------------------------------------------------------
    def _process(self, n_jobs: int, progress: bool | None):
        table = read_molecule_table(self.path, self.smiles_column, self.target_columns)
        arrays, rows, rejects = [], [], []
        for index, result in iter_featurize(
            table.smiles, self.featurizer, n_jobs=n_jobs, errors="skip", progress=progress
        ):
            if isinstance(result, Reject):
                rejects.append(result)
            else:
                arrays.append(result)
                rows.append(index)
        if not arrays:
            raise ValueError(f"{self.path}: no molecule could be featurized ({len(rejects)} rejected)")
        graphs = CollatedGraphs.from_arrays(arrays, meta={"featurizer": self.featurizer.to_config()}, rows=rows)
        y = torch.from_numpy(table.targets[rows].astype(np.float32))
        if self.task_type == "classification":
            labels = table.targets[~np.isnan(table.targets)]
            bad = np.setdiff1d(np.unique(labels), [0.0, 1.0])
            if bad.size:
                raise ValueError(f"{self.path}: classification labels must be 0/1 (or empty), found {bad[:5].tolist()}")
        return graphs, y, rejects

    def _write_cache(self, path: Path, key: dict[str, Any], graphs, y, rejects) -> None:
        payload = {
            "key_json": json.dumps(key, sort_keys=True),
            "graphs": graphs.to_dict(),
            "y": y,
            "rejects": [[r.index, r.input, r.reason] for r in rejects],
        }
        try:
            with atomic_output(path, "wb") as fh:
                torch.save(payload, fh)
        except OSError:
            pass  # a read-only or full cache folder must not stop the user's work

    @staticmethod
    def _read_cache(path: Path, key: dict[str, Any]):
        try:
            payload = torch.load(path, weights_only=True)
        except Exception:
            return None  # unreadable or foreign file: featurize again and overwrite it
        # the file name holds only a prefix of the key: compare the full key material
        if payload.get("key_json") != json.dumps(key, sort_keys=True):
            return None
        rejects = [Reject(int(i), str(s), str(r)) for i, s, r in payload["rejects"]]
        return CollatedGraphs.from_dict(payload["graphs"]), payload["y"], rejects

    # -- access ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, index: int) -> Data:
        data = self.graphs[index]
        data.y = self.y[index].unsqueeze(0)
        data.row = int(self.graphs.rows[index])
        return data

    @property
    def rows(self) -> torch.Tensor:
        """0-based data row in the file of each kept molecule, ``(len(self),)``."""
        return self.graphs.rows

    @property
    def smiles(self) -> list[str]:
        return self.graphs.smiles

    @property
    def num_tasks(self) -> int:
        return len(self.target_columns)

    @property
    def targets(self) -> np.ndarray:
        """Labels of the kept molecules, ``(len(self), num_tasks)``, NaN = missing."""
        return self.y.numpy()

    def __repr__(self) -> str:
        return (
            f"MoleculeCSVDataset({self.name!r}, {len(self)} molecules, {self.num_tasks} "
            f"{self.task_type} task(s), {len(self.rejects)} rejected)"
        )
