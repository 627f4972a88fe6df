"""The dataset registry: one ``card.toml`` per dataset, and the functions that find its file.

Cards live in ``datasets/<name>/card.toml`` at the repository root (wheels carry that folder as
``molgraph/_bundled_datasets``). Small sets are *bundled*: their data file sits next to the
card. Larger sets are read from the *data root* (see :func:`molgraph.data.sources.data_root`)
at the card's ``root_path``, which mirrors the layout of the project's shared data folder
(``moleculenet/hiv/HIV.csv``, ...). Every file is checked against the card's sha256 before first
use; the result is remembered in memory per (path, size, mtime).

The card format is documented in ``datasets/README.md``.

Sets that are not molecule tables have their cards in a sub-folder per *group*
(:data:`CARD_GROUPS`): ``3d/`` (QM9, rMD17), ``graphs/`` (TU graph classification),
``node_graphs/`` (one large graph for node classification: Cora-ML, Citeseer), ``temporal/``
(event streams for temporal link prediction: UCI, Enron, Wikipedia) and ``generation/``
(unlabelled molecule sets for generative models: MOSES). Their cards use the same format plus a
``[files]`` table (further files under the data root and their sha256) and a ``kind`` whose
task types and splits they may name (:data:`KIND_RULES`); each group has loaders of its own
(:data:`LOADERS`). ``get_card``, ``dataset_path``, ``load_dataset`` and ``verify([...])`` accept
every name; ``list_datasets()`` keeps listing the tabular sets, ``list_datasets("all")`` lists
every card and ``list_datasets(group)`` one group.

Every card is registered in :data:`molgraph.registry.DATASETS` (this module is its home) as a
:class:`RegisteredDataset` (its card, group and loader), so ``DATASETS["cora_ml"].load()`` works
and a plugin can add a set the same way.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import molgraph
from molgraph.data.sources import (
    DATA_ENV,
    ChecksumError,
    data_root,
    download_file,
    sha256_file,
    sha256_file_cached,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 needs the tomli backport
    import tomli as tomllib

if TYPE_CHECKING:
    from molgraph.data.csv_dataset import MoleculeCSVDataset

__all__ = [
    "CARD_FILE",
    "CardError",
    "DatasetCard",
    "VerifyResult",
    "bundled_dir",
    "list_datasets",
    "get_card",
    "dataset_path",
    "expected_path",
    "verify",
    "load_dataset",
    "list_3d_datasets",
    "dataset_file",
    "LOADERS_3D",
    "LOADERS_GRAPHS",
    "LOADERS",
    "CARD_GROUPS",
    "KIND_RULES",
    "RegisteredDataset",
    "list_graph_datasets",
]

CARD_FILE = "card.toml"
TASK_TYPES = ("regression", "classification")
SPLITS = ("random", "scaffold", "stratified")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

_REQUIRED_STR = (
    "name",
    "title",
    "description",
    "source",
    "citation",
    "license",
    "sha256",
    "task_type",
    "split",
    "metric",
)
_OPTIONAL_STR = ("file", "root_path", "url", "url_note", "split_note", "metric_note", "smiles_column", "kind")
# molecules: SMILES tables (and 3D molecule sets); graphs: graphs that are not molecules (TU
# sets); node_graph: one large graph, a label per node; temporal: a stream of timestamped events;
# generation: unlabelled molecules for generative models.
KINDS = ("molecules", "graphs", "node_graph", "temporal", "generation")
# task types and splits each kind may name (split names are those of molgraph.registry.SPLITS,
# except "fixed": the source's own files are the parts)
KIND_RULES = MappingProxyType({
    "molecules": (TASK_TYPES, SPLITS),
    "graphs": (TASK_TYPES, SPLITS),
    "node_graph": (("classification",), ("per_class",)),
    "temporal": (("link_prediction",), ("chronological",)),
    "generation": (("generation",), ("fixed",)),
})
_NEEDS_SMILES = ("molecules", "generation")
_OPTIONAL_INT = ("size_bytes", "rdkit_parse_failures")
_KNOWN_KEYS = frozenset(
    _REQUIRED_STR + _OPTIONAL_STR + _OPTIONAL_INT + ("bundled", "n_rows", "target_columns", "columns", "quirks", "files")
)
CARDS_3D = "3d"  # sub-folder of the card folder holding the 3D sets' cards
CARDS_GRAPHS = "graphs"  # sub-folder holding the graph (non-molecule) sets' cards, e.g. TU
# every sub-folder of cards, in lookup order (the tabular molecule sets are at the top level)
CARD_GROUPS = (CARDS_3D, CARDS_GRAPHS, "node_graphs", "temporal", "generation", "derived")
# 3D sets are not tables: each has its own loader, "module:function" taking (root=, **kwargs).
LOADERS_3D = MappingProxyType({
    "qm9": "molgraph.data.qm9:load_qm9",
    "rmd17": "molgraph.data.rmd17:load_rmd17",
})
# graph sets (cards under datasets/graphs/): "module:function" taking (name, root=, **kwargs)
LOADERS_GRAPHS = MappingProxyType({
    name: "molgraph.data.tu:load_tu"
    for name in ("mutag", "ptc_mr", "proteins", "nci1", "imdb_binary", "imdb_multi")
})
# every set with a loader of its own: 3D sets take (root=, **kwargs), the others (name, root=, **kwargs)
LOADERS = MappingProxyType({
    **LOADERS_3D,
    **LOADERS_GRAPHS,
    "cora_ml": "molgraph.data.node_graph:load_node_graph",
    "citeseer": "molgraph.data.node_graph:load_node_graph",
    "uci": "molgraph.data.temporal:load_temporal",
    "enron": "molgraph.data.temporal:load_temporal",
    "wikipedia": "molgraph.data.temporal:load_temporal",
    "moses": "molgraph.data.moses:load_moses",
})


class CardError(ValueError):
    """A ``card.toml`` is malformed (missing or mistyped field, unknown key, bad value)."""


@dataclass(frozen=True)
class DatasetCard:
    """Everything molgraph knows about one dataset, parsed from its ``card.toml``.

    Attributes:
        name: registry key, lower case; equals the card's folder name.
        title: one-line human title.
        description: what the data measures, in a few sentences (units included).
        source: where the file was taken from (repository, path, commit, blob).
        citation: original paper(s) and the MoleculeNet paper.
        license: the licence as stated by the source (not a legal opinion).
        bundled: True when the data file ships next to the card.
        sha256: hex sha256 of the data file's bytes (compressed bytes for ``.gz``).
        n_rows: number of data rows as read by pandas (blank lines skipped).
        smiles_column: column holding the SMILES strings.
        target_columns: label columns, in file order; duplicate-named columns appear once.
        task_type: ``"regression"`` or ``"classification"``.
        split: the split MoleculeNet used: ``"random"``, ``"scaffold"`` or ``"stratified"``.
        metric: the metric MoleculeNet reported (``RMSE``, ``MAE``, ``ROC-AUC``, ``PRC-AUC``).
        file: bundled sets: the data file name inside the card's folder.
        root_path: non-bundled sets: POSIX path of the file relative to the data root.
        url: download URL used by ``download=True``; empty when no URL is known to serve
            this exact file.
        url_note: where the URL comes from and whether byte identity was verified.
        size_bytes: size of the data file in bytes.
        rdkit_parse_failures: SMILES that ``Chem.MolFromSmiles`` rejects (see ``quirks``).
        split_note / metric_note: where the split and metric come from, and caveats.
        columns: column name (or group of columns) -> meaning.
        quirks: format and content surprises a loader must handle.
        files: further files of a multi-file set: POSIX path (under the data root, or next to
            the card for bundled sets) -> sha256 (3D and graph sets; see :func:`dataset_file`).
        kind: ``"molecules"`` (default) or ``"graphs"`` (e.g. TU sets: no SMILES column).
        card_path: the ``card.toml`` this card was read from (not part of equality).
    """

    name: str
    title: str
    description: str
    source: str
    citation: str
    license: str
    bundled: bool
    sha256: str
    n_rows: int
    smiles_column: str
    target_columns: tuple[str, ...]
    task_type: str
    split: str
    metric: str
    file: str = ""
    root_path: str = ""
    url: str = ""
    url_note: str = ""
    size_bytes: int | None = None
    rdkit_parse_failures: int | None = None
    split_note: str = ""
    metric_note: str = ""
    columns: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    quirks: tuple[str, ...] = ()
    files: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    kind: str = "molecules"
    card_path: Path | None = field(default=None, compare=False, hash=False, repr=False)

    @property
    def file_name(self) -> str:
        """Base name of the data file (``HIV.csv``, ``sider.csv.gz``)."""
        return PurePosixPath(self.file or self.root_path).name

    @property
    def n_targets(self) -> int:
        """Number of target columns."""
        return len(self.target_columns)

    @property
    def location(self) -> str:
        """``"bundled"`` or ``"data root"``."""
        return "bundled" if self.bundled else "data root"

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> DatasetCard:
        """Parse and validate a ``card.toml`` file."""
        path = Path(path)
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise CardError(f"{path}: not valid TOML: {exc}") from exc
        return cls.from_dict(data, card_path=path)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], card_path: Path | None = None) -> DatasetCard:
        """Validate a parsed card table and build the card; raises :class:`CardError`."""
        where = str(card_path) if card_path else "card"

        def fail(msg: str) -> CardError:
            return CardError(f"{where}: {msg}")

        unknown = sorted(set(data) - _KNOWN_KEYS)
        if unknown:
            raise fail(f"unknown key(s) {unknown}; known keys: {sorted(_KNOWN_KEYS)}")
        missing = [k for k in (*_REQUIRED_STR, "bundled", "n_rows", "target_columns") if k not in data]
        kind = data.get("kind", "molecules")
        if kind in _NEEDS_SMILES and "smiles_column" not in data:
            missing.append("smiles_column")
        if missing:
            raise fail(f"missing required key(s) {missing}")

        for key in _REQUIRED_STR + _OPTIONAL_STR:
            if key in data and not isinstance(data[key], str):
                raise fail(f"{key!r} must be a string, got {type(data[key]).__name__}")
        for key in ("n_rows", *_OPTIONAL_INT):
            value = data.get(key)
            # bool is an int subclass; a card saying n_rows = true is a typo, not 1.
            if key in data and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise fail(f"{key!r} must be a non-negative integer, got {value!r}")
        if not isinstance(data["bundled"], bool):
            raise fail("'bundled' must be true or false")

        targets = _str_list(data["target_columns"], "target_columns", fail)
        # generative sets model the molecules themselves, temporal sets predict the events themselves
        if not targets and kind not in ("generation", "temporal"):
            raise fail("'target_columns' must not be empty")
        if len(set(targets)) != len(targets):
            raise fail("'target_columns' has duplicates; list each distinct column once")
        quirks = _str_list(data.get("quirks", []), "quirks", fail)
        columns = data.get("columns", {})
        if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
            raise fail("'columns' must be a table of column name = \"meaning\"")

        files = data.get("files", {})
        if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and _SHA256.match(v)
            and not k.startswith("/") and ".." not in PurePosixPath(k).parts
            for k, v in files.items()
        ):
            raise fail("'files' must be a table of \"relative/path\" = \"<sha256>\"")

        if kind not in KINDS:
            raise fail(f"'kind' must be one of {KINDS}, got {kind!r}")
        name = data["name"]
        if name != name.lower() or not name:
            raise fail(f"'name' must be a non-empty lower-case key, got {name!r}")
        sha = data["sha256"]
        if not _SHA256.match(sha):
            raise fail(f"'sha256' must be 64 lower-case hex digits, got {sha!r}")
        task_types, splits = KIND_RULES[kind]
        if data["task_type"] not in task_types:
            raise fail(f"'task_type' of a {kind} card must be one of {task_types}, got {data['task_type']!r}")
        if data["split"] not in splits:
            raise fail(f"'split' of a {kind} card must be one of {splits}, got {data['split']!r}")
        if data["n_rows"] == 0:
            raise fail("'n_rows' must be positive")

        if data["bundled"]:
            file = data.get("file", "")
            if not file or "/" in file or "\\" in file or file in (".", ".."):
                raise fail("bundled cards need 'file' = a plain file name next to card.toml")
        else:
            root_path = data.get("root_path", "")
            parts = PurePosixPath(root_path).parts
            if not root_path or root_path.startswith("/") or ".." in parts or "\\" in root_path:
                raise fail("non-bundled cards need 'root_path' = a relative POSIX path under the data root")

        return cls(
            name=name,
            title=data["title"],
            description=data["description"].strip(),
            source=data["source"].strip(),
            citation=data["citation"].strip(),
            license=data["license"].strip(),
            bundled=data["bundled"],
            sha256=sha,
            n_rows=data["n_rows"],
            smiles_column=data.get("smiles_column", ""),
            target_columns=tuple(targets),
            task_type=data["task_type"],
            split=data["split"],
            metric=data["metric"],
            file=data.get("file", ""),
            root_path=data.get("root_path", ""),
            url=data.get("url", ""),
            url_note=data.get("url_note", "").strip(),
            size_bytes=data.get("size_bytes"),
            rdkit_parse_failures=data.get("rdkit_parse_failures"),
            split_note=data.get("split_note", "").strip(),
            metric_note=data.get("metric_note", "").strip(),
            columns=MappingProxyType(dict(columns)),
            quirks=tuple(q.strip() for q in quirks),
            files=MappingProxyType(dict(files)),
            kind=kind,
            card_path=card_path,
        )


def _str_list(value: Any, key: str, fail: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(f"{key!r} must be a list of strings")
    return list(value)


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of re-hashing one dataset file.

    Attributes:
        name: dataset name.
        path: the file that was (or would have been) checked.
        status: ``"ok"``; ``"mismatch"`` (sha256 differs); ``"missing"`` (a bundled file is
            absent: a broken install); ``"absent"`` (a data-root file is not there: normal,
            not a failure).
        expected: sha256 from the card.
        actual: sha256 of the file, or None when it was not read.
        bundled: whether the dataset is bundled.
    """

    name: str
    path: Path
    status: str
    expected: str
    actual: str | None
    bundled: bool

    @property
    def failed(self) -> bool:
        """True for a checksum mismatch or a missing bundled file."""
        return self.status in ("mismatch", "missing")


