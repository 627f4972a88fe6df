"""Training: maximum likelihood for the flow, then NCE for the energy network against the frozen flow.

:func:`train_cgcf` runs both stages on QM9 DFT geometries (Cormorant train split for training,
its validation split for the held-out checks) and writes a run folder::

    RUN/model.pt        the model file (flow, energy, settings, metrics)
    RUN/metrics.json    training curves, held-out NLL per edge, NCE accuracy, timings, data counts

Each stage has a wall-clock budget (``max_minutes``, ``energy_max_minutes``); the run records
how many iterations it reached.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from molgraph.methods.cgcf.config import CGCFConfig
from molgraph.methods.cgcf.energy import EnergyNet, nce_accuracy, nce_loss
from molgraph.methods.cgcf.flow import DistanceFlow
from molgraph.methods.cgcf.graph import N_EDGE_TYPES, ExtendedGraph, collate
from molgraph.methods.cgcf.model import CGCFModel, save_model

__all__ = ["edge_type_stats", "train_flow", "flow_samples", "train_energy", "evaluate_nll", "train_cgcf"]


def edge_type_stats(graphs: list[ExtendedGraph]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per edge type mean and std (angstrom) of the distances; unseen types get (0, 1)."""
    etype = np.concatenate([g.etype for g in graphs])
    dist = np.concatenate([g.distances() for g in graphs])
    mean, std = np.zeros(N_EDGE_TYPES), np.ones(N_EDGE_TYPES)
    for t in range(N_EDGE_TYPES):
        sel = dist[etype == t]
        if len(sel) > 1:
            mean[t], std[t] = sel.mean(), max(sel.std(), 1e-2)
    return torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)


def evaluate_nll(flow: DistanceFlow, graphs: list[ExtendedGraph], *, solver: str = "rk4", steps: int = 8,
                 batch_size: int = 128, seed: int = 0, noise_std: float = 0.0) -> float:
    """Mean negative log-likelihood per edge (nats, of angstrom distances) over ``graphs``."""
    gen = torch.Generator().manual_seed(seed)
    flow.eval()
    total, n_edges = 0.0, 0
    for start in range(0, len(graphs), batch_size):
        batch = collate(graphs[start:start + batch_size])
        d = torch.from_numpy(np.concatenate([g.distances() for g in graphs[start:start + batch_size]])).float()
        if noise_std:
            d = d + noise_std * torch.randn(d.shape, generator=gen)
        probe = torch.randn(d.shape, generator=gen)
        lp = flow.log_prob(d, batch, probe=probe, solver=solver, steps=steps, create_graph=False)
        total += float(-lp.detach().sum())
        n_edges += len(d)
    return total / n_edges


def train_flow(config: CGCFConfig, graphs: list[ExtendedGraph], *, say: Callable[[str], None] = print) -> tuple[DistanceFlow, dict]:
    """Maximum likelihood on noised distances (Hutchinson trace, ``config.train_solver``)."""
    torch.manual_seed(config.seed)
    mean, std = edge_type_stats(graphs)
    flow = DistanceFlow(config.hidden, config.layers, config.integration_time, mean, std)
    opt = torch.optim.Adam(flow.parameters(), lr=config.lr, betas=(0.95, 0.999))
    gen = torch.Generator().manual_seed(config.seed)
    dist = [torch.from_numpy(g.distances()).float() for g in graphs]
    curve, t0, it = [], time.perf_counter(), 0
    flow.train()
    running = []
    while it < config.max_iters and time.perf_counter() - t0 < config.max_minutes * 60:
        perm = torch.randperm(len(graphs), generator=gen).tolist()
        for start in range(0, len(perm) - config.batch_size + 1, config.batch_size):
            idx = perm[start:start + config.batch_size]
            batch = collate([graphs[i] for i in idx])
            d = torch.cat([dist[i] for i in idx])
            d = d + config.noise_std * torch.randn(d.shape, generator=gen)
            probe = torch.randn(d.shape, generator=gen)
            lp = flow.log_prob(d, batch, probe=probe, solver=config.train_solver, steps=config.train_steps,
                               atol=config.atol, rtol=config.rtol, create_graph=True)
            loss = -lp.sum() / len(d)  # per edge, as the reference's mean over edges
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(flow.parameters(), 10.0)
            opt.step()
            it += 1
            running.append(loss.item())
            if it % 50 == 0:
                curve.append({"iter": it, "seconds": time.perf_counter() - t0, "nll_per_edge": float(np.mean(running)),
                              "T": flow.T.item()})
                say(f"flow iter {it}: nll/edge {np.mean(running):.4f}  T {flow.T.item():.3f}  "
                    f"{time.perf_counter() - t0:.0f} s")
                running = []
            if it >= config.max_iters or time.perf_counter() - t0 >= config.max_minutes * 60:
                break
    flow.eval()
    return flow, {"iterations": it, "seconds": time.perf_counter() - t0, "curve": curve,
                  "examples_seen": it * config.batch_size}


