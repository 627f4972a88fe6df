"""Conformer benchmark: generation speed against RDKit, and the ETKDG(+MMFF) baselines.

Parts (``--parts``, default all):

* ``speed``: the same molecules (GEOM-Drugs test SMILES, drug-size) through (a) RDKit's
  ``EmbedMultipleConfs`` called directly (with the same per-molecule RDKit seed), (b)
  ``molgraph.conformers.generate_batch`` in one process, (c) the same with 2 processes; repeats
  interleaved so background load hits all alike. Throughput ratio = baseline wall time / ours.
  Embedding only (optimize=None) on both sides.
* ``qm9``: "recover the DFT conformer": held-out molecules (Cormorant test split, random sample
  of ``--limit``), ``--qm9-k`` conformers from the SMILES (stereo from the DFT geometry),
  heavy-atom RMSD to the B3LYP geometry; fraction within 0.5 A (failures counted as misses, and
  over the evaluated molecules only, labelled) for best of 10 (the first 10 conformers) and best
  of k, on all molecules and on those with >= 1 rotatable bond; ETKDG and ETKDG+MMFF.
* ``geom``: GEOM-Drugs sample (10 molecules, 503 CREST conformers): 2K generated per K references,
  COV/MAT at 1.25 A (``<=``, and ``<`` as ``*_exclusive``), heavy atoms.
* ``rmd17``: rMD17 test split 1 frames as thermal ensembles (``--rmd17-frames`` per molecule),
  2x generated, COV/MAT at 0.5 A; heavy atoms (ethanol: all atoms, 3 heavy atoms only).

Two seeds: ``--sample-seed`` picks the QM9 molecules and rMD17 frames, ``--seed`` is the
generation seed (mapped per molecule to RDKit's seed by :mod:`molgraph.conformers.seeds`).
The run checks itself and stops with an error when any molecule's conformers contain copies
(fewer distinct conformers than generated), when a molecule has fewer conformers than requested
without a note from the generator saying why, or when best-of-k equals the first conformer on a
whole QM9 set (conformers that are not independent draws).
MMFF is MMFF94 with ``maxIters`` = ``--mmff-max-iters`` (recorded) on the same embeddings.

Results merge into ``benchmarks/results/conformers.json`` (``--output``): each part replaces its
own entry, the others are kept, and each part's record (command, date, machine, versions, the
options it read) is under ``parts`` (``benchmarks/_harness.py``). Each part is written as soon
as it finishes.
Run: ``.venv/bin/python benchmarks/conformers.py --parts speed qm9 geom rmd17``; a quick check:
``--parts speed qm9 rmd17 --speed-mols 5 --repeats 1 --limit 10 --qm9-k 10 --rmd17-frames 5
--output /tmp/conformers.json``.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import rdDistGeom

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import _harness as harness  # noqa: E402

from molgraph.conformers import (  # noqa: E402
    CoverageProtocol,
    GenerationOptions,
    embed_params,
    evaluate_molecule,
    generate_batch,
    mol_from_geometry,
    rmsd_matrix,
    summarize,
)
from molgraph.conformers.coverage import coverage_metrics  # noqa: E402
from molgraph.conformers.generate import ConformerResult, _optimize  # noqa: E402
from molgraph.conformers.seeds import duplicate_conformers, molecule_key, rdkit_seed  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "conformers.json"


def _data_root() -> Path:
    return Path(os.environ.get("MOLGRAPH_DATA") or REPO.parent / "shared" / "data")


class BenchmarkCheckError(RuntimeError):
    """The benchmark's own data would make its numbers wrong (copies among conformers, ...)."""


def _mmff_copy(result: ConformerResult, max_iters: int) -> ConformerResult:
    """The same embedded conformers, MMFF94-optimized (so ETKDG and ETKDG+MMFF share embeddings)."""
    out = ConformerResult(index=result.index, input=result.input, mol=Chem.Mol(result.mol))
    _optimize(out.mol, out, GenerationOptions(optimize="mmff", max_opt_iters=max_iters))
    return out