# --------------------------------------------------------------------------------------------
# Finding cards


def bundled_dir() -> Path:
    """The folder holding ``<name>/card.toml`` (and bundled data files).

    Installed wheels carry it as ``molgraph/_bundled_datasets``; in a source checkout it is the
    repository's top-level ``datasets/`` folder.
    """
    packaged = Path(molgraph.__file__).parent / "_bundled_datasets"
    if packaged.is_dir():
        return packaged
    return Path(molgraph.__file__).resolve().parents[1] / "datasets"


@functools.lru_cache(maxsize=8)
def _cards_in(directory: Path) -> Mapping[str, DatasetCard]:
    # Cards are small and immutable at run time; parse each folder once per process.
    cards: dict[str, DatasetCard] = {}
    if not directory.is_dir():
        return MappingProxyType(cards)
    for card_file in sorted(directory.glob(f"*/{CARD_FILE}")):
        card = DatasetCard.from_toml(card_file)
        if card.name != card_file.parent.name:
            raise CardError(f"{card_file}: name {card.name!r} differs from its folder {card_file.parent.name!r}")
        cards[card.name] = card
    return MappingProxyType(cards)


def _cards(bundled: str | os.PathLike[str] | None = None) -> Mapping[str, DatasetCard]:
    directory = Path(bundled) if bundled is not None else bundled_dir()
    return _cards_in(directory.resolve())


