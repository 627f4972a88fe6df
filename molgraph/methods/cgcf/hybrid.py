"""The hybrid: an ETKDG(+force field) pool ranked by a learned CGCF model, a diverse top k kept.

For each molecule: embed a pool of ``pool`` ETKDG conformers (optimized with MMFF94, UFF where
MMFF94 has no parameters), score every pool conformer (higher = preferred), then walk down the
ranking and keep a conformer only if its heavy-atom RMSD to every conformer already kept is more
than ``prune`` angstrom, until k are kept. Scores (:data:`SCORES`):

* ``energy``: -E(R) of the energy network;
* ``flow``: log p_flow of the extended-graph distances (Hutchinson estimate, the same probes for
  every conformer of a molecule);
* ``tilted``: log p_flow - E, the paper's tilted density;
* ``mmff``: minus the force-field energy of the pool (no learned model: the baseline ranking).

:func:`select` is the selection alone (used by ``benchmarks/confgen.py`` too);
:func:`hybrid_results` is ``molgraph conformers generate --method hybrid``: one
:class:`~molgraph.conformers.ConformerResult` per input, in order, for the same SDF writer,
rejects file and counts as the ETKDG and CGCF paths.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Iterable, Iterator

import numpy as np
from rdkit import Chem

from molgraph.chem.errors import MoleculeError
from molgraph.conformers import GenerationOptions, generate_batch, rmsd_matrix
from molgraph.conformers.generate import ConformerResult
from molgraph.methods.cgcf.model import CGCFModel

__all__ = ["SCORES", "check_score", "scores", "select", "subset", "hybrid_results"]

#: rankings of the pool; see the module docstring
SCORES = ("energy", "flow", "tilted", "mmff")


def check_score(model: CGCFModel | None, score: str) -> None:
    """Raise ``ValueError`` naming the problem when ``model`` cannot give ``score``."""
    if score not in SCORES:
        raise ValueError(f"hybrid score must be one of {SCORES}, got {score!r}")
    if score == "mmff":
        return
    if model is None:
        raise ValueError(f"hybrid score {score!r} needs a learned model (--model RUN); 'mmff' needs none")
    if score in ("energy", "tilted") and model.energy is None:
        raise ValueError(f"hybrid score {score!r} needs an energy network; this model has none "
                         "(use --hybrid-score flow or mmff, or train one with `molgraph cgcf train`)")


def scores(model: CGCFModel | None, result: ConformerResult, score: str, seed: int) -> np.ndarray:
    """(n_conf,) score of each conformer of ``result.mol``; higher = preferred.

    Raises:
        ValueError: ``score`` is ``"mmff"`` and the pool has no force-field energy per conformer,
            or the model cannot give ``score`` (see :func:`check_score`).
    """
    check_score(model, score)
    if score == "mmff":
        if result.energies is None or len(result.energies) != result.n_confs:
            raise ValueError(f"{result.input}: hybrid score 'mmff' needs a force-field energy for every pool "
                             "conformer (the pool was not optimized)")
        return -np.asarray(result.energies, dtype=np.float64)
    assert model is not None  # check_score
    return model.score(result.mol, what=score, seed=seed)


def select(mol: Chem.Mol, score: np.ndarray, k: int, prune: float = 0.0, *, fill: bool = False) -> list[int]:
    """Conformer positions of ``mol`` kept from the ranking by ``score`` (descending, ties in pool order).

    Args:
        mol: the pool (n_conf conformers).
        score: (n_conf,) higher = preferred.
        k: at most this many are kept.
        prune: angstrom; going down the ranking a conformer is kept only if its heavy-atom RMSD
            (symmetry-aware, aligned) to every kept one is more than ``prune``. ``<= 0``: the
            plain top k.
        fill: when fewer than k pass the pruning, add the best-ranked skipped ones up to k (the
            benchmark's equal-count rows); the kept set then no longer satisfies the pruning.

    Returns:
        positions into ``mol.GetConformers()``, best-ranked first.
    """
    score = np.asarray(score, dtype=np.float64)
    n = mol.GetNumConformers()
    if score.shape != (n,):
        raise ValueError(f"score has shape {score.shape}, the pool has {n} conformers")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if np.isnan(score).any():
        raise ValueError("score has NaN values: the ranking would be arbitrary")
    order = [int(i) for i in np.argsort(-score, kind="stable")]
    if prune <= 0:
        return order[:k]
    d, _ = rmsd_matrix(mol, mol)
    kept: list[int] = []
    for i in order:
        if len(kept) == k:
            break
        if all(d[i, j] > prune for j in kept):
            kept.append(i)
    if fill:
        for i in order:
            if len(kept) == k:
                break
            if i not in kept:
                kept.append(i)
    return kept


def subset(mol: Chem.Mol, ids: list[int]) -> Chem.Mol:
    """A copy of ``mol`` with the conformers at positions ``ids``, in that order (new ids 0..)."""
    out = Chem.Mol(mol)
    out.RemoveAllConformers()
    confs = list(mol.GetConformers())
    for i in ids:
        out.AddConformer(Chem.Conformer(confs[i]), assignId=True)
    return out


def _keep(result: ConformerResult, ids: list[int], label: str) -> None:
    """Reduce ``result`` (in place) to the pool conformers at ``ids``."""
    result.mol = subset(result.mol, ids)
    if len(result.energies) == len(result.converged) and result.energies:
        result.energies = [result.energies[i] for i in ids]
        result.converged = [result.converged[i] for i in ids]
    result.embedding = f"{result.embedding}+{label}"


def hybrid_results(model: CGCFModel | None, items: Iterable[Chem.Mol | str | MoleculeError], k: int, *,
                   pool: int = 50, score: str = "energy", prune: float = 0.5,
                   options: GenerationOptions | None = None, n_jobs: int = 1,
                   progress: bool = False) -> Iterator[ConformerResult]:
    """One result per item, in order, each with at most ``k`` conformers; failures keep their reason.

    Args:
        model: a loaded CGCF model (None only for ``score="mmff"``).
        items: SMILES strings or molecules (as for :func:`~molgraph.conformers.generate_batch`).
        k: conformers kept per molecule (fewer when the pool has fewer distinct ones).
        pool: ETKDG conformers embedded per molecule (``>= k``).
        score: one of :data:`SCORES`.
        prune: the diversity RMSD of :func:`select` (angstrom; ``<= 0``: plain top k).
        options: the pool's ETKDG settings (method, force field, seed, timeouts); ``n_confs`` is
            replaced by ``pool``. Its ``seed`` also seeds the model's Hutchinson probes.
        n_jobs: worker processes for the ETKDG pool (scoring runs in this process).

    The SDF route (``molgraph_embedding``) reads e.g. ``ETKDGv3+hybrid[energy,pool50,prune0.5]``.

    Raises:
        ValueError: a setting out of range or a score the model cannot give (before any embedding).
    """
    options = options or GenerationOptions()
    check_score(model, score)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if pool < k:
        raise ValueError(f"hybrid pool must be >= k ({k}), got {pool}")
    if prune < 0:
        raise ValueError(f"hybrid prune RMSD must be >= 0 angstrom, got {prune}")
    if score == "mmff" and options.optimize is None:
        raise ValueError("hybrid score 'mmff' ranks by force-field energy: it needs an optimized pool "
                         "(--optimize mmff or uff, not none)")
    return _hybrid_iter(model, items, k, pool, score, prune, options, n_jobs, progress)


def _hybrid_iter(model: CGCFModel | None, items: Iterable, k: int, pool: int, score: str, prune: float,
                 options: GenerationOptions, n_jobs: int, progress: bool) -> Iterator[ConformerResult]:
    label = f"hybrid[{score},pool{pool},prune{prune:g}]"
    for result in generate_batch(items, options=replace(options, n_confs=pool), n_jobs=n_jobs, progress=progress):
        if not result.ok:
            yield result
            continue
        t0 = time.perf_counter()
        try:
            ids = select(result.mol, scores(model, result, score, options.seed), k, prune)
        except ValueError as err:  # e.g. a bond type or element the model does not cover
            result.failure = f"hybrid scoring failed: {err}"
            result.mol = None
            yield result
            continue
        _keep(result, ids, label)
        result.seconds += time.perf_counter() - t0
        yield result
