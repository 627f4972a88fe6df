"""A dataset of featurized molecules with labels, read from a user's CSV (or a bundled dataset).

Featurized graphs are cached on disk under a key made of the file's sha256, the featurizer's
config, the column choice and the package version, so a cache is never served for a changed file
or a different featurization.

The cache file is ``<cache dir>/<name>-<key prefix>.npz`` (cache dir: ``MOLGRAPH_CACHE``, else the
user cache folder): the graphs in the compact layout of
:meth:`~molgraph.data.collated.CollatedGraphs.to_compact` (each array in its cheapest exact codec),
zlib level 1, written atomically, read with ``np.load(allow_pickle=False)``. Reading gives the same
tensors, dtypes included, as featurizing again. HIV's first 10k molecules: 0.7 MB (``multihot``),
where format /1 (a ``torch.save`` of the tensors, ``.pt``) took 104 MB. Writing one prints a line
with its path and size (:func:`~molgraph.data.sources.announce_cache_write`); ``molgraph cache
info`` lists the cache and ``molgraph cache clear`` empties it.
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
from molgraph.data.collated import CollatedGraphs, _savez, decode_array, encode_array
from molgraph.data.sources import (
    announce_cache_write,
    atomic_output,
    cache_dir as default_cache_dir,
    sha256_file_cached,
)
from molgraph.data.table import read_molecule_table
from molgraph.featurizers import MolGraphFeaturizer, Reject, iter_featurize

__all__ = ["MoleculeCSVDataset", "CACHE_FORMAT", "LEGACY_CACHE_FORMATS"]

TASK_TYPES = ("regression", "classification")
CACHE_FORMAT = "molgraph.csv_dataset_cache/2"  # compact .npz (see the module doc)
# Earlier formats: never read again (their key differs), listed and removed by `molgraph cache`.
LEGACY_CACHE_FORMATS = ("molgraph.csv_dataset_cache/1",)  # torch.save of the tensors as they are, .pt
_CACHE_SUFFIX = ".npz"
# zlib level of the cache's members: level 1 takes the compact HIV-10k file from 2.3 MB to 0.7 MB
# and reads no slower (inflating 2 MB costs ~5 ms against ~25 ms to decode the graphs).
_CACHE_COMPRESSLEVEL = 1


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
        cache: read and write the featurization cache (default ``True``); ``False`` featurizes
            and writes nothing (what ``--no-cache`` asks for).
        cache_dir: where featurized caches live (default: ``MOLGRAPH_CACHE`` or the user cache);
            ``False`` disables caching, as ``cache=False`` does.
        force_reload: featurize again even when a matching cache exists (and rewrite it).

    Attributes:
        cache_path: the cache file (``None`` when caching is off); ``from_cache`` says whether
            the graphs were read from it.
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
        cache: bool = True,
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
            "format": CACHE_FORMAT,
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
        if cache and cache_dir is not False:
            base = Path(cache_dir) if cache_dir not in (None, True) else default_cache_dir()
            cache_path = base / f"{self.name}-{self.cache_key[:20]}{_CACHE_SUFFIX}"
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

    def _write_cache(self, path: Path, key: dict[str, Any], graphs: CollatedGraphs, y: torch.Tensor,
                     rejects: list[Reject]) -> None:
        """Write the compact cache file atomically and say so (one line: path, size, content)."""
        y_spec, y_members = encode_array("y", y)
        members: dict[str, Any] = {
            "format": np.array(CACHE_FORMAT),
            "key_json": np.array(json.dumps(key, sort_keys=True)),
            # what `molgraph cache info` shows, readable without decoding the graphs
            "about_json": np.array(json.dumps({
                "name": self.name, "source": str(self.path.resolve()), "featurizer": self._featurizer_label(),
                "num_graphs": len(graphs), "num_rejected": len(rejects), "molgraph_version": molgraph.__version__,
            }, sort_keys=True)),
            "dataset_json": np.array(json.dumps({
                "y": y_spec, "rejects": [[r.index, r.input, r.reason] for r in rejects],
            })),
            **y_members,
            **graphs.to_compact(prefix="graphs."),
        }
        what = (f"features of {self.path.name} ({len(graphs)} molecules, {self._featurizer_label()}"
                f"{f', {len(rejects)} rejected' if rejects else ''})")
        try:
            with atomic_output(path, "wb") as fh:
                _savez(fh, members, compresslevel=_CACHE_COMPRESSLEVEL)
        except OSError as exc:  # a read-only or full cache folder must not stop the user's work
            announce_cache_write(path, what, error=exc)
            return
        announce_cache_write(path, what)

    def _featurizer_label(self) -> str:
        """The featurizer in a word: its preset (``"multihot"``), else atom/bond presets or ``"custom"``."""
        atom = getattr(self.featurizer.atom_featurizer, "preset", None) or "custom"
        bond = getattr(self.featurizer.bond_featurizer, "preset", None) or "custom"
        return atom if atom == bond else f"atoms {atom}, bonds {bond}"

    @staticmethod
    def _read_cache(path: Path, key: dict[str, Any]):
        """``(graphs, y, rejects)`` from the cache file, or ``None`` when it is not this key's
        (or cannot be read: the caller featurizes again and overwrites it)."""
        try:
            with np.load(path, allow_pickle=False) as members:
                if str(members["format"]) != CACHE_FORMAT:
                    return None
                # the file name holds only a prefix of the key: compare the full key material
                if str(members["key_json"]) != json.dumps(key, sort_keys=True):
                    return None
                dataset = json.loads(str(members["dataset_json"]))
                y = torch.from_numpy(decode_array("y", dataset["y"], members))
                graphs = CollatedGraphs.from_compact(members, prefix="graphs.")
        except Exception:
            return None  # unreadable, truncated or foreign file: featurize again
        rejects = [Reject(int(i), str(s), str(r)) for i, s, r in dataset["rejects"]]
        return graphs, y, rejects

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
