"""Conformer results from a CGCF model, in the shape the ETKDG generator returns them.

:func:`generate_results` turns SMILES / RDKit molecules into
:class:`~molgraph.conformers.ConformerResult` objects (so ``molgraph conformers generate
--method cgcf`` writes SDF with the same writer, rejects file and counts as ETKDG): parse, add
hydrogens, sample from the model, optionally optimize with MMFF94/UFF, and drop conformers whose
stereo differs from the input (counted in ``n_stereo_rejected``, said in ``notes``).
"""

from __future__ import annotations

import time
from typing import Iterable, Iterator

from rdkit import Chem

from molgraph.chem.errors import MoleculeError
from molgraph.chem.parse import mol_from_smiles
from molgraph.conformers.generate import ConformerResult, GenerationOptions, _optimize
from molgraph.methods.cgcf.model import CGCFModel

__all__ = ["generate_results"]


def generate_results(model: CGCFModel, items: Iterable[Chem.Mol | str | MoleculeError], n_confs: int, *,
                     seed: int = 0, optimize: str | None = None, langevin_steps: int | None = None,
                     solver: str | None = None, chunk: int = 16) -> Iterator[ConformerResult]:
    """One result per item, in order; failures carry their reason and are never dropped.

    Args:
        model: a loaded CGCF model.
        items: SMILES strings or molecules (stereo tags are the targets).
        n_confs: conformers per molecule.
        seed: the run's seed (each molecule's generator seed is drawn from it and the molecule).
        optimize: ``"mmff"``, ``"uff"`` or None, as for ETKDG.
        langevin_steps: override of the model's Langevin steps (0: flow samples only).
        solver: ``"dopri5"`` or ``"rk4"`` (speed mode); default the model's ``eval_solver``.
        chunk: molecules whose distance geometry is solved as one batch (in input order).
    """
    opt_options = GenerationOptions(optimize=optimize)
    pending: list[tuple[ConformerResult, Chem.Mol | None, float]] = []

    def flush() -> Iterator[ConformerResult]:
        ready = [(r, m) for r, m, _ in pending if m is not None]
        outs: list = []
        if ready:
            try:
                outs = model.generate_many([m for _, m in ready], n_confs, seed=seed, langevin_steps=langevin_steps,
                                           solver=solver)
            except ValueError:
                # one molecule's problem must not sink the chunk: redo them one at a time
                outs = []
                for _, m in ready:
                    try:
                        outs.append(model.generate(m, n_confs, seed=seed, langevin_steps=langevin_steps, solver=solver))
                    except ValueError as err:
                        outs.append(err)
        by_id = {id(r): o for (r, _), o in zip(ready, outs)}
        for result, mol, t0 in pending:
            if mol is not None:
                _finish(result, by_id[id(result)], opt_options)
            result.seconds += time.perf_counter() - t0 if mol is None else 0.0
            yield result
        pending.clear()

    for index, item in enumerate(items):
        t0 = time.perf_counter()
        text = item if isinstance(item, str) else (Chem.MolToSmiles(item) if isinstance(item, Chem.Mol) else str(item))
        result = ConformerResult(index=index, input=text)
        mol = None
        try:
            if isinstance(item, MoleculeError):
                raise item
            mol = mol_from_smiles(item) if isinstance(item, str) else Chem.Mol(item)
            mol = Chem.AddHs(mol, addCoords=False)
        except (MoleculeError, ValueError) as err:
            result.failure = str(err)
        pending.append((result, mol, t0))
        if len(pending) >= chunk:
            yield from flush()
    yield from flush()


def _finish(result: ConformerResult, out, opt_options: GenerationOptions) -> None:
    """Fill ``result`` from a :class:`~.model.Generated` (or the error that replaced it)."""
    if isinstance(out, Exception):
        result.failure = str(out)
        return
    result.seconds = out.seconds
    result.rdkit_seed = out.seed
    result.embedding = "CGCF" + (f"+langevin{out.langevin_steps}" if out.langevin_steps else "")
    keep = out.embed.stereo_ok
    gen = out.mol
    if not all(keep):
        work = Chem.Mol(gen)
        work.RemoveAllConformers()
        for conf, k in zip(gen.GetConformers(), keep):
            if k:
                work.AddConformer(Chem.Conformer(conf), assignId=True)
        gen = work
        result.n_stereo_rejected = len(keep) - sum(keep)
        result.notes.append(f"{result.n_stereo_rejected} conformers dropped: stereo differs from the input "
                            "(double-bond E/Z or a centre the chirality fix could not set)")
    if gen.GetNumConformers() == 0:
        result.failure = "no conformer with the input's stereo"
        return
    result.mol = gen
    t0 = time.perf_counter()
    _optimize(result.mol, result, opt_options)
    result.seconds += time.perf_counter() - t0
