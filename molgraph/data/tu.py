"""TU graph-classification datasets (MUTAG, PTC_MR, PROTEINS, NCI1, IMDB-BINARY, IMDB-MULTI), offline.

The files are the TU format (Morris et al., "TUDataset: A collection of benchmark datasets for
learning with graphs", 2020): ``<NAME>_A.txt`` (edges, 1-based node ids, both directions),
``_graph_indicator.txt``, ``_graph_labels.txt`` and the optional ``_node_labels.txt``,
``_edge_labels.txt``, ``_node_attributes.txt``. Parsing is torch_geometric's ``TUDataset``; it
writes a ``processed/`` folder next to ``raw/``, so the raw files are first copied (after the
sha256 check against the card) into a cache folder keyed by their checksums and the molgraph
version, ``<cache dir>/tu/<NAME>-<key>/``, built in a temporary folder and renamed into place (a
crash leaves no half-made cache); its ``molgraph-cache.json`` marks it as molgraph's for
``molgraph cache info|clear``. ``cache=False`` builds in a temporary folder removed after loading.

Node features ``x``:

* labelled sets (MUTAG, PTC_MR, PROTEINS, NCI1): one-hot node labels, as TUDataset gives them;
* social sets without node labels (IMDB-BINARY, IMDB-MULTI): one-hot node degree over
  ``0..max_degree`` of the whole set (GIN's ``degree_as_label``; Xu et al., ICLR 2019).

Labels ``y``: ``(1,)`` int64 class index in ``0..num_classes-1`` (TUDataset maps -1/1 and 1/2
style labels to consecutive indices). MUTAG and PTC_MR also carry one-hot bond types in
``edge_attr``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch_geometric.data import Data

import molgraph
from molgraph.data.collated import CollatedGraphs
from molgraph.data.sources import announce_cache_write, cache_dir

__all__ = ["TUGraphs", "TU_NAMES", "load_tu", "load_tu_files"]

# registry name -> TU name (file prefix)
TU_NAMES = {
    "mutag": "MUTAG",
    "ptc_mr": "PTC_MR",
    "proteins": "PROTEINS",
    "nci1": "NCI1",
    "imdb_binary": "IMDB-BINARY",
    "imdb_multi": "IMDB-MULTI",
}
_SOCIAL = {"IMDB-BINARY", "IMDB-MULTI"}
TU_CACHE_FORMAT = "molgraph.tu_cache/1"
TU_CACHE_MARKER = "molgraph-cache.json"  # in each cache folder: what it is, for `molgraph cache`


@dataclass
class TUGraphs:
    """A TU dataset as a list of PyG graphs.

    Attributes:
        name: registry name (``"mutag"``, ...).
        graphs: ``Data(x (n, F) float32, edge_index (2, E), y (1,) int64[, edge_attr])``.
        num_classes: number of graph classes.
        num_features: width of ``x``.
        node_features: ``"node_labels"`` or ``"degree"`` (one-hot degree up to ``max_degree``).
        max_degree: for degree features, the largest degree in the set (else ``None``).
    """

    name: str
    graphs: list[Data]
    num_classes: int
    num_features: int
    node_features: str
    max_degree: int | None = None

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, i: int) -> Data:
        return self.graphs[i]

    def to_collated(self) -> CollatedGraphs:
        """All graphs as one :class:`~molgraph.data.collated.CollatedGraphs` (for fast batching).

        Graphs without bond features get an empty ``(E, 0)`` ``edge_attr``; the ``smiles`` slot
        holds graph ids ``"<name>#<i>"`` (these graphs are not molecules).
        """
        with_edges = all(getattr(g, "edge_attr", None) is not None for g in self.graphs)
        xs = [g.x for g in self.graphs]
        eis = [g.edge_index for g in self.graphs]
        eas = [g.edge_attr if with_edges else torch.zeros(g.edge_index.shape[1], 0) for g in self.graphs]
        atom_counts = torch.tensor([x.shape[0] for x in xs])
        edge_counts = torch.tensor([e.shape[1] for e in eis])
        zero = torch.zeros(1, dtype=torch.long)
        return CollatedGraphs(
            x=torch.cat(xs), edge_index=torch.cat(eis, dim=1), edge_attr=torch.cat(eas),
            atom_ptr=torch.cat([zero, atom_counts.cumsum(0)]), edge_ptr=torch.cat([zero, edge_counts.cumsum(0)]),
            smiles=[f"{self.name}#{i}" for i in range(len(self.graphs))],
            meta={"dataset": self.name, "node_features": self.node_features, "num_classes": self.num_classes},
        )

    @property
    def y(self) -> np.ndarray:
        """``(N,)`` int64 class of every graph (for stratified splits)."""
        return np.array([int(g.y) for g in self.graphs], dtype=np.int64)


def _cache_key(tu_name: str, files: dict[str, str]) -> str:
    h = hashlib.sha256()
    for rel, digest in sorted(files.items()):
        h.update(f"{rel}={digest}\n".encode())
    h.update(f"molgraph={molgraph.__version__}".encode())
    return f"{tu_name}-{h.hexdigest()[:16]}"


def _build(folder: Path, tu_name: str, raw_files: dict[str, Path]) -> None:
    """Copy the raw files into ``folder/<tu_name>/raw`` and let PyG write ``processed`` next to them."""
    from torch_geometric.datasets import TUDataset

    raw = folder / tu_name / "raw"
    raw.mkdir(parents=True)
    for fname, src in raw_files.items():
        shutil.copyfile(src, raw / fname)
    with contextlib.redirect_stderr(io.StringIO()):  # PyG prints "Processing... Done!" here
        TUDataset(str(folder), tu_name)  # parses and writes folder/<tu_name>/processed


def _processed_root(tu_name: str, raw_files: dict[str, Path], digests: dict[str, str]) -> Path:
    """A cache folder with ``<tu_name>/raw`` (copies) and ``<tu_name>/processed`` (PyG's)."""
    root = cache_dir() / "tu" / _cache_key(tu_name, digests)
    if (root / tu_name / "processed").is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        _build(tmp, tu_name, raw_files)
        marker = {"format": TU_CACHE_FORMAT, "dataset": tu_name, "molgraph_version": molgraph.__version__}
        (tmp / TU_CACHE_MARKER).write_text(json.dumps(marker, sort_keys=True) + "\n")
        try:
            os.replace(tmp, root)
        except OSError:  # another process made it first: keep theirs
            if not (root / tu_name / "processed").is_dir():
                raise
        else:
            announce_cache_write(root, f"TU {tu_name} parsed by PyG")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root


@contextlib.contextmanager
def _processed_folder(tu_name: str, raw_files: dict[str, Path], digests: dict[str, str],
                      cache: bool) -> Iterator[Path]:
    """The folder to open with PyG's ``TUDataset``: the cache's, or (``cache=False``) a temporary
    one removed on exit (``TUDataset`` reads its processed file into memory, so the graphs outlive it)."""
    if cache:
        yield _processed_root(tu_name, raw_files, digests)
        return
    with tempfile.TemporaryDirectory(prefix=f"molgraph-{tu_name}-") as tmp:
        _build(Path(tmp), tu_name, raw_files)
        yield Path(tmp)


def load_tu_files(
    name: str, raw_files: dict[str, Path], digests: dict[str, str], *, cache: bool = True,
) -> TUGraphs:
    """Parse checked TU files into :class:`TUGraphs` (see the module docstring for features).

    Args:
        name: registry name (a key of :data:`TU_NAMES`).
        raw_files: file name (``MUTAG_A.txt``, ...) -> path of the verified file.
        digests: the same names -> sha256 (the cache key).
        cache: keep PyG's parsed files in the cache folder (``False``: parse in a temporary
            folder, write nothing to the cache).
    """
    from torch_geometric.datasets import TUDataset

    if name not in TU_NAMES:
        raise KeyError(f"unknown TU dataset {name!r}; known: {sorted(TU_NAMES)}")
    tu_name = TU_NAMES[name]
    with _processed_folder(tu_name, raw_files, digests, cache) as folder:
        ds = TUDataset(str(folder), tu_name)
    graphs: list[Data] = []
    max_degree: int | None = None
    if tu_name in _SOCIAL:
        degrees = []
        for g in ds:
            degrees.append(torch.bincount(g.edge_index[0], minlength=int(g.num_nodes)))
        max_degree = int(max(int(d.max()) for d in degrees if d.numel()))
        for g, deg in zip(ds, degrees):
            x = torch.nn.functional.one_hot(deg, max_degree + 1).to(torch.float32)
            graphs.append(Data(x=x, edge_index=g.edge_index, y=g.y.view(1).long()))
        node_features = "degree"
    else:
        for g in ds:
            kwargs: dict[str, Any] = dict(x=g.x.to(torch.float32), edge_index=g.edge_index, y=g.y.view(1).long())
            if getattr(g, "edge_attr", None) is not None:
                kwargs["edge_attr"] = g.edge_attr.to(torch.float32)
            graphs.append(Data(**kwargs))
        node_features = "node_labels"
    num_classes = int(ds.num_classes)
    return TUGraphs(name=name, graphs=graphs, num_classes=num_classes, num_features=int(graphs[0].x.shape[1]),
                    node_features=node_features, max_degree=max_degree)


def load_tu(name: str, root: str | os.PathLike[str] | None = None, *, check: bool = True,
            cache: bool = True) -> TUGraphs:
    """A TU dataset by registry name (``"mutag"``, ``"proteins"``, ...), sha256-checked.

    MUTAG and PTC_MR are bundled; PROTEINS, NCI1, IMDB-BINARY and IMDB-MULTI are read from the
    data root (``root``, else ``$MOLGRAPH_DATA``) at ``graphs/tu/<NAME>/raw/``, the layout of the
    project's shared data folder. The first load parses the files into the cache (a few seconds
    for NCI1); later loads read PyG's processed file. ``cache=False`` parses them every time and
    writes nothing to the cache.

    Raises:
        KeyError: unknown name.
        FileNotFoundError: a file is missing (the message says where to put it).
        ChecksumError: a file differs from the card's sha256.
    """
    from pathlib import PurePosixPath

    from molgraph.data.registry import dataset_file, get_card

    key = name.strip().lower()
    if key not in TU_NAMES:
        raise KeyError(f"unknown TU dataset {name!r}; known: {sorted(TU_NAMES)}")
    card = get_card(key)
    raw = {PurePosixPath(rel).name: dataset_file(key, rel, root, check=check) for rel in card.files}
    digests = {PurePosixPath(rel).name: digest for rel, digest in card.files.items()}
    return load_tu_files(key, raw, digests, cache=cache)
