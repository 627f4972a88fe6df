"""COV / MAT: how well a set of generated conformers covers a set of reference conformers.

For one molecule with an RMSD matrix D (G generated x K references, angstrom) and threshold d:

* COV-R (recall)    = fraction of references r with min_g D[g, r] <= d (or < d)
* MAT-R (recall)    = mean over references of min_g D[g, r]
* COV-P (precision) = fraction of generated g with min_r D[g, r] <= d
* MAT-P (precision) = mean over generated of min_r D[g, r]

Over a set of molecules each metric is reported as mean and median over molecules. The protocol
choices that change the numbers between papers (heavy atoms or all, ``<=`` or ``<``, the
threshold, how many conformers are generated per reference, symmetrization of terminal groups)
are fields of :class:`CoverageProtocol` and are written into every result.
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
from rdkit import Chem

from molgraph.conformers.rmsd import GraphMismatchError, rmsd_matrix

__all__ = [
    "CoverageProtocol",
    "MoleculeCoverage",
    "coverage_metrics",
    "evaluate_molecule",
    "evaluate_ensembles",
    "summarize",
    "stack_conformers",
]


@dataclass(frozen=True)
class CoverageProtocol:
    """The evaluation protocol, recorded with every result.

    Attributes:
        threshold: COV threshold in angstrom (0.5 for QM9-size molecules, 1.25 for drug-size;
            the GeoMol / torsional-diffusion conventions).
        inclusive: count ``rmsd <= threshold`` as covered (True) or ``rmsd < threshold``
            (False; GeoMol and torsional diffusion use ``<``).
        heavy_atoms: RMSD over heavy atoms only (hydrogens removed with ``RemoveAllHs``).
        symmetrize_conjugated_terminal: treat carboxylate/nitro-like terminal O/N as
            interchangeable (RDKit's ``GetBestRMS`` default).
        max_matches: cap on graph symmetries enumerated per molecule.
        ref_multiplier: conformers generated per reference conformer (2: "2K", the GEOM
            convention). Informational for the evaluation; generation uses it.
    """

    threshold: float = 0.5
    inclusive: bool = True
    heavy_atoms: bool = True
    symmetrize_conjugated_terminal: bool = True
    max_matches: int = 10_000
    ref_multiplier: int = 2

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["comparison"] = "<=" if self.inclusive else "<"
        out["unit"] = "angstrom"
        return out


@dataclass
class MoleculeCoverage:
    """COV/MAT of one molecule (NaN metrics and ``error`` set when it could not be compared)."""

    key: str
    n_generated: int
    n_reference: int
    cov_r: float = math.nan
    mat_r: float = math.nan
    cov_p: float = math.nan
    mat_p: float = math.nan
    min_rmsd: float = math.nan
    n_symmetries: int = 0
    symmetries_truncated: bool = False
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def coverage_metrics(rmsd: np.ndarray, threshold: float, inclusive: bool = True) -> dict[str, float]:
    """COV-R, MAT-R, COV-P, MAT-P and the overall minimum from a (G, K) RMSD matrix."""
    rmsd = np.asarray(rmsd, dtype=np.float64)
    if rmsd.ndim != 2 or 0 in rmsd.shape:
        raise ValueError(f"need a non-empty (generated, reference) matrix, got shape {rmsd.shape}")
    best_per_ref = rmsd.min(axis=0)
    best_per_gen = rmsd.min(axis=1)
    hit = np.less_equal if inclusive else np.less
    return {
        "cov_r": float(hit(best_per_ref, threshold).mean()),
        "mat_r": float(best_per_ref.mean()),
        "cov_p": float(hit(best_per_gen, threshold).mean()),
        "mat_p": float(best_per_gen.mean()),
        "min_rmsd": float(rmsd.min()),
    }


def evaluate_molecule(key: str, generated: Chem.Mol, reference: Chem.Mol, protocol: CoverageProtocol) -> MoleculeCoverage:
    """COV/MAT of one molecule: ``generated`` and ``reference`` each hold their conformers."""
    out = MoleculeCoverage(key, generated.GetNumConformers(), reference.GetNumConformers())
    if out.n_generated == 0 or out.n_reference == 0:
        out.error = f"no conformers to compare ({out.n_generated} generated, {out.n_reference} reference)"
        return out
    try:
        matrix, sym = rmsd_matrix(
            generated, reference,
            heavy_only=protocol.heavy_atoms,
            symmetrize_conjugated_terminal=protocol.symmetrize_conjugated_terminal,
            max_matches=protocol.max_matches,
        )
    except GraphMismatchError as err:
        out.error = str(err)
        return out
    for name, value in coverage_metrics(matrix, protocol.threshold, protocol.inclusive).items():
        setattr(out, name, value)
    out.n_symmetries, out.symmetries_truncated = len(sym.matches), sym.truncated
    return out


def _evaluate_args(args: tuple[str, Chem.Mol, Chem.Mol, CoverageProtocol]) -> MoleculeCoverage:
    return evaluate_molecule(*args)


def evaluate_ensembles(
    pairs: Iterable[tuple[str, Chem.Mol, Chem.Mol]],
    protocol: CoverageProtocol | None = None,
    *,
    n_jobs: int = 1,
) -> list[MoleculeCoverage]:
    """Evaluate ``(key, generated, reference)`` triples, in parallel over molecules when ``n_jobs > 1``."""
    protocol = protocol or CoverageProtocol()
    tasks = [(key, gen, ref, protocol) for key, gen, ref in pairs]
    if n_jobs <= 1 or len(tasks) < 2:
        return [_evaluate_args(t) for t in tasks]
    from molgraph.conformers.batch import _mp_context

    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=_mp_context()) as pool:
        return list(pool.map(_evaluate_args, tasks, chunksize=1))


def _stats(values: Sequence[float]) -> dict[str, float]:
    arr = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
    if arr.size == 0:
        return {"mean": math.nan, "median": math.nan}
    return {"mean": float(arr.mean()), "median": float(np.median(arr))}


def summarize(results: Sequence[MoleculeCoverage], protocol: CoverageProtocol) -> dict[str, Any]:
    """Mean and median of each metric over the molecules that could be compared, plus the protocol."""
    good = [r for r in results if r.error is None]
    return {
        "protocol": protocol.to_dict(),
        "n_molecules": len(results),
        "n_evaluated": len(good),
        "n_failed": len(results) - len(good),
        **{name: _stats([getattr(r, name) for r in good]) for name in ("cov_r", "mat_r", "cov_p", "mat_p", "min_rmsd")},
    }


def stack_conformers(mols: Sequence[Chem.Mol]) -> tuple[Chem.Mol, list[tuple[int, str]]]:
    """One molecule holding the conformers of ``mols`` (one or more each), in the first one's atom order.

    Molecules whose graph (with hydrogens, as given) differs from the first are left out and
    returned as ``(position, reason)``; those with a different atom order are renumbered.
    """
    if not mols:
        raise ValueError("no molecules to stack")
    base = Chem.Mol(mols[0])
    rejected: list[tuple[int, str]] = []
    for pos, mol in enumerate(mols[1:], start=1):
        if mol.GetNumAtoms() != base.GetNumAtoms():
            rejected.append((pos, f"{mol.GetNumAtoms()} atoms, expected {base.GetNumAtoms()}"))
            continue
        match = mol.GetSubstructMatch(base, useChirality=False)
        if len(match) != base.GetNumAtoms():
            rejected.append((pos, f"graph differs: {Chem.MolToSmiles(mol)} vs {Chem.MolToSmiles(base)}"))
            continue
        order = np.asarray(match)
        for conf in mol.GetConformers():
            new = Chem.Conformer(base.GetNumAtoms())
            xyz = conf.GetPositions()[order]
            for i, (x, y, z) in enumerate(xyz):
                new.SetAtomPosition(i, (float(x), float(y), float(z)))
            base.AddConformer(new, assignId=True)
    return base, rejected