def flow_samples(model: CGCFModel, mols, graphs: list[ExtendedGraph], per_mol: int, seed: int,
                 chunk: int = 32) -> list[np.ndarray]:
    """``per_mol`` flow conformers (DG, chirality fixed) per molecule: (per_mol, n, 3) each."""
    from molgraph.methods.cgcf.distgeom import embed_many

    out = []
    for start in range(0, len(mols), chunk):
        jobs = []
        for i in range(start, min(start + chunk, len(mols))):
            gen = torch.Generator().manual_seed(seed * 1_000_003 + i)
            jobs.append((mols[i], graphs[i], model.sample_distances(graphs[i], per_mol, gen, solver="rk4")))
        out += [pos for pos, _ in embed_many(jobs, weight_base=model.config.dg_weight_base,
                                             steps=model.config.dg_steps, restarts=model.config.dg_restarts)]
    return out


def _energies(energy: EnergyNet, graphs: list[ExtendedGraph], pos: list[np.ndarray]) -> torch.Tensor:
    batch = collate(graphs)
    x = torch.from_numpy(np.concatenate([p.reshape(-1, 3) for p in pos])).float()
    return energy(x, batch)


def train_energy(config: CGCFConfig, train: tuple[list, list, list], val: tuple[list, list, list], *,
                 say: Callable[[str], None] = print) -> tuple[EnergyNet, dict]:
    """NCE: DFT geometries (label 1) against frozen-flow samples (label 0), logit -E.

    Args:
        train, val: ``(graphs, data positions (n, 3) each, noise positions (m, n, 3) each)``.
    """
    torch.manual_seed(config.seed + 1)
    energy = EnergyNet(config.energy_hidden, config.energy_layers)
    opt = torch.optim.Adam(energy.parameters(), lr=config.energy_lr)
    gen = torch.Generator().manual_seed(config.seed + 1)
    graphs, data_pos, noise_pos = train
    # one example = (graph, positions, label); the noise samples of a molecule each count once
    items = [(g, p, 1.0) for g, p in zip(graphs, data_pos)]
    items += [(g, q, 0.0) for g, qs in zip(graphs, noise_pos) for q in qs]
    t0, curve = time.perf_counter(), []

    def val_acc() -> tuple[float, float]:
        vg, vd, vn = val
        energy.eval()
        with torch.no_grad():
            e_data = _energies(energy, vg, vd)
            e_noise = _energies(energy, [g for g, qs in zip(vg, vn) for _ in qs], [q for qs in vn for q in qs])
        energy.train()
        return nce_accuracy(e_data, e_noise), float(nce_loss(e_data, e_noise))

    epoch = 0
    for epoch in range(1, config.energy_epochs + 1):
        perm = torch.randperm(len(items), generator=gen).tolist()
        losses = []
        for start in range(0, len(perm), config.batch_size):
            chunk = [items[i] for i in perm[start:start + config.batch_size]]
            e = _energies(energy, [c[0] for c in chunk], [c[1][None] for c in chunk])
            label = torch.tensor([c[2] for c in chunk])
            # logit -E; weight the classes equally whatever the noise ratio
            w = torch.where(label > 0, 0.5 / max(float(label.mean()), 1e-6), 0.5 / max(1 - float(label.mean()), 1e-6))
            loss = (w * torch.nn.functional.binary_cross_entropy_with_logits(-e, label, reduction="none")).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        acc, vloss = val_acc()
        curve.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": vloss, "val_acc": acc,
                      "seconds": time.perf_counter() - t0})
        say(f"energy epoch {epoch}: train loss {np.mean(losses):.4f}  held-out NCE acc {acc:.3f}")
        if time.perf_counter() - t0 > config.energy_max_minutes * 60:
            break
    energy.eval()
    acc, vloss = val_acc()
    return energy, {"epochs": epoch, "seconds": time.perf_counter() - t0, "curve": curve,
                    "heldout_nce_accuracy": acc, "heldout_nce_loss": vloss,
                    "n_train_pairs": len(items), "n_val_molecules": len(val[0])}


