"""CGCF energy network trained against ETKDG+MMFF94 conformers (``energy_noise = "etkdg"``): the
conditional NCE loss, the ranking groups, the frozen-flow reuse (``--flow-from``); the learning
check on real QM9 is slow."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import AllChem, rdForceFieldHelpers

from molgraph.conformers import rmsd_matrix
from molgraph.methods.cgcf.config import FLOW_FIELDS, CGCFConfig
from molgraph.methods.cgcf.flow import DistanceFlow
from molgraph.methods.cgcf.graph import extended_graph
from molgraph.methods.cgcf.model import CGCFModel, _with_conformers, load_model, save_model
from molgraph.methods.cgcf.train import etkdg_groups, ranking_loss


def test_ranking_loss_exact_values_and_per_molecule_offsets_cancel():
    e = torch.tensor([0.0, 1.0, 2.0, 5.0, 3.0])
    loss = ranking_loss(e, [3, 2])
    first = math.log(1 + math.exp(-1) + math.exp(-2))  # data energy 0 among 0, 1, 2
    second = math.log(math.exp(-5) + math.exp(-3)) + 5  # data energy 5 among 5, 3
    assert float(loss) == pytest.approx((first + second) / 2, rel=1e-6)
    shifted = e + torch.tensor([7.0, 7.0, 7.0, -4.0, -4.0])
    assert float(ranking_loss(shifted, [3, 2])) == pytest.approx(float(loss), rel=1e-6)


def _minimum(smiles: str, seed: int = 11) -> Chem.Mol:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    assert AllChem.EmbedMolecule(mol, randomSeed=seed) == 0
    return mol


def test_etkdg_groups_relax_the_data_and_keep_only_other_conformers_as_noise():
    # a flexible molecule (a "DFT" geometry stand-in: one embedding, deliberately not relaxed)
    mol = _minimum("OCCCCCO")
    group_list, skipped = etkdg_groups([mol], [extended_graph(mol)], pool=10, same_rmsd=0.25, seed=3)
    assert skipped == {"no_mmff_parameters": 0, "no_conformer": 0, "no_other_conformer": 0}
    (g,) = group_list
    assert g.pool.shape == (10, mol.GetNumAtoms(), 3) and g.pool_rmsd_dft.shape == (10,)
    assert g.pool_mmff.shape == (10,)
    data = Chem.Mol(mol)
    data.GetConformer().SetPositions(g.data)
    # the data conformer is an MMFF94 minimum: relaxing it again barely changes its energy
    work = Chem.Mol(data)  # the force field holds a reference: keep the molecule alive
    props = rdForceFieldHelpers.MMFFGetMoleculeProperties(work)
    ff = rdForceFieldHelpers.MMFFGetMoleculeForceField(work, props)
    e0 = ff.CalcEnergy()
    ff.Minimize(maxIts=500)
    assert e0 - ff.CalcEnergy() < 0.05
    # every noise conformer is a different conformer: heavy-atom RMSD above the threshold
    noise = _with_conformers(mol, g.noise)
    assert 0 < len(g.noise) <= 10
    assert (rmsd_matrix(noise, data)[0][:, 0] > 0.25).all()
    # and the pool's RMSDs are to the unrelaxed input geometry
    pool = _with_conformers(mol, g.pool)
    np.testing.assert_allclose(rmsd_matrix(pool, mol)[0][:, 0], g.pool_rmsd_dft, atol=1e-9)


def test_etkdg_groups_skip_a_rigid_molecule_with_a_reason():
    mol = _minimum("c1ccccc1")
    groups, skipped = etkdg_groups([mol], [extended_graph(mol)], pool=4, same_rmsd=0.25, seed=3)
    assert groups == [] and skipped["no_other_conformer"] == 1


def test_config_names_a_bad_energy_noise():
    with pytest.raises(ValueError, match="energy_noise"):
        CGCFConfig(energy_noise="mmff").validate()
    with pytest.raises(ValueError, match="energy_pool"):
        CGCFConfig(energy_pool=1).validate()


@pytest.mark.slow
def test_energy_on_a_frozen_flow_learns_to_rank_held_out_etkdg_conformers(data_root, tmp_path):
    from molgraph.methods.cgcf.train import train_cgcf

    torch.manual_seed(0)
    base_config = CGCFConfig(hidden=8, layers=1, eval_solver="rk4", eval_steps=2, n_train=400, seed=2)
    base = CGCFModel(base_config, DistanceFlow(8, 1, 0.5), None, {"flow": {"val_nll_per_edge": 1.5}})
    save_model(tmp_path / "base.pt", base)
    # hidden/layers/n_train here differ from the base run: the flow's settings must win
    config = CGCFConfig(hidden=64, layers=3, n_train=20000, energy_noise="etkdg", nce_molecules=400, n_val=80,
                        energy_pool=8, energy_epochs=12, energy_hidden=32, energy_layers=2, energy_lr=1e-3,
                        batch_size=16, energy_max_minutes=5)
    model = train_cgcf(config, tmp_path / "run", data_root=data_root, flow_from=tmp_path / "base.pt",
                       say=lambda _: None)
    loaded = load_model(tmp_path / "run")
    for name in FLOW_FIELDS:
        assert getattr(loaded.config, name) == getattr(base_config, name), name
    for k, v in base.flow.state_dict().items():
        assert torch.equal(loaded.flow.state_dict()[k], v), k
    info = model.info["energy"]
    assert info["mode"] == "etkdg" and info["n_val_molecules"] >= 20
    # held-out molecules: after training, the relaxed DFT conformer gets a lower energy than its
    # ETKDG+MMFF conformers more often than chance and than with the untrained network, and the
    # held-out loss falls. At this scale (400 molecules, 12 epochs) the gain is small (0.52 -> 0.54);
    # the full run's is 0.51 -> 0.66 (docs/cgcf.md).
    assert info["heldout_nce_accuracy"] > max(0.5, info["heldout_untrained"]["pairwise_accuracy"])
    assert info["kept_epoch"] >= 1 and info["heldout"]["loss"] < info["heldout_untrained"]["loss"]