def _check_distinct(results: list[ConformerResult], requested: list[int], part: str) -> dict:
    """Fail on copies among any molecule's conformers, or on a short ensemble the generator did not explain.

    A molecule may have fewer conformers than requested only when the generator rejected some for
    their stereo (``n_stereo_rejected``). Returns counts for the results file.
    """
    copies, unexplained, short = [], [], []
    for res, want in zip(results, requested):
        if not res.ok:
            continue
        dup = duplicate_conformers(res.mol)
        if dup:
            copies.append(f"{res.input}: {len(dup)} identical pairs among {res.n_confs}")
        if res.n_confs < want:
            # the generator drops conformers whose stereo differs from the input and says so
            (short if res.n_stereo_rejected else unexplained).append(f"{res.input}: {res.n_confs} of {want}")
    if copies or unexplained:
        raise BenchmarkCheckError(f"{part}: conformers are not all distinct: "
                                  + "; ".join(copies[:10] + unexplained[:10]))
    return {"molecules_failed": sum(not r.ok for r in results), "molecules_short_stereo_rejected": short,
            "molecules_complete": sum(r.ok and r.n_confs >= w for r, w in zip(results, requested)),
            "duplicate_check": "passed: no two conformers of a molecule have equal coordinates (1e-6 A)"}


# ------------------------------------------------------------------------------------------
def part_speed(args) -> dict:
    path = _data_root() / "3d" / "geom_testsets_smiles" / "geomol_DRUGS_test_smiles_corrected.csv"
    smiles = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            mol = Chem.MolFromSmiles(row["corrected_smiles"])
            if mol is not None and mol.GetNumHeavyAtoms() <= 35:
                smiles.append(row["corrected_smiles"])
            if len(smiles) == args.speed_mols:
                break
    options = GenerationOptions(n_confs=args.speed_confs, optimize=None, seed=args.seed)

    def baseline() -> int:
        n = 0
        for s in smiles:
            mol = Chem.MolFromSmiles(s)
            # the same rdDistGeom parameter object and per-molecule RDKit seed our code uses
            params = embed_params(options, rdkit_seed(options.seed, molecule_key(mol)))
            mol = Chem.AddHs(mol)
            with rdBase.BlockLogs():
                n += len(rdDistGeom.EmbedMultipleConfs(mol, options.n_confs, params))
        return n

    def ours(n_jobs: int) -> int:
        return sum(r.n_confs for r in generate_batch(smiles, options=options, n_jobs=n_jobs))

    runs = {"rdkit_direct": [], "molgraph_1proc": [], "molgraph_2proc": []}
    confs = {}
    load_start = os.getloadavg()
    for rep in range(args.repeats):
        order = [("rdkit_direct", baseline), ("molgraph_1proc", lambda: ours(1)), ("molgraph_2proc", lambda: ours(2))]
        if rep % 2:  # alternate the order too, so neither side always runs first
            order = order[::-1]
        for name, fn in order:
            cpu0, t0 = time.process_time(), time.perf_counter()
            confs[name] = fn()
            wall = time.perf_counter() - t0
            runs[name].append({"wall_s": wall, "parent_cpu_s": time.process_time() - cpu0, "loadavg_after": os.getloadavg()[0]})
            print(f"  speed rep {rep} {name}: {wall:.2f} s ({confs[name]} conformers)", flush=True)
    load_end = os.getloadavg()
    base = [r["wall_s"] for r in runs["rdkit_direct"]]
    out = {"molecules": len(smiles), "n_confs": options.n_confs, "options": options.to_dict(),
           "source": "first GEOM-Drugs test SMILES (GeoMol corrected_smiles) with <= 35 heavy atoms",
           "repeats": args.repeats, "loadavg_start": load_start, "loadavg_end": load_end,
           "conformers_made": confs, "runs": runs}
    for name in ("molgraph_1proc", "molgraph_2proc"):
        ratios = [b / r["wall_s"] for b, r in zip(base, runs[name])]
        out[f"ratio_{name}"] = {"per_repeat": ratios, "median": statistics.median(ratios),
                                "total_time": sum(base) / sum(r["wall_s"] for r in runs[name])}
    out["targets"] = {"molgraph_1proc": ">= 0.95", "molgraph_2proc": ">= 1.6"}
    print(f"  ratio 1 proc {out['ratio_molgraph_1proc']['median']:.3f}, 2 proc {out['ratio_molgraph_2proc']['median']:.3f}"
          f" (loadavg {load_start[0]:.2f} -> {load_end[0]:.2f})")
    return out


# ------------------------------------------------------------------------------------------
def _qm9_rows(results, refs, variant: str, ks: tuple[int, ...], mmff_iters: int) -> list[dict]:
    """Per molecule: min RMSD over the first k conformers for each k (None for a failure)."""
    rows = []
    for res, ref in zip(results, refs):
        row = {"qm9_index": int(ref.GetProp("_Name")), "failed": not res.ok}
        if res.ok:
            gen = res if variant == "ETKDGv3" else _mmff_copy(res, mmff_iters)
            try:
                d, _ = rmsd_matrix(gen.mol, ref)
            except ValueError as err:  # GraphMismatchError: counted as a failure, never dropped
                print(f"  qm9 {ref.GetProp('_Name')}: {err}")
                row["failed"] = True
            else:
                row["first"] = float(d[0, 0])
                row.update({f"best_of_{k}": float(d[:k, 0].min()) for k in ks})
        rows.append(row)
    return rows


