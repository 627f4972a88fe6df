"""Distances on the extended graph -> 3D coordinates, with the input's chirality enforced.

For K sets of edge distances of one molecule (K conformers), minimise per conformer

    sum_e w_e (d_e - |x_u - x_v|)^2,   w_e = base^(order_e - 1)   (base 0.5 in the reference)

from a few starts per conformer (classical MDS of the distance matrix completed by shortest paths
over the given distances, in 4D, plus perturbed copies): Adam in 4D with the fourth coordinate
squeezed out, an L-BFGS polish in 3D, and the start with the lowest objective kept. Many
molecules are solved as one disjoint problem (:func:`embed_many`); Adam keeps them independent,
the L-BFGS polish shares its line search across the batch, so a conformer can differ in the last
digits with the batch it was solved in (the CLI and benchmark batch in a fixed order). The objective is mirror-symmetric, so about half of the solutions of a
molecule with stereocentres have the wrong handedness. Each specified tetrahedral centre (RDKit
chiral tags of the input, see :mod:`molgraph.conformers.stereo`) is checked with RDKit on every
conformer; conformers whose centres are all wrong are mirrored; conformers with a mix are solved
again with a signed-volume penalty that holds every centre on the side the tags ask for. What is
still wrong afterwards (and double-bond E/Z, which the 3-hop distances decide and which a mirror
cannot change) is counted, never hidden.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from rdkit import Chem
from scipy.sparse.csgraph import shortest_path

from molgraph.conformers.stereo import conformer_stereo_ok, stereo_spec
from molgraph.methods.cgcf.graph import ExtendedGraph

__all__ = ["EmbedReport", "embed_distances", "embed_many", "classical_mds", "signed_volumes", "chiral_quads"]


@dataclass
class EmbedReport:
    """What the embedding did for one molecule's K conformers."""

    n_mirrored: int = 0
    n_resolved_with_penalty: int = 0
    n_stereo_wrong: int = 0
    stereo_ok: list[bool] = field(default_factory=list)
    residual_rms: list[float] = field(default_factory=list)  # weighted RMS distance error, angstrom


def classical_mds(dist: np.ndarray, dim: int = 3) -> np.ndarray:
    """(n, dim) coordinates whose distances best match the (n, n) matrix ``dist`` (Torgerson)."""
    n = len(dist)
    J = np.eye(n) - 1.0 / n
    B = -0.5 * J @ (dist**2) @ J
    w, v = np.linalg.eigh(B)
    idx = np.argsort(w)[::-1][:dim]
    return v[:, idx] * np.sqrt(np.clip(w[idx], 1e-6, None))


def chiral_quads(mol: Chem.Mol) -> np.ndarray:
    """(C, 4) ``[centre, n1, n2, n3]`` for each specified tetrahedral centre of ``mol``."""
    spec = stereo_spec(mol)
    quads = []
    for idx, _ in spec.centers:
        nbrs = [a.GetIdx() for a in mol.GetAtomWithIdx(idx).GetNeighbors()]
        if len(nbrs) >= 3:
            quads.append([idx, *nbrs[:3]])
    return np.asarray(quads, dtype=np.int64).reshape(-1, 4)


def signed_volumes(pos: torch.Tensor, quads: torch.Tensor) -> torch.Tensor:
    """(K, C) signed volumes (angstrom^3) of ``pos`` (K, n, 3) at the centres ``quads`` (C, 4)."""
    c = pos[:, quads[:, 0]]
    a, b, d = pos[:, quads[:, 1]] - c, pos[:, quads[:, 2]] - c, pos[:, quads[:, 3]] - c
    return (a * torch.cross(b, d, dim=-1)).sum(-1)


