"""Training: maximum likelihood for the flow, then NCE for the energy network against the frozen flow.

:func:`train_cgcf` runs both stages on QM9 DFT geometries (Cormorant train split for training,
its validation split for the held-out checks) and writes a run folder::

    RUN/model.pt        the model file (flow, energy, settings, metrics)
    RUN/metrics.json    training curves, held-out NLL per edge, NCE accuracy, timings, data counts

Each stage has a wall-clock budget (``max_minutes``, ``energy_max_minutes``); the run records
how many iterations it reached.

Device (``accelerator``, :func:`resolve_device`): the networks and their batches train on the
chosen device; every random draw (data order, noise, Hutchinson probes) comes from CPU
generators and is moved to the device, so a seed draws the same numbers on either device (the
arithmetic still differs in rounding). Sampling for the NCE noise, the ETKDG pools and the saved
model stay on the CPU.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from molgraph.methods.cgcf.config import CGCFConfig
from molgraph.methods.cgcf.energy import EnergyNet, nce_accuracy, nce_loss
from molgraph.methods.cgcf.flow import DistanceFlow
from molgraph.methods.cgcf.graph import N_EDGE_TYPES, ExtendedGraph, collate
from molgraph.methods.cgcf.model import CGCFModel, save_model

__all__ = ["ACCELERATORS", "resolve_device", "edge_type_stats", "train_flow", "flow_samples", "train_energy",
           "evaluate_nll", "train_cgcf",
           "RankingGroup", "etkdg_groups", "ranking_loss", "train_energy_ranking"]


#: values of ``molgraph cgcf train --accelerator``
ACCELERATORS = ("cpu", "gpu", "auto")


def resolve_device(accelerator: str) -> torch.device:
    """The torch device for ``accelerator``: ``cpu``, ``gpu`` (CUDA, required) or ``auto`` (CUDA if present).

    Raises:
        ValueError: an unknown name, or ``gpu`` when torch sees no CUDA device (the message says
            which torch build this is).
    """
    if accelerator not in ACCELERATORS:
        raise ValueError(f"accelerator must be one of {ACCELERATORS}, got {accelerator!r}")
    if accelerator == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if accelerator == "gpu":
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise ValueError(f"accelerator 'gpu': torch {torch.__version__} ({build}) sees no CUDA device; "
                         "use --accelerator cpu (or auto, which falls back to the CPU)")
    return torch.device("cpu")


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
                 batch_size: int = 128, seed: int = 0, noise_std: float = 0.0,
                 device: torch.device | str = "cpu") -> float:
    """Mean negative log-likelihood per edge (nats, of angstrom distances) over ``graphs``.

    Computed on ``device``; the flow is left on the CPU.
    """
    gen = torch.Generator().manual_seed(seed)
    flow.to(device).eval()
    total, n_edges = 0.0, 0
    for start in range(0, len(graphs), batch_size):
        batch = collate(graphs[start:start + batch_size]).to(device)
        d = torch.from_numpy(np.concatenate([g.distances() for g in graphs[start:start + batch_size]])).float()
        if noise_std:
            d = d + noise_std * torch.randn(d.shape, generator=gen)
        probe = torch.randn(d.shape, generator=gen)
        lp = flow.log_prob(d.to(device), batch, probe=probe.to(device), solver=solver, steps=steps, create_graph=False)
        total += float(-lp.detach().sum())
        n_edges += len(d)
    flow.cpu()
    return total / n_edges


def train_flow(config: CGCFConfig, graphs: list[ExtendedGraph], *, say: Callable[[str], None] = print,
               device: torch.device | str = "cpu") -> tuple[DistanceFlow, dict]:
    """Maximum likelihood on noised distances (Hutchinson trace, ``config.train_solver``) on ``device``.

    Returns the flow on the CPU and the training record.
    """
    torch.manual_seed(config.seed)
    mean, std = edge_type_stats(graphs)
    flow = DistanceFlow(config.hidden, config.layers, config.integration_time, mean, std).to(device)
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
            batch = collate([graphs[i] for i in idx]).to(device)
            d = torch.cat([dist[i] for i in idx])
            d = d + config.noise_std * torch.randn(d.shape, generator=gen)
            probe = torch.randn(d.shape, generator=gen)
            lp = flow.log_prob(d.to(device), batch, probe=probe.to(device), solver=config.train_solver,
                               steps=config.train_steps,
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
    flow.cpu().eval()
    return flow, {"iterations": it, "seconds": time.perf_counter() - t0, "curve": curve,
                  "examples_seen": it * config.batch_size, "device": str(torch.device(device))}


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
    """(len(graphs),) energies, computed on the device of ``energy``."""
    device = next(energy.parameters()).device
    batch = collate(graphs).to(device)
    x = torch.from_numpy(np.concatenate([p.reshape(-1, 3) for p in pos])).float().to(device)
    return energy(x, batch)


def train_energy(config: CGCFConfig, train: tuple[list, list, list], val: tuple[list, list, list], *,
                 say: Callable[[str], None] = print, device: torch.device | str = "cpu") -> tuple[EnergyNet, dict]:
    """NCE: DFT geometries (label 1) against frozen-flow samples (label 0), logit -E, on ``device``.

    Args:
        train, val: ``(graphs, data positions (n, 3) each, noise positions (m, n, 3) each)``.

    Returns the energy network on the CPU and the training record.
    """
    torch.manual_seed(config.seed + 1)
    energy = EnergyNet(config.energy_hidden, config.energy_layers).to(device)
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
            label = torch.tensor([c[2] for c in chunk], device=e.device)
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
    energy.cpu()
    return energy, {"device": str(torch.device(device)), "epochs": epoch, "seconds": time.perf_counter() - t0,
                    "curve": curve,
                    "heldout_nce_accuracy": acc, "heldout_nce_loss": vloss,
                    "n_train_pairs": len(items), "n_val_molecules": len(val[0])}


@dataclass
class RankingGroup:
    """One molecule's conformers for the conditional NCE of ``energy_noise = "etkdg"``.

    Attributes:
        graph: the extended graph (with hydrogens).
        data: (n, 3) the DFT geometry relaxed with MMFF94 (angstrom): the data conformer.
        noise: (m, n, 3) ETKDG+MMFF94 conformers farther than ``energy_same_rmsd`` from ``data``.
        pool: (P, n, 3) every ETKDG+MMFF94 conformer embedded (noise and same-conformer ones), in
            RDKit's order, for the held-out ranking check.
        pool_rmsd_dft: (P,) heavy-atom RMSD of each pool conformer to the unrelaxed DFT geometry.
        pool_mmff: (P,) their MMFF94 energies (kcal/mol), for the MMFF-ranking comparison.
        relax_rmsd: heavy-atom RMSD between the DFT geometry and its MMFF94 relaxation.
    """

    graph: ExtendedGraph
    data: np.ndarray
    noise: np.ndarray
    pool: np.ndarray
    pool_rmsd_dft: np.ndarray
    pool_mmff: np.ndarray
    relax_rmsd: float


def etkdg_groups(mols, graphs: list[ExtendedGraph], pool: int, same_rmsd: float, seed: int, *,
                 timeout: float = 1.0, max_opt_iters: int = 500) -> tuple[list[RankingGroup], dict[str, int]]:
    """ETKDG+MMFF94 pools of ``mols`` (with H, DFT geometry as conformer 0) as ranking groups.

    The data conformer is the DFT geometry relaxed with MMFF94, so data and noise come out of the
    same force field: bond lengths and angles cannot tell them apart, only the conformation can.
    Molecules are skipped (and counted by reason) when MMFF94 has no parameters, ETKDG embeds
    nothing, or every pool conformer is the data conformer (nothing to rank against).
    """
    from rdkit import Chem
    from rdkit.Chem import rdForceFieldHelpers

    from molgraph.conformers import GenerationOptions, generate_conformers, rmsd_matrix

    # no fallbacks: the strained cages that need them cost seconds each and are rigid anyway
    options = GenerationOptions(n_confs=pool, optimize="mmff", seed=seed, timeout=timeout, max_opt_iters=max_opt_iters,
                                fallback=False)
    groups, skipped = [], {"no_mmff_parameters": 0, "no_conformer": 0, "no_other_conformer": 0}
    for mol, graph in zip(mols, graphs):
        # MMFF typing re-perceives aromaticity on the molecule it is given: work on a copy, take
        # only its coordinates, so the graph stays the one the flow and the RMSD see
        work = Chem.Mol(mol, confId=mol.GetConformer().GetId())
        if not rdForceFieldHelpers.MMFFHasAllMoleculeParams(work):
            skipped["no_mmff_parameters"] += 1
            continue
        rdForceFieldHelpers.MMFFOptimizeMoleculeConfs(work, numThreads=1, maxIters=max_opt_iters)
        dft = Chem.Mol(mol, confId=mol.GetConformer().GetId())
        relaxed = Chem.Mol(dft)
        relaxed.GetConformer().SetPositions(work.GetConformer().GetPositions())
        res = generate_conformers(Chem.Mol(dft), options=options)
        if not res.ok or res.force_field != "MMFF94":
            skipped["no_conformer"] += 1
            continue
        gen = res.mol
        d_data = rmsd_matrix(gen, relaxed)[0][:, 0]
        d_dft = rmsd_matrix(gen, dft)[0][:, 0]
        pos = np.stack([c.GetPositions() for c in gen.GetConformers()])
        far = d_data > same_rmsd
        if not far.any():
            skipped["no_other_conformer"] += 1
            continue
        groups.append(RankingGroup(graph, relaxed.GetConformer().GetPositions(), pos[far], pos, d_dft,
                                   np.asarray(res.energies, dtype=np.float64), float(rmsd_matrix(relaxed, dft)[0][0, 0])))
    return groups, skipped


def ranking_loss(e: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """Conditional NCE over groups: mean of ``-log softmax(-E)[data]``.

    Args:
        e: (sum(sizes),) energies, each group's data conformer first, then its noise conformers.
        sizes: conformers per group (data + noise).
    """
    losses = [torch.logsumexp(-g, 0) + g[0] for g in torch.split(e, sizes)]
    return torch.stack(losses).mean()


def _group_energies(energy: EnergyNet, groups: list[RankingGroup]) -> tuple[torch.Tensor, list[int]]:
    graphs, pos, sizes = [], [], []
    for g in groups:
        confs = [g.data[None], g.noise]
        sizes.append(1 + len(g.noise))
        graphs += [g.graph] * sizes[-1]
        pos += confs
    return _energies(energy, graphs, [p for p in pos]), sizes


def _ranking_check(energy: EnergyNet, groups: list[RankingGroup], chunk: int = 64) -> dict[str, float]:
    """Held-out: loss, pairwise accuracy (data below noise), and the top-ranked pool conformer vs RDKit's first."""
    energy.eval()
    loss_sum, right, pairs, n = 0.0, 0, 0, 0
    pick, first, best, mmff = [], [], [], []
    with torch.no_grad():
        for start in range(0, len(groups), chunk):
            part = groups[start:start + chunk]
            e, sizes = _group_energies(energy, part)
            loss_sum += float(ranking_loss(e, sizes)) * len(part)
            for g in torch.split(e, sizes):
                right += int((g[0] < g[1:]).sum())
                pairs += len(g) - 1
            pool_e = _energies(energy, [g.graph for g in part for _ in g.pool], [g.pool for g in part])
            for g, pe in zip(part, torch.split(pool_e, [len(g.pool) for g in part])):
                pick.append(g.pool_rmsd_dft[int(torch.argmin(pe))])
                first.append(g.pool_rmsd_dft[0])
                best.append(g.pool_rmsd_dft.min())
                mmff.append(g.pool_rmsd_dft[int(np.argmin(g.pool_mmff))])
            n += len(part)
    energy.train()
    within = lambda v: float(np.mean(np.asarray(v) <= 0.5))  # noqa: E731
    return {"loss": loss_sum / max(n, 1), "pairwise_accuracy": right / max(pairs, 1),
            "top1_within_0.5A": within(pick), "first_within_0.5A": within(first),
            "mmff_lowest_within_0.5A": within(mmff), "best_within_0.5A": within(best),
            "top1_rmsd_median": float(np.median(pick)), "first_rmsd_median": float(np.median(first))}


