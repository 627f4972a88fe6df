"""Streaming conformer results to an SDF file and a rejects CSV, atomically.

Records stream into a temporary file next to the destination, renamed into place only when the
whole batch is done (:func:`molgraph.data.sources.atomic_output`): an interrupted run never
leaves a half-written SDF under the final name.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from rdkit import Chem

from molgraph.conformers.generate import ConformerResult
from molgraph.data.sources import atomic_output

__all__ = ["WriteCounts", "rejects_path_for", "write_conformers_sdf"]


@dataclass
class WriteCounts:
    """What a write did: molecules in, molecules with conformers, failures, conformer records."""

    n_molecules: int = 0
    n_ok: int = 0
    n_failed: int = 0
    n_conformers: int = 0
    n_with_notes: int = 0


def rejects_path_for(output: str | os.PathLike[str]) -> Path:
    """``out.sdf`` -> ``out.rejects.csv`` (next to the output)."""
    output = Path(output)
    return output.with_name(output.name.split(".")[0] + ".rejects.csv")


def _records(result: ConformerResult, canonical: str) -> Iterator[str]:
    mol = result.mol
    name = result.input.replace("\n", " ")
    mol.SetProp("_Name", name)
    for k, conf in enumerate(mol.GetConformers()):
        block = Chem.MolToMolBlock(mol, confId=conf.GetId(), kekulize=False)
        props = {
            "molgraph_index": result.index,
            "molgraph_input": name,
            "molgraph_smiles": canonical,
            "molgraph_conf_id": k,
            "molgraph_embedding": result.embedding,
            "molgraph_rdkit_seed": result.rdkit_seed,
        }
        if result.force_field:
            props["molgraph_force_field"] = result.force_field
            props["molgraph_energy_kcal_mol"] = f"{result.energies[k]:.6f}"
            props["molgraph_converged"] = int(result.converged[k])
        if result.notes:
            props["molgraph_notes"] = " | ".join(result.notes)
        yield block + "".join(f">  <{key}>\n{value}\n\n" for key, value in props.items()) + "$$$$\n"


def write_conformers_sdf(
    results: Iterable[ConformerResult],
    path: str | os.PathLike[str],
    rejects: str | os.PathLike[str] | None = None,
) -> WriteCounts:
    """Write every conformer of every successful result to ``path``; failures to ``rejects``.

    Each SDF record carries ``molgraph_index`` (input row), ``molgraph_input``, ``molgraph_smiles``
    (canonical isomeric SMILES of the input), ``molgraph_conf_id``, ``molgraph_embedding`` (the route),
    ``molgraph_rdkit_seed`` (the seed RDKit was given for the molecule), the force field, energy
    (kcal/mol) and convergence, and any fallback notes. The rejects CSV has ``row,input,reason``
    and is always written (possibly with only its header), so an empty file means no failures.
    """
    rejects = Path(rejects) if rejects is not None else rejects_path_for(path)
    counts = WriteCounts()
    with atomic_output(path, "w", encoding="utf-8", newline="") as sdf, \
            atomic_output(rejects, "w", encoding="utf-8", newline="") as rej:
        writer = csv.writer(rej)
        writer.writerow(["row", "input", "reason"])
        for result in results:
            counts.n_molecules += 1
            if not result.ok:
                counts.n_failed += 1
                writer.writerow([result.index, result.input, result.failure])
                continue
            counts.n_ok += 1
            counts.n_with_notes += bool(result.notes)
            canonical = Chem.MolToSmiles(Chem.RemoveHs(result.mol))
            for record in _records(result, canonical):
                sdf.write(record)
                counts.n_conformers += 1
    return counts