def train_cgcf(config: CGCFConfig, run_dir: str | Path, *, data_root=None, energy: bool = True,
               say: Callable[[str], None] = print) -> CGCFModel:
    """Train the flow (and the energy network) on QM9 and write ``run_dir`` (must not exist or be empty)."""
    from molgraph.methods.cgcf.data import load_qm9_molecules

    config.validate()
    run_dir = Path(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise FileExistsError(f"run folder {run_dir} is not empty; choose another")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    t0 = time.perf_counter()
    tr = load_qm9_molecules("train", config.n_train, seed=config.seed, max_hops=config.max_hops, data_root=data_root)
    va = load_qm9_molecules("valid", config.n_val, seed=config.seed, max_hops=config.max_hops, data_root=data_root)
    say(f"data: {len(tr.mols)} training / {len(va.mols)} validation QM9 molecules "
        f"({len(tr.skipped)} / {len(va.skipped)} skipped) in {time.perf_counter() - t0:.0f} s")
    flow, flow_info = train_flow(config, tr.graphs, say=say)
    nll_val = evaluate_nll(flow, va.graphs, steps=config.eval_steps, seed=config.seed)
    nll_val_noised = evaluate_nll(flow, va.graphs, steps=config.eval_steps, seed=config.seed, noise_std=config.noise_std)
    say(f"held-out NLL per edge: {nll_val:.4f} (exact DFT distances), {nll_val_noised:.4f} (noised as in training)")
    info: dict[str, Any] = {
        "data": {"source": "QM9 B3LYP minima (qm9_core.npz), Cormorant split", "n_train": len(tr.mols),
                 "n_val": len(va.mols), "skipped_train": len(tr.skipped), "skipped_val": len(va.skipped),
                 "train_qm9_index_first": tr.qm9_index[:20].tolist(), "shuffle_seed": config.seed,
                 "note": "GEOM is not available offline: trained on one DFT conformer per molecule"},
        "flow": {**flow_info, "val_nll_per_edge": nll_val, "val_nll_per_edge_noised": nll_val_noised},
    }
    model = CGCFModel(config, flow, None, info)
    if energy:
        t1 = time.perf_counter()
        n_nce_train = min(len(tr.mols), config.nce_molecules)
        noise_tr = flow_samples(model, tr.mols[:n_nce_train], tr.graphs[:n_nce_train], config.nce_samples, config.seed + 11)
        noise_va = flow_samples(model, va.mols, va.graphs, config.nce_samples, config.seed + 12)
        say(f"NCE noise: {n_nce_train} + {len(va.mols)} molecules of flow samples in {time.perf_counter() - t1:.0f} s")
        net, e_info = train_energy(
            config, (tr.graphs[:n_nce_train], [g.pos for g in tr.graphs[:n_nce_train]], noise_tr),
            (va.graphs, [g.pos for g in va.graphs], noise_va), say=say)
        e_info["noise_seconds"] = time.perf_counter() - t1 - e_info["seconds"]
        e_info["n_train_molecules"] = n_nce_train
        model = CGCFModel(config, flow, net, {**info, "energy": e_info})
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics = {"val_nll_per_edge": nll_val,
               "heldout_nce_accuracy": model.info.get("energy", {}).get("heldout_nce_accuracy", math.nan)}
    save_model(run_dir / "model.pt", model, metrics)
    (run_dir / "metrics.json").write_text(json.dumps({"config": config.to_dict(), **model.info}, indent=2))
    say(f"-> {run_dir / 'model.pt'}")
    return model