def train_energy_ranking(config: CGCFConfig, train: list[RankingGroup], val: list[RankingGroup], *,
                         say: Callable[[str], None] = print,
                         device: torch.device | str = "cpu") -> tuple[EnergyNet, dict]:
    """Conditional NCE: per molecule, the relaxed DFT conformer against its ETKDG+MMFF94 conformers.

    The logit of a conformer is -E; the loss is the cross-entropy of picking the data conformer
    out of its group, so E only has to order the conformers of one molecule (per-molecule
    offsets cancel). The epoch with the lowest held-out loss is kept. Trained on ``device``;
    returned on the CPU.
    """
    import copy

    if not train or not val:
        raise ValueError(f"need ranking groups for training and validation, got {len(train)} and {len(val)}")
    torch.manual_seed(config.seed + 1)
    energy = EnergyNet(config.energy_hidden, config.energy_layers).to(device)
    opt = torch.optim.Adam(energy.parameters(), lr=config.energy_lr)
    gen = torch.Generator().manual_seed(config.seed + 1)
    t0, curve = time.perf_counter(), []
    best_state, best = copy.deepcopy(energy.state_dict()), _ranking_check(energy, val)
    untrained, best_epoch, epoch = dict(best), 0, 0
    say(f"energy (untrained): held-out {best}")
    for epoch in range(1, config.energy_epochs + 1):
        perm = torch.randperm(len(train), generator=gen).tolist()
        losses = []
        for start in range(0, len(perm), config.batch_size):
            e, sizes = _group_energies(energy, [train[i] for i in perm[start:start + config.batch_size]])
            loss = ranking_loss(e, sizes)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if time.perf_counter() - t0 > config.energy_max_minutes * 60:
                break
        check = _ranking_check(energy, val)
        curve.append({"epoch": epoch, "train_loss": float(np.mean(losses)), **{f"val_{k}": v for k, v in check.items()},
                      "seconds": time.perf_counter() - t0})
        say(f"energy epoch {epoch}: train loss {np.mean(losses):.4f}  held-out loss {check['loss']:.4f}  "
            f"pairwise acc {check['pairwise_accuracy']:.3f}  top-1 <=0.5A {check['top1_within_0.5A']:.3f} "
            f"(first {check['first_within_0.5A']:.3f}, MMFF-lowest {check['mmff_lowest_within_0.5A']:.3f})")
        if check["loss"] < best["loss"]:
            best, best_state, best_epoch = check, copy.deepcopy(energy.state_dict()), epoch
        if time.perf_counter() - t0 > config.energy_max_minutes * 60:
            break
    energy.load_state_dict(best_state)
    energy.cpu().eval()
    return energy, {"mode": "etkdg", "device": str(torch.device(device)), "epochs": epoch, "kept_epoch": best_epoch,
                    "seconds": time.perf_counter() - t0,
                    "curve": curve, "heldout": best, "heldout_untrained": untrained, "heldout_nce_accuracy": best["pairwise_accuracy"],
                    "heldout_nce_loss": best["loss"],
                    "n_train_groups": len(train), "n_train_conformers": sum(1 + len(g.noise) for g in train),
                    "n_val_molecules": len(val),
                    "note": "heldout_nce_accuracy here = fraction of (data, noise) pairs of held-out molecules "
                            "with E(data) < E(noise); chance 0.5"}


