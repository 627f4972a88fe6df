"""Learned conformer generation (CGCF flow + energy) against ETKDG(+MMFF): QM9, GEOM-Drugs sample, rMD17.

Parts (``--parts``, default ``qm9``):

* ``qm9``: "recover the DFT conformer" (below);
* ``geom``: the GEOM-Drugs sample (10 GEOM training molecules, 502 CREST conformers after the
  broken one is rejected): 2K conformers per K references, COV/MAT (recall and precision) at
  1.25 A, heavy atoms, ``<=``;
* ``rmd17``: rMD17 test-split-1 frames (``--rmd17-frames`` per molecule) as thermal ensembles,
  2K generated, COV/MAT at 0.5 A (ethanol over all atoms: 3 heavy atoms).

The ensemble parts' rows: ETKDGv3 and +MMFF94 (the first 2K of a 4K pool), CGCF and +MMFF94,
and the hybrid (the 4K ETKDG+MMFF94 pool ranked by the energy network, and by MMFF94 energy as
the no-model baseline, top 2K kept).

Part ``qm9``: held-out molecules (Cormorant test split, random sample of ``--limit`` with
``--sample-seed``: the same molecules as ``benchmarks/conformers.py --parts qm9`` at equal
settings), input SMILES with stereo assigned from the DFT geometry, heavy-atom symmetric RMSD to
the B3LYP minimum. Rows, each with ``--k`` conformers per molecule (equal counts):

* ``ETKDGv3`` and ``ETKDGv3+MMFF94`` (the first k of a pool of ``--pool`` embeddings);
* ``CGCF`` (flow samples -> distance geometry with chirality, dopri5), ``CGCF+MMFF94``;
* ``CGCF+ETM`` (``--langevin-steps`` Langevin steps on log p_flow - E after the flow), when the
  model has an energy network;
* ``CGCF+MMFF94 pool ranked by energy`` (with ``--cgcf-pool`` > k): flow + energy, the CGCF+MMFF
  conformers ranked by the energy network, top k kept;
* ``hybrid`` rows: the ETKDG+MMFF pool ranked by the learned model (``tilted`` = log p_flow - E,
  ``flow``, ``energy``) or by MMFF94 energy (``mmff``, no learned model), the top k kept; the last of them also refined by the Langevin steps;
  and the ranking alone: the top-ranked conformer of the first k against the first conformer
  (RDKit's order is random).

Per row: fraction of molecules whose best-of-k RMSD is <= 0.5 A (COV@0.5 with one reference;
failures as misses, and over evaluated molecules only), the min-RMSD distribution (median, mean,
quantiles), the first (or top-ranked) conformer's RMSD, and conformers per second of generation
(one process, wall time, on this shared machine: compare rows of the same run only).

Checks (the run stops with an error): copies among any molecule's conformers; best-of-k equal to
the first conformer on every molecule of a row (conformers that are not independent draws); a
CGCF row whose conformers are all identical across molecules' first and second samples.

Paper (GEOM-QM9, 200 test molecules, COV@0.5 A / MAT, mean; ConfGF README table, which copies
the CGCF paper's row): CGCF 78.05 % / 0.4219 A against RDKit 83.26 % / 0.3447 A. Not the same
protocol (GEOM ensembles, 2x references): quoted for orientation only.

Run: ``.venv/bin/python benchmarks/confgen.py --model RUN --parts qm9 geom rmd17`` (writes
``benchmarks/results/confgen.json``; each part replaces its own entry and is written when it ends).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
from rdkit import Chem

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import _harness as harness  # noqa: E402

from molgraph.conformers import GenerationOptions, generate_batch, mol_from_geometry, rmsd_matrix  # noqa: E402
from molgraph.conformers.generate import ConformerResult, _optimize  # noqa: E402
from molgraph.conformers.seeds import duplicate_conformers  # noqa: E402
from molgraph.methods.cgcf.hybrid import scores as _hybrid_scores  # noqa: E402
from molgraph.methods.cgcf.hybrid import select  # noqa: E402
from molgraph.methods.cgcf.hybrid import subset as _subset  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "confgen.json"
PAPER = {
    "source": "ConfGF README (DeepGraphLearning/ConfGF at 38aeb6c) table, rows copied from the CGCF paper "
              "(Xu et al., ICLR 2021); GEOM-QM9, 200 test molecules, COV@0.5 A and MAT (recall), mean / median",
    "CGCF": {"cov_mean": 0.7805, "cov_median": 0.8248, "mat_mean_A": 0.4219, "mat_median_A": 0.3900},
    "RDKit": {"cov_mean": 0.8326, "cov_median": 0.9078, "mat_mean_A": 0.3447, "mat_median_A": 0.2935},
    "note": "GEOM-QM9 CREST ensembles with 2x generated per reference; here one DFT minimum per molecule, "
            "equal k: not the same protocol",
}


class BenchmarkCheckError(RuntimeError):
    """The benchmark's own data would make its numbers wrong."""


