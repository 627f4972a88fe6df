"""A trained CGCF model: the flow, the optional energy network, the settings; sampling and scoring.

* :meth:`CGCFModel.sample_distances` — flow samples on the extended graph (angstrom);
* :meth:`CGCFModel.generate` — conformers of one molecule: flow -> distance geometry (chirality
  from the input's tags) -> optional Langevin steps on log p_flow - E -> an RDKit molecule;
* :meth:`CGCFModel.score` — log p_flow(d(R)) - E(R) (or either term) of given conformers, the
  hybrid's ranking of ETKDG conformers;
* :func:`save_model` / :func:`load_model` — one model file (``molgraph.model/2`` layout, loaded
  with ``weights_only=True``) holding everything needed to sample.

Seeds: each molecule draws its base noise, Hutchinson probes and Langevin noise from a
``torch.Generator`` seeded with :func:`molgraph.conformers.rdkit_seed` ``(seed, molecule)``, so a
molecule's conformers do not depend on the other molecules of a run.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rdkit import Chem

from molgraph.conformers.seeds import molecule_key, rdkit_seed
from molgraph.methods.cgcf.config import CGCFConfig
from molgraph.methods.cgcf.distgeom import EmbedReport, embed_distances
from molgraph.methods.cgcf.energy import EnergyNet
from molgraph.methods.cgcf.flow import DistanceFlow
from molgraph.methods.cgcf.graph import ExtendedGraph, GraphBatch, collate, edge_distances, extended_graph

__all__ = ["CGCFModel", "Generated", "save_model", "load_model", "SECTION_VERSION"]

SECTION_VERSION = 1


@dataclass
class Generated:
    """Conformers of one molecule from the learned model.

    Attributes:
        mol: the input molecule with hydrogens and K conformers (angstrom).
        embed: what distance geometry did (mirrors, chirality re-solves, stereo still wrong).
        langevin_steps: Langevin steps applied after the flow.
        seconds: wall time for this molecule.
        seed: the generator seed used for the molecule.
    """

    mol: Chem.Mol
    embed: EmbedReport
    langevin_steps: int
    seconds: float
    seed: int
    notes: list[str] = field(default_factory=list)


def _with_conformers(mol: Chem.Mol, pos: np.ndarray) -> Chem.Mol:
    out = Chem.Mol(mol)
    out.RemoveAllConformers()
    for p in pos:
        conf = Chem.Conformer(len(p))
        for i, xyz in enumerate(p):
            conf.SetAtomPosition(i, (float(xyz[0]), float(xyz[1]), float(xyz[2])))
        conf.Set3D(True)
        out.AddConformer(conf, assignId=True)
    return out


class CGCFModel:
    """The flow (+ energy) with its settings; see the module docstring."""

    def __init__(self, config: CGCFConfig, flow: DistanceFlow, energy: EnergyNet | None = None,
                 info: dict[str, Any] | None = None) -> None:
        self.config = config
        self.flow = flow.eval()
        self.energy = energy.eval() if energy is not None else None
        self.info = dict(info or {})

    # -- flow ------------------------------------------------------------------------------------------
    def _solver_kw(self, solver: str | None) -> dict[str, Any]:
        c = self.config
        return {"solver": solver or c.eval_solver, "steps": c.eval_steps, "atol": c.atol, "rtol": c.rtol}

    def sample_distances(self, graph: ExtendedGraph, k: int, generator: torch.Generator,
                         solver: str | None = None) -> np.ndarray:
        """(k, E) distances (angstrom) sampled by the flow for one molecule."""
        batch = collate([graph] * k)
        z0 = torch.randn(len(batch.etype), generator=generator)
        with torch.no_grad():
            d = self.flow.sample(batch, z0=z0, **self._solver_kw(solver))
        return d.reshape(k, graph.n_edges).numpy().astype(np.float64)

    def log_prob(self, graph: ExtendedGraph, pos: torch.Tensor, generator: torch.Generator, *, probes: int = 2,
                 solver: str | None = None, create_graph: bool = False, steps: int | None = None) -> torch.Tensor:
        """(K,) flow log-density of the extended-graph distances of ``pos`` (K, n, 3).

        Hutchinson's estimate with ``probes`` Gaussian probes, the same probes for every
        conformer (common random numbers: the ranking of conformers does not see probe noise
        that differs between them).
        """
        K = pos.shape[0]
        batch = collate([graph] * K)
        d = edge_distances(pos.reshape(-1, 3).to(torch.float32), batch.edges)
        total = torch.zeros(K)
        kw = self._solver_kw(solver or "rk4")
        if steps is not None:
            kw["steps"] = steps
        for _ in range(probes):
            probe = torch.randn(graph.n_edges, generator=generator).repeat(K)
            total = total + self.flow.log_prob(d, batch, trace="hutchinson", probe=probe, create_graph=create_graph, **kw)
        return total / probes

    def energy_of(self, graph: ExtendedGraph, pos: torch.Tensor) -> torch.Tensor:
        """(K,) energies of ``pos`` (K, n, 3); zeros without an energy network."""
        if self.energy is None:
            return torch.zeros(pos.shape[0])
        batch = collate([graph] * pos.shape[0])
        return self.energy(pos.reshape(-1, 3).to(torch.float32), batch)

    def score(self, mol: Chem.Mol, *, what: str = "tilted", seed: int = 0, probes: int = 2) -> np.ndarray:
        """Score every conformer of ``mol`` (with H): higher = more likely under the model.

        Args:
            what: ``"tilted"`` (log p_flow - E), ``"flow"`` (log p_flow) or ``"energy"`` (-E).
        """
        if what not in ("tilted", "flow", "energy"):
            raise ValueError(f"what must be tilted, flow or energy, got {what!r}")
        if what in ("tilted", "energy") and self.energy is None:
            raise ValueError(f"score {what!r} needs an energy network; this model has none (train it with NCE)")
        graph = extended_graph(mol, self.config.max_hops, conf_id=-2)
        pos = torch.from_numpy(np.stack([c.GetPositions() for c in mol.GetConformers()])).float()
        gen = torch.Generator().manual_seed(rdkit_seed(seed, molecule_key(mol)))
        out = torch.zeros(pos.shape[0])
        with torch.no_grad():
            if what in ("tilted", "energy"):
                # in chunks: the energy network's all-pairs tensors grow as K n^2 (drug-size pools)
                out = out - torch.cat([self.energy_of(graph, p) for p in torch.split(pos, 64)])
        if what in ("tilted", "flow"):
            out = out + self.log_prob(graph, pos, gen, probes=probes).detach()
        return out.numpy().astype(np.float64)

    # -- sampling ----------------------------------------------------------------------------------------
    def langevin(self, graph: ExtendedGraph, pos: np.ndarray, generator: torch.Generator, steps: int,
                 step_size: float) -> np.ndarray:
        """``steps`` Langevin steps on log p_flow(d(R)) - E(R) from ``pos`` (K, n, 3).

        ``R += eta/2 * grad + sqrt(eta) * noise`` with the drift of each atom capped at 0.1
        angstrom per step (the flow's density is sharp along bonds; an uncapped step can throw
        atoms apart).
        """
        x = torch.from_numpy(pos).float()
        for _ in range(steps):
            x = x.detach().requires_grad_(True)
            s = self.log_prob(graph, x, generator, probes=1, solver="rk4", create_graph=True,
                              steps=self.config.train_steps)
            if self.energy is not None:
                s = s - self.energy_of(graph, x)
            (grad,) = torch.autograd.grad(s.sum(), x)
            drift = 0.5 * step_size * grad
            norm = drift.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            drift = drift * torch.clamp(0.1 / norm, max=1.0)
            x = x.detach() + drift + math.sqrt(step_size) * torch.randn(x.shape, generator=generator)
        return x.detach().numpy().astype(np.float64)

    def generate(self, mol: Chem.Mol, n_confs: int, *, seed: int = 0, langevin_steps: int | None = None,
                 solver: str | None = None) -> Generated:
        """``n_confs`` conformers of ``mol`` (explicit H added if missing; stereo tags enforced).

        Raises:
            ValueError: an unsupported bond type or element (named), or ``n_confs < 1``.
        """
        return self.generate_many([mol], n_confs, seed=seed, langevin_steps=langevin_steps, solver=solver)[0]

    def generate_many(self, mols: list[Chem.Mol], n_confs: int, *, seed: int = 0, langevin_steps: int | None = None,
                      solver: str | None = None) -> list[Generated]:
        """:meth:`generate` for several molecules, their distance geometry solved as one batch.

        Each molecule's flow samples and Langevin noise come from its own generator; the batch
        only shares the L-BFGS polish of the distance geometry (see :mod:`.distgeom`).
        """
        from molgraph.conformers.stereo import stereo_spec
        from molgraph.methods.cgcf.distgeom import _check, embed_many

        if n_confs < 1:
            raise ValueError(f"n_confs must be >= 1, got {n_confs}")
        t0 = time.perf_counter()
        prepared = []
        for mol in mols:
            if any(a.GetNumImplicitHs() for a in mol.GetAtoms()):
                mol = Chem.AddHs(mol)
            bad = sorted({a.GetSymbol() for a in mol.GetAtoms() if a.GetAtomicNum() >= 100})
            if bad:
                raise ValueError(f"elements {bad} are outside the embedding table (Z < 100)")
            graph = extended_graph(mol, self.config.max_hops, conf_id=-2)
            s = rdkit_seed(seed, molecule_key(mol))
            gen = torch.Generator().manual_seed(s)
            prepared.append((mol, graph, s, gen, self.sample_distances(graph, n_confs, gen, solver)))
        embedded = embed_many([(m, g, d) for m, g, _, _, d in prepared], weight_base=self.config.dg_weight_base,
                              steps=self.config.dg_steps, restarts=self.config.dg_restarts)
        steps = self.config.langevin_steps if langevin_steps is None else langevin_steps
        per_mol = (time.perf_counter() - t0) / len(mols)
        out = []
        for (mol, graph, s, gen, _), (pos, report) in zip(prepared, embedded):
            t1 = time.perf_counter()
            if steps:
                pos = self.langevin(graph, pos, gen, steps, self.config.langevin_step_size)
                spec = stereo_spec(mol)
                if spec:
                    report.stereo_ok = _check(mol, pos, spec)
                    report.n_stereo_wrong = int(len(pos) - sum(report.stereo_ok))
            notes = []
            if report.n_stereo_wrong:
                notes.append(f"{report.n_stereo_wrong} of {n_confs} conformers do not match the input's stereo")
            out.append(Generated(_with_conformers(mol, pos), report, steps, per_mol + time.perf_counter() - t1, s, notes))
        return out


# -- the model file ---------------------------------------------------------------------------------------
def save_model(path: str | os.PathLike[str], model: CGCFModel, metrics: dict[str, Any] | None = None) -> Path:
    """Write ``model`` to ``path`` (refuses to overwrite an existing file)."""
    from molgraph.train.checkpoint import save_model_file

    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; choose another path")
    section = {
        "flow_state": model.flow.state_dict(),
        "energy_state": model.energy.state_dict() if model.energy is not None else None,
        "info": model.info,
    }
    return save_model_file(path, {"method": "cgcf", "section_version": SECTION_VERSION, "members": [],
                                  "config": model.config.to_dict(), "metrics": metrics or {}, "cgcf": section})


def model_from_payload(payload: dict[str, Any]) -> CGCFModel:
    """Rebuild a :class:`CGCFModel` from a loaded model file's payload."""
    section = payload["cgcf"]
    version = payload.get("section_version", SECTION_VERSION)
    if version != SECTION_VERSION:
        raise ValueError(f"CGCF model section version {version} is not supported (this molgraph reads {SECTION_VERSION})")
    config = CGCFConfig.from_dict(payload["config"])
    flow = DistanceFlow(config.hidden, config.layers, config.integration_time)
    flow.load_state_dict(section["flow_state"])
    energy = None
    if section.get("energy_state") is not None:
        energy = EnergyNet(config.energy_hidden, config.energy_layers)
        energy.load_state_dict(section["energy_state"])
    return CGCFModel(config, flow, energy, section.get("info"))


def load_model(path: str | os.PathLike[str]) -> CGCFModel:
    """Read a model file written by :func:`save_model` (a run folder: its ``model.pt``)."""
    from molgraph.train.checkpoint import load_model_file

    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    payload = load_model_file(path)
    if payload["method"] != "cgcf":
        raise ValueError(f"{path} holds a {payload['method']!r} model, not a CGCF one")
    return model_from_payload(payload)