def train_cgcf(config: CGCFConfig, run_dir: str | Path, *, data_root=None, energy: bool = True,
               flow_from: str | Path | None = None, say: Callable[[str], None] = print,
               accelerator: str = "cpu") -> CGCFModel:
    """Train the flow (and the energy network) on QM9 and write ``run_dir`` (must not exist or be empty).

    Args:
        energy: also train the energy network (``config.energy_noise`` says against what).
        flow_from: a run folder or model file whose flow is reused (frozen); only the energy
            network is trained. The settings in :data:`~.config.FLOW_FIELDS` (network, flow
            training, data order) are taken from that run, whatever ``config`` says.
        accelerator: ``cpu``, ``gpu`` or ``auto`` (:func:`resolve_device`), checked before
            anything is read or written.
    """
    from molgraph.methods.cgcf.config import FLOW_FIELDS
    from molgraph.methods.cgcf.data import load_qm9_molecules
    from molgraph.methods.cgcf.model import load_model

    config.validate()
    device = resolve_device(accelerator)
    run_dir = Path(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise FileExistsError(f"run folder {run_dir} is not empty; choose another")
    base = None
    if flow_from is not None:
        if not energy:
            raise ValueError("flow_from trains only an energy network: it cannot be combined with no energy")
        base = load_model(flow_from)
        config = CGCFConfig.from_dict({**config.to_dict(), **{k: getattr(base.config, k) for k in FLOW_FIELDS}})
        config.validate()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    t0 = time.perf_counter()
    # with a reused flow only the energy network's molecules are needed: the first ones of the
    # same seeded shuffle, i.e. molecules the flow trained on
    n_load = config.n_train if base is None else min(config.n_train, config.nce_molecules)
    tr = load_qm9_molecules("train", n_load, seed=config.seed, max_hops=config.max_hops, data_root=data_root)
    va = load_qm9_molecules("valid", config.n_val, seed=config.seed, max_hops=config.max_hops, data_root=data_root)
    say(f"data: {len(tr.mols)} training / {len(va.mols)} validation QM9 molecules "
        f"({len(tr.skipped)} / {len(va.skipped)} skipped) in {time.perf_counter() - t0:.0f} s")
    if base is None:
        flow, flow_info = train_flow(config, tr.graphs, say=say, device=device)
        nll_val = evaluate_nll(flow, va.graphs, steps=config.eval_steps, seed=config.seed, device=device)
        nll_val_noised = evaluate_nll(flow, va.graphs, steps=config.eval_steps, seed=config.seed,
                                      noise_std=config.noise_std, device=device)
        say(f"held-out NLL per edge: {nll_val:.4f} (exact DFT distances), {nll_val_noised:.4f} (noised as in training)")
        flow_record = {**flow_info, "val_nll_per_edge": nll_val, "val_nll_per_edge_noised": nll_val_noised}
        data_record = {"source": "QM9 B3LYP minima (qm9_core.npz), Cormorant split", "n_train": len(tr.mols),
                       "n_val": len(va.mols), "skipped_train": len(tr.skipped), "skipped_val": len(va.skipped),
                       "train_qm9_index_first": tr.qm9_index[:20].tolist(), "shuffle_seed": config.seed,
                       "note": "GEOM is not available offline: trained on one DFT conformer per molecule"}
    else:
        flow = base.flow
        flow_record = {**base.info.get("flow", {}), "from": str(flow_from)}
        nll_val = flow_record.get("val_nll_per_edge", math.nan)
        data_record = {**base.info.get("data", {}), "energy_n_val": len(va.mols)}
        say(f"flow reused from {flow_from} (frozen)")
    info: dict[str, Any] = {"data": data_record, "flow": flow_record}
    model = CGCFModel(config, flow, None, info)
    if energy:
        t1 = time.perf_counter()
        n_nce_train = min(len(tr.mols), config.nce_molecules)
        if config.energy_noise == "flow":
            noise_tr = flow_samples(model, tr.mols[:n_nce_train], tr.graphs[:n_nce_train], config.nce_samples,
                                    config.seed + 11)
            noise_va = flow_samples(model, va.mols, va.graphs, config.nce_samples, config.seed + 12)
            say(f"NCE noise: {n_nce_train} + {len(va.mols)} molecules of flow samples in {time.perf_counter() - t1:.0f} s")
            net, e_info = train_energy(
                config, (tr.graphs[:n_nce_train], [g.pos for g in tr.graphs[:n_nce_train]], noise_tr),
                (va.graphs, [g.pos for g in va.graphs], noise_va), say=say, device=device)
        else:
            g_tr, skip_tr = etkdg_groups(tr.mols[:n_nce_train], tr.graphs[:n_nce_train], config.energy_pool,
                                         config.energy_same_rmsd, config.seed + 21)
            g_va, skip_va = etkdg_groups(va.mols, va.graphs, config.energy_pool, config.energy_same_rmsd,
                                         config.seed + 22)
            say(f"ETKDG+MMFF94 pools: {len(g_tr)} training / {len(g_va)} validation molecules with something to rank "
                f"(skipped {skip_tr} / {skip_va}) in {time.perf_counter() - t1:.0f} s")
            net, e_info = train_energy_ranking(config, g_tr, g_va, say=say, device=device)
            e_info.update(skipped_train=skip_tr, skipped_val=skip_va,
                          relax_rmsd_median=float(np.median([g.relax_rmsd for g in g_tr + g_va])))
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