def _data_root() -> Path:
    return Path(os.environ.get("MOLGRAPH_DATA") or REPO.parent / "shared" / "data")


def _references(limit: int, sample_seed: int) -> tuple[list[Chem.Mol], list[str], list[dict]]:
    root = _data_root() / "3d" / "qm9"
    with np.load(root / "qm9_core.npz", allow_pickle=False) as f:
        index, ptr, z, pos, smi = f["index"], f["atom_ptr"], f["Z"], f["pos"], f["smiles"]
    with np.load(root / "cormorant_split_gdb_index.npz", allow_pickle=False) as f:
        test_ids = f["test"]
    rng = np.random.default_rng(sample_seed)
    chosen = rng.choice(np.sort(test_ids), size=min(limit, len(test_ids)), replace=False)
    refs, inputs, skipped = [], [], []
    for r in np.searchsorted(index, chosen):
        a, b = ptr[r], ptr[r + 1]
        try:
            ref = mol_from_geometry(smi[r].decode(), z[a:b], pos[a:b], name=str(index[r]))
        except Exception as err:
            skipped.append({"qm9_index": int(index[r]), "reason": str(err)})
            continue
        refs.append(ref)
        inputs.append(Chem.MolToSmiles(Chem.RemoveHs(ref)))  # stereo from the DFT geometry
    return refs, inputs, skipped


def _mmff(result: ConformerResult, max_iters: int) -> ConformerResult:
    ok = result.ok and result.mol is not None and result.mol.GetNumConformers() > 0
    out = ConformerResult(index=result.index, input=result.input, mol=Chem.Mol(result.mol) if ok else None,
                          failure=None if ok else (result.failure or "no conformer"))
    if ok:
        _optimize(out.mol, out, GenerationOptions(optimize="mmff", max_opt_iters=max_iters))
    return out


def _rmsds(mol: Chem.Mol | None, ref: Chem.Mol) -> np.ndarray | None:
    """(n_conf,) heavy-atom RMSD of each conformer to the reference; None for a failure."""
    if mol is None or mol.GetNumConformers() == 0:
        return None
    try:
        d, _ = rmsd_matrix(mol, ref)
    except ValueError:
        return None
    return d[:, 0]


def _row(name: str, rmsds: list[np.ndarray | None], k: int, seconds: float, n_confs: int, *,
         first_label: str = "first", check_independent: bool = True, extra: dict | None = None) -> dict:
    """Summary of one method: best-of-k and first-conformer RMSDs; failures as misses."""
    ok = [r for r in rmsds if r is not None and len(r)]
    best = np.array([r[:k].min() for r in ok])
    first = np.array([r[0] for r in ok])
    n = len(rmsds)
    out = {"n_molecules": n, "n_evaluated": len(ok), "failures": n - len(ok), "k": k,
           "conformers": n_confs, "generation_s": seconds,
           "conformers_per_s": n_confs / seconds if seconds > 0 else math.nan}
    for label, vals in ((f"best_of_{k}", best), (first_label, first)):
        hits = int((vals <= 0.5).sum())
        out[label] = {
            "frac_within_0.5A": hits / n, "frac_within_0.5A_evaluated_only": hits / len(ok) if ok else math.nan,
            "min_rmsd_median": float(np.median(vals)) if len(vals) else math.nan,
            "min_rmsd_mean": float(vals.mean()) if len(vals) else math.nan,
            "min_rmsd_quantiles_10_25_50_75_90": [float(q) for q in np.quantile(vals, [0.1, 0.25, 0.5, 0.75, 0.9])]
            if len(vals) else [],
        }
    if check_independent and k > 1 and len(ok) and all(r[:k].min() == r[0] for r in ok if len(r) > 1):
        raise BenchmarkCheckError(f"{name}: best of {k} equals the first conformer on every molecule")
    out["per_molecule_best"] = [None if r is None or not len(r) else float(r[:k].min()) for r in rmsds]
    if extra:
        out.update(extra)
    b, f = out[f"best_of_{k}"], out[first_label]
    print(f"  {name:28s} best-of-{k} <=0.5A {b['frac_within_0.5A']:.3f} (median {b['min_rmsd_median']:.3f} A); "
          f"{first_label} {f['frac_within_0.5A']:.3f} (median {f['min_rmsd_median']:.3f}); "
          f"{out['conformers_per_s']:.1f} conf/s", flush=True)
    return out