def _qm9_summary(rows: list[dict], ks: tuple[int, ...], threshold: float) -> dict:
    ok = [r for r in rows if not r["failed"]]
    out = {"n_molecules": len(rows), "n_evaluated": len(ok), "generation_failures": len(rows) - len(ok)}
    for k in ("first", *(f"best_of_{k}" for k in ks)):
        vals = np.asarray([r[k] for r in ok])
        hits = int((vals <= threshold).sum())
        out[k] = {
            f"frac_within_{threshold}A": hits / len(rows),  # failures count as misses
            # over the molecules that embedded only: comparable with tables that drop failures
            f"frac_within_{threshold}A_evaluated_only": hits / len(ok) if ok else math.nan,
            "min_rmsd_median": float(np.median(vals)), "min_rmsd_mean": float(vals.mean()),
            "min_rmsd_quantiles_10_25_50_75_90": [float(q) for q in np.quantile(vals, [0.1, 0.25, 0.5, 0.75, 0.9])],
        }
    for k in ks:
        if k > 1 and all(r[f"best_of_{k}"] == r["first"] for r in ok):
            raise BenchmarkCheckError(f"qm9: best of {k} equals the first conformer on all {len(ok)} molecules: "
                                      "the conformers are not independent")
    return out


def part_qm9(args) -> dict:
    from rdkit.Chem.rdMolDescriptors import CalcNumRotatableBonds

    root = _data_root() / "3d" / "qm9"
    with np.load(root / "qm9_core.npz", allow_pickle=False) as f:
        index, ptr, z, pos, smi = f["index"], f["atom_ptr"], f["Z"], f["pos"], f["smiles"]
    with np.load(root / "cormorant_split_gdb_index.npz", allow_pickle=False) as f:
        test_ids = f["test"]
    rng = np.random.default_rng(args.sample_seed)
    chosen = rng.choice(np.sort(test_ids), size=min(args.limit, len(test_ids)), replace=False)
    rows = np.searchsorted(index, chosen)
    refs, inputs, skipped = [], [], []
    for r in rows:
        a, b = ptr[r], ptr[r + 1]
        try:
            ref = mol_from_geometry(smi[r].decode(), z[a:b], pos[a:b], name=str(index[r]))
        except Exception as err:
            skipped.append({"qm9_index": int(index[r]), "reason": str(err)})
            continue
        refs.append(ref)
        inputs.append(Chem.MolToSmiles(Chem.RemoveHs(ref)))  # stereo from the DFT geometry
    ks = tuple(sorted({10, args.qm9_k}))
    k_max = ks[-1]
    # strained cages with stereo can take seconds per attempt; a per-call time limit keeps the few
    # of them from dominating (they then go through the random-coordinate fallback)
    options = GenerationOptions(n_confs=k_max, optimize=None, seed=args.seed, timeout=args.timeout)
    t0 = time.perf_counter()
    results = list(generate_batch(inputs, options=options, n_jobs=args.n_jobs))
    gen_s = time.perf_counter() - t0
    rotatable = [CalcNumRotatableBonds(Chem.MolFromSmiles(s)) >= 1 for s in inputs]
    out = {"molecules_sampled": int(len(rows)), "molecules_mapped": len(refs), "mapping_failures": skipped,
           "k": list(ks), "k_rule": f"best of k < {k_max} is the best of the first k of the {k_max} generated",
           "threshold_A": 0.5, "comparison": "<=", "heavy_atoms": True,
           "split": f"Cormorant test split (13,083), random sample, sample seed {args.sample_seed}",
           "generation_seed": args.seed,
           "stereo": "input SMILES carries stereo assigned from the DFT geometry", "generation_wall_s": gen_s,
           "options": options.to_dict(), "mmff_max_iters": args.mmff_max_iters,
           "rotatable_rule": "rdMolDescriptors.CalcNumRotatableBonds (RDKit default, strict) >= 1",
           "molecules_with_rotatable_bond": int(sum(rotatable)),
           "checks": _check_distinct(results, [k_max] * len(results), "qm9"),
           "embedding_routes": {r: sum(x.embedding == r for x in results) for r in sorted({x.embedding for x in results})}}
    for variant in ("ETKDGv3", "ETKDGv3+MMFF94"):
        per_mol = _qm9_rows(results, refs, variant, ks, args.mmff_max_iters)
        out[variant] = {"all": _qm9_summary(per_mol, ks, 0.5),
                        "rotatable": _qm9_summary([r for r, keep in zip(per_mol, rotatable) if keep], ks, 0.5)}
        for subset, summ in out[variant].items():
            print(f"  qm9 {variant} [{subset}, {summ['n_molecules']} mols, {summ['generation_failures']} failed]: "
                  + ", ".join(f"{k} {summ[k]['frac_within_0.5A']:.3f}" for k in ("first", *(f"best_of_{k}" for k in ks))))
    return out


