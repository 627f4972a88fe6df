"""Conformer generation on RDKit's distance geometry (ETKDG) and force fields, with fallbacks.

The flow for one molecule (:func:`generate_conformers`)::

    parse / add hydrogens
      -> EmbedMultipleConfs(params)                      # rdDistGeom parameter object
      -> if nothing embedded: again with useRandomCoords  # helps strained fused/cage systems
      -> if still nothing and the input has stereo:       # ETKDG could not satisfy the stereo
             embed without enforcing chirality, keep only conformers whose stereo matches
      -> drop conformers whose stereo differs from the input (checked on every conformer)
      -> optimize: MMFF94, or UFF when MMFF has no parameters, or nothing
      -> ConformerResult (the molecule, energies, and what was done and why)

Nothing raises for a molecule that cannot be embedded or optimized: the result says why
(``failure``, ``notes``, RDKit's failure counts). Parse errors raise
:class:`~molgraph.chem.errors.MoleculeError`; the batch runner turns them into failed results.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from rdkit import Chem, rdBase
from rdkit.Chem import rdDistGeom, rdForceFieldHelpers

from molgraph.chem.errors import MoleculeError
from molgraph.chem.parse import mol_from_smiles
from molgraph.conformers.seeds import molecule_key, rdkit_seed
from molgraph.conformers.stereo import conformer_stereo_ok, stereo_spec

__all__ = ["METHODS", "OPTIMIZERS", "GenerationOptions", "ConformerResult", "generate_conformers", "embed_params"]

# name -> factory of the rdDistGeom parameter object
METHODS = {
    "ETKDGv3": rdDistGeom.ETKDGv3,
    "srETKDGv3": rdDistGeom.srETKDGv3,
    "ETKDGv2": rdDistGeom.ETKDGv2,
    "ETKDG": rdDistGeom.ETKDG,
    "ETDG": rdDistGeom.ETDG,
    "KDG": rdDistGeom.KDG,
}
OPTIMIZERS = ("mmff", "uff", None)
# Elements MMFF94 has atom types for (Halgren 1996; RDKit's MMFF typer); others need UFF.
_PICKLE_FLAGS = Chem.PropertyPickleOptions.AllProps | Chem.PropertyPickleOptions.CoordsAsDouble
# Rounds of the chirality-free fallback (each 2 x n_confs attempts) before giving up on n_confs.
FALLBACK_ROUNDS = 4
_MMFF_ELEMENTS = frozenset({1, 3, 6, 7, 8, 9, 11, 12, 14, 15, 16, 17, 19, 20, 26, 29, 30, 35, 53})


@dataclass(frozen=True)
class GenerationOptions:
    """Settings of one generation run; recorded with the results.

    Attributes:
        n_confs: conformers requested per molecule.
        method: rdDistGeom parameter set, one of :data:`METHODS`.
        optimize: ``"mmff"`` (MMFF94, UFF fallback), ``"uff"`` or ``None``.
        prune_rms: RDKit's ``pruneRmsThresh`` in angstrom (heavy atoms, before optimization);
            ``None`` keeps every conformer.
        seed: the run's seed (``>= 0``, 0 included). It is not passed to RDKit as it is: RDKit
            seeds conformer i with ``randomSeed * (i + 1)``, so 0 would give identical conformers
            and nearby seeds would share conformers. Each molecule gets RDKit seed
            :func:`~molgraph.conformers.seeds.rdkit_seed` ``(seed, molecule)``, a prime drawn
            from the seed and the molecule's canonical SMILES: never 0, different for different
            molecules, and for the same molecule seeds less than 32,768 apart never share a
            conformer (up to 435 conformers per call).
        max_attempts: RDKit ``maxIterations`` per conformer (0: RDKit's default).
        timeout: RDKit's embedding ``timeout`` in seconds per attempt (0: none).
        max_opt_iters: force-field iterations per conformer.
        force_trans_amides: ETKDG's ``forceTransAmides`` (True in RDKit; GEOM has cis amides).
        fallback: try random coordinates, then chirality-free embedding, when embedding fails.
        check_stereo: verify each conformer against the input's specified stereo; drop mismatches.
    """

    n_confs: int = 10
    method: str = "ETKDGv3"
    optimize: str | None = "mmff"
    prune_rms: float | None = None
    seed: int = 42
    max_attempts: int = 0
    timeout: float = 0.0
    max_opt_iters: int = 500
    force_trans_amides: bool = True
    fallback: bool = True
    check_stereo: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose from {sorted(METHODS)}")
        if self.optimize not in OPTIMIZERS:
            raise ValueError(f"optimize must be one of {OPTIMIZERS}, got {self.optimize!r}")
        if self.n_confs < 1:
            raise ValueError(f"n_confs must be >= 1, got {self.n_confs}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed} (RDKit treats -1 as 'random')")

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class ConformerResult:
    """What happened to one molecule.

    Attributes:
        index: position in the batch input (None when called alone).
        input: the SMILES (or name) given.
        mol: the molecule with explicit hydrogens and its conformers (ids 0..n-1), or None when
            it could not be parsed. Coordinates in angstrom.
        energies: force-field energy per conformer in kcal/mol (empty without optimization).
        converged: per conformer, whether the optimizer converged within ``max_opt_iters``.
        force_field: ``"MMFF94"``, ``"UFF"`` or None.
        embedding: the embedding route that produced the conformers, e.g. ``"ETKDGv3"`` or
            ``"ETKDGv3+random_coords"``.
        notes: fallbacks taken and why (empty on the plain path).
        failure: why no conformer was produced; None on success.
        n_stereo_rejected: conformers dropped because their stereo differed from the input.
        failure_counts: RDKit's embedding failure causes summed over all attempts.
        seconds: wall time spent on this molecule.
        rdkit_seed: the ``randomSeed`` given to RDKit (derived from the user's seed and the
            molecule; see :mod:`molgraph.conformers.seeds`); None when the molecule could not be read.
    """

    index: int | None
    input: str
    mol: Chem.Mol | None = None
    energies: list[float] = field(default_factory=list)
    converged: list[bool] = field(default_factory=list)
    force_field: str | None = None
    embedding: str = ""
    notes: list[str] = field(default_factory=list)
    failure: str | None = None
    n_stereo_rejected: int = 0
    failure_counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    rdkit_seed: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        # RDKit pickles coordinates as float32 by default; results crossing a process boundary
        # must be bit-identical to in-process ones, so send the molecule with double coordinates.
        state = dict(self.__dict__)
        if self.mol is not None:
            state["mol"] = self.mol.ToBinary(_PICKLE_FLAGS)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state.get("mol"), bytes):
            state["mol"] = Chem.Mol(state["mol"])
        self.__dict__.update(state)

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def n_confs(self) -> int:
        return 0 if self.mol is None else self.mol.GetNumConformers()


def embed_params(options: GenerationOptions, random_seed: int, *, random_coords: bool = False,
                 enforce_chirality: bool = True):
    """The rdDistGeom parameter object for ``options`` (also used by the benchmark's baseline).

    ``random_seed`` is RDKit's ``randomSeed``: :func:`~molgraph.conformers.seeds.rdkit_seed` of
    ``options.seed`` and the molecule, never ``options.seed`` itself.
    """
    if random_seed <= 0:
        raise ValueError(f"RDKit random_seed must be > 0 (0 gives identical conformers), got {random_seed}")
    params = METHODS[options.method]()
    params.randomSeed = int(random_seed)
    params.pruneRmsThresh = -1.0 if options.prune_rms is None else float(options.prune_rms)
    params.maxIterations = int(options.max_attempts)
    params.numThreads = 1  # parallelism is across molecules (processes), not inside one
    params.forceTransAmides = bool(options.force_trans_amides)
    params.useRandomCoords = random_coords
    params.enforceChirality = enforce_chirality
    params.trackFailures = True
    if options.timeout:
        params.timeout = int(max(1, round(options.timeout)))
    return params


_CAUSES = list(rdDistGeom.EmbedFailureCauses.names)


def _embed(mol: Chem.Mol, n: int, params, counts: dict[str, int]) -> int:
    with rdBase.BlockLogs():
        cids = rdDistGeom.EmbedMultipleConfs(mol, n, params)
    for name, c in zip(_CAUSES, params.GetFailureCounts()):
        if c:
            counts[name] = counts.get(name, 0) + int(c)
    # RDKit returns [-1] (and no conformer) when the timeout hits: count real conformers only
    return sum(1 for cid in cids if cid >= 0)


def _keep_conformers(mol: Chem.Mol, keep: list[bool]) -> Chem.Mol:
    """A copy of ``mol`` holding only the conformers flagged in ``keep``, renumbered 0..k-1."""
    confs = [Chem.Conformer(c) for c, k in zip(mol.GetConformers(), keep) if k]
    out = Chem.Mol(mol)
    out.RemoveAllConformers()
    for i, conf in enumerate(confs):
        conf.SetId(i)
        out.AddConformer(conf, assignId=False)
    return out


def _optimize(mol: Chem.Mol, result: ConformerResult, options: GenerationOptions) -> None:
    want = options.optimize
    if want is None:
        return
    # MMFF typing re-perceives aromaticity on the molecule it is given (MMFF's own model), which
    # would change the returned graph: optimize a copy and copy the coordinates back.
    work = Chem.Mol(mol)
    _optimize_inplace(work, result, options)
    for conf, new in zip(mol.GetConformers(), work.GetConformers()):
        conf.SetPositions(new.GetPositions())


def _optimize_inplace(mol: Chem.Mol, result: ConformerResult, options: GenerationOptions) -> None:
    want = options.optimize
    if want == "mmff":
        if rdForceFieldHelpers.MMFFHasAllMoleculeParams(mol):
            with rdBase.BlockLogs():
                out = rdForceFieldHelpers.MMFFOptimizeMoleculeConfs(mol, numThreads=1, maxIters=options.max_opt_iters)
            result.force_field = "MMFF94"
            result.converged = [nc == 0 for nc, _ in out]
            result.energies = [float(e) for _, e in out]
            return
        missing = sorted({a.GetSymbol() for a in mol.GetAtoms() if a.GetAtomicNum() not in _MMFF_ELEMENTS})
        what = f"no MMFF94 atom types for element(s) {', '.join(missing)}" if missing else \
            "no MMFF94 parameters for an atom environment (charge/valence state)"
        result.notes.append(f"MMFF94 not used: {what}; fell back to UFF")
    if rdForceFieldHelpers.UFFHasAllMoleculeParams(mol):
        with rdBase.BlockLogs():
            out = rdForceFieldHelpers.UFFOptimizeMoleculeConfs(mol, numThreads=1, maxIters=options.max_opt_iters)
        result.force_field = "UFF"
        result.converged = [nc == 0 for nc, _ in out]
        result.energies = [float(e) for _, e in out]
    else:
        result.notes.append("UFF has no parameters for this molecule either; conformers left unoptimized")


def generate_conformers(
    mol: Chem.Mol | str,
    n_confs: int | None = None,
    *,
    options: GenerationOptions | None = None,
    index: int | None = None,
    **kwargs: Any,
) -> ConformerResult:
    """Generate conformers for one molecule.

    Args:
        mol: an RDKit molecule (hydrogens are added if absent) or a SMILES string. Stereo
            specified in the input is enforced and checked; unspecified stereo is left to ETKDG.
        n_confs: conformers requested (overrides ``options.n_confs``).
        options: a :class:`GenerationOptions`; keyword arguments (``method``, ``optimize``,
            ``prune_rms``, ``seed``, ``max_attempts``, ``timeout``, ...) override its fields.
        index: position in a batch, copied into the result.

    Returns:
        A :class:`ConformerResult`; ``result.mol`` has conformers 0..k-1 (k <= n_confs; fewer
        when pruning removes near-duplicates or embedding partly fails).

    Raises:
        MoleculeError: ``mol`` is not a valid SMILES / molecule.
        ValueError: invalid options.
    """
    start = time.perf_counter()
    options = options or GenerationOptions()
    if n_confs is not None:
        kwargs["n_confs"] = n_confs
    if kwargs:
        options = replace(options, **kwargs)
    if isinstance(mol, str):
        text = mol
        mol = mol_from_smiles(mol, index=index)
    else:
        if mol is None or mol.GetNumAtoms() == 0:
            raise MoleculeError("empty or missing molecule", None, index)
        text = mol.GetProp("_Name") if mol.HasProp("_Name") else Chem.MolToSmiles(mol)
    result = ConformerResult(index=index, input=text, embedding=options.method)

    key = molecule_key(mol)
    seed = rdkit_seed(options.seed, key)
    result.rdkit_seed = seed
    # Embedding needs explicit hydrogens; AddHs keeps chiral tags valid (H goes last).
    mol = Chem.AddHs(mol) if any(a.GetTotalNumHs() for a in mol.GetAtoms()) else Chem.Mol(mol)
    spec = stereo_spec(mol) if options.check_stereo else None
    counts = result.failure_counts

    n = _embed(mol, options.n_confs, embed_params(options, seed), counts)
    if n == 0 and options.fallback:
        result.notes.append("ETKDG embedding failed; retried with random initial coordinates")
        result.embedding += "+random_coords"
        n = _embed(mol, options.n_confs, embed_params(options, seed, random_coords=True), counts)
    if n == 0 and options.fallback and spec:
        # Strained fused/cage systems: ETKDG's chirality checks can reject every attempt. Embed
        # freely and keep the conformers that happen to have the requested stereo.
        # enforceChirality=False alone is not enough: the chiral tags still enter the bounds and
        # the first minimization, so embed a copy without them (same atom order) and check.
        result.notes.append("embedding with the input stereo failed; embedded without the chiral "
                            "tags and kept conformers whose stereo matches the input")
        result.embedding += "+no_chirality"
        free = Chem.Mol(mol)
        for atom_idx, _ in spec.centers:
            free.GetAtomWithIdx(atom_idx).SetChiralTag(Chem.ChiralType.CHI_UNSPECIFIED)
        kept = _keep_conformers(mol, [])
        # Rounds of 2n attempts, each round from its own prime (stream r), so no attempt repeats an
        # earlier one; stop once n conformers with the input stereo are kept.
        for stream in range(FALLBACK_ROUNDS):
            params = embed_params(options, rdkit_seed(options.seed, key, stream=stream), random_coords=True,
                                  enforce_chirality=False)
            if not _embed(free, 2 * options.n_confs, params, counts):
                continue
            trial = _keep_conformers(mol, [])
            for conf in free.GetConformers():
                trial.AddConformer(Chem.Conformer(conf), assignId=False)
            keep = conformer_stereo_ok(trial, spec)
            result.n_stereo_rejected += keep.count(False)
            for conf, ok in zip(trial.GetConformers(), keep):
                if ok and kept.GetNumConformers() < options.n_confs:
                    c = Chem.Conformer(conf)
                    c.SetId(kept.GetNumConformers())
                    kept.AddConformer(c, assignId=False)
            if kept.GetNumConformers() >= options.n_confs:
                break
        mol = kept
        n = mol.GetNumConformers()
        if 0 < n < options.n_confs:
            result.notes.append(f"only {n} of {options.n_confs} conformers kept the input stereo after "
                                f"{FALLBACK_ROUNDS} rounds of {2 * options.n_confs} chirality-free attempts")
    elif n and spec:
        keep = conformer_stereo_ok(mol, spec)
        if not all(keep):
            result.n_stereo_rejected = keep.count(False)
            mol = _keep_conformers(mol, keep)
            n = mol.GetNumConformers()
            result.notes.append(f"{result.n_stereo_rejected} of {len(keep)} conformers dropped: their stereo "
                                "differs from the input's")
    result.mol = mol
    if n == 0:
        causes = ", ".join(f"{k} x{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) or "none reported"
        result.failure = (
            f"no conformer could be embedded ({result.embedding}; RDKit failure causes: {causes})"
            if not result.n_stereo_rejected else
            f"no embedded conformer kept the input stereo ({result.n_stereo_rejected} rejected; "
            f"RDKit failure causes: {causes})"
        )
    else:
        _optimize(mol, result, options)
    result.seconds = time.perf_counter() - start
    return result
