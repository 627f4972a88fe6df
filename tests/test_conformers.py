"""Conformer generation, symmetry-aware RMSD and COV/MAT (no data files needed)."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import rdMolAlign
from scipy.spatial.transform import Rotation

from molgraph.chem import MoleculeError
from molgraph.conformers import (
    CoverageProtocol,
    GenerationOptions,
    GraphMismatchError,
    best_rmsd,
    coverage_metrics,
    evaluate_molecule,
    generate_batch,
    generate_conformers,
    heavy_atoms,
    kabsch_rmsd_matrix,
    mol_from_geometry,
    rmsd_matrix,
    stack_conformers,
    summarize,
)
from molgraph.conformers.rmsd import conformer_coords

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
NITRO = "O=[N+]([O-])c1ccc(CC(C)(C)C)cc1"


@pytest.fixture(scope="module")
def aspirin():
    return generate_conformers(ASPIRIN, 6, seed=7, optimize=None).mol


@pytest.fixture(scope="module")
def nitro():
    return generate_conformers(NITRO, 5, seed=3, optimize="mmff").mol


def _moved(mol: Chem.Mol, seed: int) -> Chem.Mol:
    """A copy with every conformer rotated and translated at random."""
    rng = np.random.default_rng(seed)
    out = Chem.Mol(mol)
    for conf in out.GetConformers():
        xyz = Rotation.random(random_state=seed).apply(conf.GetPositions()) + rng.normal(scale=5.0, size=3)
        for i, p in enumerate(xyz):
            conf.SetAtomPosition(i, p.tolist())
        seed += 1
    return out


def _renumbered(mol: Chem.Mol, seed: int) -> Chem.Mol:
    order = np.random.default_rng(seed).permutation(mol.GetNumAtoms()).tolist()
    return Chem.RenumberAtoms(mol, order)


# --------------------------------------------------------------------------------------------
# RMSD


def test_rmsd_of_a_conformer_with_itself_is_zero(aspirin):
    matrix, _ = rmsd_matrix(aspirin, aspirin)
    assert matrix.shape == (6, 6)
    assert np.allclose(np.diag(matrix), 0.0, atol=1e-6)
    assert (matrix[~np.eye(6, dtype=bool)] > 1e-3).all()  # distinct conformers are not 0
    assert np.allclose(matrix, matrix.T, atol=1e-6)
    assert best_rmsd(aspirin, aspirin) == pytest.approx(0.0, abs=1e-6)


def test_rmsd_invariant_to_rotation_translation_and_renumbering(aspirin):
    base, _ = rmsd_matrix(aspirin, aspirin)
    moved, _ = rmsd_matrix(_moved(aspirin, 1), aspirin)
    assert np.allclose(moved, base, atol=1e-6)
    renumbered = _renumbered(_moved(aspirin, 11), 5)
    assert [a.GetSymbol() for a in renumbered.GetAtoms()] != [a.GetSymbol() for a in aspirin.GetAtoms()]
    both, _ = rmsd_matrix(renumbered, aspirin)
    assert np.allclose(both, base, atol=1e-6)
    # all-atom RMSD too (hydrogen permutations of the methyl group are symmetries)
    all_base, _ = rmsd_matrix(aspirin, aspirin, heavy_only=False)
    all_moved, _ = rmsd_matrix(renumbered, aspirin, heavy_only=False)
    assert np.allclose(all_moved, all_base, atol=1e-6) and np.allclose(np.diag(all_base), 0, atol=1e-6)


@pytest.mark.parametrize("symmetrize", [True, False])
def test_rmsd_equals_rdkit_get_best_rms(nitro, symmetrize):
    ours, sym = rmsd_matrix(nitro, nitro, symmetrize_conjugated_terminal=symmetrize)
    heavy = heavy_atoms(nitro)
    ids = [c.GetId() for c in heavy.GetConformers()]
    for i in ids:
        for j in ids:
            ref = rdMolAlign.GetBestRMS(Chem.Mol(heavy, confId=i), Chem.Mol(heavy, confId=j),
                                        symmetrizeConjugatedTerminalGroups=symmetrize)
            assert ours[i, j] == pytest.approx(ref, abs=1e-4)
    # the tert-butyl (x6) and the para ring flip (x2); the nitro O swap doubles it when symmetrized
    assert len(sym.matches) == (24 if symmetrize else 12)


def test_symmetric_terminal_oxygens_and_no_reflections():
    # ortho-Cl: no rigid motion maps one carboxylate O onto the other
    mol = generate_conformers("[O-]C(=O)c1ccccc1Cl", 1, seed=1).mol
    swapped = Chem.Mol(mol)
    conf = swapped.GetConformer()
    o1, o2 = [a.GetIdx() for a in mol.GetAtoms() if a.GetSymbol() == "O"]
    p1, p2 = conf.GetAtomPosition(o1), conf.GetAtomPosition(o2)
    conf.SetAtomPosition(o1, p2)
    conf.SetAtomPosition(o2, p1)
    assert best_rmsd(swapped, mol) == pytest.approx(0.0, abs=1e-6)
    assert best_rmsd(swapped, mol, symmetrize_conjugated_terminal=False) > 0.2
    # a mirror image is not a rigid motion: a non-planar chiral conformer stays away from its mirror
    chiral = generate_conformers("C[C@H](N)C(C)(F)CCCl", 1, seed=2, optimize=None).mol
    xyz = conformer_coords(heavy_atoms(chiral))
    mirror = xyz * np.array([-1.0, 1.0, 1.0])
    assert kabsch_rmsd_matrix(mirror, xyz)[0, 0] > 0.1


def test_rmsd_refuses_different_molecules(aspirin):
    other = generate_conformers("CC(=O)Oc1ccccc1C(=O)N", 1, seed=1).mol
    with pytest.raises(GraphMismatchError, match="differ"):
        rmsd_matrix(other, aspirin)
    with pytest.raises(GraphMismatchError, match="atom counts"):
        rmsd_matrix(generate_conformers("CCO", 1).mol, aspirin)


def test_kabsch_known_value():
    # two 2-atom "molecules": 1 A apart vs 2 A apart -> best RMSD 0.5 A
    a = np.array([[[0.0, 0, 0], [1.0, 0, 0]]])
    b = np.array([[[0.0, 0, 0], [0.0, 2.0, 0]]])
    assert kabsch_rmsd_matrix(a, b)[0, 0] == pytest.approx(0.5)


# --------------------------------------------------------------------------------------------
# COV / MAT


def test_coverage_metrics_hand_made():
    d = np.array([[0.1, 2.0], [0.6, 0.5], [3.0, 3.0]])  # 3 generated x 2 references
    inc = coverage_metrics(d, 0.5, inclusive=True)
    assert inc == pytest.approx({"cov_r": 1.0, "mat_r": 0.3, "cov_p": 2 / 3, "mat_p": 1.2, "min_rmsd": 0.1})
    strict = coverage_metrics(d, 0.5, inclusive=False)
    assert strict["cov_r"] == 0.5 and strict["cov_p"] == pytest.approx(1 / 3)
    assert strict["mat_r"] == inc["mat_r"]
    with pytest.raises(ValueError):
        coverage_metrics(np.zeros((0, 3)), 0.5)


def test_evaluate_molecule_known_answer(aspirin):
    # references = conformers 0..3; generated = copies of 0 and 1, moved and renumbered.
    ref = Chem.Mol(aspirin)
    for cid in (4, 5):
        ref.RemoveConformer(cid)
    gen = Chem.Mol(aspirin)
    for cid in (2, 3, 4, 5):
        gen.RemoveConformer(cid)
    gen = _renumbered(_moved(gen, 3), 9)
    full, _ = rmsd_matrix(aspirin, aspirin)
    threshold = float(np.sort(full[:2, 2:4].min(axis=0))[0]) + 1e-3  # exactly one of refs 2, 3 covered
    res = evaluate_molecule("aspirin", gen, ref, CoverageProtocol(threshold=threshold))
    assert res.error is None and (res.n_generated, res.n_reference) == (2, 4)
    assert res.cov_r == pytest.approx(3 / 4)
    assert res.cov_p == pytest.approx(1.0) and res.mat_p == pytest.approx(0.0, abs=1e-6)
    assert res.mat_r == pytest.approx(full[:2, :4].min(axis=0).mean(), abs=1e-6)
    summary = summarize([res, evaluate_molecule("x", gen, Chem.Mol(gen), CoverageProtocol())], CoverageProtocol())
    assert summary["n_evaluated"] == 2 and summary["protocol"]["comparison"] == "<="
    assert summary["cov_p"]["median"] == pytest.approx(1.0)
    bad = evaluate_molecule("mismatch", generate_conformers("CCCC", 1).mol, ref, CoverageProtocol())
    assert bad.error and np.isnan(bad.cov_r)


def test_stack_conformers_renumbers_and_rejects_other_graphs(aspirin):
    singles = [Chem.Mol(aspirin, confId=c.GetId()) for c in aspirin.GetConformers()]
    singles[2] = _renumbered(singles[2], 4)
    stacked, rejected = stack_conformers(singles + [generate_conformers("CC(=O)Oc1ccccc1C(=O)N", 1).mol])
    assert stacked.GetNumConformers() == 6 and len(rejected) == 1 and rejected[0][0] == 6
    matrix, _ = rmsd_matrix(stacked, aspirin, heavy_only=False)
    assert np.allclose(np.diag(matrix), 0.0, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Generation


STEREO_SMILES = ["F/C=C/C[C@@H](Cl)Br", "F/C=C\\C[C@H](Cl)Br", "C[C@H]1CC[C@@H](O)CC1",
                 "C/C(Cl)=C/C", "O[C@@H]1[C@@H](O)[C@H](O)[C@@H](CO)O[C@H]1O"]


@pytest.mark.parametrize("smiles", STEREO_SMILES)
def test_generated_conformers_keep_the_input_stereo(smiles):
    res = generate_conformers(smiles, 5, seed=11)
    assert res.ok and res.n_confs == 5 and res.force_field == "MMFF94"
    expected = Chem.MolToSmiles(Chem.MolFromSmiles(smiles))
    for conf in res.mol.GetConformers():
        one = Chem.Mol(res.mol, confId=conf.GetId())
        Chem.AssignStereochemistryFrom3D(one)
        assert Chem.MolToSmiles(Chem.RemoveHs(one)) == expected


def test_stereo_check_rejects_wrong_isomers():
    # embed the E isomer, then ask the checker about the Z specification: every conformer fails
    from molgraph.conformers.stereo import conformer_stereo_ok, stereo_spec

    e = generate_conformers("F/C=C/F", 3, seed=1).mol
    z_spec = stereo_spec(Chem.AddHs(Chem.MolFromSmiles("F/C=C\\F")))
    assert conformer_stereo_ok(e, z_spec) == [False] * 3
    r = generate_conformers("C[C@H](F)Cl", 3, seed=1).mol
    s_spec = stereo_spec(Chem.AddHs(Chem.MolFromSmiles("C[C@@H](F)Cl")))
    assert conformer_stereo_ok(r, s_spec) == [False] * 3
    assert conformer_stereo_ok(r, stereo_spec(Chem.AddHs(Chem.MolFromSmiles("C[C@H](F)Cl")))) == [True] * 3


def test_unembeddable_molecule_gives_a_reason_not_a_crash():
    res = generate_conformers("C1#CC1", 2, seed=1, max_attempts=20)  # cyclopropyne
    assert not res.ok and res.n_confs == 0 and res.force_field is None
    assert "no conformer could be embedded" in res.failure and "ETK_MINIMIZATION" in res.failure
    assert any("random initial coordinates" in n for n in res.notes)
    assert res.embedding == "ETKDGv3+random_coords"


def test_impossible_stereo_is_reported():
    # trans-fused bicyclo[1.1.0]butane: no geometry has this stereo; the chirality-free fallback
    # embeds, and every conformer is then rejected by the stereo check
    res = generate_conformers("[C@@H]12C[C@H]1C2", 2, seed=1, max_attempts=20)
    assert not res.ok and res.n_stereo_rejected > 0
    assert "stereo" in res.failure and res.embedding.endswith("+no_chirality")


def test_missing_mmff_parameters_fall_back_to_uff():
    res = generate_conformers("OB(O)c1ccccc1", 3, seed=5, optimize="mmff")
    assert res.ok and res.force_field == "UFF" and len(res.energies) == 3
    assert any("MMFF94" in n and "B" in n and "UFF" in n for n in res.notes)
    plain = generate_conformers("OB(O)c1ccccc1", 3, seed=5, optimize=None)
    assert plain.force_field is None and plain.energies == []


def test_options_seed_and_prune():
    a = generate_conformers("CCCCCCO", 4, seed=123, optimize=None).mol
    b = generate_conformers("CCCCCCO", 4, seed=123, optimize=None).mol
    c = generate_conformers("CCCCCCO", 4, seed=999, optimize=None).mol
    assert np.array_equal(conformer_coords(a), conformer_coords(b))
    assert not np.allclose(conformer_coords(a), conformer_coords(c))
    pruned = generate_conformers("CCO", 20, seed=1, optimize=None, prune_rms=0.5)
    assert 1 <= pruned.n_confs < 20
    with pytest.raises(ValueError, match="method"):
        GenerationOptions(method="nope")
    with pytest.raises(MoleculeError):
        generate_conformers("C1CC", 1)


def test_batch_in_order_parallel_equals_serial_and_keeps_failures():
    items = ["CCO", "not a smiles", "c1ccccc1O", "C1#CC1", "CC(=O)N"]
    opts = GenerationOptions(n_confs=2, seed=4, max_attempts=20, optimize="mmff")
    serial = list(generate_batch(items, options=opts, n_jobs=1))
    parallel = list(generate_batch(iter(items), options=opts, n_jobs=2))
    assert [r.index for r in serial] == [r.index for r in parallel] == list(range(5))
    assert [r.ok for r in serial] == [True, False, True, False, True]
    assert "could not read molecule" in serial[1].failure
    for s, p in zip(serial, parallel):
        assert s.failure == p.failure
        if s.ok:
            assert np.array_equal(conformer_coords(s.mol), conformer_coords(p.mol))
            assert s.energies == p.energies


def test_mol_from_geometry_recovers_a_shuffled_geometry(aspirin):
    one = Chem.Mol(aspirin, confId=2)
    order = np.random.default_rng(0).permutation(one.GetNumAtoms())
    z = np.array([a.GetAtomicNum() for a in one.GetAtoms()])[order]
    pos = one.GetConformer().GetPositions()[order]
    rebuilt = mol_from_geometry("O=C(O)c1ccccc1OC(C)=O", z, pos)  # a different SMILES atom order
    assert best_rmsd(rebuilt, one, heavy_only=False) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(MoleculeError, match="formula"):
        mol_from_geometry("CCO", z, pos)
    # stereo comes from the geometry
    chiral = generate_conformers("C[C@H](N)C(=O)O", 1, seed=1).mol
    z = np.array([a.GetAtomicNum() for a in chiral.GetAtoms()])
    back = mol_from_geometry("CC(N)C(=O)O", z, chiral.GetConformer().GetPositions())
    assert Chem.MolToSmiles(Chem.RemoveHs(back)) == Chem.MolToSmiles(Chem.MolFromSmiles("C[C@H](N)C(=O)O"))


def test_mmff_does_not_change_the_returned_graph():
    # MMFF's aromaticity model differs from RDKit's; the optimizer works on a copy
    smiles = "C/N=c1/nc(O)cco1"
    res = generate_conformers(smiles, 2, seed=1, optimize="mmff")
    assert res.force_field == "MMFF94"
    assert Chem.MolToSmiles(Chem.RemoveHs(res.mol)) == Chem.MolToSmiles(Chem.MolFromSmiles(smiles))
    plain = generate_conformers(smiles, 2, seed=1, optimize=None)
    assert not np.allclose(conformer_coords(plain.mol), conformer_coords(res.mol))  # coordinates were optimized


# --- seeds: RDKit seeds conformer i with randomSeed * (i + 1) --------------------------------
FLEXIBLE = "CCCCOc1ccc(CCN(C)C)cc1OCC"


def test_rdkit_seeds_conformer_i_with_seed_times_i_plus_1():
    # The rule molgraph.conformers.seeds is built on: if RDKit changes it, this fails first.
    from rdkit.Chem import rdDistGeom

    def embed(seed: int, n: int) -> np.ndarray:
        mol = Chem.AddHs(Chem.MolFromSmiles("CCCCO"))
        params = rdDistGeom.ETKDGv3()
        params.randomSeed = seed
        rdDistGeom.EmbedMultipleConfs(mol, n, params)
        return conformer_coords(mol)

    zero = embed(0, 3)
    assert np.array_equal(zero[0], zero[1]) and np.array_equal(zero[0], zero[2])
    assert np.array_equal(embed(7, 3)[2], embed(21, 1)[0])  # 7 * 3 == 21 * 1


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_conformers_are_pairwise_distinct_for_every_seed(seed):
    res = generate_conformers(FLEXIBLE, 8, seed=seed, optimize=None)
    assert res.ok and res.n_confs == 8
    d, _ = rmsd_matrix(res.mol, res.mol)  # heavy atoms, symmetry-aware
    off = d[~np.eye(8, dtype=bool)]
    assert off.min() > 0.01, f"seed {seed}: conformers closer than 0.01 A (min {off.min():.4f})"


def test_different_seeds_give_different_ensembles():
    from molgraph.conformers.seeds import duplicate_conformers

    a, b, c = (generate_conformers(FLEXIBLE, 6, seed=s, optimize=None) for s in (42, 84, 43))
    assert len({a.rdkit_seed, b.rdkit_seed, c.rdkit_seed}) == 3
    for other in (b, c):  # 42 and 84 shared every other conformer when seeds went to RDKit as is
        both, _ = stack_conformers([a.mol, other.mol])
        assert duplicate_conformers(both) == []
        d, _ = rmsd_matrix(a.mol, other.mol)
        assert d.min() > 0.01


def test_rdkit_seed_rule():
    from molgraph.conformers.seeds import N_PRIMES, _INT_MAX, max_disjoint_confs, molecule_key, rdkit_seed

    key = molecule_key(Chem.MolFromSmiles(FLEXIBLE))
    assert key == molecule_key(Chem.AddHs(Chem.MolFromSmiles(FLEXIBLE)))  # explicit H or not
    primes = [rdkit_seed(s, key) for s in range(2000)]
    assert min(primes) > 2**20 and len(set(primes)) == 2000
    assert all(all(p % k for k in range(2, int(p**0.5) + 1)) for p in primes[:50])  # primes
    assert rdkit_seed(0, key) == rdkit_seed(N_PRIMES, key)  # the table wraps
    # conformer seeds p * (i + 1) of nearby user seeds (and fallback streams) never meet
    n = max_disjoint_confs()
    assert n == 435 and max(primes) * n <= _INT_MAX
    taken: set[int] = set()
    for s in range(40):
        for stream in range(3):
            p = rdkit_seed(s, key, stream=stream)
            seeds = {p * (i + 1) for i in range(n)}
            assert not seeds & taken
            taken |= seeds
    # different molecules, different primes (the hash decides; these are fixed strings)
    others = {rdkit_seed(0, k) for k in ("CCO", "c1ccccc1", "CC(=O)O", key)}
    assert len(others) == 4
    with pytest.raises(ValueError, match="seed"):
        rdkit_seed(-1, key)
    with pytest.raises(ValueError, match="seed"):
        GenerationOptions(seed=-1)


def test_duplicate_conformers_finds_copies():
    from molgraph.conformers.seeds import duplicate_conformers

    mol = generate_conformers("CCCCO", 3, seed=0, optimize=None).mol
    assert duplicate_conformers(mol) == []
    mol.AddConformer(Chem.Conformer(mol.GetConformer(1)), assignId=True)
    assert duplicate_conformers(mol) == [(1, 3)]


def test_chirality_free_fallback_keeps_distinct_conformers_with_the_input_stereo():
    from molgraph.conformers.seeds import duplicate_conformers
    from molgraph.conformers.stereo import conformer_stereo_ok, stereo_spec

    # a strained cage: ETKDG with its stereo fails at this small attempt budget, so the
    # chirality-free fallback runs, in rounds, until it has 4 conformers of the input's stereo
    smiles = "CC[C@]12CN1[C@H]1C[C@H]12"
    for seed in (0, 1):
        res = generate_conformers(smiles, 4, seed=seed, optimize=None, max_attempts=2)
        assert res.embedding.endswith("+no_chirality") and res.ok and res.n_confs == 4
        assert duplicate_conformers(res.mol) == []
        assert conformer_stereo_ok(res.mol, stereo_spec(res.mol)) == [True] * 4
        d, _ = rmsd_matrix(res.mol, res.mol, heavy_only=False)
        assert d[~np.eye(4, dtype=bool)].min() > 0.01