def _objective(x: torch.Tensor, p: "_Problem", quads: torch.Tensor | None, signs: torch.Tensor | None,
               chiral_weight: float = 10.0, min_volume: float = 0.5) -> torch.Tensor:
    """(R, C) weighted squared distance error (+ chirality penalty) per start and conformer.

    ``x``: (R, N, D) positions of all conformers' atoms (disjoint blocks), D = 3 or 4.
    """
    diff = x[:, p.edges[:, 0]] - x[:, p.edges[:, 1]]
    dist = torch.sqrt((diff * diff).sum(-1) + 1e-12)
    per_edge = p.w * (dist - p.target) ** 2
    out = torch.zeros(x.shape[0], p.n_conf, dtype=x.dtype).index_add(1, p.edge_conf, per_edge)
    if quads is not None and len(quads):
        c = x[:, quads[:, 0], :3]
        a, b, d = x[:, quads[:, 1], :3] - c, x[:, quads[:, 2], :3] - c, x[:, quads[:, 3], :3] - c
        vol = (a * torch.cross(b, d, dim=-1)).sum(-1)
        pen = chiral_weight * torch.relu(min_volume - signs * vol).pow(2)
        out = out.index_add(1, p.atom_conf[quads[:, 0]], pen)
    return out


class _Problem:
    """K conformers of several molecules as one disjoint least-squares problem."""

    def __init__(self, graphs: list[ExtendedGraph], dists: list[np.ndarray], weight_base: float) -> None:
        edges, conf, w, target, atom_conf, self.offsets, self.sizes = [], [], [], [], [], [], []
        off, c = 0, 0
        for g, d in zip(graphs, dists):
            for k in range(len(d)):
                edges.append(g.edges + off)
                conf.append(np.full(g.n_edges, c))
                w.append(weight_base ** (g.order - 1.0))
                target.append(d[k])
                atom_conf.append(np.full(g.n_atoms, c))
                self.offsets.append(off)
                self.sizes.append(g.n_atoms)
                off += g.n_atoms
                c += 1
        self.n_conf, self.n_atoms = c, off
        self.edges = torch.from_numpy(np.concatenate(edges))
        self.edge_conf = torch.from_numpy(np.concatenate(conf))
        self.w = torch.from_numpy(np.concatenate(w))
        self.target = torch.from_numpy(np.concatenate(target))
        self.atom_conf = torch.from_numpy(np.concatenate(atom_conf))


def _least_squares(start: torch.Tensor, p: _Problem, steps: int, quads: torch.Tensor | None = None,
                   signs: torch.Tensor | None = None) -> torch.Tensor:
    """Minimise the objective for every start and conformer at once.

    Adam (elementwise, so the problems stay independent) with a cosine-decayed step; a 4D start
    has its fourth coordinate squeezed out by a growing penalty, which lets atoms pass each other
    on the way to a 3D minimum; then a short L-BFGS polish in 3D.
    """
    x = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=5e-4)
    for i in range(steps):
        opt.zero_grad()
        loss = _objective(x, p, quads, signs).sum()
        if x.shape[-1] == 4:
            loss = loss + (10.0 * (i + 1) / steps) * (x[..., 3] ** 2).sum()
        loss.backward()
        opt.step()
        sched.step()
    x = x.detach()[..., :3].contiguous().requires_grad_(True)
    polish = torch.optim.LBFGS([x], lr=1.0, max_iter=100, tolerance_grad=1e-10, tolerance_change=1e-14,
                               history_size=20, line_search_fn="strong_wolfe")

    def closure():
        polish.zero_grad()
        loss = _objective(x, p, quads, signs).sum()
        loss.backward()
        return loss

    polish.step(closure)
    return x.detach()


def _solve(starts: np.ndarray, p: _Problem, steps: int, quads: torch.Tensor | None = None,
           signs: torch.Tensor | None = None) -> np.ndarray:
    """(N, 3): per conformer, the best of the R starts (``starts``: (R, N, D)) by objective value."""
    x = _least_squares(torch.from_numpy(starts), p, steps, quads, signs)
    with torch.no_grad():
        best = _objective(x, p, quads, signs).argmin(0)  # (C,)
    return x[best[p.atom_conf], torch.arange(p.n_atoms)].numpy()


def _check(mol: Chem.Mol, pos: np.ndarray, spec) -> list[bool]:
    work = Chem.Mol(mol)
    work.RemoveAllConformers()
    for p in pos:
        conf = Chem.Conformer(len(p))
        for i, xyz in enumerate(p):
            conf.SetAtomPosition(i, xyz.tolist())
        work.AddConformer(conf, assignId=True)
    return conformer_stereo_ok(work, spec)


