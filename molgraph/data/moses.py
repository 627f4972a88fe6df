"""Unlabelled molecule sets for generative models: MOSES (train, test, scaffold test).

MOSES (Polykovskiy et al. 2020) is a benchmark of molecules drawn from ZINC Clean Leads, in three
fixed parts: ``train`` (1,584,663 SMILES), ``test`` (176,074) and ``test_scaffolds`` (176,225,
scaffolds absent from train). The files hold one ``SMILES`` column; every SMILES parses in RDKit,
no train SMILES carries a formal charge, and they use 7 elements (C, N, O, F, S, Cl, Br), with 8
to 26 heavy atoms in a 1-in-10 sample of train (notes in the shared folder, ``graphcnf.md``). A :class:`MoleculeSet` is the SMILES of one
part with its provenance (path and sha256, checked against the card before reading).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

from molgraph.data.registry import dataset_file, dataset_path, get_card
from molgraph.data.sources import sha256_file_cached
from molgraph.data.table import iter_smiles_column

__all__ = ["MOSES_PARTS", "MoleculeSet", "load_moses"]

# part -> file under the data root (train is the card's root_path, the others are in its [files])
MOSES_PARTS: Mapping[str, str] = {
    "train": "zinc/moses/train.csv.gz",
    "test": "zinc/moses/test.csv.gz",
    "test_scaffolds": "zinc/moses/test_scaffolds.csv.gz",
}


@dataclass(frozen=True, eq=False)
class MoleculeSet:
    """The SMILES of one part of an unlabelled molecule set, with where they came from.

    Attributes:
        name: dataset name (``"moses"``).
        part: which part (``"train"``, ``"test"``, ``"test_scaffolds"``).
        smiles: the SMILES strings, in file order (``limit`` may have cut the list).
        path: the file read.
        sha256: its sha256 (equal to the card's).
        complete: false when ``limit`` stopped the reading early.
    """

    name: str
    part: str
    smiles: list[str] = field(repr=False)
    path: Path
    sha256: str
    complete: bool = True

    def __len__(self) -> int:
        return len(self.smiles)

    def __getitem__(self, i: int) -> str:
        return self.smiles[i]

    def __iter__(self) -> Iterator[str]:
        return iter(self.smiles)

    @property
    def provenance(self) -> dict[str, str]:
        return {str(self.path): self.sha256}

    def __repr__(self) -> str:
        more = "" if self.complete else ", first rows only"
        return f"MoleculeSet({self.name}/{self.part}: {len(self)} SMILES{more}, {self.path})"


def load_moses(
    name: str = "moses",
    root: str | os.PathLike[str] | None = None,
    *,
    part: str = "train",
    limit: int | None = None,
) -> MoleculeSet:
    """Read one MOSES part from the data root (``zinc/moses/``), sha256-checked.

    Args:
        name: the dataset name (``"moses"``; the registry passes it).
        root: data root (else ``$MOLGRAPH_DATA``, else the user cache).
        part: ``"train"``, ``"test"`` or ``"test_scaffolds"``.
        limit: read only the first ``limit`` molecules (the file is still checksummed whole).

    Raises:
        ValueError: unknown part or bad limit. FileNotFoundError / ChecksumError: as
        :func:`~molgraph.data.registry.dataset_path`.
    """
    card = get_card(name)
    if card.name != "moses":
        raise KeyError(f"load_moses reads the MOSES files, not {name!r}")
    if part not in MOSES_PARTS:
        raise ValueError(f"unknown MOSES part {part!r}; choose from {', '.join(MOSES_PARTS)}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
    rel = MOSES_PARTS[part]
    path = dataset_path(card.name, root=root) if rel == card.root_path else dataset_file(card.name, rel, root=root)
    smiles: list[str] = []
    for s in iter_smiles_column(path, card.smiles_column):
        if limit is not None and len(smiles) == limit:
            return MoleculeSet(card.name, part, smiles, path, sha256_file_cached(path), complete=False)
        smiles.append(s)
    return MoleculeSet(card.name, part, smiles, path, sha256_file_cached(path))
