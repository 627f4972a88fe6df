"""From the user's seed to RDKit's ``randomSeed``, and a check that conformers are distinct.

RDKit's ``EmbedMultipleConfs`` seeds conformer ``i`` with ``randomSeed * (i + 1)`` (RDKit's
``Embedder.cpp``; when that product overflows a C ``int`` it folds a 62-bit hash of the pair
instead). Passing the user's seed through therefore goes wrong in two ways:

* ``randomSeed = 0`` seeds every conformer with 0: n identical conformers.
* Seeds ``s`` and ``t`` share a conformer whenever ``s * (i + 1) == t * (j + 1)`` (42 and 84
  share every other one), and every molecule of a run draws the same random stream.

The rule used here (:func:`rdkit_seed`): RDKit's seed is a prime ``p`` taken from a fixed table
of :data:`N_PRIMES` consecutive primes above ``2**20``, at position
``(seed + h(molecule)) mod N_PRIMES`` where ``h`` is a stable 64-bit hash (BLAKE2b) of the
molecule's canonical isomeric SMILES. Consequences:

* ``p`` is never 0, and conformer seeds ``p * (i + 1)`` are pairwise distinct within a call.
* Two different primes ``p != q`` above ``2**20`` never give a common conformer seed
  ``p * (i + 1) == q * (j + 1)`` while ``i + 1`` and ``j + 1`` stay below ``2**20`` (``q`` would
  have to divide ``i + 1``). So user seeds ``s != t`` with ``|s - t| < 2**15`` (32,768) never share a
  conformer seed for the same molecule, for any ``n_confs`` up to :func:`max_disjoint_confs` (435)
  (past it RDKit's overflow hash takes over: distinct with overwhelming probability, not by
  construction).
* Different molecules draw their primes independently of each other (same table position only by
  hash chance, 1 in ``N_PRIMES`` per pair); a molecule's seed does not depend on its position in
  a batch, so it gets the same conformers alone or in any batch.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np
from rdkit import Chem

__all__ = ["N_PRIMES", "max_disjoint_confs", "molecule_key", "rdkit_seed", "duplicate_conformers"]

N_PRIMES = 1 << 18
_PRIME_FLOOR = 1 << 20
_INT_MAX = (1 << 31) - 1
_STREAMS = 8


@functools.lru_cache(maxsize=1)
def _prime_table() -> np.ndarray:
    """The first :data:`N_PRIMES` primes above ``2**20`` (1,048,583 .. 4,933,583), sieved once."""
    limit = 5_000_000
    sieve = np.ones(limit + 1, dtype=bool)
    sieve[:2] = False
    for k in range(2, int(limit**0.5) + 1):
        if sieve[k]:
            sieve[k * k :: k] = False
    primes = np.flatnonzero(sieve[_PRIME_FLOOR + 1 :]) + _PRIME_FLOOR + 1
    if len(primes) < N_PRIMES:  # pragma: no cover - a wrong limit would be a bug here
        raise RuntimeError("prime table too short")
    return primes[:N_PRIMES].astype(np.int64)


def max_disjoint_confs() -> int:
    """Conformers per call up to which every conformer seed is ``p * (i + 1)`` (no overflow): 435."""
    return _INT_MAX // int(_prime_table()[-1])


def molecule_key(mol: Chem.Mol) -> str:
    """The string a molecule's seed is derived from: canonical isomeric SMILES, hydrogens removed.

    Hydrogens are removed first so a molecule gets the same seed with or without explicit H.
    """
    try:
        return Chem.MolToSmiles(Chem.RemoveHs(mol, sanitize=False))
    except Exception:  # an odd molecule RemoveHs refuses still has a SMILES of its own
        return Chem.MolToSmiles(mol)


def rdkit_seed(seed: int, key: str, stream: int = 0) -> int:
    """RDKit's ``randomSeed`` for user seed ``seed`` and molecule ``key`` (see the module text).

    Args:
        seed: the user's seed, ``>= 0``.
        key: the molecule's identity, normally :func:`molecule_key`.
        stream: ``0 <= stream < 8``; further calls for the same molecule in one run (the
            generator's fallback rounds) take streams 1, 2, ...: position ``+ stream * 2**15``,
            so they never reuse a prime of stream 0 of a user seed less than ``2**15`` away.

    Returns:
        A prime in ``[1048583, 4933583]``.
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not 0 <= stream < _STREAMS:
        raise ValueError(f"stream must be in [0, {_STREAMS}), got {stream}")
    h = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    return int(_prime_table()[(seed + h + stream * (N_PRIMES // _STREAMS)) % N_PRIMES])


def duplicate_conformers(mol: Chem.Mol, atol: float = 1e-6) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, of conformers whose raw coordinates are equal within ``atol`` Å.

    Raw coordinates, not aligned RMSD: two conformers embedded from different seeds start from
    different random coordinates and never coincide, while a repeated seed reproduces a conformer
    bit for bit. (A rigid molecule's distinct conformers can still be near 0 Å apart after
    alignment, so an RMSD test would flag real conformers.)
    """
    confs = mol.GetConformers()
    if len(confs) < 2:
        return []
    xyz = np.stack([c.GetPositions() for c in confs])  # (n_confs, n_atoms, 3)
    flat = xyz.reshape(len(xyz), -1)
    out = []
    for i in range(len(flat)):
        close = np.flatnonzero(np.abs(flat[i + 1 :] - flat[i]).max(axis=1) <= atol)
        out.extend((i, i + 1 + int(j)) for j in close)
    return out