def _check_distinct(name: str, mols: list[Chem.Mol | None]) -> None:
    copies = [i for i, m in enumerate(mols) if m is not None and duplicate_conformers(m)]
    if copies:
        raise BenchmarkCheckError(f"{name}: identical conformers within molecules {copies[:10]}")


def _scores(model, result: ConformerResult, what: str, seed: int) -> np.ndarray:
    """(n_conf,) higher = preferred (the package's hybrid scores; a missing energy stops the run)."""
    try:
        return _hybrid_scores(model, result, what, seed)
    except ValueError as err:
        raise BenchmarkCheckError(str(err)) from err


def _diverse(mol: Chem.Mol, score: np.ndarray, k: int, prune: float) -> list[int]:
    """The hybrid's diverse selection (``molgraph.methods.cgcf.hybrid.select``), filled up to k
    with the best-ranked skipped conformers so that every row compares k conformers."""
    return select(mol, score, k, prune, fill=True)


def _in_order(n: int) -> np.ndarray:
    """Scores that rank conformers in their pool order (RDKit's order: no preference)."""
    return -np.arange(n, dtype=np.float64)


def part_qm9(args) -> dict:
    import torch

    from molgraph.conformers.seeds import molecule_key, rdkit_seed
    from molgraph.methods.cgcf.generate import generate_results
    from molgraph.methods.cgcf.graph import extended_graph
    from molgraph.methods.cgcf.model import _with_conformers

    model = _load_model(args)
    refs, inputs, skipped = _references(args.limit, args.sample_seed)
    k, pool = args.k, max(args.pool, args.k)
    out = {"molecules_sampled": args.limit, "molecules_mapped": len(refs), "mapping_failures": skipped,
           "split": f"Cormorant test split, random sample, sample seed {args.sample_seed}",
           "threshold_A": 0.5, "comparison": "<=", "heavy_atoms": True, "k": k, "hybrid_pool": pool,
           "generation_seed": args.seed, "mmff_max_iters": args.mmff_max_iters,
           "stereo": "input SMILES carries stereo assigned from the DFT geometry",
           "model": {"path": str(args.model), "config": model.config.to_dict(),
                     "training": {key: val for key, val in model.info.items() if key != "flow"} |
                     {"flow": {k2: v for k2, v in model.info.get("flow", {}).items() if k2 != "curve"}}},
           "paper": PAPER, "rows": {}}
    rows = out["rows"]

    # ETKDG: a pool of embeddings, its first k are the ETKDG rows (one process: a fair conf/s)
    t0 = time.perf_counter()
    etkdg = list(generate_batch(inputs, options=GenerationOptions(n_confs=pool, optimize=None, seed=args.seed,
                                                                  timeout=args.timeout), n_jobs=1))
    pool_s = time.perf_counter() - t0
    _check_distinct("ETKDGv3", [r.mol for r in etkdg])
    t0 = time.perf_counter()
    etkdg_mmff = [_mmff(r, args.mmff_max_iters) for r in etkdg]
    mmff_s = time.perf_counter() - t0
    n_pool = sum(r.n_confs for r in etkdg)
    first_k = [_subset(r.mol, list(range(min(k, r.n_confs)))) if r.ok else None for r in etkdg]
    first_k_mmff = [_subset(r.mol, list(range(min(k, r.n_confs)))) if r.ok else None for r in etkdg_mmff]
    n_k = sum(m.GetNumConformers() for m in first_k if m is not None)
    per_conf = pool_s / max(n_pool, 1)
    rows["ETKDGv3"] = _row("ETKDGv3", [_rmsds(m, ref) for m, ref in zip(first_k, refs)], k, per_conf * n_k, n_k)
    rows["ETKDGv3+MMFF94"] = _row("ETKDGv3+MMFF94", [_rmsds(m, ref) for m, ref in zip(first_k_mmff, refs)], k,
                                  (pool_s + mmff_s) / max(n_pool, 1) * n_k, n_k)

    # CGCF: flow -> DG (chirality) [-> MMFF]; the CLI's generation path
    def cgcf_row(name: str, steps: int, solver: str | None = None, n_confs: int = k) -> list[ConformerResult]:
        """The row of the first k conformers; returns all ``n_confs`` (time scaled to the k counted)."""
        t0 = time.perf_counter()
        res = list(generate_results(model, inputs, n_confs, seed=args.seed, langevin_steps=steps, solver=solver))
        secs = time.perf_counter() - t0
        _check_distinct(name, [r.mol for r in res])
        secs *= sum(min(k, r.n_confs) for r in res) / max(sum(r.n_confs for r in res), 1)
        res_k = [ConformerResult(index=r.index, input=r.input, failure=r.failure,
                                 mol=_subset(r.mol, list(range(min(k, r.n_confs)))) if r.ok else None)
                 for r in res]
        n = sum(r.n_confs for r in res_k)
        extra = {"stereo_rejected_conformers": sum(r.n_stereo_rejected for r in res),
                 "molecules_with_stereo_rejects": sum(bool(r.n_stereo_rejected) for r in res),
                 "failures_reasons": sorted({r.failure for r in res if r.failure})[:10]}
        rows[name] = _row(name, [_rmsds(r.mol, ref) for r, ref in zip(res_k, refs)], k, secs, n,
                          extra={**extra, "generated_per_molecule": n_confs})
        return res

    cg_pool = max(args.cgcf_pool, k)
    cg = cgcf_row("CGCF", 0, n_confs=cg_pool)
    t0 = time.perf_counter()
    cg_mmff = [_mmff(r, args.mmff_max_iters) for r in cg]
    mmff_cg_s = time.perf_counter() - t0
    secs = rows["CGCF"]["generation_s"] + mmff_cg_s * rows["CGCF"]["conformers"] / max(sum(r.n_confs for r in cg), 1)
    first_cg_mmff = [_subset(r.mol, list(range(min(k, r.n_confs)))) if r.ok else None for r in cg_mmff]
    rows["CGCF+MMFF94"] = _row("CGCF+MMFF94", [_rmsds(m, ref) for m, ref in zip(first_cg_mmff, refs)], k, secs,
                               rows["CGCF"]["conformers"])
    if cg_pool > k and model.energy is not None:
        # flow + energy: a CGCF+MMFF pool ranked by the energy network, top k kept
        t0 = time.perf_counter()
        scores = [_scores(model, r, "energy", args.seed) if r.ok else None for r in cg_mmff]
        score_s = time.perf_counter() - t0
        top = [None if s_ is None else _subset(r.mol, select(r.mol, s_, k)) for r, s_ in zip(cg_mmff, scores)]
        pool_gen_s = rows["CGCF"]["generation_s"] * sum(r.n_confs for r in cg) / max(rows["CGCF"]["conformers"], 1)
        rows[f"CGCF+MMFF94 pool {cg_pool} ranked by energy, top {k}"] = _row(
            f"CGCF+MMFF[energy] top {k} of {cg_pool}", [_rmsds(m, ref) for m, ref in zip(top, refs)], k,
            pool_gen_s + mmff_cg_s + score_s, sum(m.GetNumConformers() for m in top if m is not None),
            first_label="top_ranked", extra={"scoring_s": score_s})
        if args.hybrid_prune is not None:
            for label, ranks in (("ranked by energy", scores),
                                 ("in sampling order", [_in_order(r.n_confs) if r.ok else None for r in cg_mmff])):
                t1 = time.perf_counter()
                top = [None if o is None else _subset(r.mol, _diverse(r.mol, o, k, args.hybrid_prune))
                       for r, o in zip(cg_mmff, ranks)]
                extra_s = score_s if label.startswith("ranked") else 0.0
                rows[f"CGCF+MMFF94 pool {cg_pool} {label}, diverse top {k} (RMSD > {args.hybrid_prune} A)"] = _row(
                    f"CGCF+MMFF {label} diverse {k}", [_rmsds(m, ref) for m, ref in zip(top, refs)], k,
                    pool_gen_s + mmff_cg_s + extra_s + time.perf_counter() - t1,
                    sum(m.GetNumConformers() for m in top if m is not None), first_label="top_ranked")
    if args.rk4:
        cgcf_row("CGCF (rk4 speed mode)", 0, solver="rk4")
    if model.energy is not None and args.langevin_steps:
        cgcf_row(f"CGCF+ETM (Langevin {args.langevin_steps})", args.langevin_steps)

    if args.hybrid_prune is not None:
        # the control for the diverse rows: the pool in RDKit's order (no ranking), pruned alike
        t1 = time.perf_counter()
        top = [_subset(r.mol, _diverse(r.mol, _in_order(r.n_confs), k, args.hybrid_prune)) if r.ok else None
               for r in etkdg_mmff]
        rows[f"ETKDG+MMFF pool {pool} in RDKit order, diverse first {k} (RMSD > {args.hybrid_prune} A)"] = _row(
            f"ETKDG+MMFF diverse first {k}", [_rmsds(m, ref) for m, ref in zip(top, refs)], k,
            pool_s + mmff_s + time.perf_counter() - t1, sum(m.GetNumConformers() for m in top if m is not None))
    # hybrid: the learned model ranks the ETKDG+MMFF pool; top k kept. "mmff" (lowest MMFF94
    # energy first) is the ranking a user gets without any learned model: the bar for the others.
    whats = [w for w in args.hybrid_scores if w in ("flow", "mmff") or model.energy is not None]
    for what in whats:
        t0 = time.perf_counter()
        scores = [_scores(model, r, what, args.seed) if r.ok else None for r in etkdg_mmff]
        score_s = time.perf_counter() - t0
        top = [None if s is None else _subset(r.mol, select(r.mol, s, k)) for r, s in zip(etkdg_mmff, scores)]
        secs = pool_s + mmff_s + score_s
        rows[f"hybrid ETKDG+MMFF pool {pool} ranked by {what}, top {k}"] = _row(
            f"hybrid[{what}] top {k} of {pool}", [_rmsds(m, ref) for m, ref in zip(top, refs)], k, secs,
            sum(m.GetNumConformers() for m in top if m is not None), first_label="top_ranked",
            extra={"scoring_s": score_s})
        if what == whats[-1] and what != "mmff" and args.langevin_steps:
            # refine the kept conformers with the same Langevin steps as the CGCF+ETM row
            t1 = time.perf_counter()
            refined = []
            for m in top:
                if m is None:
                    refined.append(None)
                    continue
                graph = extended_graph(m, model.config.max_hops, conf_id=-2)
                gen = torch.Generator().manual_seed(rdkit_seed(args.seed, molecule_key(m)))
                pos = np.stack([c.GetPositions() for c in m.GetConformers()])
                new = model.langevin(graph, pos, gen, args.langevin_steps, model.config.langevin_step_size)
                refined.append(_with_conformers(m, new))
            rows[f"hybrid ETKDG+MMFF pool {pool} ranked by {what}, top {k}, Langevin {args.langevin_steps}"] = _row(
                f"hybrid[{what}]+Langevin", [_rmsds(m, ref) for m, ref in zip(refined, refs)], k,
                secs + time.perf_counter() - t1, sum(m.GetNumConformers() for m in refined if m is not None),
                first_label="top_ranked")
        if args.hybrid_prune is not None:
            # the same ranking, but a conformer is kept only if it is farther than the pruning
            # RMSD from every one kept before it: a top k of near-copies cannot win best-of-k
            t1 = time.perf_counter()
            top = [None if s_ is None else _subset(r.mol, _diverse(r.mol, s_, k, args.hybrid_prune))
                   for r, s_ in zip(etkdg_mmff, scores)]
            rows[f"hybrid ETKDG+MMFF pool {pool} ranked by {what}, diverse top {k} (RMSD > {args.hybrid_prune} A)"] = \
                _row(f"hybrid[{what}] diverse top {k}", [_rmsds(m, ref) for m, ref in zip(top, refs)], k,
                     secs + time.perf_counter() - t1, sum(m.GetNumConformers() for m in top if m is not None),
                     first_label="top_ranked")
        # the ranking alone, at equal generation counts: the model's pick among the first k
        # against the first of them (RDKit's order carries no preference) and the best of them
        picks, firsts, bests = [], [], []
        for r, s_, ref in zip(etkdg_mmff, scores, refs):
            d = _rmsds(r.mol, ref) if s_ is not None else None
            if d is None:
                continue
            picks.append(d[int(np.argmax(s_[:k]))])
            firsts.append(d[0])
            bests.append(d[:k].min())
        picks, firsts, bests = map(np.asarray, (picks, firsts, bests))
        named = (("model_pick", picks), ("first", firsts), ("best", bests))
        rr = {"n_molecules": len(refs), "n_evaluated": len(picks),
              **{f"{name}_frac_within_0.5A": float((v <= 0.5).sum() / len(refs)) for name, v in named},
              **{f"{name}_rmsd_median": float(np.median(v)) for name, v in named},
              **{f"{name}_rmsd_mean": float(v.mean()) for name, v in named},
              "pick_is_best_fraction": float(np.mean(picks == bests)),
              "pick_better_than_first": int((picks < firsts - 1e-9).sum()),
              "pick_worse_than_first": int((picks > firsts + 1e-9).sum())}
        rows[f"ranking of the first {k} ETKDG+MMFF by {what}"] = rr
        print(f"  rank[{what}] of first {k}: pick <=0.5A {rr['model_pick_frac_within_0.5A']:.3f} "
              f"(median {rr['model_pick_rmsd_median']:.3f}) vs first {rr['first_frac_within_0.5A']:.3f} "
              f"(median {rr['first_rmsd_median']:.3f}), best {rr['best_frac_within_0.5A']:.3f}; "
              f"pick better/worse than first on {rr['pick_better_than_first']}/{rr['pick_worse_than_first']}",
              flush=True)
    return out


