"""CGCF: extended graph, flow (invertibility, change of variables, permutation), distance geometry
(recovery, chirality), seeded generation, model file, CLI errors. The NCE check on real QM9 is slow."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import AllChem

from molgraph.methods.cgcf.config import CGCFConfig
from molgraph.methods.cgcf.distgeom import embed_distances
from molgraph.methods.cgcf.flow import DistanceFlow
from molgraph.methods.cgcf.graph import collate, extended_graph
from molgraph.methods.cgcf.model import CGCFModel, load_model, save_model


def _embedded(smiles: str, seed: int = 7) -> Chem.Mol:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    assert AllChem.EmbedMolecule(mol, randomSeed=seed) == 0
    return mol


def _kabsch_rmsd(p: np.ndarray, q: np.ndarray) -> float:
    """Proper-rotation RMSD (no reflection): a mirror image does not count as a match."""
    p, q = p - p.mean(0), q - q.mean(0)
    u, s, vt = np.linalg.svd(p.T @ q)
    s[-1] *= np.sign(np.linalg.det(u @ vt))
    return math.sqrt(max(((p**2).sum() + (q**2).sum() - 2 * s.sum()) / len(p), 0.0))


def _small_flow(seed: int = 0) -> DistanceFlow:
    torch.manual_seed(seed)
    flow = DistanceFlow(hidden=8, layers=2, integration_time=0.5).double().eval()
    # move every weight off its initial value so the test does not pass on a near-identity map
    with torch.no_grad():
        for p in flow.dynamics.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return flow


# -- extended graph ------------------------------------------------------------------------------------
def test_extended_graph_edges_orders_and_types_of_butene_nitrile():
    mol = Chem.MolFromSmiles("C=CC#N")  # heavy atoms only: a path 0=1-2#3
    g = extended_graph(mol)
    assert g.edges.tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    assert g.order.tolist() == [1, 2, 3, 1, 2, 1]
    # bonds: double 1, single 0, triple 2; 2-hop type 4, 3-hop type 5
    assert g.etype.tolist() == [1, 4, 5, 0, 4, 2]


def test_extended_graph_stops_at_three_hops_and_counts_hydrogens():
    g = extended_graph(Chem.MolFromSmiles("CCCCC"))  # pentane path: 0-4 are 4 bonds apart
    assert [0, 4] not in g.edges.tolist() and [0, 3] in g.edges.tolist()
    methane = extended_graph(Chem.AddHs(Chem.MolFromSmiles("C")))
    assert methane.n_atoms == 5 and methane.n_edges == 10  # 4 C-H bonds + 6 H..H 2-hop pairs
    assert sorted(methane.order.tolist()) == [1] * 4 + [2] * 6
    ring = extended_graph(Chem.MolFromSmiles("C1CC1"))
    assert ring.order.tolist() == [1, 1, 1]  # every pair is bonded: the shortest hop count wins


def test_collate_offsets_atoms_and_keeps_edge_order():
    a, b = extended_graph(Chem.MolFromSmiles("CC")), extended_graph(Chem.MolFromSmiles("CCC"))
    batch = collate([a, b])
    assert batch.edges.tolist() == [[0, 1], [2, 3], [2, 4], [3, 4]]
    assert batch.edge_batch.tolist() == [0, 1, 1, 1] and batch.n_graphs == 2
    assert batch.pair_index.shape[1] == 2 + 6  # ordered pairs i != j per molecule


def test_extended_graph_rejects_a_dative_bond():
    mol = Chem.MolFromSmiles("[NH3]->[Cu]", sanitize=False)
    with pytest.raises(ValueError, match="bond 0-1 has type DATIVE"):
        extended_graph(mol)


# -- flow ----------------------------------------------------------------------------------------------
def test_flow_is_invertible_and_log_likelihood_matches_the_brute_force_jacobian():
    flow = _small_flow()
    g = collate([extended_graph(_embedded("O"))])  # water: 3 edges (2 bonds, 1 angle)
    x = torch.tensor([0.3, -1.1, 0.7], dtype=torch.float64)
    tol = {"atol": 1e-10, "rtol": 1e-10}
    z0, _ = flow.encode(x, g, trace="exact", **tol)
    assert torch.allclose(flow.decode(z0, g, **tol), x, atol=1e-6)
    assert not torch.allclose(z0, x, atol=1e-2)  # a map that does something
    jac = torch.autograd.functional.jacobian(lambda z: flow.decode(z, g, **tol), z0)
    log_base = -0.5 * (z0**2 + math.log(2 * math.pi)).sum()
    expected = log_base - torch.logdet(jac) - torch.log(flow.std[g.etype]).sum()
    d = flow.unstandardize(x, g)
    got = flow.log_prob(d, g, trace="exact", **tol)
    assert got.item() == pytest.approx(expected.item(), abs=1e-6)


def test_flow_decode_encode_round_trip_on_a_drug_size_graph_within_1e_3():
    flow = DistanceFlow(hidden=16, layers=3).eval()
    torch.manual_seed(1)
    g = collate([extended_graph(_embedded("CC(=O)Nc1ccc(O)cc1"))])
    z0 = torch.randn(len(g.etype))
    with torch.no_grad():
        x = flow.decode(z0, g)
    back, _ = flow.encode(x, g, create_graph=False)
    assert (back - z0).abs().max().item() < 1e-3


def test_hutchinson_estimate_is_unbiased_for_the_exact_trace():
    flow = _small_flow(3)
    water = extended_graph(_embedded("O"))
    g = collate([water])
    d = flow.unstandardize(torch.tensor([0.2, 0.4, -0.5], dtype=torch.float64), g)
    exact = flow.log_prob(d, g, trace="exact", solver="rk4", steps=4).item()
    torch.manual_seed(0)
    many = collate([water] * 400)  # 400 copies in one batch: one independent probe each
    est = flow.log_prob(d.repeat(400), many, solver="rk4", steps=4).detach().numpy()
    assert np.mean(est) == pytest.approx(exact, abs=4 * np.std(est) / math.sqrt(400) + 1e-6)
    assert np.std(est) > 0  # the probe really varies


def test_a_permuted_molecule_gets_the_same_log_likelihood():
    flow = _small_flow(5)
    mol = _embedded("CO")  # methanol with hydrogens: 6 atoms
    perm = [4, 1, 5, 0, 3, 2]
    permuted = Chem.RenumberAtoms(mol, perm)
    vals = []
    for m in (mol, permuted):
        g = extended_graph(m)
        batch = collate([g])
        d = torch.from_numpy(g.distances())
        vals.append(flow.log_prob(d, batch, trace="exact", solver="rk4", steps=4).item())
    assert extended_graph(permuted).z.tolist() != extended_graph(mol).z.tolist()
    assert vals[0] == pytest.approx(vals[1], abs=1e-9)


# -- distance geometry -----------------------------------------------------------------------------------
def test_distance_geometry_recovers_a_known_conformer_and_its_chirality():
    mol = _embedded("C[C@@H]1C[C@H](O)[C@@H](C)O1", seed=11)
    g = extended_graph(mol)
    pos, report = embed_distances(mol, g, g.distances())
    assert _kabsch_rmsd(pos[0], g.pos) < 0.05
    assert report.n_stereo_wrong == 0 and report.stereo_ok == [True]


def test_chirality_follows_the_tags_for_both_enantiomers_from_the_same_distances():
    r = _embedded("N[C@@H](C)C(=O)O", seed=3)
    s = Chem.MolFromSmiles("N[C@H](C)C(=O)O")
    s = Chem.AddHs(s)
    g = extended_graph(r)
    d = g.distances()  # a mirror image has the same distances: only the tags can decide
    for mol in (r, s):
        pos, report = embed_distances(mol, g, np.stack([d, d + 0.01]))
        assert report.stereo_ok == [True, True]
        tagged = Chem.Mol(mol)
        tagged.RemoveAllConformers()
        conf = Chem.Conformer(mol.GetNumAtoms())
        for i, xyz in enumerate(pos[0]):
            conf.SetAtomPosition(i, xyz.tolist())
        tagged.AddConformer(conf)
        Chem.AssignStereochemistryFrom3D(tagged)
        assert Chem.MolToSmiles(Chem.RemoveHs(tagged)) == Chem.MolToSmiles(Chem.RemoveHs(mol))
    # and the two results are mirror images, not the same structure
    pos_r, _ = embed_distances(r, g, d)
    pos_s, _ = embed_distances(s, g, d)
    assert _kabsch_rmsd(pos_r[0], pos_s[0]) > 0.3


def test_distance_geometry_rejects_mismatched_input():
    mol = _embedded("CCO")
    g = extended_graph(mol)
    with pytest.raises(ValueError, match="distances have 3 edges"):
        embed_distances(mol, g, np.ones(3))


# -- generation, seeds, model file ------------------------------------------------------------------------
def _tiny_model() -> CGCFModel:
    config = CGCFConfig(hidden=8, layers=1, eval_solver="rk4", eval_steps=2, dg_steps=60, dg_restarts=2)
    torch.manual_seed(0)
    return CGCFModel(config, DistanceFlow(8, 1, 0.5))


def test_generation_is_seeded_and_reproducible(tmp_path):
    model = _tiny_model()
    mol = Chem.AddHs(Chem.MolFromSmiles("C[C@H](O)CN"))
    a = model.generate(mol, 3, seed=5)
    b = model.generate(mol, 3, seed=5)
    c = model.generate(mol, 3, seed=6)
    pa, pb, pc = (np.stack([x.GetPositions() for x in r.mol.GetConformers()]) for r in (a, b, c))
    assert np.array_equal(pa, pb)
    assert not np.allclose(pa, pc)
    assert not np.allclose(pa[0], pa[1])  # distinct conformers within a molecule
    # the model file round trip gives the same conformers
    path = save_model(tmp_path / "model.pt", model)
    again = load_model(tmp_path).generate(mol, 3, seed=5)
    assert np.array_equal(np.stack([x.GetPositions() for x in again.mol.GetConformers()]), pa)
    with pytest.raises(FileExistsError):
        save_model(path, model)


def test_config_rejects_bad_values_by_name():
    with pytest.raises(ValueError, match="eval_solver"):
        CGCFConfig(eval_solver="euler").validate()
    with pytest.raises(ValueError, match="unknown CGCF settings"):
        CGCFConfig.from_dict({"hiden": 3})


def test_conformers_cli_needs_a_model_for_cgcf(tmp_path, capsys):
    from molgraph.cli.main import main

    src = tmp_path / "in.smi"
    src.write_text("CCO\n")
    code = main(["conformers", "generate", "-i", str(src), "-o", str(tmp_path / "o.sdf"), "--method", "cgcf"])
    assert code == 2 and "--model" in capsys.readouterr().err


def test_conformers_cli_writes_cgcf_conformers(tmp_path):
    from molgraph.cli.main import main

    (tmp_path / "run").mkdir()
    save_model(tmp_path / "run" / "model.pt", _tiny_model())
    src = tmp_path / "in.smi"
    src.write_text("CCO\nNCC(=O)O\n")  # no stereo: an untrained model's conformers are all kept
    out = tmp_path / "o.sdf"
    code = main(["conformers", "generate", "-i", str(src), "-o", str(out), "--method", "cgcf",
                 "--model", str(tmp_path / "run"), "-n", "2", "--optimize", "none"])
    assert code == 0
    mols = [m for m in Chem.SDMolSupplier(str(out), removeHs=False)]
    assert len(mols) == 4 and all(m.GetProp("molgraph_embedding") == "CGCF" for m in mols)


def test_predict_on_a_cgcf_model_points_to_conformers_generate(tmp_path, capsys):
    from molgraph.cli.main import main

    save_model(tmp_path / "model.pt", _tiny_model())
    src = tmp_path / "in.csv"
    src.write_text("smiles\nCCO\n")
    code = main(["predict", "--model", str(tmp_path / "model.pt"), "-i", str(src), "-o", str(tmp_path / "o.csv")])
    assert code != 0 and "conformers generate" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_cgcf_train_refuses_a_non_empty_run_folder(tmp_path, capsys):
    from molgraph.cli.main import main

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("user file")
    code = main(["cgcf", "train", "-o", str(tmp_path / "run"), "--n-train", "5"])
    assert code != 0 and "not empty" in capsys.readouterr().err
    assert (tmp_path / "run" / "keep.txt").read_text() == "user file"
