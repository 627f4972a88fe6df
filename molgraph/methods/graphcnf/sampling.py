"""Sampling molecules from a trained GraphCNF, judging them, and the generation metrics.

:func:`generate_graphs` draws each molecule's number of atoms from the training set's length
histogram (independently per molecule), groups molecules of equal size into batches, and inverts
the flow from prior samples; everything is seeded by ``seed`` (numpy for the sizes, a torch
generator for the latents), so a seed gives the same molecules every time (for the same
``batch_size``). :func:`judge` turns each graph into an RDKit molecule and a verdict
(:class:`~molgraph.data.dense_graphs.GraphCheck`); :func:`generation_metrics` reports validity
(connected, sanitizable, SMILES round trip), validity of the largest fragment, uniqueness,
novelty, the invalid samples' reasons, internal diversity and scaffold novelty.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from molgraph.data.dense_graphs import AtomVocabulary, GraphCheck, check_graph

__all__ = ["sample_lengths", "generate_graphs", "judge", "generation_metrics", "internal_diversity",
           "scaffold_set", "random_graphs"]


def sample_lengths(length_hist: Sequence[float], n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n,)`` numbers of atoms drawn independently from the histogram ``length_hist`` (index = size)."""
    h = np.asarray(length_hist, dtype=np.float64)
    h[0] = 0.0
    if h.sum() <= 0:
        raise ValueError("the length histogram has no molecule with atoms")
    return rng.choice(h.size, size=int(n), p=h / h.sum()).astype(np.int64)