def _cards_group(group: str, bundled: str | os.PathLike[str] | None = None) -> Mapping[str, DatasetCard]:
    directory = Path(bundled) if bundled is not None else bundled_dir()
    return _cards_in((directory / group).resolve())


def list_datasets(group: str = "") -> list[str]:
    """Names of datasets with a card, sorted.

    Args:
        group: ``""`` (default): the tabular molecule sets (cards at the top level, the sets
            :func:`load_dataset` featurizes); one of :data:`CARD_GROUPS` (``"3d"``,
            ``"graphs"``, ``"node_graphs"``, ``"temporal"``, ``"generation"``): that group;
            ``"all"``: every card.
    """
    if group == "":
        return sorted(_cards())
    if group == "all":
        return sorted([*_cards(), *(n for g in CARD_GROUPS for n in _cards_group(g))])
    if group not in CARD_GROUPS:
        raise ValueError(f"group must be '', 'all' or one of {CARD_GROUPS}, got {group!r}")
    return sorted(_cards_group(group))


def _cards_3d(bundled: str | os.PathLike[str] | None = None) -> Mapping[str, DatasetCard]:
    return _cards_group(CARDS_3D, bundled)


def list_3d_datasets() -> list[str]:
    """Names of the 3D datasets (cards under ``datasets/3d/``), sorted."""
    return sorted(_cards_3d())