# -- ensembles: the GEOM-Drugs sample and rMD17 (COV/MAT) ------------------------------------------
def _ensemble_rows(keys: list[str], inputs: list[str], refs: list[Chem.Mol], protocol, model, args) -> dict:
    """COV/MAT rows for molecules with reference ensembles; ``ref_multiplier`` x K generated each.

    Rows: ETKDGv3 and +MMFF94 (the first 2K of a 4K pool), CGCF and +MMFF94 (2K), and the hybrid:
    the 4K ETKDG+MMFF94 pool ranked by the energy network (if any) and by MMFF94 energy, top 2K.
    """
    from molgraph.conformers import evaluate_molecule, summarize
    from molgraph.methods.cgcf.generate import generate_results

    mult = protocol.ref_multiplier
    wanted = [mult * r.GetNumConformers() for r in refs]
    rows: dict[str, list] = {}
    secs: dict[str, float] = {}
    t0 = time.perf_counter()
    # no embedding timeout here: RDKit's timeout bounds a whole EmbedMultipleConfs call, which for
    # hundreds of drug-size conformers takes longer than any timeout sized for one QM9 molecule
    pool = [next(generate_batch([smi], options=GenerationOptions(n_confs=2 * n, optimize=None, seed=args.seed),
                                n_jobs=1))
            for smi, n in zip(inputs, wanted)]
    pool_s = time.perf_counter() - t0
    _check_distinct("ETKDGv3 pool", [r.mol for r in pool])
    t0 = time.perf_counter()
    pool_mmff = [_mmff(r, args.mmff_max_iters) for r in pool]
    mmff_s = time.perf_counter() - t0
    n_pool = max(sum(r.n_confs for r in pool), 1)
    first = lambda res: [_subset(r.mol, list(range(min(n, r.n_confs)))) if r.ok else None  # noqa: E731
                         for r, n in zip(res, wanted)]
    rows["ETKDGv3"], rows["ETKDGv3+MMFF94"] = first(pool), first(pool_mmff)
    n_first = sum(m.GetNumConformers() for m in rows["ETKDGv3"] if m is not None)
    secs["ETKDGv3"] = pool_s / n_pool * n_first
    secs["ETKDGv3+MMFF94"] = (pool_s + mmff_s) / n_pool * n_first
    t0 = time.perf_counter()
    cg = [next(generate_results(model, [smi], n, seed=args.seed, langevin_steps=0)) for smi, n in zip(inputs, wanted)]
    secs["CGCF"] = time.perf_counter() - t0
    _check_distinct("CGCF", [r.mol for r in cg])
    t0 = time.perf_counter()
    cg_mmff = [_mmff(r, args.mmff_max_iters) for r in cg]
    secs["CGCF+MMFF94"] = secs["CGCF"] + time.perf_counter() - t0
    rows["CGCF"] = [r.mol if r.ok else None for r in cg]
    rows["CGCF+MMFF94"] = [r.mol if r.ok else None for r in cg_mmff]
    for what in [w for w in args.hybrid_scores if w in ("energy", "mmff") and (w == "mmff" or model.energy is not None)]:
        t0 = time.perf_counter()
        top = []
        for r, n in zip(pool_mmff, wanted):
            if not r.ok:
                top.append(None)
                continue
            sc = _scores(model, r, what, args.seed)
            top.append(_subset(r.mol, select(r.mol, sc, n)))
        name = f"hybrid: ETKDG+MMFF94 pool of {2 * mult}K ranked by {what}, top {mult}K"
        rows[name] = top
        secs[name] = pool_s + mmff_s + time.perf_counter() - t0
    out = {"protocol": protocol.to_dict(), "generated_per_reference": mult, "generation_seed": args.seed,
           "molecules": keys, "reference_conformers": [r.GetNumConformers() for r in refs],
           "cgcf_stereo_rejected_conformers": sum(r.n_stereo_rejected for r in cg),
           "cgcf_failures": {k: r.failure for k, r in zip(keys, cg) if r.failure}, "rows": {}}
    for name, mols in rows.items():
        t0 = time.perf_counter()
        per = [evaluate_molecule(k, m if m is not None else _no_conformers(ref), ref, protocol)
               for k, m, ref in zip(keys, mols, refs)]
        summary = summarize(per, protocol)
        n_conf = sum(m.GetNumConformers() for m in mols if m is not None)
        summary.update(conformers=n_conf, generation_s=secs[name],
                       conformers_per_s=n_conf / secs[name] if secs[name] > 0 else math.nan,
                       evaluation_s=time.perf_counter() - t0,
                       per_molecule=[{"key": r.key, "n_generated": r.n_generated, "n_reference": r.n_reference,
                                      "cov_r": r.cov_r, "mat_r": r.mat_r, "cov_p": r.cov_p, "mat_p": r.mat_p,
                                      "error": r.error} for r in per])
        out["rows"][name] = summary
        print(f"  {name:60s} COV-R {summary['cov_r']['mean']:.3f}/{summary['cov_r']['median']:.3f} "
              f"MAT-R {summary['mat_r']['mean']:.3f}/{summary['mat_r']['median']:.3f} "
              f"COV-P {summary['cov_p']['mean']:.3f} MAT-P {summary['mat_p']['mean']:.3f} "
              f"({summary['n_failed']} failed; {summary['conformers_per_s']:.1f} conf/s)", flush=True)
    return out