@torch.no_grad()
def generate_graphs(model: torch.nn.Module, length_hist: Sequence[float], n: int, *, seed: int = 0,
                    batch_size: int = 256, temperature: float = 1.0
                    ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """``n`` graphs from ``model``: lists of ``types`` ``(n_i,)`` and ``adj`` ``(n_i, n_i)``, and the sizes.

    Sizes are drawn per molecule; molecules are generated in batches of equal size (in order of
    size), then returned in the order their sizes were drawn.
    """
    was = model.training
    model.eval()
    rng = np.random.default_rng(int(seed))
    gen = torch.Generator().manual_seed(int(seed))
    lengths = sample_lengths(length_hist, n, rng)
    types: list[np.ndarray | None] = [None] * int(n)
    adjs: list[np.ndarray | None] = [None] * int(n)
    order = np.argsort(lengths, kind="stable")
    for i in range(0, order.size, batch_size):
        idx = order[i:i + batch_size]
        t, a = model.sample(torch.from_numpy(lengths[idx]), generator=gen, temperature=temperature)
        t, a = t.numpy(), a.numpy()
        for row, k in enumerate(idx.tolist()):
            m = int(lengths[k])
            types[k], adjs[k] = t[row, :m].copy(), a[row, :m, :m].copy()
    model.train(was)
    return types, adjs, lengths  # type: ignore[return-value]


def judge(types: Sequence[np.ndarray], adjs: Sequence[np.ndarray], lengths: Any, vocab: AtomVocabulary
          ) -> list[GraphCheck]:
    """The verdict on every graph (see :func:`~molgraph.data.dense_graphs.check_graph`)."""
    return [check_graph(t, a, vocab) for t, a in zip(types, adjs)]


def random_graphs(atom_freq: Sequence[float], pair_freq: Sequence[float], length_hist: Sequence[float], n: int,
                  *, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """The validity baseline: graphs whose sizes, atom types and pair types (none / single /
    double / triple) are drawn independently from the data's marginals."""
    rng = np.random.default_rng(int(seed))
    lengths = sample_lengths(length_hist, n, rng)
    pa = np.asarray(atom_freq, np.float64)
    pp = np.asarray(pair_freq, np.float64)
    types, adjs = [], []
    for m in lengths.tolist():
        types.append(rng.choice(pa.size, size=m, p=pa / pa.sum()))
        a = np.zeros((m, m), dtype=np.int64)
        iu = np.triu_indices(m, 1)
        a[iu] = rng.choice(pp.size, size=iu[0].size, p=pp / pp.sum())
        adjs.append(a + a.T)
    return types, adjs, lengths


def _fingerprints(smiles: Iterable[str]) -> list:
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    return [gen.GetFingerprint(Chem.MolFromSmiles(s)) for s in smiles]


def internal_diversity(smiles: Sequence[str], *, max_molecules: int = 1000, seed: int = 0) -> float | None:
    """MOSES's IntDiv1: ``1 - mean Tanimoto`` over all ordered pairs (self-pairs included, as MOSES
    does) of Morgan fingerprints (radius 2, 2048 bits) of at most ``max_molecules`` molecules
    (a seeded subset when there are more)."""
    from rdkit import DataStructs

    smiles = list(smiles)
    if len(smiles) < 2:
        return None
    if len(smiles) > max_molecules:
        idx = np.random.default_rng(seed).choice(len(smiles), max_molecules, replace=False)
        smiles = [smiles[i] for i in np.sort(idx)]
    fps = _fingerprints(smiles)
    total = 0.0
    for fp in fps:
        total += float(np.sum(DataStructs.BulkTanimotoSimilarity(fp, fps)))
    return 1.0 - total / (len(fps) ** 2)


def scaffold_set(smiles: Iterable[str]) -> set[str]:
    """Bemis-Murcko scaffolds (canonical SMILES; acyclic molecules give ``""``)."""
    from rdkit import Chem
    from rdkit.Chem.Scaffolds import MurckoScaffold

    out = set()
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        if mol is not None:
            out.add(MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False))
    return out


def _frag_atoms(c: GraphCheck) -> int:
    from rdkit import Chem

    mol = Chem.MolFromSmiles(c.fragment_smiles) if c.fragment_smiles else None
    return mol.GetNumAtoms() if mol is not None else 0


def generation_metrics(checks: Sequence[GraphCheck], train_smiles: set[str] | None = None, *,
                       train_scaffolds: set[str] | None = None, diversity_molecules: int = 1000) -> dict[str, Any]:
    """The generation report of a list of verdicts.

    Returns a dict with ``n``, ``valid`` (count), ``validity``, ``validity_largest_fragment``,
    ``uniqueness`` (distinct / valid), ``novelty`` (valid samples, duplicates counted, absent
    from ``train_smiles``), ``novelty_unique`` (distinct valid absent), ``invalid_reasons``
    (reason category -> count), ``largest_fragment_mean_atom_share`` (atoms of the valid largest
    fragments over the sample's atoms), ``internal_diversity``, ``scaffold_novelty`` (distinct non-empty scaffolds
    of the valid samples absent from ``train_scaffolds``, as a share of their distinct
    non-empty scaffolds) and ``mean_atoms``.
    """
    n = len(checks)
    valid = [c.smiles for c in checks if c.valid]
    frag = sum(1 for c in checks if c.fragment_valid)
    # reason categories: "disconnected (3 fragments)" counts as "disconnected"
    reasons = Counter(c.reason.split(";")[0].split(" (")[0] for c in checks if not c.valid)
    unique = set(valid)
    out: dict[str, Any] = {
        "n": n,
        "valid": len(valid),
        "validity": len(valid) / n if n else None,
        "validity_largest_fragment": frag / n if n else None,
        "uniqueness": len(unique) / len(valid) if valid else None,
        "invalid_reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        "invalid_also_disconnected": sum(1 for c in checks if not c.valid and "disconnected" in c.reason),
        "mean_atoms": float(np.mean([c.num_atoms for c in checks])) if n else None,
        # a valid largest fragment can be tiny: report how much of the sample it keeps
        "largest_fragment_mean_atom_share": float(np.mean([_frag_atoms(c) / max(c.num_atoms, 1) for c in checks
                                                           if c.fragment_valid])) if frag else None,
    }
    if train_smiles is not None:
        out["novelty"] = sum(1 for s in valid if s not in train_smiles) / len(valid) if valid else None
        out["novelty_unique"] = sum(1 for s in unique if s not in train_smiles) / len(unique) if unique else None
    out["internal_diversity"] = internal_diversity(sorted(unique), max_molecules=diversity_molecules)
    if train_scaffolds is not None:
        scafs = scaffold_set(unique) - {""}
        out["scaffold_novelty"] = len(scafs - train_scaffolds) / len(scafs) if scafs else None
        out["distinct_scaffolds"] = len(scafs)
    return out