def _cards_graphs(bundled: str | os.PathLike[str] | None = None) -> Mapping[str, DatasetCard]:
    return _cards_group(CARDS_GRAPHS, bundled)


def list_graph_datasets() -> list[str]:
    """Names of the graph-classification (non-molecule) datasets (cards under ``datasets/graphs/``), sorted."""
    return sorted(_cards_graphs())


def group_of(name: str, *, bundled: str | os.PathLike[str] | None = None) -> str:
    """The card group of dataset ``name``: ``""`` for the tabular sets, else one of :data:`CARD_GROUPS`."""
    key = name.strip().lower()
    if key in _cards(bundled):
        return ""
    for group in CARD_GROUPS:
        if key in _cards_group(group, bundled):
            return group
    raise KeyError(_unknown_message(name, bundled))


def _unknown_message(name: str, bundled: str | os.PathLike[str] | None) -> str:
    known = sorted(_cards(bundled)) + [n for g in CARD_GROUPS for n in sorted(_cards_group(g, bundled))]
    return f"unknown dataset {name!r}; known datasets: {', '.join(known) or '(none)'}"


def get_card(name: str, *, bundled: str | os.PathLike[str] | None = None) -> DatasetCard:
    """The card of dataset ``name`` (case-insensitive); tabular, 3D, graph, temporal ... sets alike.

    Args:
        name: dataset name, e.g. ``"ESOL"`` or ``"hiv"``.
        bundled: read cards from this folder instead of :func:`bundled_dir` (tests, tools).

    Raises:
        KeyError: unknown name; the message lists the known names.
    """
    cards = _cards(bundled)
    key = name.strip().lower()
    if key in cards:
        return cards[key]
    for group in CARD_GROUPS:
        in_group = _cards_group(group, bundled)
        if key in in_group:
            return in_group[key]
    raise KeyError(_unknown_message(name, bundled))