def _no_conformers(mol: Chem.Mol) -> Chem.Mol:
    """A failed generation: the molecule without conformers (evaluated as an error, never dropped)."""
    out = Chem.Mol(mol)
    out.RemoveAllConformers()
    return out


def _load_model(args):
    from molgraph.methods.cgcf.model import load_model

    model = load_model(args.model)
    # distance-geometry effort is a sampling setting, not a learned one: the run may set it (recorded)
    for name in ("dg_restarts", "dg_steps"):
        if getattr(args, name) is not None:
            setattr(model.config, name, getattr(args, name))
    return model


def part_geom(args) -> dict:
    """GEOM-Drugs sample (10 training molecules of GEOM, 503 CREST conformers): COV/MAT at 1.25 A."""
    from molgraph.conformers import CoverageProtocol
    from molgraph.conformers.ensembles import read_ensembles

    model = _load_model(args)
    path = _data_root() / "3d" / "geom_drugs_sample10" / "geom_drugs_train_first10_reference_conformers.sdf.gz"
    refs, rejects = read_ensembles(path, key="prop:mol_index")
    keys = list(refs)[:args.geom_molecules]
    inputs = [Chem.MolToSmiles(Chem.RemoveHs(Chem.Mol(refs[k], confId=0))) for k in keys]  # stereo from 3D
    out = _ensemble_rows(keys, inputs, [refs[k] for k in keys], CoverageProtocol(threshold=1.25, ref_multiplier=2),
                         model, args)
    out.update(source=str(path.relative_to(_data_root())), rejected_references=rejects,
               model=str(args.model),
               note="GEOM training molecules, not a test set; the CGCF model was trained on QM9 (<= 9 heavy atoms) "
                    "only, so drug-size molecules are far outside its data")
    return out


