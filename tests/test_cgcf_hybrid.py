"""The CGCF hybrid (an ETKDG+MMFF pool ranked by a learned model, a diverse top k kept) and
``molgraph cgcf train --accelerator``: selection on exact small cases, the invariants of the
kept set, seeds, the benchmark using the package's selection, and the CLI round trips."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import AllChem

from molgraph.conformers import GenerationOptions, generate_batch, rmsd_matrix
from molgraph.methods.cgcf.config import CGCFConfig
from molgraph.methods.cgcf.energy import EnergyNet
from molgraph.methods.cgcf.flow import DistanceFlow
from molgraph.methods.cgcf.hybrid import check_score, hybrid_results, scores, select, subset
from molgraph.methods.cgcf.model import CGCFModel, save_model

REPO = Path(__file__).resolve().parents[1]
# QM9-size molecules with rotatable bonds, so a pool holds conformers that differ
SMILES = ["CCCCO", "OCC(N)CC", "CC(C)CC=O"]


def _model(energy: bool = True) -> CGCFModel:
    """An untrained tiny model: its scores are arbitrary but deterministic, which is all the
    selection and seed tests need."""
    config = CGCFConfig(hidden=8, layers=1, eval_solver="rk4", eval_steps=2, energy_hidden=8, energy_layers=1)
    torch.manual_seed(0)
    return CGCFModel(config, DistanceFlow(8, 1, 0.5), EnergyNet(8, 1) if energy else None)


def _positions(mol: Chem.Mol) -> np.ndarray:
    return np.stack([c.GetPositions() for c in mol.GetConformers()])


def _four_conformers() -> Chem.Mol:
    """Butanol with conformers 0, 1 = copy of 0, 2, 3 (2 and 3 distinct from 0 and each other)."""
    mol = Chem.AddHs(Chem.MolFromSmiles("CCCCO"))
    ids = list(AllChem.EmbedMultipleConfs(mol, 12, randomSeed=11))
    d, _ = rmsd_matrix(mol, mol)
    # two conformers far from conformer 0 and from each other
    a = next(i for i in ids if d[0, i] > 0.3)
    b = next(i for i in ids if d[0, i] > 0.3 and d[a, i] > 0.3)
    confs = list(mol.GetConformers())
    out = Chem.Mol(mol)
    out.RemoveAllConformers()
    for i in (0, 0, a, b):
        out.AddConformer(Chem.Conformer(confs[i]), assignId=True)
    return out


# -- the selection ---------------------------------------------------------------------------------------
def test_select_skips_a_copy_of_a_kept_conformer_and_fill_adds_it_back_last():
    mol = _four_conformers()
    s = np.array([3.0, 2.9, 1.0, 0.0])
    assert select(mol, s, 3) == [0, 1, 2]  # no pruning: the plain top 3
    assert select(mol, s, 3, 0.1) == [0, 2, 3]  # conformer 1 (RMSD 0 to 0) is skipped
    assert select(mol, s, 4, 0.1) == [0, 2, 3]  # fewer than k pass: fewer are kept
    assert select(mol, s, 4, 0.1, fill=True) == [0, 2, 3, 1]
    assert select(mol, s, 2, 0.1) == [0, 2]
    # ties keep pool order; the ranking follows the scores, not the pool order
    assert select(mol, np.array([0.0, 5.0, 5.0, 1.0]), 3) == [1, 2, 3]


def test_select_rejects_bad_input_by_name():
    mol = _four_conformers()
    with pytest.raises(ValueError, match="shape"):
        select(mol, np.zeros(3), 2)
    with pytest.raises(ValueError, match="k must be"):
        select(mol, np.zeros(4), 0)
    with pytest.raises(ValueError, match="NaN"):
        select(mol, np.array([0.0, np.nan, 1.0, 2.0]), 2)


def test_check_score_names_what_the_model_lacks():
    with pytest.raises(ValueError, match="energy network"):
        check_score(_model(energy=False), "energy")
    with pytest.raises(ValueError, match="needs a learned model"):
        check_score(None, "flow")
    with pytest.raises(ValueError, match="one of"):
        check_score(_model(), "density")
    check_score(None, "mmff")
    check_score(_model(energy=False), "flow")


# -- the hybrid ------------------------------------------------------------------------------------------
def _run(model, score: str, seed: int, k: int = 4, pool: int = 10, prune: float = 0.5):
    options = GenerationOptions(seed=seed, optimize="mmff")
    return list(hybrid_results(model, SMILES + ["C1CC"], k, pool=pool, score=score, prune=prune, options=options))


@pytest.mark.parametrize("score", ["energy", "tilted", "mmff"])
def test_hybrid_keeps_at_most_k_diverse_conformers_and_is_seeded(score):
    model = _model()
    a, b, c = _run(model, score, 5), _run(model, score, 5), _run(model, score, 6)
    assert [r.ok for r in a] == [True, True, True, False] and "C1CC" in a[3].input and a[3].failure
    for ra, rb, rc in zip(a[:3], b[:3], c[:3]):
        assert 1 <= ra.n_confs <= 4
        d, _ = rmsd_matrix(ra.mol, ra.mol)
        assert (d[~np.eye(ra.n_confs, dtype=bool)] > 0.5).all()  # every kept pair is farther than prune
        assert np.array_equal(_positions(ra.mol), _positions(rb.mol))  # same seed: same output
        assert ra.energies == rb.energies
        assert ra.mol.GetNumConformers() != rc.mol.GetNumConformers() or \
            not np.allclose(_positions(ra.mol), _positions(rc.mol))
        assert ra.embedding == f"ETKDGv3+hybrid[{score},pool10,prune0.5]"
        assert len(ra.energies) == len(ra.converged) == ra.n_confs
        if score == "mmff":
            # down the MMFF ranking: the kept energies ascend from the pool's minimum
            assert ra.energies == sorted(ra.energies)


def test_hybrid_mmff_first_conformer_is_the_pool_minimum_and_no_prune_is_the_plain_top_k():
    opts = GenerationOptions(seed=3, optimize="mmff", n_confs=10)
    pool = list(generate_batch(SMILES, options=opts))
    top = list(hybrid_results(None, SMILES, 3, pool=10, score="mmff", prune=0.0, options=opts))
    for p, t in zip(pool, top):
        order = np.argsort(np.asarray(p.energies), kind="stable")[:3]
        assert t.energies == [p.energies[i] for i in order]
        assert np.array_equal(_positions(t.mol), _positions(subset(p.mol, [int(i) for i in order])))


def test_hybrid_refuses_bad_settings_before_embedding():
    with pytest.raises(ValueError, match="pool must be >= k"):
        hybrid_results(_model(), SMILES, 5, pool=3)
    with pytest.raises(ValueError, match="optimized pool"):
        hybrid_results(None, SMILES, 2, pool=4, score="mmff", options=GenerationOptions(optimize=None))
    with pytest.raises(ValueError, match="prune"):
        hybrid_results(_model(), SMILES, 2, pool=4, prune=-1.0)


def test_benchmark_uses_the_package_selection_and_scores():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import confgen

    mol = _four_conformers()
    s = np.array([3.0, 2.9, 1.0, 0.0])
    assert confgen.select is select and confgen._subset is subset
    assert confgen._diverse(mol, s, 4, 0.1) == select(mol, s, 4, 0.1, fill=True) == [0, 2, 3, 1]
    # RDKit's order as the control ranking
    assert confgen._diverse(mol, confgen._in_order(4), 4, 0.1) == [0, 2, 3, 1]
    pool = next(generate_batch(["CCCCO"], options=GenerationOptions(seed=1, n_confs=5)))
    model = _model()
    assert np.array_equal(confgen._scores(model, pool, "tilted", 7), scores(model, pool, "tilted", 7))
    with pytest.raises(confgen.BenchmarkCheckError, match="force-field energy"):
        confgen._scores(model, next(generate_batch(["CCCCO"], options=GenerationOptions(seed=1, n_confs=3,
                                                                                          optimize=None))), "mmff", 7)


# -- the CLI ----------------------------------------------------------------------------------------------
def _cli(args: list[str]) -> int:
    from molgraph.cli.main import main

    return main(args)


def test_conformers_cli_hybrid_round_trip(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    save_model(tmp_path / "run" / "model.pt", _model())
    src = tmp_path / "in.smi"
    src.write_text("\n".join(SMILES + ["not_a_smiles"]) + "\n")
    outs = []
    for name in ("a.sdf", "b.sdf"):
        code = _cli(["conformers", "generate", "-i", str(src), "-o", str(tmp_path / name), "--method", "hybrid",
                     "--model", str(tmp_path / "run"), "-n", "3", "--hybrid-pool", "8", "--hybrid-score", "tilted",
                     "--hybrid-prune", "0.4", "--seed", "9"])
        assert code == 0
        outs.append((tmp_path / name).read_text())
    assert outs[0] == outs[1]  # seeded: the same file twice
    printed = capsys.readouterr().out
    mols = list(Chem.SDMolSupplier(str(tmp_path / "a.sdf"), removeHs=False))
    by_input: dict[str, list[Chem.Mol]] = {}
    for m in mols:
        assert m.GetProp("molgraph_embedding") == "ETKDGv3+hybrid[tilted,pool8,prune0.4]"
        assert m.GetProp("molgraph_force_field") == "MMFF94"
        by_input.setdefault(m.GetProp("molgraph_input"), []).append(m)
    assert sorted(by_input) == sorted(SMILES) and all(1 <= len(v) <= 3 for v in by_input.values())
    n = len(mols)
    assert f"generated {n} conformers (hybrid, tilted) for 3 of 4 molecules" in printed
    rejects = (tmp_path / "a.rejects.csv").read_text().splitlines()
    assert rejects[0] == "row,input,reason" and rejects[1].startswith("3,not_a_smiles,")


def test_conformers_cli_hybrid_refuses_before_writing(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    save_model(tmp_path / "run" / "model.pt", _model(energy=False))
    src = tmp_path / "in.smi"
    src.write_text("CCO\n")
    out = tmp_path / "o.sdf"
    base = ["conformers", "generate", "-i", str(src), "-o", str(out), "--method", "hybrid"]
    assert _cli(base + ["--model", str(tmp_path / "run")]) == 2  # default score energy; the model has none
    assert "energy network" in capsys.readouterr().err
    assert _cli(base + ["--hybrid-score", "flow"]) == 2
    assert "needs --model" in capsys.readouterr().err
    assert _cli(base + ["--model", str(tmp_path / "run"), "--hybrid-score", "flow", "-n", "5",
                        "--hybrid-pool", "2"]) == 2
    assert "pool must be >= k" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "o.rejects.csv").exists()
    # mmff needs no model
    assert _cli(base + ["--hybrid-score", "mmff", "-n", "2", "--hybrid-pool", "4"]) == 0
    assert out.exists()


# -- --accelerator --------------------------------------------------------------------------------------
def test_resolve_device_names_the_setting():
    from molgraph.methods.cgcf.train import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="accelerator must be one of"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the error without CUDA")
def test_cgcf_train_gpu_without_cuda_fails_clearly_and_writes_nothing(tmp_path, capsys):
    code = _cli(["cgcf", "train", "-o", str(tmp_path / "run"), "--n-train", "5", "--accelerator", "gpu"])
    err = capsys.readouterr().err
    assert code != 0 and "accelerator 'gpu'" in err and "no CUDA device" in err
    assert not (tmp_path / "run").exists()


def test_training_on_cpu_device_is_seeded_and_learns_the_record_says_cpu():
    from molgraph.methods.cgcf.graph import extended_graph
    from molgraph.methods.cgcf.train import train_energy, train_flow

    graphs, noise = [], []
    for i, smi in enumerate(SMILES):
        mol = Chem.AddHs(Chem.MolFromSmiles(smi))
        AllChem.EmbedMultipleConfs(mol, 2, randomSeed=20 + i)
        graphs.append(extended_graph(mol, conf_id=0))
        noise.append(mol.GetConformer(1).GetPositions()[None])
    config = CGCFConfig(hidden=8, layers=1, batch_size=3, train_steps=1, max_iters=3, energy_hidden=8,
                        energy_layers=1, energy_epochs=2, seed=4)
    flow_a, rec = train_flow(config, graphs, say=lambda _: None, device="cpu")
    flow_b, _ = train_flow(config, graphs, say=lambda _: None, device=torch.device("cpu"))
    assert rec["device"] == "cpu" and rec["iterations"] == 3
    for (name, pa), pb in zip(flow_a.state_dict().items(), flow_b.state_dict().values()):
        assert torch.equal(pa, pb), name
    torch.manual_seed(config.seed)
    init = DistanceFlow(8, 1, 0.5)  # the same initialisation train_flow starts from
    key = "dynamics.out2.lin.weight"
    assert not torch.equal(init.state_dict()[key], flow_a.state_dict()[key])
    data = (graphs, [g.pos for g in graphs], noise)
    net, e_rec = train_energy(config, data, data, say=lambda _: None, device="cpu")
    assert e_rec["device"] == "cpu" and e_rec["epochs"] == 2
    assert next(net.parameters()).device.type == "cpu"


def test_hybrid_options_without_method_hybrid_are_refused(tmp_path, capsys):
    src = tmp_path / "in.smi"
    src.write_text("CCO\n")
    code = _cli(["conformers", "generate", "-i", str(src), "-o", str(tmp_path / "o.sdf"), "--hybrid-pool", "20"])
    assert code == 2 and "--hybrid-pool is a setting of --method hybrid" in capsys.readouterr().err
    assert not (tmp_path / "o.sdf").exists()
