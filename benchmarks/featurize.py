#!/usr/bin/env python
"""Featurization speed benchmark: SMILES -> graph, molecules per second.

Contenders (all over the same list of SMILES, each failure caught and counted):

* ``rdkit_parse``        RDKit ``Chem.MolFromSmiles`` alone: the limit for any SMILES featurizer.
* ``molgraph_ogb``       ``MolGraphFeaturizer.ogb()`` called per molecule -> ``Data``.
* ``molgraph_multihot``  ``MolGraphFeaturizer.multihot()`` (the chemprop-like preset) per molecule.
* ``pyg``                ``torch_geometric.utils.from_smiles`` (the 9 atom / 3 bond properties that
  the ``pyg``/``ogb`` presets also encode).
* ``chemprop``           chemprop v2's own SMILES -> ``MolGraph`` path, when chemprop is importable:
  ``chemprop.utils.make_mol(s, keep_h=False, add_h=False)`` then
  ``SimpleMoleculeMolGraphFeaturizer()(mol)`` (what ``MoleculeDatapoint.from_smi`` followed by
  ``MoleculeDataset`` do).
* ``molgraph_batch_1``   ``featurize_smiles(..., n_jobs=1)`` (ogb preset, in this process).
* ``molgraph_batch_2``   ``featurize_smiles(..., n_jobs=2)`` (ogb preset, two worker processes).

All single-core contenders run in this process (torch limited to one thread). Each contender is
warmed up on a few hundred molecules, then timed with ``time.perf_counter`` over the whole list,
``--repeats`` times; contenders are interleaved within each repeat so that load from other
processes hits them alike, and the best (highest) rate per contender is reported.

Molecule sets: RDKit's bundled NCI ``first_5K.smi`` and MoleculeNet HIV
(``$MOLGRAPH_DATA/moleculenet/hiv/HIV.csv``, default data root ``../shared/data`` relative to
the repository root; skipped with a note when absent).

Whole-process mode (``--whole-process``, HIV only): each contender is a fresh Python process,
timed from its start to its exit (imports, reading the CSV, featurizing, writing the output), with
the wall clock of the parent and the child's user+system CPU seconds from ``os.wait4``:

* ``pyg``              a plain script (this file run with ``--_pyg-worker``): imports
  ``torch_geometric``, reads the CSV with the ``csv`` module, calls ``from_smiles`` on each SMILES
  in a loop (exceptions and empty graphs counted as failures, as above) and ``torch.save``s the
  list of ``Data`` -- what a PyG user writes to keep the graphs.
* ``molgraph_<n>_<fmt>``  the real command, ``python -m molgraph.cli.main featurize -i HIV.csv
  -s smiles -o out.<fmt> --errors skip --n-jobs <n>`` (``.pt``: a dict of tensors written with
  ``torch.save``, the like of the baseline; ``.npz``: the same arrays, zip-compressed).

Every repeat runs every contender once, in an order rotated by one each repeat; a ratio is taken
within each repeat (paired) and the median over repeats is reported, with the load average
before every run.

Results (``--output``, default ``benchmarks/results/featurize.json``) are merged by part, each
molecule set under ``datasets/<name>`` and the whole-process run under ``whole_process``: a run
replaces the parts it ran and keeps the others, and each part's record (command, date, machine,
library versions, settings) is under ``parts`` (``benchmarks/_harness.py``).

Usage::

    python benchmarks/featurize.py                       # full run, writes benchmarks/results/featurize.json
    python benchmarks/featurize.py --limit 500 --repeats 1 --output /tmp/quick.json
    python benchmarks/featurize.py --datasets nci
    python benchmarks/featurize.py --whole-process --repeats 5          # whole processes on HIV
    python benchmarks/featurize.py --whole-process --limit 2000 --repeats 1 --output /tmp/quick.json
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import subprocess
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as harness  # noqa: E402  (stdlib-only at import: the PyG worker below imports this file)

REPO_ROOT = harness.REPO_ROOT
DEFAULT_OUTPUT = REPO_ROOT / "benchmarks" / "results" / "featurize.json"
DATASETS = ("nci", "hiv")
WARMUP = 200
MAX_LISTED_FAILURES = 20

# (name, numerator, denominator, goal): each ratio must reach at least ``goal``.
RATIOS: tuple[tuple[str, str, str, float], ...] = (
    ("molgraph_ogb / rdkit_parse", "molgraph_ogb", "rdkit_parse", 0.5),
    ("molgraph_ogb / pyg", "molgraph_ogb", "pyg", 3.0),
    ("molgraph_multihot / chemprop", "molgraph_multihot", "chemprop", 2.0),
    ("molgraph n_jobs=2 / n_jobs=1", "molgraph_batch_2", "molgraph_batch_1", 1.6),
)


# -- molecule sets ----------------------------------------------------------------------------------
def load_nci() -> list[str]:
    from rdkit import RDConfig

    path = os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi")
    smiles = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if parts:
                smiles.append(parts[0])
    return smiles


def hiv_path(data_root: str | None) -> Path:
    root = data_root or os.environ.get("MOLGRAPH_DATA") or str(REPO_ROOT.parent / "shared" / "data")
    return Path(root).expanduser() / "moleculenet" / "hiv" / "HIV.csv"


def load_hiv(data_root: str | None) -> list[str] | None:
    import pandas as pd

    path = hiv_path(data_root)
    if not path.is_file():
        print(f"note: {path} not found; skipping the HIV set (set MOLGRAPH_DATA or --data-root)")
        return None
    frame = pd.read_csv(path, skip_blank_lines=True, usecols=["smiles"], dtype={"smiles": str})
    return frame["smiles"].dropna().tolist()


# -- contenders -------------------------------------------------------------------------------------
# A per-molecule contender is ``fn(smiles) -> bool`` (False = failure; exceptions are failures too).
# A batch contender is ``fn(list) -> list of failed indices``.
class Contender:
    def __init__(self, name: str, description: str, *, per_molecule: Callable[[str], bool] | None = None,
                 batch: Callable[[Sequence[str]], list[int]] | None = None) -> None:
        self.name = name
        self.description = description
        self.per_molecule = per_molecule
        self.batch = batch

    def run(self, smiles: Sequence[str]) -> tuple[float, list[int]]:
        """Featurize the whole list; returns (seconds, indices of failures)."""
        if self.batch is not None:
            start = time.perf_counter()
            failed = self.batch(smiles)
            return time.perf_counter() - start, failed
        fn = self.per_molecule
        assert fn is not None
        failed = []
        start = time.perf_counter()
        for i, s in enumerate(smiles):
            try:
                ok = fn(s)
            except Exception:
                ok = False
            if not ok:
                failed.append(i)
        return time.perf_counter() - start, failed


def build_contenders() -> tuple[list[Contender], list[str]]:
    """The contenders available here, plus notes on those that are not."""
    from rdkit import Chem

    from molgraph.featurizers import MolGraphFeaturizer, featurize_smiles

    notes: list[str] = []
    contenders: list[Contender] = []

    def rdkit_parse(s: str) -> bool:
        return Chem.MolFromSmiles(s) is not None

    contenders.append(Contender("rdkit_parse", "RDKit Chem.MolFromSmiles only", per_molecule=rdkit_parse))

    ogb = MolGraphFeaturizer.ogb()
    multihot = MolGraphFeaturizer.multihot()

    def molgraph_ogb(s: str) -> bool:
        ogb(s)  # raises MoleculeError on a bad SMILES
        return True

    def molgraph_multihot(s: str) -> bool:
        multihot(s)
        return True

    contenders.append(Contender("molgraph_ogb", "MolGraphFeaturizer.ogb()(smiles) per molecule",
                                per_molecule=molgraph_ogb))
    contenders.append(Contender("molgraph_multihot", "MolGraphFeaturizer.multihot()(smiles) per molecule",
                                per_molecule=molgraph_multihot))

    try:
        from torch_geometric.utils import from_smiles
    except ImportError as exc:  # pragma: no cover - torch_geometric is a dependency
        notes.append(f"pyg skipped: {exc}")
    else:
        def pyg(s: str) -> bool:
            # from_smiles turns an unreadable SMILES into an empty graph instead of raising.
            return from_smiles(s).num_nodes > 0

        contenders.append(Contender("pyg", "torch_geometric.utils.from_smiles (empty graph = failure)",
                                    per_molecule=pyg))

    try:
        from chemprop.featurizers import SimpleMoleculeMolGraphFeaturizer
        from chemprop.utils import make_mol
    except ImportError as exc:
        notes.append(f"chemprop skipped (not importable: {exc})")
    else:
        cp_featurizer = SimpleMoleculeMolGraphFeaturizer()

        def chemprop(s: str) -> bool:
            mol = make_mol(s, keep_h=False, add_h=False)  # RuntimeError when RDKit returns None
            cp_featurizer(mol)
            return True

        contenders.append(Contender(
            "chemprop", "chemprop.utils.make_mol + SimpleMoleculeMolGraphFeaturizer()(mol) per molecule",
            per_molecule=chemprop))

    def batch(n_jobs: int) -> Callable[[Sequence[str]], list[int]]:
        def run(smiles: Sequence[str]) -> list[int]:
            res = featurize_smiles(smiles, ogb, n_jobs=n_jobs, errors="skip", progress=False)
            return [r.index for r in res.rejects]
        return run

    contenders.append(Contender("molgraph_batch_1", "featurize_smiles(ogb, n_jobs=1)", batch=batch(1)))
    contenders.append(Contender("molgraph_batch_2", "featurize_smiles(ogb, n_jobs=2)", batch=batch(2)))
    return contenders, notes


# distributions whose versions the results record
VERSIONED = ("rdkit", "torch", "torch_geometric", "numpy", "chemprop", "molgraph")


# -- benchmark ----------------------------------------------------------------------------------------
def bench_dataset(name: str, smiles: list[str], contenders: list[Contender], repeats: int) -> dict[str, Any]:
    n = len(smiles)
    print(f"\n== {name}: {n} molecules, {repeats} repeat(s)", flush=True)
    warm = smiles[:WARMUP]
    for c in contenders:
        c.run(warm)

    times: dict[str, list[float]] = {c.name: [] for c in contenders}
    failures: dict[str, list[int]] = {}
    for r in range(repeats):
        for c in contenders:
            gc.collect()
            seconds, failed = c.run(smiles)
            times[c.name].append(seconds)
            if c.name in failures and failures[c.name] != failed:
                print(f"warning: {c.name} failed on different molecules in repeat {r + 1}", flush=True)
            failures[c.name] = failed
            print(f"  repeat {r + 1}/{repeats}  {c.name:<18} {seconds:8.2f} s  {n / seconds:10.0f} mol/s"
                  f"  ({len(failed)} failures)", flush=True)

    rates = {k: (n / min(v) if v and min(v) > 0 else None) for k, v in times.items()}
    ratios: dict[str, Any] = {}
    for label, num, den, goal in RATIOS:
        value = rates[num] / rates[den] if rates.get(num) and rates.get(den) else None
        ratios[label] = {
            "numerator": num,
            "denominator": den,
            "value": value,
            "goal": goal,
            "met": None if value is None else bool(value >= goal),
        }
    return {
        "n_molecules": n,
        "repeats": repeats,
        "warmup_molecules": len(warm),
        "rates_mol_per_s": rates,
        "seconds_per_repeat": times,
        "failures": {k: len(v) for k, v in failures.items()},
        "failed_molecules": {
            k: [{"index": i, "smiles": smiles[i]} for i in v[:MAX_LISTED_FAILURES]] for k, v in failures.items()
        },
        "failures_vs_rdkit_parse": _failure_diff(smiles, failures),
        "ratios": ratios,
    }


def _failure_diff(smiles: list[str], failures: dict[str, list[int]]) -> dict[str, Any]:
    """Per contender: molecules it failed on that RDKit parsed ("extra"), and the reverse ("missing")."""
    base = set(failures.get("rdkit_parse", []))
    out: dict[str, Any] = {}
    for name, failed in failures.items():
        if name == "rdkit_parse":
            continue
        mine = set(failed)
        out[name] = {
            "extra": [{"index": i, "smiles": smiles[i]} for i in sorted(mine - base)[:MAX_LISTED_FAILURES]],
            "n_extra": len(mine - base),
            "missing": [{"index": i, "smiles": smiles[i]} for i in sorted(base - mine)[:MAX_LISTED_FAILURES]],
            "n_missing": len(base - mine),
        }
    return out


def format_table(name: str, result: dict[str, Any], descriptions: dict[str, str]) -> str:
    lines = [f"\n{name}: {result['n_molecules']} molecules, best of {result['repeats']}"]
    lines.append(f"  {'contender':<18} {'mol/s':>10} {'failures':>9}  how")
    for key, rate in result["rates_mol_per_s"].items():
        shown = f"{rate:10.0f}" if rate is not None else f"{'-':>10}"
        lines.append(f"  {key:<18} {shown} {result['failures'][key]:>9}  {descriptions.get(key, '')}")
    lines.append(f"  {'ratio':<30} {'value':>7} {'goal':>7}  status")
    for label, info in result["ratios"].items():
        if info["value"] is None:
            lines.append(f"  {label:<30} {'-':>7} {'>=' + format(info['goal'], 'g'):>7}  n/a (contender missing)")
        else:
            status = "met" if info["met"] else "NOT met"
            lines.append(f"  {label:<30} {info['value']:7.2f} {'>=' + format(info['goal'], 'g'):>7}  {status}")
    return "\n".join(lines)


# -- whole processes ----------------------------------------------------------------------------------
# (name, numerator, denominator, goal): speed of numerator over denominator, i.e. the denominator's
# seconds over the numerator's, taken per repeat; contenders missing from a run are left out.
WHOLE_RATIOS: tuple[tuple[str, str, str, float | None], ...] = (
    ("molgraph n_jobs=1 (.pt) / pyg", "molgraph_1_pt", "pyg", 2.0),
    ("molgraph n_jobs=2 (.pt) / n_jobs=1 (.pt)", "molgraph_2_pt", "molgraph_1_pt", 1.6),
    ("molgraph n_jobs=2 (.pt) / pyg", "molgraph_2_pt", "pyg", None),
    ("molgraph n_jobs=1 (.npz) / pyg", "molgraph_1_npz", "pyg", 2.0),
    ("molgraph n_jobs=2 (.npz) / n_jobs=1 (.npz)", "molgraph_2_npz", "molgraph_1_npz", 1.6),
    ("molgraph n_jobs=2 (.npz) / pyg", "molgraph_2_npz", "pyg", None),
)


def pyg_worker(csv_path: str, out_path: str, smiles_column: str = "smiles") -> int:
    """The PyG baseline as a user writes it: read the CSV, ``from_smiles`` in a loop, save the list."""
    import csv

    import torch
    from torch_geometric.utils import from_smiles

    with open(csv_path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        col = header.index(smiles_column)
        smiles = [row[col] for row in reader if row]
    graphs, failed = [], 0
    for s in smiles:
        try:
            data = from_smiles(s)
        except Exception:
            failed += 1
            continue
        if data.num_nodes:
            graphs.append(data)
        else:  # from_smiles turns an unreadable SMILES into an empty graph
            failed += 1
    torch.save(graphs, out_path)
    print(f"pyg: {len(graphs)} graphs, {failed} failed, of {len(smiles)} -> {out_path}")
    return 0


def _limited_csv(src: Path, limit: int, dst: Path) -> Path:
    """The header and the first ``limit`` data rows of ``src`` (blank lines skipped), for quick runs."""
    import csv

    with open(src, newline="", encoding="utf-8") as fh, open(dst, "w", newline="", encoding="utf-8") as out:
        reader, writer = csv.reader(fh), csv.writer(out)
        writer.writerow(next(reader))
        n = 0
        for row in reader:
            if row:
                writer.writerow(row)
                n += 1
                if n >= limit:
                    break
    return dst


def _time_process(cmd: list[str], log: Path) -> dict[str, Any]:
    """Run ``cmd`` to its end; wall seconds (parent's clock) and the child's CPU seconds."""
    import subprocess

    with open(log, "wb") as fh:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=REPO_ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "max_rss_kib": usage.ru_maxrss}


def _whole_contenders(csv_path: Path, workdir: Path, n_jobs: Sequence[int],
                      formats: Sequence[str]) -> dict[str, list[str]]:
    py = sys.executable
    cmds = {"pyg": [py, str(Path(__file__).resolve()), "--_pyg-worker", str(csv_path),
                    str(workdir / "pyg.pt")]}
    for fmt in formats:
        for n in n_jobs:
            name = f"molgraph_{n}_{fmt}"
            cmds[name] = [py, "-m", "molgraph.cli.main", "featurize", "-i", str(csv_path), "-s", "smiles",
                          "-o", str(workdir / f"{name}.{fmt}"), "--errors", "skip", "--n-jobs", str(n)]
    return cmds


def _check_outputs(workdir: Path, names: Sequence[str]) -> dict[str, int]:
    """Graph counts of every output (they must agree), read back after the warm-up."""
    import torch

    from molgraph.data.collated import CollatedGraphs

    counts = {}
    for name in names:
        if name == "pyg":
            counts[name] = len(torch.load(workdir / "pyg.pt", weights_only=False))
        else:
            fmt = name.rsplit("_", 1)[1]
            counts[name] = len(CollatedGraphs.load(workdir / f"{name}.{fmt}"))
    if len(set(counts.values())) != 1:
        raise RuntimeError(f"contenders wrote different numbers of graphs: {counts}")
    return counts


def whole_process(args: argparse.Namespace) -> dict[str, Any]:
    import statistics
    import tempfile

    src = hiv_path(args.data_root)
    if not src.is_file():
        raise SystemExit(f"{src} not found (set MOLGRAPH_DATA or --data-root)")
    with tempfile.TemporaryDirectory(prefix="featurize_whole_") as tmp:
        workdir = Path(tmp)
        csv_path = _limited_csv(src, args.limit, workdir / "input.csv") if args.limit else src
        cmds = _whole_contenders(csv_path, workdir, args.n_jobs, args.formats)
        names = list(cmds)
        log = workdir / "log.txt"
        print(f"== whole processes on {csv_path}: {', '.join(names)}", flush=True)
        for w in range(args.warmup):
            for name in names:
                t = _time_process(cmds[name], log)
                print(f"  warm-up {w + 1}  {name:<16} {t['wall_s']:7.2f} s wall {t['cpu_s']:7.2f} s cpu", flush=True)
        counts = _check_outputs(workdir, names) if args.warmup else {}
        if counts:
            print(f"  every contender wrote {next(iter(counts.values()))} graphs", flush=True)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for r in range(args.repeats):
            order = names[r % len(names):] + names[: r % len(names)]
            for name in order:
                load = list(os.getloadavg())
                t = _time_process(cmds[name], log)
                t["loadavg_before"] = load
                t["repeat"] = r
                runs[name].append(t)
                print(f"  repeat {r + 1}/{args.repeats}  {name:<16} {t['wall_s']:7.2f} s wall {t['cpu_s']:7.2f} s cpu"
                      f"  (load {load[0]:.2f})", flush=True)
        sizes = {name: (workdir / (f"{name}.{name.rsplit('_', 1)[1]}" if name != "pyg" else "pyg.pt")).stat().st_size
                 for name in names}

    ratios: dict[str, Any] = {}
    for label, num, den, goal in WHOLE_RATIOS:
        if num not in runs or den not in runs:
            continue
        per_repeat = [d["wall_s"] / n["wall_s"] for n, d in zip(runs[num], runs[den])]
        per_repeat_cpu = [d["cpu_s"] / n["cpu_s"] for n, d in zip(runs[num], runs[den])]
        value = statistics.median(per_repeat)
        ratios[label] = {
            "numerator": num, "denominator": den, "statistic": "median over repeats of paired wall-time ratios",
            "value": value, "per_repeat": per_repeat,
            "cpu_value": statistics.median(per_repeat_cpu),
            "goal": goal, "met": None if goal is None else bool(value >= goal),
        }
    loads = [t["loadavg_before"][0] for ts in runs.values() for t in ts]
    return {
        "input": str(src) + (f" (first {args.limit} rows)" if args.limit else ""),
        "n_graphs_written": counts or None,
        "repeats": args.repeats,
        "warmup_rounds": args.warmup,
        "commands": {k: " ".join(Path(c).name if i == 0 else c for i, c in enumerate(v)) for k, v in cmds.items()},
        "median_wall_s": {k: statistics.median(t["wall_s"] for t in v) for k, v in runs.items()},
        "median_cpu_s": {k: statistics.median(t["cpu_s"] for t in v) for k, v in runs.items()},
        "output_bytes": sizes,
        "runs": runs,
        "ratios": ratios,
        "loadavg_1min_during": {"min": min(loads), "median": statistics.median(loads), "max": max(loads)},
    }


def format_whole(result: dict[str, Any]) -> str:
    lines = [f"\nwhole processes: {result['input']}, median of {result['repeats']}"]
    lines.append(f"  {'contender':<16} {'wall s':>8} {'cpu s':>8} {'out MB':>8}")
    for k, wall in result["median_wall_s"].items():
        lines.append(f"  {k:<16} {wall:8.2f} {result['median_cpu_s'][k]:8.2f} {result['output_bytes'][k] / 1e6:8.1f}")
    lines.append(f"  {'ratio (speed)':<44} {'wall':>6} {'cpu':>6} {'goal':>6}  status")
    for label, info in result["ratios"].items():
        goal = "-" if info["goal"] is None else ">=" + format(info["goal"], "g")
        status = "" if info["met"] is None else ("met" if info["met"] else "NOT met")
        lines.append(f"  {label:<44} {info['value']:6.2f} {info['cpu_value']:6.2f} {goal:>6}  {status}")
    load = result["loadavg_1min_during"]
    lines.append(f"  1-min load average before the runs: min {load['min']:.2f}, median {load['median']:.2f}, "
                 f"max {load['max']:.2f}")
    return "\n".join(lines)


# -- library scale (--scale) ------------------------------------------------------------------------------
def moses_path(data_root: str | None) -> Path:
    root = Path(data_root or os.environ.get("MOLGRAPH_DATA") or REPO_ROOT.parent / "shared" / "data")
    return root / "zinc" / "moses" / "train.csv.gz"


def _logp(smiles: str) -> str:
    from rdkit import Chem, RDLogger
    from rdkit.Chem import Crippen

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    return "" if mol is None else f"{Crippen.MolLogP(mol):.4f}"


def _with_logp(src: Path, dst: Path, limit: int | None) -> None:
    """MOSES has no property column; the training epoch needs one: RDKit's Crippen logP, computed here."""
    import csv
    import gzip
    from multiprocessing import Pool

    with gzip.open(src, "rt", newline="") as fin:
        reader = csv.reader(fin)
        header = next(reader)
        col = header.index("SMILES")
        smiles = [row[col] for i, row in enumerate(reader) if limit is None or i < limit]
    with Pool(2) as pool:
        values = pool.map(_logp, smiles, chunksize=2000)
    tmp = dst.with_suffix(".tmp")
    with gzip.open(tmp, "wt", newline="", compresslevel=1) as fout:
        w = csv.writer(fout)
        w.writerow(["SMILES", "logp"])
        w.writerows(zip(smiles, values))
    tmp.replace(dst)


def _watch(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd``; sample its process tree every 0.2 s: wall time, peak RSS of the main process, of
    the largest worker and of all of them together (bytes)."""
    import psutil

    start = time.perf_counter()
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        main = psutil.Process(proc.pid)
        peak_main = peak_worker = peak_total = 0
        while proc.poll() is None:
            try:
                rss_main = main.memory_info().rss
                workers = [c.memory_info().rss for c in main.children(recursive=True)]
            except psutil.Error:
                workers, rss_main = [], peak_main
            peak_main = max(peak_main, rss_main)
            peak_worker = max([peak_worker, *workers])
            peak_total = max(peak_total, rss_main + sum(workers))
            time.sleep(0.2)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
    return {"wall_s": wall, "peak_rss_main_bytes": peak_main, "peak_rss_largest_worker_bytes": peak_worker,
            "peak_rss_tree_bytes": peak_total}


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def scale(args: argparse.Namespace) -> dict[str, Any]:
    """MOSES train -> shards with the local engine (1 and 2 jobs) and Dask, then one training epoch."""
    import gzip
    import importlib.util

    src = moses_path(args.data_root)
    if not src.is_file():
        raise SystemExit(f"{src} not found (set MOLGRAPH_DATA or --data-root)")
    work = Path(args.scale_workdir)
    work.mkdir(parents=True, exist_ok=True)
    log = work / "log.txt"
    data = work / (f"moses_train_first{args.limit}_logp.csv.gz" if args.limit else "moses_train_logp.csv.gz")
    if not data.is_file():
        print(f"== computing Crippen logP for {data.name} (the training target)", flush=True)
        _with_logp(src, data, args.limit)
    n_rows = sum(1 for _ in gzip.open(data, "rt")) - 1
    base = [sys.executable, "-m", "molgraph.cli.main", "featurize", "-i", str(data), "-s", "SMILES",
            "--errors", "skip", "--featurizer", "ogb", "--shard-size", str(args.shard_size),
            "--target-columns", "logp"]
    contenders = {"local_1_job": ["--n-jobs", "1"], "local_2_jobs": ["--n-jobs", "2"]}
    if importlib.util.find_spec("dask") is not None:
        contenders["dask_local_cluster_2_workers"] = ["--engine", "dask"]
    results: dict[str, Any] = {}
    outputs: dict[str, Path] = {}
    for name, extra in contenders.items():
        out = work / f"shards_{name}"
        shutil.rmtree(out, ignore_errors=True)
        print(f"== {name}", flush=True)
        t = _watch([*base, *extra, "-o", f"{out}/"], log)
        manifest = json.loads((out / "manifest.json").read_text())
        t.update(n_input_rows=n_rows, n_graphs=manifest["totals"]["n_graphs"], n_rejected=manifest["totals"]["n_rejected"],
                 molecules_per_second=n_rows / t["wall_s"], output_bytes=_dir_bytes(out))
        results[name] = t
        outputs[name] = out
        print(f"  {t['wall_s']:.1f} s, {t['molecules_per_second']:.0f} mol/s, peak RSS main "
              f"{t['peak_rss_main_bytes'] / 2**20:.0f} MiB, tree {t['peak_rss_tree_bytes'] / 2**20:.0f} MiB, "
              f"output {t['output_bytes'] / 2**20:.1f} MiB", flush=True)
    # anchor, same run: the single-file path that shards replace for libraries (`-o FILE.npz`, all
    # graphs in memory until written), SMILES only (no target column: less work than the contenders)
    anchor_out = work / "anchor_single_file.npz"
    print("== anchor: single .npz file, 2 jobs", flush=True)
    anchor = _watch([sys.executable, "-m", "molgraph.cli.main", "featurize", "-i", str(data), "-s", "SMILES",
                     "--errors", "skip", "--featurizer", "ogb", "--n-jobs", "2", "-o", str(anchor_out)], log)
    anchor.update(n_input_rows=n_rows, molecules_per_second=n_rows / anchor["wall_s"],
                  output_bytes=anchor_out.stat().st_size)
    anchor_out.unlink()
    print(f"  {anchor['wall_s']:.1f} s, {anchor['molecules_per_second']:.0f} mol/s, peak RSS tree "
          f"{anchor['peak_rss_tree_bytes'] / 2**20:.0f} MiB", flush=True)
    # the engines must agree: same graphs in the same shards
    names = list(outputs)
    ref = outputs[names[0]]
    for other in names[1:]:
        for f in sorted(ref.glob("shard-*/*.npy")):
            if f.read_bytes() != (outputs[other] / f.relative_to(ref)).read_bytes():
                raise RuntimeError(f"{other} wrote {f.relative_to(ref)} differently from {names[0]}")
    ratios = {"local 2 jobs / 1 job (speed)": results["local_1_job"]["wall_s"] / results["local_2_jobs"]["wall_s"]}
    ratios["shards 2 jobs / single file 2 jobs (speed)"] = anchor["wall_s"] / results["local_2_jobs"]["wall_s"]
    ratios["shards 2 jobs / single file 2 jobs (peak RSS)"] = (results["local_2_jobs"]["peak_rss_tree_bytes"]
                                                              / anchor["peak_rss_tree_bytes"])
    if "dask_local_cluster_2_workers" in results:
        ratios["dask overhead vs local 2 jobs (wall, fraction)"] = (
            results["dask_local_cluster_2_workers"]["wall_s"] / results["local_2_jobs"]["wall_s"] - 1.0)
    train = None
    if args.scale_train_fraction > 0:
        run_dir = work / "train_run"
        shutil.rmtree(run_dir, ignore_errors=True)
        frac = args.scale_train_fraction
        cmd = [sys.executable, "-m", "molgraph.cli.main", "train", "-i", f"{outputs['local_2_jobs']}/", "-t", "regression",
               "--epochs", "1", "--split-sizes", str(frac), str(min(0.01, (1 - frac) / 2)),
               str(round(1 - frac - min(0.01, (1 - frac) / 2), 6)), "--accelerator", "cpu", "--no-progress",
               "-o", str(run_dir)]
        print(f"== one training epoch from the shards ({frac:.0%} of them as the training split)", flush=True)
        t = _watch(cmd, log)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        t.update(train_fraction=frac, timing=metrics.get("timing"), command=" ".join(cmd[1:]))
        train = t
        print(f"  {t['wall_s']:.1f} s, peak RSS {t['peak_rss_tree_bytes'] / 2**20:.0f} MiB, "
              f"{(metrics.get('timing') or {}).get('train_molecules_per_second', float('nan')):.0f} mol/s", flush=True)
    return {"input": f"{src} (+ Crippen logP computed by the benchmark as the training target)"
                     + (f", first {args.limit} rows" if args.limit else ""), "n_input_rows": n_rows, "shard_size": args.shard_size, "featurizer": "ogb",
            "contenders": results, "anchor_single_file_2_jobs": anchor, "ratios": ratios, "train_one_epoch": train,
            "goals": {"peak RSS local 2 jobs < 2 GiB": results["local_2_jobs"]["peak_rss_tree_bytes"] < 2 * 2**30,
                      "2 jobs / 1 job >= 1.6": ratios["local 2 jobs / 1 job (speed)"] >= 1.6,
                      "shards no slower than the single file (ratio >= 0.95)":
                          ratios["shards 2 jobs / single file 2 jobs (speed)"] >= 0.95,
                      **({"dask overhead < 20%": ratios["dask overhead vs local 2 jobs (wall, fraction)"] < 0.2}
                         if "dask overhead vs local 2 jobs (wall, fraction)" in ratios else {})}}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="SMILES -> graph featurization speed benchmark.")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per contender; the best is kept (default 3)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N molecules of each set")
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS), help="molecule sets")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"results JSON (default {DEFAULT_OUTPUT})")
    p.add_argument("--data-root", default=None,
                   help="data root holding moleculenet/hiv/HIV.csv (default $MOLGRAPH_DATA, else ../shared/data)")
    p.add_argument("--whole-process", action="store_true",
                   help="time whole processes on HIV (PyG script vs the featurize command), not in-process calls")
    p.add_argument("--n-jobs", type=int, nargs="+", default=[1, 2], help="whole-process: --n-jobs values (default 1 2)")
    p.add_argument("--formats", nargs="+", choices=("pt", "npz"), default=["pt", "npz"],
                   help="whole-process: output formats of the command (default pt npz)")
    p.add_argument("--warmup", type=int, default=1, help="whole-process: untimed rounds first (default 1)")
    p.add_argument("--scale", action="store_true",
                   help="library scale: MOSES train -> shards with 1 and 2 local jobs and Dask (peak RSS, mol/s, "
                        "size), then one training epoch from the shards")
    p.add_argument("--shard-size", type=int, default=100_000, help="scale: molecules per shard (default 100000)")
    p.add_argument("--scale-workdir", default="/tmp/molgraph_scale", help="scale: where the shards go")
    p.add_argument("--scale-train-fraction", type=float, default=0.1,
                   help="scale: share of the shards in the training split of the one-epoch run (0: no training)")
    p.add_argument("--_pyg-worker", nargs=2, metavar=("CSV", "OUT"), dest="pyg_worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be >= 1")
    return args


# file-level keys of featurize.json before per-part records (one in-process run described them all)
LEGACY_KEYS = ("date", "command", "machine", "versions", "settings", "contenders", "notes", "skipped_datasets")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.pyg_worker:
        return pyg_worker(*args.pyg_worker)
    if args.scale:
        run = harness.start_run(argv, script=__file__, distributions=VERSIONED, output=args.output)
        result = scale(args)
        print(json.dumps({k: v for k, v in result.items() if k != "contenders"}, indent=1, default=str))
        settings = {"limit": args.limit, "shard_size": args.shard_size, "train_fraction": args.scale_train_fraction}
        harness.update_results(args.output, [harness.Part("scale", result, settings)], run,
                               benchmark="featurize", legacy_keys=LEGACY_KEYS)
        print(f"\nwrote {args.output} (part scale)")
        return 0
    if args.whole_process:
        run = harness.start_run(argv, script=__file__, distributions=VERSIONED, output=args.output)
        result = whole_process(args)
        print(format_whole(result))
        settings = {"repeats": args.repeats, "warmup_rounds": args.warmup, "limit": args.limit,
                    "n_jobs": args.n_jobs, "formats": args.formats,
                    "statistic": "median over repeats of paired wall-time ratios"}
        harness.update_results(args.output, [harness.Part("whole_process", result, settings)], run,
                               benchmark="featurize", legacy_keys=LEGACY_KEYS)
        print(f"\nwrote {args.output} (part whole_process)")
        return 0

    import torch
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")  # for every contender (forked workers inherit it)
    torch.set_num_threads(1)  # single-core contenders stay on one core

    run = harness.start_run(argv, script=__file__, distributions=VERSIONED, output=args.output)
    contenders, notes = build_contenders()
    for note in notes:
        print(f"note: {note}")
    descriptions = {c.name: c.description for c in contenders}
    settings = {"repeats": args.repeats, "limit": args.limit, "warmup_molecules": WARMUP,
                "statistic": "best (max) rate over repeats", "torch_num_threads": 1,
                "contenders": descriptions, "notes": notes}

    results: dict[str, Any] = {}
    for name in args.datasets:
        smiles = load_nci() if name == "nci" else load_hiv(args.data_root)
        if smiles is None:
            print(f"note: {name} skipped ({hiv_path(args.data_root)} not found); its earlier entry, if any, is kept")
            continue
        if args.limit is not None:
            smiles = smiles[: args.limit]
        results[name] = bench_dataset(name, smiles, contenders, args.repeats)

    tables = [format_table(name, res, descriptions) for name, res in results.items()]
    print("\n".join(tables))
    # each molecule set is a part of its own: a run of one set keeps the other's entry and the whole-process one
    parts = [harness.Part(("datasets", name), res, settings) for name, res in results.items()]
    harness.update_results(args.output, parts, run, benchmark="featurize", legacy_keys=LEGACY_KEYS)
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