# ------------------------------------------------------------------------------------------
def _coverage_both(pairs, protocol: CoverageProtocol) -> dict:
    """summaries with ``<=`` and, as ``*_exclusive``, with ``<`` at the threshold (the GeoMol /
    torsional-diffusion comparison; not torsional diffusion's "strict" symmetry rule), plus per-molecule
    rows (RMSD matrices computed once)."""
    per_mol, exclusive_rows = [], []
    for key, gen, ref, proto in pairs:
        res = evaluate_molecule(key, gen, ref, proto)
        per_mol.append(res)
        if res.error is None:
            d, _ = rmsd_matrix(gen, ref, heavy_only=proto.heavy_atoms)
            row = coverage_metrics(d, proto.threshold, inclusive=False)
            res.extra.update(cov_r_exclusive=row["cov_r"], cov_p_exclusive=row["cov_p"])
            exclusive_rows.append(row)
    summary = summarize(per_mol, protocol)
    for name in ("cov_r", "cov_p"):
        vals = [r[name] for r in exclusive_rows]
        summary[f"{name}_exclusive"] = {"mean": float(np.mean(vals)), "median": float(np.median(vals))}
    summary["molecules"] = [{**{k: v for k, v in r.__dict__.items() if k != "extra"}, **r.extra} for r in per_mol]
    return summary


def part_geom(args) -> dict:
    from molgraph.conformers.ensembles import read_ensembles

    path = _data_root() / "3d" / "geom_drugs_sample10" / "geom_drugs_train_first10_reference_conformers.sdf.gz"
    refs, rejects = read_ensembles(path, key="prop:mol_index")
    keys = list(refs)
    inputs = [Chem.MolToSmiles(Chem.RemoveHs(Chem.Mol(refs[k], confId=0))) for k in keys]  # stereo from 3D
    protocol = CoverageProtocol(threshold=1.25, ref_multiplier=2)
    out = {"reference_conformers": sum(m.GetNumConformers() for m in refs.values()), "rejected_references": rejects,
           "protocol": protocol.to_dict(), "generated_per_reference": 2}
    gens, wanted = [], []
    t0 = time.perf_counter()
    for k, smiles in zip(keys, inputs):
        n = protocol.ref_multiplier * refs[k].GetNumConformers()
        wanted.append(n)
        gens.append(next(generate_batch([smiles], options=GenerationOptions(n_confs=n, optimize=None, seed=args.seed))))
    out["generation_wall_s"] = time.perf_counter() - t0
    out.update(generation_seed=args.seed, mmff_max_iters=args.mmff_max_iters,
               checks=_check_distinct(gens, wanted, "geom"))
    for variant in ("ETKDGv3", "ETKDGv3+MMFF94"):
        pairs = []
        for k, res in zip(keys, gens):
            gen = res if variant == "ETKDGv3" else _mmff_copy(res, args.mmff_max_iters)
            pairs.append((k, gen.mol, refs[k], protocol))
        out[variant] = _coverage_both(pairs, protocol)
        s = out[variant]
        print(f"  geom {variant}: COV-R {s['cov_r']['mean']:.3f}/{s['cov_r']['median']:.3f} MAT-R "
              f"{s['mat_r']['mean']:.3f}/{s['mat_r']['median']:.3f} COV-P {s['cov_p']['mean']:.3f} MAT-P {s['mat_p']['mean']:.3f}")
    return out