def part_rmd17(args) -> dict:
    """rMD17 test-split-1 frames as thermal ensembles (``--rmd17-frames`` each): COV/MAT at 0.5 A."""
    from molgraph.conformers import CoverageProtocol
    from molgraph.data.rmd17 import RMD17_SMILES, load_rmd17

    model = _load_model(args)
    rng = np.random.default_rng(args.sample_seed)
    out = {"frames_per_molecule": args.rmd17_frames, "threshold_A": 0.5, "model": str(args.model),
           "source": f"official test split 01, random frames (sample seed {args.sample_seed})", "molecules": {}}
    for name, smiles in RMD17_SMILES.items():
        frames_file = load_rmd17(name, 1, "test", root=_data_root())
        frames = rng.choice(len(frames_file), size=min(args.rmd17_frames, len(frames_file)), replace=False)
        ref, failed = frames_file.frame_ensemble(frames)
        heavy = int((frames_file.z > 1).sum()) > 3  # ethanol: 3 heavy atoms, RMSD over all atoms
        print(f" rmd17 {name}: {ref.GetNumConformers()} frames ({failed} not mapped), "
              f"{'heavy' if heavy else 'all'} atoms", flush=True)
        entry = _ensemble_rows([name], [smiles], [ref], CoverageProtocol(threshold=0.5, heavy_atoms=heavy,
                                                                          ref_multiplier=2), model, args)
        entry.update(frames_not_mapped=failed, heavy_atoms=heavy)
        out["molecules"][name] = entry
    out["mean_over_molecules"] = {
        row: {m: float(np.mean([e["rows"][row][m]["mean"] for e in out["molecules"].values()]))
              for m in ("cov_r", "mat_r", "cov_p", "mat_p")}
        for row in next(iter(out["molecules"].values()))["rows"]}
    return out


