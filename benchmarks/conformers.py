"""Conformer benchmark: generation speed against RDKit, and the ETKDG(+MMFF) baselines.

Parts (``--parts``, default all):

* ``speed``: the same molecules (GEOM-Drugs test SMILES, drug-size) through (a) RDKit's
  ``EmbedMultipleConfs`` called directly, (b) ``molgraph.conformers.generate_batch`` in one
  process, (c) the same with 2 processes; repeats interleaved so background load hits all alike.
  Throughput ratio = baseline wall time / ours. Embedding only (optimize=None) on both sides.
* ``qm9``: "recover the DFT conformer": held-out molecules (Cormorant test split, random sample
  of ``--limit``), k conformers from the SMILES (stereo from the DFT geometry), heavy-atom RMSD
  to the B3LYP geometry; fraction within 0.5 A and the min-RMSD distribution, ETKDG and ETKDG+MMFF.
* ``geom``: GEOM-Drugs sample (10 molecules, 503 CREST conformers): 2K generated per K references,
  COV/MAT at 1.25 A (``<=`` and ``<``), heavy atoms.
* ``rmd17``: rMD17 test split 1 frames as thermal ensembles (``--rmd17-frames`` per molecule),
  2x generated, COV/MAT at 0.5 A; heavy atoms (ethanol: all atoms, 3 heavy atoms only).

Results merge into ``benchmarks/results/conformers.json`` (each part replaces its own entry).
Run: ``.venv/bin/python benchmarks/conformers.py --parts speed qm9 geom rmd17``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import rdkit
from rdkit import Chem, rdBase
from rdkit.Chem import rdDistGeom

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

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
from molgraph.data.sources import atomic_write_bytes  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "conformers.json"


def _data_root() -> Path:
    return Path(os.environ.get("MOLGRAPH_DATA") or REPO.parent / "shared" / "data")


def _machine() -> dict:
    return {"platform": platform.platform(), "python": platform.python_version(), "rdkit": rdkit.__version__,
            "cpu_count": os.cpu_count(), "numpy": np.__version__}


def _mmff_copy(result: ConformerResult, options: GenerationOptions) -> ConformerResult:
    """The same embedded conformers, force-field optimized (so ETKDG and ETKDG+MMFF share embeddings)."""
    out = ConformerResult(index=result.index, input=result.input, mol=Chem.Mol(result.mol))
    _optimize(out.mol, out, options)
    return out


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
    options = GenerationOptions(n_confs=args.speed_confs, optimize=None, seed=7)

    def baseline() -> int:
        n = 0
        params = embed_params(options)  # the same rdDistGeom parameter object our code builds
        for s in smiles:
            mol = Chem.AddHs(Chem.MolFromSmiles(s))
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
def part_qm9(args) -> dict:
    root = _data_root() / "3d" / "qm9"
    with np.load(root / "qm9_core.npz", allow_pickle=False) as f:
        index, ptr, z, pos, smi = f["index"], f["atom_ptr"], f["Z"], f["pos"], f["smiles"]
    with np.load(root / "cormorant_split_gdb_index.npz", allow_pickle=False) as f:
        test_ids = f["test"]
    rng = np.random.default_rng(args.seed)
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
    # strained cages with stereo can take seconds per attempt; a per-call time limit keeps the few
    # of them from dominating (they then go through the random-coordinate fallback)
    options = GenerationOptions(n_confs=args.qm9_k, optimize=None, seed=args.seed, timeout=args.timeout)
    t0 = time.perf_counter()
    results = list(generate_batch(inputs, options=options, n_jobs=args.n_jobs))
    gen_s = time.perf_counter() - t0
    out = {"molecules_sampled": int(len(rows)), "molecules_mapped": len(refs), "mapping_failures": skipped,
           "k": args.qm9_k, "threshold_A": 0.5, "comparison": "<=", "heavy_atoms": True,
           "split": "Cormorant test split (13,083), random sample seed %d" % args.seed,
           "stereo": "input SMILES carries stereo assigned from the DFT geometry", "generation_wall_s": gen_s,
           "options": options.to_dict(),
           "embedding_routes": {r: sum(x.embedding == r for x in results) for r in sorted({x.embedding for x in results})}}
    for variant in ("ETKDGv3", "ETKDGv3+MMFF94"):
        mins, first, failures = [], [], 0
        for res, ref in zip(results, refs):
            if not res.ok:
                failures += 1
                continue
            gen = res if variant == "ETKDGv3" else _mmff_copy(res, GenerationOptions(optimize="mmff"))
            try:
                d, _ = rmsd_matrix(gen.mol, ref)
            except ValueError as err:  # GraphMismatchError: counted, never silently dropped
                failures += 1
                print(f"  qm9 {ref.GetProp('_Name')}: {err}")
                continue
            mins.append(float(d.min()))
            first.append(float(d[0, 0]))
        mins_a, first_a = np.asarray(mins), np.asarray(first)
        out[variant] = {
            "n_evaluated": len(mins), "generation_failures": failures,
            f"frac_within_0.5A_best_of_{args.qm9_k}": float((mins_a <= 0.5).mean()),
            "frac_within_0.5A_first_conformer": float((first_a <= 0.5).mean()),
            "min_rmsd_mean": float(mins_a.mean()), "min_rmsd_median": float(np.median(mins_a)),
            "min_rmsd_quantiles_10_25_50_75_90": [float(q) for q in np.quantile(mins_a, [0.1, 0.25, 0.5, 0.75, 0.9])],
        }
        print(f"  qm9 {variant}: within 0.5 A {out[variant][f'frac_within_0.5A_best_of_{args.qm9_k}']:.3f}, "
              f"median min-RMSD {out[variant]['min_rmsd_median']:.3f} A over {len(mins)}")
    return out


# ------------------------------------------------------------------------------------------
def _coverage_both(pairs, protocol: CoverageProtocol) -> dict:
    """summaries with <= and <, plus per-molecule rows (RMSD matrices computed once)."""
    per_mol, strict_rows = [], []
    for key, gen, ref, proto in pairs:
        res = evaluate_molecule(key, gen, ref, proto)
        per_mol.append(res)
        if res.error is None:
            d, _ = rmsd_matrix(gen, ref, heavy_only=proto.heavy_atoms)
            strict_rows.append(coverage_metrics(d, proto.threshold, inclusive=False))
    summary = summarize(per_mol, protocol)
    summary["cov_r_strict"] = {"mean": float(np.mean([r["cov_r"] for r in strict_rows])),
                               "median": float(np.median([r["cov_r"] for r in strict_rows]))}
    summary["cov_p_strict"] = {"mean": float(np.mean([r["cov_p"] for r in strict_rows])),
                               "median": float(np.median([r["cov_p"] for r in strict_rows]))}
    summary["molecules"] = [{k: v for k, v in r.__dict__.items() if k != "extra"} for r in per_mol]
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
    gens = []
    t0 = time.perf_counter()
    for k, smiles in zip(keys, inputs):
        n = protocol.ref_multiplier * refs[k].GetNumConformers()
        gens.append(next(generate_batch([smiles], options=GenerationOptions(n_confs=n, optimize=None, seed=args.seed))))
    out["generation_wall_s"] = time.perf_counter() - t0
    for variant in ("ETKDGv3", "ETKDGv3+MMFF94"):
        pairs = []
        for k, res in zip(keys, gens):
            gen = res if variant == "ETKDGv3" else _mmff_copy(res, GenerationOptions(optimize="mmff"))
            pairs.append((k, gen.mol, refs[k], protocol))
        out[variant] = _coverage_both(pairs, protocol)
        s = out[variant]
        print(f"  geom {variant}: COV-R {s['cov_r']['mean']:.3f}/{s['cov_r']['median']:.3f} MAT-R "
              f"{s['mat_r']['mean']:.3f}/{s['mat_r']['median']:.3f} COV-P {s['cov_p']['mean']:.3f} MAT-P {s['mat_p']['mean']:.3f}")
    return out


def part_rmd17(args) -> dict:
    from molgraph.data.rmd17 import RMD17_SMILES

    root = _data_root() / "3d" / "rmd17"
    out = {"frames_per_molecule": args.rmd17_frames, "source": "official test split 01, random frames (seed %d)" % args.seed,
           "generated_per_reference": 2, "threshold_A": 0.5}
    rng = np.random.default_rng(args.seed)
    for variant in ("ETKDGv3", "ETKDGv3+MMFF94"):
        out[variant] = {}
    for name, smiles in RMD17_SMILES.items():
        with np.load(root / f"rmd17_{name}_test_01.npz", allow_pickle=False) as f:
            z, coords = f["nuclear_charges"], f["coords"]
        frames = rng.choice(len(coords), size=min(args.rmd17_frames, len(coords)), replace=False)
        ref, failed = None, 0
        for fr in frames:
            try:
                one = mol_from_geometry(smiles, z, coords[fr])
            except Exception:
                failed += 1  # e.g. malonaldehyde frames with the proton between the oxygens
                continue
            if ref is None:
                ref = one
            else:
                ref.AddConformer(Chem.Conformer(one.GetConformer()), assignId=True)
        heavy = sum(int(a > 1) for a in z) > 3
        protocol = CoverageProtocol(threshold=0.5, heavy_atoms=heavy)
        res = next(generate_batch([smiles], options=GenerationOptions(n_confs=2 * ref.GetNumConformers(),
                                                                         optimize=None, seed=args.seed)))
        for variant in ("ETKDGv3", "ETKDGv3+MMFF94"):
            gen = res if variant == "ETKDGv3" else _mmff_copy(res, GenerationOptions(optimize="mmff"))
            s = _coverage_both([(name, gen.mol, ref, protocol)], protocol)
            m = s["molecules"][0]
            out[variant][name] = {"reference_frames": ref.GetNumConformers(), "frames_not_mapped": failed,
                                  "heavy_atoms": heavy, "cov_r": m["cov_r"], "mat_r": m["mat_r"],
                                  "cov_p": m["cov_p"], "mat_p": m["mat_p"], "min_rmsd": m["min_rmsd"],
                                  "cov_r_strict": s["cov_r_strict"]["mean"], "cov_p_strict": s["cov_p_strict"]["mean"]}
            print(f"  rmd17 {name} {variant}: COV-R {m['cov_r']:.3f} MAT-R {m['mat_r']:.3f} COV-P {m['cov_p']:.3f} "
                  f"MAT-P {m['mat_p']:.3f} ({ref.GetNumConformers()} frames, {failed} unmapped)")
    return out


PARTS = {"speed": part_speed, "qm9": part_qm9, "geom": part_geom, "rmd17": part_rmd17}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS))
    p.add_argument("--limit", type=int, default=300, help="QM9 held-out molecules (default 300)")
    p.add_argument("--qm9-k", type=int, default=10, help="conformers per QM9 molecule (default 10)")
    p.add_argument("--rmd17-frames", type=int, default=200, help="reference frames per rMD17 molecule (default 200)")
    p.add_argument("--speed-mols", type=int, default=40, help="molecules in the speed part (default 40)")
    p.add_argument("--speed-confs", type=int, default=10, help="conformers per molecule in the speed part")
    p.add_argument("--repeats", type=int, default=3, help="interleaved speed repeats (default 3)")
    p.add_argument("--n-jobs", type=int, default=2, help="processes for the accuracy parts' generation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=2.0, help="RDKit embedding timeout (s) in the QM9 part")
    p.add_argument("--output", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    results = json.loads(args.output.read_text()) if args.output.is_file() else {}
    for name in args.parts:
        print(f"[{name}]", flush=True)
        t0 = time.perf_counter()
        entry = PARTS[name](args)
        entry["wall_s"] = time.perf_counter() - t0
        entry["command"] = "python benchmarks/conformers.py " + " ".join(sys.argv[1:] if argv is None else argv)
        entry["machine"] = _machine()
        entry["date"] = time.strftime("%Y-%m-%d %H:%M:%S")
        results[name] = entry
        atomic_write_bytes(args.output, json.dumps(results, indent=2, default=str).encode())
    print(f"-> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
