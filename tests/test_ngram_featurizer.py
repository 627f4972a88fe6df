"""The ``ngram`` atom preset and the H-bond donor/acceptor flags behind it."""

from __future__ import annotations

import os

import numpy as np
import pytest
from rdkit import Chem, RDConfig
from rdkit.Chem import ChemicalFeatures

from molgraph.data.registry import dataset_path, get_card
from molgraph.data.table import read_molecule_table
from molgraph.featurizers import AtomFeaturizer
from molgraph.featurizers.hbond import hbond_flags, is_hbond_acceptor
from molgraph.methods.ngram.embedding import ngram_graph_featurizer


def _factory_flags(mol: Chem.Mol) -> tuple[np.ndarray, np.ndarray]:
    factory = ChemicalFeatures.BuildFeatureFactory(os.path.join(RDConfig.RDDataDir, "BaseFeatures.fdef"))
    acc = np.zeros(mol.GetNumAtoms(), bool)
    don = np.zeros(mol.GetNumAtoms(), bool)
    for feat in factory.GetFeaturesForMol(mol):
        if feat.GetFamily() == "Acceptor":
            acc[list(feat.GetAtomIds())] = True
        elif feat.GetFamily() == "Donor":
            don[list(feat.GetAtomIds())] = True
    return acc, don


def test_hbond_flags_equal_rdkit_feature_factory_on_esol() -> None:
    card = get_card("esol")
    smiles = read_molecule_table(dataset_path("esol"), card.smiles_column).smiles
    for smi in smiles[::6]:
        mol = Chem.MolFromSmiles(smi)
        acc, don = hbond_flags(mol)
        ref_acc, ref_don = _factory_flags(mol)
        assert acc.tolist() == ref_acc.tolist(), smi
        assert don.tolist() == ref_don.tolist(), smi


def test_per_atom_getter_uses_whole_molecule_flags() -> None:
    mol = Chem.MolFromSmiles("OC(=O)c1ccncc1N")
    assert [is_hbond_acceptor(a) for a in mol.GetAtoms()] == hbond_flags(mol)[0].tolist()
    # the cached private property does not leak into written files
    assert "molgraph" not in Chem.MolToMolBlock(mol)


def test_ngram_preset_layout_and_exact_rows() -> None:
    fz = AtomFeaturizer.from_preset("ngram")
    assert fz.dim == 39 and fz.cardinalities == [10, 7, 7, 6, 6, 2, 2, 2]
    assert AtomFeaturizer.from_config(fz.to_config()) == fz
    mol = Chem.MolFromSmiles("[Si](C)(C)(C)c1ccc[nH+]c1")
    x = fz.encode(list(mol.GetAtoms()))
    cols = lambda row: np.flatnonzero(row).tolist()  # noqa: E731
    # Si: unknown element (col 9), degree 4 (10 + 4), 0 H (17), implicit valence 0 (24),
    # charge 0 (30 + 2); not aromatic, not acceptor, not donor
    assert cols(x[0]) == [9, 14, 17, 24, 32]
    # the pyridinium N: element N (1), degree 2 (12), 1 H (18); the H is written in the
    # bracket, so implicit valence 0 (24); charge +1 (30 + 3), aromatic (36); charged aromatic
    # N is neither acceptor nor donor in BaseFeatures.fdef
    assert cols(x[-2]) == [1, 12, 18, 24, 33, 36]
    # methyl C: C (0), degree 1 (11), 3 H (20), implicit valence 3 (27), charge 0 (32)
    assert cols(x[1]) == [0, 11, 20, 27, 32]
    charged = Chem.MolFromSmiles("[Fe+3]")
    assert cols(fz.encode(list(charged.GetAtoms()))[0]) == [9, 10, 17, 24, 35]  # charge +3: unknown slot


def test_graph_featurizer_has_no_bond_columns_but_all_edges() -> None:
    g = ngram_graph_featurizer().arrays("CC(=O)O")
    assert g.x.shape == (4, 39) and g.edge_attr.shape == (6, 0)
    assert sorted(map(tuple, g.edge_index.T.tolist())) == [(0, 1), (1, 0), (1, 2), (1, 3), (2, 1), (3, 1)]


@pytest.mark.parametrize("name", ["ogb", "pyg", "multihot", "ngram"])
def test_every_atom_preset_is_listed(name: str) -> None:
    assert AtomFeaturizer.from_preset(name).preset == name