# --------------------------------------------------------------------------------------------
# Finding and checking files


def _expected_path(card: DatasetCard, root: str | os.PathLike[str] | None) -> Path:
    if card.bundled:
        assert card.card_path is not None, "bundled cards are always read from a card.toml"
        return card.card_path.parent / card.file
    return data_root(root) / PurePosixPath(card.root_path)


def expected_path(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Where dataset ``name``'s file is, or should be put; no existence or checksum check."""
    return _expected_path(get_card(name), root)


def _check_file(card: DatasetCard, path: Path) -> None:
    actual = sha256_file_cached(path)
    if actual != card.sha256:
        raise ChecksumError(
            f"{path} does not match the {card.name} card: sha256 {actual}, expected {card.sha256}. "
            f"The file is corrupted or a different version (source: {card.source}). "
            f"Replace it, or pass check=False to use it anyway."
        )


def _missing_message(card: DatasetCard, path: Path, root: str | os.PathLike[str] | None) -> str:
    if card.bundled:
        return (
            f"the bundled file of dataset {card.name!r} is missing: expected {path}. The molgraph "
            f"install is incomplete; reinstall it or restore datasets/{card.name}/{card.file} "
            f"from the repository."
        )
    how_root = (
        "the root= argument"
        if root is not None
        else (f"${DATA_ENV}" if os.environ.get(DATA_ENV) else f"the default (set ${DATA_ENV} to change it)")
    )
    lines = [
        f"dataset {card.name!r} is not bundled and its file is not in the data root.",
        f"  Put the file at: {path}",
        f"  (data root {data_root(root)} comes from {how_root}; the file's path under it is {card.root_path})",
        f"  Expected sha256: {card.sha256} ({card.size_bytes} bytes)" if card.size_bytes else f"  Expected sha256: {card.sha256}",
        f"  Where it comes from: {card.source}",
    ]
    if card.url:
        lines.append(f"  Or pass download=True to fetch it from {card.url} (checked against the sha256).")
        if card.url_note:
            lines.append(f"  Note: {card.url_note}")
    else:
        lines.append("  No download URL is known to serve this exact file" + (f": {card.url_note}" if card.url_note else "."))
    return "\n".join(lines)


def dataset_path(
    name: str,
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
    *,
    check: bool = True,
) -> Path:
    """Path of dataset ``name``'s data file, checked against the card's sha256.

    Bundled sets resolve to the file next to their card; other sets to
    ``data_root(root) / card.root_path``.

    Args:
        name: dataset name (case-insensitive).
        root: data root override (else ``$MOLGRAPH_DATA``, else the user cache).
        download: when a data-root file is absent, download it from ``card.url`` into the data
            root (kept only if its sha256 matches).
        check: verify the sha256 before first use (remembered per path, size and mtime).

    Raises:
        KeyError: unknown dataset.
        FileNotFoundError: the file is absent (and not downloaded); the message says where to
            put it and where it comes from.
        ChecksumError: the file (or the download) does not match the card.
    """
    card = get_card(name)
    path = _expected_path(card, root)
    if not path.is_file():
        if card.bundled or not download or not card.url:
            raise FileNotFoundError(_missing_message(card, path, root))
        download_file(card.url, path, card.sha256)
    if check:
        _check_file(card, path)
    return path


def dataset_file(
    name: str,
    relpath: str,
    root: str | os.PathLike[str] | None = None,
    *,
    check: bool = True,
) -> Path:
    """Path of one of the further files a multi-file card lists in ``[files]``, sha256-checked.

    Raises:
        KeyError: the card lists no such file.
        FileNotFoundError: the file is not in the data root (the message says where to put it).
        ChecksumError: its sha256 differs from the card's.
    """
    card = get_card(name)
    if relpath not in card.files:
        raise KeyError(f"dataset {card.name!r} lists no file {relpath!r}; it lists: {', '.join(card.files)}")
    if card.bundled:
        assert card.card_path is not None, "bundled cards are always read from a card.toml"
        path = card.card_path.parent / PurePosixPath(relpath)
        if not path.is_file():
            raise FileNotFoundError(_missing_message(card, path, root))
    else:
        path = data_root(root) / PurePosixPath(relpath)
    if not path.is_file():
        raise FileNotFoundError(
            f"file {relpath!r} of dataset {card.name!r} is not in the data root.\n"
            f"  Put it at: {path}\n  Expected sha256: {card.files[relpath]}\n  Where it comes from: {card.source}"
        )
    if check:
        actual = sha256_file_cached(path)
        if actual != card.files[relpath]:
            raise ChecksumError(
                f"{path} does not match the {card.name} card: sha256 {actual}, expected {card.files[relpath]}. "
                f"Replace it, or pass check=False to use it anyway."
            )
    return path


def verify(
    names: Iterable[str] | None = None,
    root: str | os.PathLike[str] | None = None,
    *,
    bundled: str | os.PathLike[str] | None = None,
) -> list[VerifyResult]:
    """Re-hash dataset files and compare them with their cards (no cached results are used).

    Args:
        names: datasets to check (case-insensitive); default all.
        root: data root for non-bundled sets (absent files are reported as ``"absent"``).
        bundled: folder of cards and bundled files to check instead of :func:`bundled_dir`.

    Returns:
        One :class:`VerifyResult` per dataset, in the order given (default: sorted by name).

    Raises:
        KeyError: an unknown name.
    """
    cards = _cards(bundled)
    selected = [get_card(n, bundled=bundled) for n in names] if names else [cards[k] for k in sorted(cards)]
    results = []
    for card in selected:
        path = _expected_path(card, root)
        if not path.is_file():
            status, actual = ("missing" if card.bundled else "absent"), None
        else:
            actual = sha256_file(path)
            status = "ok" if actual == card.sha256 else "mismatch"
        results.append(VerifyResult(card.name, path, status, card.sha256, actual, card.bundled))
    return results


def _call_loader(spec: str, *args: Any, **kwargs: Any) -> Any:
    """Call a ``"module:function"`` loader (imported on use: loaders pull in torch)."""
    import importlib

    module, func = spec.split(":")
    return getattr(importlib.import_module(module), func)(*args, **kwargs)


def load_dataset(
    name: str,
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
    **kwargs: Any,
) -> MoleculeCSVDataset:
    """Resolve dataset ``name`` (see :func:`dataset_path`) and load it as a ``MoleculeCSVDataset``.

    ``kwargs`` go to :class:`~molgraph.data.csv_dataset.MoleculeCSVDataset` (``featurizer``,
    ``n_jobs``, ``errors``, ``cache_dir``, ``force_reload``, ``progress``). For a set with a
    loader of its own (:data:`LOADERS`: 3D, graph, node-graph, temporal and generation sets)
    they go to that loader instead (e.g. :func:`molgraph.data.qm9.load_qm9`,
    :func:`molgraph.data.temporal.load_temporal`), which returns its own kind of object.
    """
    key = name.strip().lower()
    if key in LOADERS_3D:
        return _call_loader(LOADERS_3D[key], root=root, **kwargs)
    if key in LOADERS:
        return _call_loader(LOADERS[key], key, root=root, **kwargs)
    # Imported here: csv_dataset pulls in RDKit/torch, and the registry must stay light for the CLI.
    from molgraph.data.csv_dataset import MoleculeCSVDataset

    card = get_card(name)
    path = dataset_path(card.name, root=root, download=download)
    return MoleculeCSVDataset(
        path,
        card.smiles_column,
        list(card.target_columns),
        card.task_type,
        name=card.name,
        **kwargs,
    )


# --------------------------------------------------------------------------------------------
# The DATASETS registry


@dataclass(frozen=True)
class RegisteredDataset:
    """What :data:`molgraph.registry.DATASETS` holds for one dataset.

    Attributes:
        name: the dataset's name (its card's).
        group: ``""`` for the tabular molecule sets, else its :data:`CARD_GROUPS` folder.
        kind: the card's kind (:data:`KINDS`).
        loader: ``"module:function"`` that loads it (the tabular sets:
            :class:`~molgraph.data.csv_dataset.MoleculeCSVDataset` through :func:`load_dataset`).
    """

    name: str
    group: str
    kind: str
    loader: str

    @property
    def card(self) -> DatasetCard:
        return get_card(self.name)

    def load(self, root: str | os.PathLike[str] | None = None, **kwargs: Any) -> Any:
        """Load the set (:func:`load_dataset`): ``root`` and ``kwargs`` go to its loader."""
        return load_dataset(self.name, root=root, **kwargs)


def _register_cards() -> None:
    """Register every card found in :func:`bundled_dir` (tabular sets first, then each group)."""
    from molgraph.registry import DATASETS

    for group in ("", *CARD_GROUPS):
        cards = _cards() if group == "" else _cards_group(group)
        for name in sorted(cards):
            card = cards[name]
            loader = LOADERS.get(name, "molgraph.data.csv_dataset:MoleculeCSVDataset")
            DATASETS.register(name, RegisteredDataset(name, group, card.kind, loader),
                              help=f"{group or 'molecules'}: {card.title}", overwrite=True)


_register_cards()
