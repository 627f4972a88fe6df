"""MOSES molecule sets for generative models: parts, provenance, registry."""

from __future__ import annotations

import gzip

import pytest

from molgraph.data.moses import MOSES_PARTS, load_moses
from molgraph.data.registry import get_card, list_datasets, load_dataset
from molgraph.registry import DATASETS

ELEMENTS = {"C", "N", "O", "F", "S", "Cl", "Br"}


def test_card_and_registry() -> None:
    card = get_card("MOSES")
    assert card.kind == "generation" and card.split == "fixed" and card.target_columns == ()
    assert card.root_path == MOSES_PARTS["train"] and set(card.files) == {MOSES_PARTS["test"], MOSES_PARTS["test_scaffolds"]}
    assert list_datasets("generation") == ["moses"] and DATASETS["moses"].loader == "molgraph.data.moses:load_moses"


def test_missing_file_and_bad_arguments(no_data_root) -> None:
    with pytest.raises(FileNotFoundError, match="zinc/moses/test.csv.gz"):
        load_moses(part="test")
    with pytest.raises(ValueError, match="unknown MOSES part 'valid'"):
        load_moses(part="valid")
    with pytest.raises(ValueError, match="limit"):
        load_moses(part="test", limit=-1)


def test_test_parts_with_provenance(data_root) -> None:
    from rdkit import Chem

    test = load_dataset("moses", part="test")  # through the registry
    assert len(test) == 176074 and test.complete and test.part == "test"
    assert test.path == data_root / MOSES_PARTS["test"]
    assert test.sha256 == get_card("moses").files[MOSES_PARTS["test"]]
    with gzip.open(test.path, "rt") as fh:
        lines = fh.read().splitlines()
    assert lines[0] == "SMILES" and test.smiles[0] == lines[1] and test.smiles[-1] == lines[-1]
    for smiles in test.smiles[::2000]:  # 89 molecules spread over the file
        mol = Chem.MolFromSmiles(smiles)
        assert mol is not None and {a.GetSymbol() for a in mol.GetAtoms()} <= ELEMENTS
    scaffolds = load_moses(part="test_scaffolds")
    assert len(scaffolds) == 176225 and not set(scaffolds.smiles[:1000]) & set(test.smiles)


def test_train_head_without_reading_it_all(data_root) -> None:
    head = load_moses(part="train", limit=1000)
    assert len(head) == 1000 and not head.complete and head.sha256 == get_card("moses").sha256
    assert head[0] == "CCCS(=O)c1ccc2[nH]c(=NC(=O)OC)[nH]c2c1"


def test_whole_train_part(data_root) -> None:
    train = load_moses(part="train")  # 1.6 million rows, about 2 s
    assert len(train) == get_card("moses").n_rows == 1584663 and train.complete