PARTS = {"qm9": part_qm9, "geom": part_geom, "rmd17": part_rmd17}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path, help="CGCF run folder or model.pt (molgraph cgcf train)")
    p.add_argument("--limit", type=int, default=100, help="QM9 held-out molecules (default 100)")
    p.add_argument("--k", type=int, default=10, help="conformers per molecule for every method (default 10)")
    p.add_argument("--pool", type=int, default=50, help="ETKDG+MMFF conformers the hybrid ranks (default 50)")
    p.add_argument("--langevin-steps", type=int, default=5, help="Langevin steps of the CGCF+ETM row (0: no row)")
    p.add_argument("--rk4", action="store_true", help="also the rk4 speed-mode CGCF row")
    p.add_argument("--dg-restarts", type=int, default=None, help="override the model's distance-geometry starts")
    p.add_argument("--dg-steps", type=int, default=None, help="override the model's distance-geometry Adam steps")
    p.add_argument("--seed", type=int, default=42, help="generation seed (default 42)")
    p.add_argument("--sample-seed", type=int, default=0, help="seed that picks the QM9 molecules (default 0)")
    p.add_argument("--mmff-max-iters", type=int, default=500)
    p.add_argument("--timeout", type=float, default=2.0, help="RDKit embedding timeout (s), QM9 part only")
    p.add_argument("--parts", nargs="+", choices=list(PARTS), default=["qm9"], help="parts to run (default qm9)")
    p.add_argument("--hybrid-scores", nargs="+", choices=("flow", "energy", "tilted", "mmff"),
                   default=["flow", "energy", "tilted", "mmff"],
                   help="rankings of the ETKDG+MMFF pool (mmff: lowest MMFF94 energy first, no learned model)")
    p.add_argument("--hybrid-prune", type=float, default=None, metavar="RMSD",
                   help="also the 'diverse top k' rows: the ranked pool with conformers within RMSD (angstrom, heavy "
                        "atoms) of a better-ranked kept one skipped, and the same pruning in RDKit's order as control")
    p.add_argument("--cgcf-pool", type=int, default=0,
                   help="QM9: CGCF conformers generated per molecule; the CGCF rows use the first k, and a pool "
                        "> k adds the row 'CGCF+MMFF pool ranked by energy, top k' (default 0: k only)")
    p.add_argument("--geom-molecules", type=int, default=10, help="GEOM-Drugs sample molecules (default all 10)")
    p.add_argument("--rmd17-frames", type=int, default=50, help="reference frames per rMD17 molecule (default 50)")
    p.add_argument("--output", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    run = harness.start_run(argv, script=__file__, distributions=("rdkit", "numpy", "torch", "torchdiffeq", "molgraph"),
                            output=args.output)
    settings = {name: (str(v) if isinstance(v, Path) else v) for name, v in vars(args).items()
                if name not in ("output", "parts")}
    for name in args.parts:
        print(f"[{name}]", flush=True)
        t0 = time.perf_counter()
        entry = PARTS[name](args)
        entry["wall_s"] = time.perf_counter() - t0
        # written after every part, so a failure in a later part keeps the parts already measured
        harness.update_results(args.output, [harness.Part(name, entry, settings)], run,
                               benchmark="confgen")
    print(f"-> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
