"""Reading molecules from SMILES, mol blocks and SDF files, with explicit errors.

Every reader raises :class:`~molgraph.chem.errors.MoleculeError` carrying the item's index, its
input and RDKit's own reason (captured from RDKit's error log, never printed to the terminal).
The good path costs nothing extra: the log is only captured when a molecule fails.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from rdkit import Chem, rdBase
from rdkit.Chem.MolStandardize import rdMolStandardize

from molgraph.chem.errors import MoleculeError

__all__ = [
    "ParseOptions",
    "mol_from_smiles",
    "mol_from_molblock",
    "read_sdf",
    "prepare_mol",
    "canonical_smiles",
]

_TIMESTAMP = re.compile(r"^\[\d\d:\d\d:\d\d\] ?")


@dataclass(frozen=True)
class ParseOptions:
    """How a molecule is prepared after parsing.

    Attributes:
        add_hs: add explicit hydrogen atoms to the graph (after the other steps).
        keep_hs: keep hydrogens written explicitly in the input (e.g. QM7/QM8-style ``[H]C([H])...``
            SMILES); by default RDKit removes them into implicit counts.
        largest_fragment: keep only the largest covalent fragment (drops salts and solvents).
        neutralize: neutralize charges where a neutral form exists (RDKit's Uncharger).
    """

    add_hs: bool = False
    keep_hs: bool = False
    largest_fragment: bool = False
    neutralize: bool = False

    @property
    def is_default(self) -> bool:
        return not (self.add_hs or self.keep_hs or self.largest_fragment or self.neutralize)


DEFAULT_OPTIONS = ParseOptions()


def _clean_log(messages: str) -> str:
    lines = [_TIMESTAMP.sub("", line).strip() for line in messages.splitlines()]
    lines = [line for line in lines if line]
    # RDKit repeats the input and draws a caret under it; the first and last lines carry the cause.
    if len(lines) > 2:
        lines = [lines[0], lines[-1]]
    return "; ".join(lines)


def _smiles_failure_reason(smiles: str, keep_hs: bool) -> str:
    """Re-run a failed parse step by step to say why it failed (only called on failure)."""
    with rdBase.CaptureErrorLog() as capture:
        mol = Chem.MolFromSmiles(smiles, sanitize=False)
    if mol is None:
        return _clean_log(capture.messages) or "SMILES could not be parsed"
    try:
        with rdBase.CaptureErrorLog():
            Chem.SanitizeMol(mol)
    except Exception as exc:  # RDKit raises several exception types (valence, kekulize, ...)
        return f"{type(exc).__name__}: {exc}"
    return _clean_log(capture.messages) or "RDKit returned no molecule"


def mol_from_smiles(
    smiles: str,
    options: ParseOptions = DEFAULT_OPTIONS,
    *,
    index: int | None = None,
) -> Chem.Mol:
    """Parse and sanitize one SMILES string.

    Args:
        smiles: the SMILES (CXSMILES extensions allowed).
        options: preparation steps (hydrogens, largest fragment, neutralization).
        index: the item's position in its input, stored in the error.

    Returns:
        The sanitized molecule.

    Raises:
        MoleculeError: for non-strings, empty or blank strings, syntax errors, valence or
            kekulization failures, with RDKit's reason.
    """
    if not isinstance(smiles, str):
        raise MoleculeError(f"expected a SMILES string, got {type(smiles).__name__}", repr(smiles), index)
    text = smiles.strip()
    if not text:
        raise MoleculeError("empty SMILES", smiles, index)
    if options.keep_hs:
        params = Chem.SmilesParserParams()
        params.removeHs = False
        with rdBase.BlockLogs():
            mol = Chem.MolFromSmiles(text, params)
    else:
        with rdBase.BlockLogs():
            mol = Chem.MolFromSmiles(text)
    if mol is None:
        raise MoleculeError(_smiles_failure_reason(text, options.keep_hs), smiles, index)
    if mol.GetNumAtoms() == 0:
        raise MoleculeError("molecule has no atoms", smiles, index)
    if not options.is_default:
        mol = prepare_mol(mol, options, input=smiles, index=index)
    return mol


def mol_from_molblock(
    block: str,
    options: ParseOptions = DEFAULT_OPTIONS,
    *,
    index: int | None = None,
) -> Chem.Mol:
    """Parse and sanitize one MDL mol block (V2000 or V3000); conformer coordinates are kept.

    Hydrogens written as atoms are kept when ``options.keep_hs`` (needed for 3D work).
    """
    if not isinstance(block, str) or not block.strip():
        raise MoleculeError("empty mol block", block if isinstance(block, str) else repr(block), index)
    with rdBase.CaptureErrorLog() as capture:
        mol = Chem.MolFromMolBlock(block, sanitize=True, removeHs=not options.keep_hs)
    if mol is None:
        reason = _clean_log(capture.messages) or "mol block could not be parsed"
        raise MoleculeError(reason, block.splitlines()[0] if block.splitlines() else block, index)
    if mol.GetNumAtoms() == 0:
        raise MoleculeError("molecule has no atoms", block.splitlines()[0], index)
    if not options.is_default:
        mol = prepare_mol(mol, options, input=block.splitlines()[0], index=index)
    return mol


def _split_sdf_records(text_lines: Iterator[str]) -> Iterator[str]:
    record: list[str] = []
    for line in text_lines:
        if line.rstrip("\r\n") == "$$$$":
            yield "".join(record)
            record = []
        else:
            record.append(line)
    if any(line.strip() for line in record):
        yield "".join(record)


def read_sdf(
    path: str | Path,
    options: ParseOptions = DEFAULT_OPTIONS,
) -> Iterator[tuple[int, Chem.Mol | MoleculeError, dict[str, str]]]:
    """Stream the records of an SDF file (``.sdf`` or ``.sdf.gz``).

    Yields:
        ``(index, mol_or_error, properties)`` per record, in file order: a failed record yields its
        :class:`MoleculeError` instead of stopping the stream, so callers decide what to do.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as handle:
        for index, record in enumerate(_split_sdf_records(handle)):
            block, _, props_text = record.partition("M  END")
            block = block + "M  END\n"
            props = _parse_sdf_properties(props_text)
            try:
                mol = mol_from_molblock(block, options, index=index)
            except MoleculeError as err:
                yield index, err, props
                continue
            for key, value in props.items():
                mol.SetProp(key, value)
            name = block.splitlines()[0].strip() if block.splitlines() else ""
            if name:
                mol.SetProp("_Name", name)
            yield index, mol, props


def _parse_sdf_properties(text: str) -> dict[str, str]:
    props: dict[str, str] = {}
    key: str | None = None
    values: list[str] = []
    for line in text.splitlines():
        if line.startswith(">"):
            if key is not None:
                props[key] = "\n".join(values).strip()
            match = re.search(r"<([^>]*)>", line)
            key = match.group(1) if match else None
            values = []
        elif key is not None:
            values.append(line)
    if key is not None:
        props[key] = "\n".join(values).strip()
    return props


_UNCHARGER = None
_FRAGMENT_CHOOSER = None


def prepare_mol(
    mol: Chem.Mol,
    options: ParseOptions,
    *,
    input: str | None = None,
    index: int | None = None,
) -> Chem.Mol:
    """Apply largest-fragment selection, neutralization and hydrogen addition, in that order."""
    global _UNCHARGER, _FRAGMENT_CHOOSER
    try:
        with rdBase.BlockLogs():
            if options.largest_fragment:
                if _FRAGMENT_CHOOSER is None:
                    # preferOrganic: a salt's organic ion wins over a larger inorganic counter-ion.
                    _FRAGMENT_CHOOSER = rdMolStandardize.LargestFragmentChooser(preferOrganic=True)
                mol = _FRAGMENT_CHOOSER.choose(mol)
            if options.neutralize:
                if _UNCHARGER is None:
                    _UNCHARGER = rdMolStandardize.Uncharger()
                mol = _UNCHARGER.uncharge(mol)
            if options.add_hs:
                mol = Chem.AddHs(mol, addCoords=mol.GetNumConformers() > 0)
    except Exception as exc:
        raise MoleculeError(f"{type(exc).__name__}: {exc}", input, index) from exc
    return mol


def canonical_smiles(mol: Chem.Mol | str, *, isomeric: bool = True) -> str:
    """RDKit canonical SMILES of a molecule (or of a SMILES string, parsed first)."""
    if isinstance(mol, str):
        mol = mol_from_smiles(mol)
    return Chem.MolToSmiles(mol, isomericSmiles=isomeric)
