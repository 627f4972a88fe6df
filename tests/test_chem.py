"""The RDKit layer: parsing with reasons, preparation options, scaffolds, SDF reading."""

from __future__ import annotations

import pickle

import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from molgraph.chem import (
    MoleculeError,
    ParseOptions,
    canonical_smiles,
    mol_from_molblock,
    mol_from_smiles,
    murcko_scaffold,
    read_sdf,
)

# (input, fragment of RDKit's reason)
BAD = [
    ("", "empty SMILES"),
    ("   ", "empty SMILES"),
    ("xyz", "syntax error"),
    ("C☃C", "syntax error"),
    ("C1CC", "unclosed ring"),
    ("N(C)(C)(C)(C)C", "valence"),
    ("c1cccc1", "kekulize"),
    ("C((C)", "Parse Error"),
]

# (input, expected heavy-atom count) for inputs that must parse
GOOD = [
    ("*CC", 3),  # wildcard
    ("[13CH3]C", 2),  # isotope
    ("C[N+](C)(C)CC(=O)[O-]", 8),  # zwitterion
    ("[CH3]", 1),  # radical
    ("CC(=O)[O-].[Na+]", 5),  # salt, two fragments
    ("[H]C([H])([H])O[H]", 2),  # explicit-H SMILES (QM7/QM8 style)
    ("Cl[Pt](Cl)([NH3])[NH3]", 5),  # metal complex
    ("[Fe+2]", 1),
    ("C" * 600, 600),  # very large molecule
]


@pytest.mark.parametrize("smiles,reason", BAD)
def test_bad_smiles_raise_with_index_input_and_reason(smiles: str, reason: str) -> None:
    with pytest.raises(MoleculeError) as info:
        mol_from_smiles(smiles, index=7)
    err = info.value
    assert err.index == 7
    assert err.input == smiles
    assert reason.lower() in err.reason.lower()
    assert "item 7" in str(err)


@pytest.mark.parametrize("smiles,n_atoms", GOOD)
def test_hard_but_valid_smiles_parse(smiles: str, n_atoms: int) -> None:
    assert mol_from_smiles(smiles).GetNumAtoms() == n_atoms


def test_non_string_input_is_an_error_not_a_crash() -> None:
    with pytest.raises(MoleculeError, match="expected a SMILES string"):
        mol_from_smiles(None, index=3)  # type: ignore[arg-type]


def test_error_survives_pickling_between_processes() -> None:
    err = MoleculeError("bad valence", "N(C)(C)(C)(C)C", 4)
    back = pickle.loads(pickle.dumps(err))
    assert (back.reason, back.input, back.index) == ("bad valence", "N(C)(C)(C)(C)C", 4)


def test_options_hydrogens_fragments_charges() -> None:
    assert mol_from_smiles("[H]C([H])([H])O[H]", ParseOptions(keep_hs=True)).GetNumAtoms() == 6
    assert mol_from_smiles("CO", ParseOptions(add_hs=True)).GetNumAtoms() == 6
    salt = "CC(=O)[O-].[Na+]"
    assert canonical_smiles(mol_from_smiles(salt, ParseOptions(largest_fragment=True))) == "CC(=O)[O-]"
    both = ParseOptions(largest_fragment=True, neutralize=True)
    assert canonical_smiles(mol_from_smiles(salt, both)) == "CC(=O)O"
    assert canonical_smiles(mol_from_smiles("C[NH3+]", ParseOptions(neutralize=True))) == "CN"


def test_canonical_smiles_is_order_independent() -> None:
    assert canonical_smiles("OCC") == canonical_smiles("C(O)C") == "CCO"
    assert canonical_smiles("F[C@H](Cl)Br") != canonical_smiles("F[C@@H](Cl)Br")
    assert canonical_smiles("F[C@H](Cl)Br", isomeric=False) == canonical_smiles("F[C@@H](Cl)Br", isomeric=False)


def test_murcko_scaffolds() -> None:
    assert murcko_scaffold("CC(=O)Oc1ccccc1C(=O)O") == "c1ccccc1"  # aspirin -> benzene
    assert murcko_scaffold("CCCC") == ""  # acyclic
    assert murcko_scaffold("c1ccccc1CCc1ccncc1") == "c1ccc(CCc2ccncc2)cc1"  # linker kept
    # generic scaffold: atom and bond types erased, so pyridine and benzene rings match
    assert murcko_scaffold("Cc1ccncc1", generic=True) == murcko_scaffold("Cc1ccccc1", generic=True) == "C1CCCCC1"
    assert murcko_scaffold("C[C@H]1CC[C@@H](C)N1C(=O)c1ccccc1") == "O=C(c1ccccc1)N1CCCC1"


def _molblock(smiles: str, seed: int = 0) -> str:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(mol, randomSeed=seed)
    return Chem.MolToMolBlock(mol)


def test_molblock_keeps_coordinates_and_hydrogens_on_request() -> None:
    block = _molblock("CCO")
    heavy = mol_from_molblock(block)
    assert heavy.GetNumAtoms() == 3 and heavy.GetConformer().Is3D()
    assert mol_from_molblock(block, ParseOptions(keep_hs=True)).GetNumAtoms() == 9
    with pytest.raises(MoleculeError):
        mol_from_molblock("", index=1)


def test_read_sdf_streams_good_and_bad_records(tmp_path) -> None:
    good = _molblock("CCO").replace("\n", "\n", 1)
    # a record whose nitrogen has five bonds: sanitization must fail with RDKit's reason
    bad_mol = Chem.RWMol(Chem.MolFromSmiles("CN(C)C", sanitize=False))
    for _ in range(2):
        idx = bad_mol.AddAtom(Chem.Atom(6))
        bad_mol.AddBond(1, idx, Chem.BondType.SINGLE)
    bad = Chem.MolToMolBlock(bad_mol, kekulize=False)
    sdf = tmp_path / "mix.sdf"
    sdf.write_text(good + "> <label>\n1.5\n\n$$$$\n" + bad + "$$$$\n" + good + "$$$$\n")
    records = list(read_sdf(sdf))
    assert [i for i, _, _ in records] == [0, 1, 2]
    assert isinstance(records[0][1], Chem.Mol) and records[0][2] == {"label": "1.5"}
    assert records[0][1].GetProp("label") == "1.5"
    assert isinstance(records[1][1], MoleculeError) and "valence" in records[1][1].reason.lower()
    assert records[1][1].index == 1
    assert isinstance(records[2][1], Chem.Mol)
