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

Usage::

    python benchmarks/featurize.py                       # full run, writes benchmarks/results/featurize.json
    python benchmarks/featurize.py --limit 500 --repeats 1 --output /tmp/quick.json
    python benchmarks/featurize.py --datasets nci
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent
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


# -- environment --------------------------------------------------------------------------------------
def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _total_ram_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def machine_info() -> dict[str, Any]:
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "sched_affinity_count": affinity,
        "total_ram_bytes": _total_ram_bytes(),
        "loadavg_at_start": load,
    }


def library_versions() -> dict[str, str | None]:
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for dist in ("rdkit", "torch", "torch_geometric", "numpy", "chemprop", "molgraph"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    if versions["rdkit"] is None:
        import rdkit

        versions["rdkit"] = getattr(rdkit, "__version__", None)
    if versions["molgraph"] is None:
        import molgraph

        versions["molgraph"] = getattr(molgraph, "__version__", None)
    return versions


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


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically (molgraph's own atomic writer: temp file, fsync, rename)."""
    from molgraph.data.sources import atomic_output

    with atomic_output(path, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=2)
        fh.write("\n")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="SMILES -> graph featurization speed benchmark.")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per contender; the best is kept (default 3)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N molecules of each set")
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS), help="molecule sets")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"results JSON (default {DEFAULT_OUTPUT})")
    p.add_argument("--data-root", default=None,
                   help="data root holding moleculenet/hiv/HIV.csv (default $MOLGRAPH_DATA, else ../shared/data)")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    import torch
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")  # for every contender (forked workers inherit it)
    torch.set_num_threads(1)  # single-core contenders stay on one core

    machine = machine_info()
    contenders, notes = build_contenders()
    for note in notes:
        print(f"note: {note}")
    descriptions = {c.name: c.description for c in contenders}

    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name in args.datasets:
        smiles = load_nci() if name == "nci" else load_hiv(args.data_root)
        if smiles is None:
            skipped[name] = f"{hiv_path(args.data_root)} not found"
            continue
        if args.limit is not None:
            smiles = smiles[: args.limit]
        results[name] = bench_dataset(name, smiles, contenders, args.repeats)

    tables = [format_table(name, res, descriptions) for name, res in results.items()]
    print("\n".join(tables))

    try:
        machine["loadavg_at_end"] = list(os.getloadavg())
    except OSError:
        machine["loadavg_at_end"] = None
    payload = {
        "benchmark": "featurize",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine,
        "versions": library_versions(),
        "settings": {"repeats": args.repeats, "limit": args.limit, "warmup_molecules": WARMUP,
                     "statistic": "best (max) rate over repeats", "torch_num_threads": 1},
        "contenders": descriptions,
        "notes": notes,
        "skipped_datasets": skipped,
        "datasets": results,
    }
    write_json(args.output, payload)
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
