"""Build the bundled ``zinc_constrained`` dataset: 12,000 MOSES molecules with constrained solubility.

The standard ZINC-12k subset (Dwivedi et al., "Benchmarking Graph Neural Networks") is not
available offline, so this builds the same *kind* of task from the MOSES training molecules
(drawn from ZINC Clean Leads) in the shared data folder::

    y = logP - SA - long_cycles

* ``logP``: RDKit's Crippen logP (``Descriptors.MolLogP``);
* ``SA``: the synthetic accessibility score of Ertl & Schuffenhauer 2009, RDKit's
  ``Contrib/SA_Score/sascorer.py`` (1 = easy ... 10 = hard);
* ``long_cycles``: the number of rings with more than 6 atoms in RDKit's ring perception
  (``GetRingInfo().AtomRings()``, the symmetrized SSSR).

The terms are raw (not standardized). Sampling: ``numpy.random.default_rng(seed).choice`` of
12,000 distinct rows of ``zinc/moses/train.csv.gz`` (seed 0); the first 10,000 drawn are the
training part, the next 1,000 validation, the last 1,000 test (``splits.json``, molgraph's
:class:`~molgraph.data.splits.Split` format, row indices into ``zinc_constrained.csv``).

Rebuild (byte-identical output; the script checks itself against the card's sha256 when run with
``--check``)::

    MOLGRAPH_DATA=/work/shared/data python benchmarks/make_zinc_constrained.py --out datasets/derived/zinc_constrained --check

Without ``--out`` nothing is written; an existing output file is never overwritten unless it is
byte-identical to the rebuilt one.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import sys
from pathlib import Path

import numpy as np

N_MOLECULES = 12_000
N_TRAIN, N_VAL, N_TEST = 10_000, 1_000, 1_000
SEED = 0
SOURCE = "zinc/moses/train.csv.gz"
SOURCE_SHA256 = "786f0313aa6b9ba5514df685f885742a70ea8d86f1a4fa48115f7f80a634265c"
DATA_FILE = "zinc_constrained.csv"
SPLIT_FILE = "splits.json"
COLUMNS = ("smiles", "moses_train_row", "logp", "sa_score", "long_cycles", "penalized_logp")


def _sascorer():
    """RDKit's contributed SA score module (``RDConfig.RDContribDir/SA_Score/sascorer.py``)."""
    from rdkit.Chem import RDConfig

    path = os.path.join(RDConfig.RDContribDir, "SA_Score")
    if not os.path.isfile(os.path.join(path, "sascorer.py")):
        raise FileNotFoundError(f"RDKit's SA_Score contribution is missing: expected {path}/sascorer.py")
    if path not in sys.path:
        sys.path.append(path)
    import sascorer  # type: ignore[import-not-found]

    return sascorer


def long_cycles(mol) -> int:
    """Number of rings with more than 6 atoms (RDKit ring perception)."""
    return sum(1 for ring in mol.GetRingInfo().AtomRings() if len(ring) > 6)


def constrained_solubility(smiles: str) -> tuple[float, float, int, float]:
    """``(logP, SA, long_cycles, logP - SA - long_cycles)`` of one SMILES.

    Raises:
        ValueError: RDKit cannot parse ``smiles``.
    """
    from rdkit import Chem
    from rdkit.Chem import Descriptors

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"RDKit cannot parse SMILES {smiles!r}")
    logp = float(Descriptors.MolLogP(mol))
    sa = float(_sascorer().calculateScore(mol))
    cycles = long_cycles(mol)
    return logp, sa, cycles, logp - sa - cycles


def read_moses_train(data_root: Path) -> list[str]:
    """The SMILES of MOSES's training part, in file order (sha256-checked)."""
    from molgraph.data.sources import sha256_file

    path = data_root / SOURCE
    if not path.is_file():
        raise FileNotFoundError(f"MOSES training file not found: {path} (set MOLGRAPH_DATA to the shared data folder)")
    if sha256_file(path) != SOURCE_SHA256:
        raise ValueError(f"{path}: sha256 differs from the MOSES train file this dataset was built from ({SOURCE_SHA256})")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        header = fh.readline().strip()
        if header != "SMILES":
            raise ValueError(f"{path}: expected the single column 'SMILES', got header {header!r}")
        return [line.strip() for line in fh if line.strip()]


def build(data_root: Path) -> tuple[bytes, bytes]:
    """The data CSV and the split JSON, as bytes."""
    from molgraph.data.splits import Split

    smiles = read_moses_train(data_root)
    rows = np.random.default_rng(SEED).choice(len(smiles), size=N_MOLECULES, replace=False)
    out = io.StringIO()
    out.write(",".join(COLUMNS) + "\n")
    for row in rows:
        s = smiles[int(row)]
        logp, sa, cycles, y = constrained_solubility(s)
        # 6 decimals: far below the SA score's own resolution, and a stable text form across runs
        out.write(f"{s},{int(row)},{logp:.6f},{sa:.6f},{cycles},{y:.6f}\n")
    data = out.getvalue().encode("utf-8")
    split = Split(
        train=np.arange(0, N_TRAIN),
        val=np.arange(N_TRAIN, N_TRAIN + N_VAL),
        test=np.arange(N_TRAIN + N_VAL, N_MOLECULES),
        method="random",
        seed=SEED,
        sizes=(N_TRAIN / N_MOLECULES, N_VAL / N_MOLECULES, N_TEST / N_MOLECULES),
        info={"n_rows": N_MOLECULES, "note": "order of numpy.random.default_rng(0).choice over MOSES train rows"},
    )
    split_bytes = (json.dumps(split.to_dict(), indent=1) + "\n").encode("utf-8")
    return data, split_bytes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=None, help="data root holding zinc/moses/ (default: $MOLGRAPH_DATA)")
    p.add_argument("--out", type=Path, default=None, help="folder to write the CSV and splits.json to (default: write nothing)")
    p.add_argument("--check", action="store_true", help="compare the rebuilt files with the card's sha256 values")
    args = p.parse_args(argv)
    from molgraph.data.sources import data_root, sha256_file

    root = args.root if args.root is not None else data_root()
    data, split_bytes = build(root)
    import hashlib

    digests = {DATA_FILE: hashlib.sha256(data).hexdigest(), SPLIT_FILE: hashlib.sha256(split_bytes).hexdigest()}
    print(json.dumps(digests, indent=1))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, blob in ((DATA_FILE, data), (SPLIT_FILE, split_bytes)):
            target = args.out / name
            if target.exists() and sha256_file(target) != digests[name]:
                raise FileExistsError(f"{target} exists and differs from the rebuilt file; move it away first")
            target.write_bytes(blob)
    if args.check:
        from molgraph.data.registry import get_card

        card = get_card("zinc_constrained")
        expected = {DATA_FILE: card.sha256, SPLIT_FILE: card.files[SPLIT_FILE]}
        if expected != digests:
            print(f"MISMATCH: rebuilt {digests}, card {expected}", file=sys.stderr)
            return 1
        print("rebuilt files match the card")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