def _centres_ok(mol: Chem.Mol, pos: np.ndarray, spec) -> np.ndarray:
    """(K, C) whether each specified centre has the tagged handedness in each conformer."""
    work = Chem.Mol(mol)
    out = np.zeros((len(pos), len(spec.centers)), dtype=bool)
    for k, p in enumerate(pos):
        work.RemoveAllConformers()
        conf = Chem.Conformer(len(p))
        for i, xyz in enumerate(p):
            conf.SetAtomPosition(i, xyz.tolist())
        work.AddConformer(conf, assignId=True)
        Chem.AssignAtomChiralTagsFromStructure(work, confId=0, replaceExistingTags=True)
        out[k] = [work.GetAtomWithIdx(i).GetChiralTag() == tag for i, tag in spec.centers]
    return out


def embed_distances(mol: Chem.Mol, graph: ExtendedGraph, distances: np.ndarray, *, weight_base: float = 0.5,
                    steps: int = 300, restarts: int = 8, fix_chirality: bool = True) -> tuple[np.ndarray, EmbedReport]:
    """Coordinates for K distance vectors of one molecule (see :func:`embed_many`).

    Returns:
        ``(K, n, 3)`` coordinates in angstrom and an :class:`EmbedReport`.
    """
    return embed_many([(mol, graph, distances)], weight_base=weight_base, steps=steps, restarts=restarts,
                      fix_chirality=fix_chirality)[0]


def embed_many(jobs: list[tuple[Chem.Mol, ExtendedGraph, np.ndarray]], *, weight_base: float = 0.5,
               steps: int = 300, restarts: int = 8, fix_chirality: bool = True) -> list[tuple[np.ndarray, EmbedReport]]:
    """Coordinates for K distance vectors of each of several molecules, solved as one batch.

    Args:
        jobs: ``(mol, graph, distances)``: the molecule with explicit hydrogens in the atom order
            of ``graph`` (its chiral tags and double-bond stereo are the targets; none: nothing
            is enforced), its extended graph, and (K, E) or (E,) distances in angstrom.
        weight_base: edge weight ``weight_base ** (order - 1)``.
        steps: Adam steps (4D), before a 100-step L-BFGS polish in 3D.
        restarts: starts per conformer (MDS and perturbed MDS); the lowest objective is kept.
        fix_chirality: mirror / re-solve conformers whose tetrahedral centres disagree with the tags.

    Returns:
        per job, ``(K, n, 3)`` coordinates in angstrom and an :class:`EmbedReport`.
    """
    if restarts < 1 or steps < 1:
        raise ValueError(f"restarts and steps must be >= 1, got {restarts}, {steps}")
    dists = []
    for mol, graph, distances in jobs:
        d = np.atleast_2d(np.asarray(distances, dtype=np.float64))
        if d.shape[1] != graph.n_edges:
            raise ValueError(f"distances have {d.shape[1]} edges, the graph {graph.n_edges}")
        if mol.GetNumAtoms() != graph.n_atoms:
            raise ValueError(f"the molecule has {mol.GetNumAtoms()} atoms, the graph {graph.n_atoms}")
        # a flow sample can be any real number; a distance cannot be below ~0.5 A
        dists.append(np.clip(d, 0.5, None))
    graphs = [g for _, g, _ in jobs]
    p = _Problem(graphs, dists, weight_base)
    mds = np.empty((p.n_atoms, 4))
    c = 0
    for g, d in zip(graphs, dists):
        for k in range(len(d)):
            adj = np.zeros((g.n_atoms, g.n_atoms))
            adj[g.edges[:, 0], g.edges[:, 1]] = d[k]
            full = shortest_path(adj, method="D", directed=False)
            full[~np.isfinite(full)] = full[np.isfinite(full)].max() + 1.0
            mds[p.offsets[c]:p.offsets[c] + g.n_atoms] = classical_mds(full, 4)
            c += 1
    # restarts: the MDS start and perturbed copies; each job's noise comes from a generator seeded
    # by its own distances, so a molecule's starts do not depend on the other jobs of the batch
    starts = np.repeat(mds[None], restarts, axis=0)
    c = 0
    for j, (g, d) in enumerate(zip(graphs, dists)):
        key = np.frombuffer(np.round(d.ravel(), 6).tobytes(), dtype=np.uint32)
        rng = np.random.default_rng(int(key.sum(dtype=np.uint64)))
        lo, hi = p.offsets[c], p.offsets[c] + g.n_atoms * len(d)
        starts[1:, lo:hi] += rng.normal(0.0, 1.0, (restarts - 1, hi - lo, 4))
        c += len(d)
    flat = _solve(starts, p, steps)
    out, c = [], 0
    for g, d in zip(graphs, dists):
        K = len(d)
        pos = np.stack([flat[p.offsets[c + k]:p.offsets[c + k] + g.n_atoms] for k in range(K)])
        out.append([pos, EmbedReport()])
        c += K
    if fix_chirality:
        _fix_chirality(jobs, dists, out, weight_base, steps)
    results = []
    for (mol, g, _), d, (pos, report) in zip(jobs, dists, out):
        spec = stereo_spec(mol)
        report.stereo_ok = _check(mol, pos, spec) if spec else [True] * len(pos)
        report.n_stereo_wrong = int(len(pos) - sum(report.stereo_ok))
        err = np.linalg.norm(pos[:, g.edges[:, 0]] - pos[:, g.edges[:, 1]], axis=-1) - d
        wn = weight_base ** (g.order - 1.0)
        report.residual_rms = np.sqrt((wn * err**2).sum(1) / wn.sum()).tolist()
        results.append((pos, report))
    return results