def part_rmd17(args) -> dict:
    from molgraph.data.rmd17 import RMD17_SMILES, load_rmd17

    out = {"frames_per_molecule": args.rmd17_frames,
           "source": f"official test split 01, random frames (sample seed {args.sample_seed})",
           "generation_seed": args.seed, "mmff_max_iters": args.mmff_max_iters,
           "generated_per_reference": 2, "threshold_A": 0.5}
    rng = np.random.default_rng(args.sample_seed)
    gens, wanted = [], []
    for variant in ("ETKDGv3", "ETKDGv3+MMFF94"):
        out[variant] = {}
    for name, smiles in RMD17_SMILES.items():
        frames_file = load_rmd17(name, 1, "test", root=_data_root())
        frames = rng.choice(len(frames_file), size=min(args.rmd17_frames, len(frames_file)), replace=False)
        ref, failed = frames_file.frame_ensemble(frames)
        heavy = int((frames_file.z > 1).sum()) > 3
        protocol = CoverageProtocol(threshold=0.5, heavy_atoms=heavy)
        res = next(generate_batch([smiles], options=GenerationOptions(n_confs=2 * ref.GetNumConformers(),
                                                                         optimize=None, seed=args.seed)))
        gens.append(res)
        wanted.append(2 * ref.GetNumConformers())
        _check_distinct([res], [wanted[-1]], f"rmd17 {name}")
        for variant in ("ETKDGv3", "ETKDGv3+MMFF94"):
            gen = res if variant == "ETKDGv3" else _mmff_copy(res, args.mmff_max_iters)
            s = _coverage_both([(name, gen.mol, ref, protocol)], protocol)
            m = s["molecules"][0]
            out[variant][name] = {"reference_frames": ref.GetNumConformers(), "frames_not_mapped": failed,
                                  "heavy_atoms": heavy, "cov_r": m["cov_r"], "mat_r": m["mat_r"],
                                  "cov_p": m["cov_p"], "mat_p": m["mat_p"], "min_rmsd": m["min_rmsd"],
                                  "cov_r_exclusive": m["cov_r_exclusive"], "cov_p_exclusive": m["cov_p_exclusive"]}
            print(f"  rmd17 {name} {variant}: COV-R {m['cov_r']:.3f} MAT-R {m['mat_r']:.3f} COV-P {m['cov_p']:.3f} "
                  f"MAT-P {m['mat_p']:.3f} ({ref.GetNumConformers()} frames, {failed} unmapped)")
    out["checks"] = _check_distinct(gens, wanted, "rmd17")
    for variant in ("ETKDGv3", "ETKDGv3+MMFF94"):
        rows = out[variant]
        out[variant]["mean_over_molecules"] = {
            k: float(np.mean([r[k] for r in rows.values()])) for k in ("cov_r", "mat_r", "cov_p", "mat_p")}
    return out


PARTS = {"speed": part_speed, "qm9": part_qm9, "geom": part_geom, "rmd17": part_rmd17}
# the options each part reads: its settings in the results file
PART_OPTIONS = {
    "speed": ("speed_mols", "speed_confs", "repeats", "seed"),
    "qm9": ("limit", "qm9_k", "n_jobs", "seed", "sample_seed", "mmff_max_iters", "timeout"),
    "geom": ("seed", "mmff_max_iters"),
    "rmd17": ("rmd17_frames", "seed", "sample_seed", "mmff_max_iters"),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS))
    p.add_argument("--limit", type=int, default=200, help="QM9 held-out molecules (default 200)")
    p.add_argument("--qm9-k", type=int, default=50,
                   help="conformers per QM9 molecule (default 50; best of 10 is reported from the first 10 too)")
    p.add_argument("--rmd17-frames", type=int, default=100, help="reference frames per rMD17 molecule (default 100)")
    p.add_argument("--speed-mols", type=int, default=40, help="molecules in the speed part (default 40)")
    p.add_argument("--speed-confs", type=int, default=10, help="conformers per molecule in the speed part")
    p.add_argument("--repeats", type=int, default=3, help="interleaved speed repeats (default 3)")
    p.add_argument("--n-jobs", type=int, default=2, help="processes for the accuracy parts' generation")
    p.add_argument("--seed", type=int, default=42, help="generation seed (default 42)")
    p.add_argument("--sample-seed", type=int, default=0,
                   help="seed that picks the QM9 molecules and rMD17 frames (default 0)")
    p.add_argument("--mmff-max-iters", type=int, default=500, help="MMFF94 maxIters per conformer (default 500)")
    p.add_argument("--timeout", type=float, default=2.0, help="RDKit embedding timeout (s) in the QM9 part")
    p.add_argument("--output", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    run = harness.start_run(argv, script=__file__, distributions=("rdkit", "numpy", "molgraph"), output=args.output)
    for name in args.parts:
        print(f"[{name}]", flush=True)
        t0 = time.perf_counter()
        entry = PARTS[name](args)
        entry["wall_s"] = time.perf_counter() - t0
        settings = {k: getattr(args, k) for k in PART_OPTIONS[name]}
        # written after every part, so a failure in a later part keeps the parts already measured
        harness.update_results(args.output, [harness.Part(name, entry, settings)], run, benchmark="conformers")
    print(f"-> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
