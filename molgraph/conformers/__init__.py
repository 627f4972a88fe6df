"""Conformer generation (ETKDG + force fields, with fallbacks) and evaluation (RMSD, COV/MAT).

Layering: this package sits with ``molgraph.chem`` (RDKit only) and never imports ``data`` or
higher layers. Writing results to disk lives in :mod:`molgraph.data.conformer_sdf`.

* :func:`generate_conformers` / :func:`generate_batch` — one molecule / many, ``n_jobs`` processes
* :func:`rmsd_matrix` / :func:`best_rmsd` — symmetry-aware heavy-atom RMSD (angstrom)
* :func:`coverage_metrics`, :func:`evaluate_ensembles`, :func:`summarize` — COV-R/MAT-R/COV-P/MAT-P
* :func:`mol_from_geometry` — a SMILES molecule with coordinates from an xyz geometry (QM9 references)
* :func:`rdkit_seed` — the user's seed -> RDKit's seed per molecule (never 0, no shared conformers);
  :func:`duplicate_conformers` — copies among a molecule's conformers
"""

from molgraph.conformers.batch import generate_batch
from molgraph.conformers.coverage import (
    CoverageProtocol,
    MoleculeCoverage,
    coverage_metrics,
    evaluate_ensembles,
    evaluate_molecule,
    stack_conformers,
    summarize,
)
from molgraph.conformers.generate import ConformerResult, GenerationOptions, embed_params, generate_conformers
from molgraph.conformers.reference import mol_from_geometry, mol_from_xyz_arrays
from molgraph.conformers.seeds import duplicate_conformers, rdkit_seed
from molgraph.conformers.rmsd import GraphMismatchError, best_rmsd, heavy_atoms, kabsch_rmsd_matrix, rmsd_matrix

__all__ = [
    "ConformerResult",
    "CoverageProtocol",
    "GenerationOptions",
    "GraphMismatchError",
    "MoleculeCoverage",
    "best_rmsd",
    "coverage_metrics",
    "duplicate_conformers",
    "embed_params",
    "evaluate_ensembles",
    "evaluate_molecule",
    "generate_batch",
    "generate_conformers",
    "heavy_atoms",
    "kabsch_rmsd_matrix",
    "mol_from_geometry",
    "mol_from_xyz_arrays",
    "rdkit_seed",
    "rmsd_matrix",
    "stack_conformers",
    "summarize",
]