def _fix_chirality(jobs, dists, out, weight_base: float, steps: int) -> None:
    """Mirror conformers with every tagged centre wrong; re-solve the mixed ones with the volume penalty."""
    redo = []  # (job index, conformer indices, start positions, quads, signs)
    for j, ((mol, g, _), (pos, report)) in enumerate(zip(jobs, out)):
        spec = stereo_spec(mol)
        if not spec.centers:
            continue
        ok = _centres_ok(mol, pos, spec)
        all_wrong = ~ok.any(axis=1)
        pos[all_wrong] *= np.array([-1.0, 1.0, 1.0])  # a mirror image has every centre inverted
        report.n_mirrored = int(all_wrong.sum())
        ok[all_wrong] = True
        mixed = np.flatnonzero(~ok.all(axis=1))
        quads = chiral_quads(mol)
        if not len(mixed) or len(quads) != len(spec.centers):
            continue
        # the sign of the volume the tags ask for, per centre, read off the conformers right there
        vols = signed_volumes(torch.from_numpy(pos), torch.from_numpy(quads)).numpy()
        ok_now = _centres_ok(mol, pos, spec)
        signs = np.where((np.sign(vols) * np.where(ok_now, 1.0, -1.0)).sum(0) >= 0, 1.0, -1.0)
        start = pos[mixed].copy()
        # start from the mirror when most centres are wrong (fewer to push through the plane)
        flip = (~ok_now[mixed]).sum(1) * 2 > ok_now.shape[1]
        start[flip] *= np.array([-1.0, 1.0, 1.0])
        redo.append((j, mixed, start, quads, signs))
    if not redo:
        return
    graphs = [jobs[j][1] for j, *_ in redo]
    p = _Problem(graphs, [dists[j][m] for j, m, *_ in redo], weight_base)
    starts = np.concatenate([s.reshape(-1, 3) for _, _, s, _, _ in redo])
    starts = np.concatenate([starts, np.zeros((len(starts), 1))], axis=1)[None]
    all_quads, all_signs, c = [], [], 0
    for _, m, _, quads, signs in redo:
        for k in range(len(m)):
            all_quads.append(quads + p.offsets[c + k])
            all_signs.append(signs)
        c += len(m)
    flat = _solve(starts, p, steps, torch.from_numpy(np.concatenate(all_quads)), torch.from_numpy(np.concatenate(all_signs)))
    c = 0
    for j, m, _, _, _ in redo:
        mol, g, _ = jobs[j]
        pos, report = out[j]
        for k, conf in enumerate(m):
            pos[conf] = flat[p.offsets[c + k]:p.offsets[c + k] + g.n_atoms]
        c += len(m)
        report.n_resolved_with_penalty = int(_centres_ok(mol, pos[m], stereo_spec(mol)).all(axis=1).sum())
