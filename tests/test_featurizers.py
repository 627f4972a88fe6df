"""Atom/bond featurizers and MolGraphFeaturizer: exact values, presets, configs, invariances."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import AllChem
from torch_geometric.utils import from_smiles

from molgraph.chem import MoleculeError
from molgraph.data.registry import dataset_path
from molgraph.featurizers import AtomFeaturizer, BondFeaturizer, Feature, MolGraphFeaturizer


def test_ogb_preset_exact_values_for_ethanol() -> None:
    data = MolGraphFeaturizer.ogb()("CCO")
    # OGB codes: atomic_num-1, chirality, total degree, charge+5, total Hs, radicals, hybridization
    # (SP3 -> 2), aromatic, ring
    assert data.x.tolist() == [
        [5, 0, 4, 5, 3, 0, 2, 0, 0],
        [5, 0, 4, 5, 2, 0, 2, 0, 0],
        [7, 0, 2, 5, 1, 0, 2, 0, 0],
    ]
    assert data.edge_index.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]]
    assert data.edge_attr.tolist() == [[0, 0, 0]] * 4
    assert data.smiles == "CCO"
    assert data.x.dtype == torch.long and data.edge_attr.dtype == torch.long


def test_ogb_aromatic_charged_and_unknown_values() -> None:
    fz = MolGraphFeaturizer.ogb()
    pyridinium = fz("c1cc[nH+]cc1")
    n = pyridinium.x[3].tolist()
    assert n == [6, 0, 3, 6, 1, 0, 1, 1, 1]  # N, degree 3 (2 + H), charge +1, SP2, aromatic, ring
    assert pyridinium.edge_attr[:, 0].tolist() == [3] * 12  # all aromatic
    assert pyridinium.edge_attr[:, 2].tolist() == [1] * 12  # conjugated
    # wildcard atom (atomic number 0) falls into OGB's "misc" slot, the last code
    assert fz("*C").x[0, 0].item() == 118
    assert AtomFeaturizer.ogb().cardinalities == [119, 5, 12, 12, 10, 6, 6, 2, 2]
    assert BondFeaturizer.ogb().cardinalities == [5, 6, 2]


def test_stereo_features() -> None:
    fz = MolGraphFeaturizer.ogb()
    chiral = fz("C[C@H](N)O")
    assert chiral.x[1, 1].item() in (1, 2)  # CW or CCW, not unspecified
    assert fz("C[C@H](N)O").x[1, 1] != fz("C[C@@H](N)O").x[1, 1]
    trans = fz("C/C=C/C")
    double = trans.edge_attr[2]  # bond 1 (the double bond) -> edges 2 and 3
    assert double[0].item() == 1 and double[1].item() in (2, 4)  # DOUBLE; STEREOE or STEREOTRANS


def test_no_unknown_slot_raises_molecule_error_naming_the_value() -> None:
    strict = MolGraphFeaturizer(
        AtomFeaturizer([Feature("atomic_num", (6, 8), unknown_slot=False)]), BondFeaturizer.ogb()
    )
    assert strict("CCO").x.tolist() == [[0], [0], [1]]
    with pytest.raises(MoleculeError, match="atomic_num=7"):
        strict("CCN", index=5)


def _sorted_edges(data):
    n = data.num_nodes
    key = data.edge_index[0] * n + data.edge_index[1]
    perm = key.argsort()
    return data.edge_index[:, perm], data.edge_attr[perm]


def _pyg_equal(smiles_list) -> int:
    fz = MolGraphFeaturizer.pyg()
    checked = 0
    for smiles in smiles_list:
        if Chem.MolFromSmiles(smiles) is None:
            continue
        ours, theirs = fz(smiles), from_smiles(smiles)
        assert torch.equal(ours.x, theirs.x), smiles
        ei, ea = _sorted_edges(ours)
        assert torch.equal(ei, theirs.edge_index), smiles
        assert torch.equal(ea, theirs.edge_attr), smiles
        checked += 1
    return checked


def test_pyg_preset_equals_pyg_from_smiles_on_esol_and_tox21() -> None:
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    esol = pd.read_csv(dataset_path("esol"))["smiles"].tolist()
    tox21 = pd.read_csv(dataset_path("tox21"))["smiles"].tolist()
    stereo = [s for s in tox21 if "@" in s or "/" in s][:300]
    assert len(stereo) > 100
    assert _pyg_equal(esol) == 1128
    assert _pyg_equal(stereo) == len(stereo)


def test_smiles_shortcuts_equal_the_molecule_path() -> None:
    # SMILES input skips the chirality/stereo getters and reads bond types as floats when the
    # text proves it safe; a Mol input always asks RDKit the slow way: both must agree everywhere
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    smiles = pd.read_csv(dataset_path("esol"))["smiles"].tolist()
    smiles += pd.read_csv(dataset_path("tox21"))["smiles"].tolist()[:3000]
    smiles += ["C[C@H](N)O", "C/C=C/C", r"F/C=C\F", "[NH3]->[Pt](Cl)(Cl)<-[NH3]", "C$C", "CC |$R;$|"]
    for preset in ("ogb", "multihot"):
        fz = MolGraphFeaturizer.from_preset(preset)
        for s in smiles:
            mol = Chem.MolFromSmiles(s)
            if mol is None:
                continue
            a, b = fz(s), fz(mol)
            assert torch.equal(a.x, b.x) and torch.equal(a.edge_attr, b.edge_attr), (preset, s)
    dative = MolGraphFeaturizer.pyg()("[NH3]->[Pt](Cl)(Cl)<-[NH3]")
    assert dative.edge_attr[:, 0].tolist().count(17) == 4  # PyG's DATIVE code, both directions


def test_multihot_preset_layout() -> None:
    fz = MolGraphFeaturizer.multihot()
    assert fz.atom_dim == 72 and fz.bond_dim == 14
    data = fz("CC(=O)Oc1ccccc1C(=O)O")
    assert data.x.dtype == torch.float32
    onehot = data.x[:, :-2]  # minus the aromatic bit and the mass column
    assert torch.equal(onehot.sum(1), torch.full((data.num_nodes,), 6.0))  # one hot per block
    aromatic = data.x[:, -2]
    assert aromatic.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0]
    assert data.x[0, -1].item() == pytest.approx(0.12011, abs=1e-4)  # carbon mass / 100
    # bond: type block (5) + conjugated bit + ring bit + stereo block (7): two one-hots plus the bits
    assert torch.equal(data.edge_attr.sum(1), 2.0 + data.edge_attr[:, 5:7].sum(1))


@pytest.mark.parametrize("preset", ["ogb", "pyg", "multihot"])
def test_config_round_trip(preset: str) -> None:
    fz = MolGraphFeaturizer.from_preset(preset)
    config = json.loads(json.dumps(fz.to_config()))
    back = MolGraphFeaturizer.from_config(config)
    assert back.atom_featurizer == fz.atom_featurizer and back.bond_featurizer == fz.bond_featurizer
    a, b = fz("O=C(O)c1ccccc1[C@H](N)C=C"), back("O=C(O)c1ccccc1[C@H](N)C=C")
    assert torch.equal(a.x, b.x) and torch.equal(a.edge_attr, b.edge_attr)


def test_edges_come_in_reverse_pairs() -> None:
    data = MolGraphFeaturizer.ogb()("CC(=O)Nc1ccc(O)cc1")
    e = torch.arange(data.num_edges)
    assert torch.equal(data.edge_index[:, e ^ 1], data.edge_index.flip(0))
    assert torch.equal(data.edge_attr[e ^ 1], data.edge_attr)
    assert data.num_edges == 2 * Chem.MolFromSmiles("CC(=O)Nc1ccc(O)cc1").GetNumBonds()


def test_atom_renumbering_permutes_the_graph_consistently() -> None:
    mol = Chem.MolFromSmiles("CC(=O)Nc1ccc(O)cc1")
    perm = list(np.random.default_rng(0).permutation(mol.GetNumAtoms()))
    shuffled = Chem.RenumberAtoms(mol, [int(i) for i in perm])
    fz = MolGraphFeaturizer.ogb()
    a, b = fz(mol), fz(shuffled)
    # new atom k is old atom perm[k]
    assert torch.equal(b.x, a.x[perm])
    old_of_new = torch.tensor(perm)
    edges_a = {(int(i), int(j), tuple(f.tolist())) for (i, j), f in zip(a.edge_index.t(), a.edge_attr)}
    edges_b = {(int(old_of_new[i]), int(old_of_new[j]), tuple(f.tolist())) for (i, j), f in zip(b.edge_index.t(), b.edge_attr)}
    assert edges_a == edges_b


def test_positions_when_the_molecule_has_a_3d_conformer() -> None:
    mol = Chem.AddHs(Chem.MolFromSmiles("CCO"))
    AllChem.EmbedMolecule(mol, randomSeed=1)
    data = MolGraphFeaturizer.ogb()(mol)
    assert data.pos.shape == (9, 3) and data.pos.dtype == torch.float32
    assert data.z.tolist() == [6, 6, 8, 1, 1, 1, 1, 1, 1]
    assert np.allclose(data.pos.numpy(), mol.GetConformer().GetPositions(), atol=1e-5)
    assert "pos" not in MolGraphFeaturizer.ogb()("CCO")
    assert "pos" not in MolGraphFeaturizer.ogb(positions=False)(mol)


def test_single_atom_and_bad_inputs() -> None:
    fz = MolGraphFeaturizer.ogb()
    single = fz("[Na+]")
    assert single.x.shape == (1, 9) and single.edge_index.shape == (2, 0) and single.edge_attr.shape == (0, 3)
    with pytest.raises(MoleculeError, match="unclosed ring"):
        fz("C1CC", index=2)
    with pytest.raises(MoleculeError):
        fz(42)  # type: ignore[arg-type]


def test_fast_data_constructor_matches_the_public_one() -> None:
    from torch_geometric.data import Batch, Data

    from molgraph.featurizers.graph import _new_data_direct

    g = MolGraphFeaturizer.ogb().arrays("CC(=O)Oc1ccccc1C(=O)O")
    fields = {"x": torch.from_numpy(g.x), "edge_index": torch.from_numpy(g.edge_index),
              "edge_attr": torch.from_numpy(g.edge_attr), "smiles": g.smiles}
    fast, public = _new_data_direct(dict(fields)), Data(**fields)
    assert fast.keys() == public.keys() and fast.num_nodes == public.num_nodes == 13
    batch_fast, batch_public = Batch.from_data_list([fast, fast]), Batch.from_data_list([public, public])
    assert torch.equal(batch_fast.edge_index, batch_public.edge_index)
    assert torch.equal(batch_fast.batch, batch_public.batch)
    fast.y = torch.ones(1, 1)  # later assignments still go through PyG's normal path
    assert "y" in fast.keys()
