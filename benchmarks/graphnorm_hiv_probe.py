"""Short HIV probes: how fast the trainer's GCN fits HIV with each normalization and setting.

Each variant trains for a few epochs on a random subset of the deterministic scaffold split's
training part, with the same seed and the same batches for every variant; what the probes were
for and what they found: ``docs/experiments/graphnorm.md``.

Model: the ``gcn`` preset (Hu et al. 2020's GCN with bond features; hidden 300, mean readout; by
default 5 layers and one hidden FFN layer) with residual connections, ``ogb`` features. Loop: Adam, constant
lr, BCE with logits, the training batches reshuffled each epoch with the epoch as seed. Reported
per epoch: the mean training loss (train mode, dropout on), the ROC-AUC on the first 4,000 of the
training molecules in eval mode (how well the data is fitted) and on the full validation part.

A variant is ``NAME key=value ...`` with keys ``norm`` (graph|batch|layer|instance|none),
``dropout``, ``lr``, ``bs`` (batch size), ``eps`` (the norms' eps), ``prop`` (the GCN's propagation,
symmetric|mean), ``depth`` (layers) and ``ffn`` (hidden layers of the head). Each variant runs in a
process of its own (one torch thread); ``--jobs`` at once.

Usage::

    python benchmarks/graphnorm_hiv_probe.py                     # the variants below, 3 epochs, 8,000 molecules
    python benchmarks/graphnorm_hiv_probe.py --variants "gn norm=graph dropout=0.1" "bn norm=batch dropout=0.1"
    python benchmarks/graphnorm_hiv_probe.py --variants "gn norm=graph" --epochs 1 --train-molecules 500 --out /tmp/probe.json

Writes ``benchmarks/results/graphnorm_hiv_probe.json`` (``--out``): each variant is a part
(``variants/<name>``) that a rerun replaces, the others are kept, each with its record (command,
date, machine, versions, its settings, epochs and molecules) under ``parts``
(``benchmarks/_harness.py``); the table is rebuilt from all variants.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import _harness as harness  # noqa: E402

DEFAULT_VARIANTS = [
    "bn norm=batch", "gn norm=graph", "instance norm=instance", "layer norm=layer", "none norm=none",
    "bn_d0.1 norm=batch dropout=0.1", "gn_d0.1 norm=graph dropout=0.1", "gn_d0.2 norm=graph dropout=0.2",
    "bn_d0 norm=batch dropout=0", "gn_d0 norm=graph dropout=0", "in_d0 norm=instance dropout=0",
    "none_d0 norm=none dropout=0", "gn_eps1e-2 norm=graph eps=1e-2", "gn_d0_eps1e-2 norm=graph dropout=0 eps=1e-2",
    "gn_lr1e-4 norm=graph lr=1e-4",
    "gn_d0.1_bs64_lr1e-4 norm=graph dropout=0.1 bs=64 lr=1e-4", "bn_d0.1_bs64_lr1e-4 norm=batch dropout=0.1 bs=64 lr=1e-4",
    "gn_d0.1_bs64_lr1e-3 norm=graph dropout=0.1 bs=64 lr=1e-3", "gn_d0_bs64_lr1e-4 norm=graph dropout=0 bs=64 lr=1e-4",
    # the reference's molecule GCN (graphnorm.py's full setting): mean propagation, 4 layers, linear head
    "gn_mean_ref norm=graph dropout=0 bs=64 lr=1e-4 prop=mean depth=4 ffn=0",
    "bn_mean_ref norm=batch dropout=0 bs=64 lr=1e-4 prop=mean depth=4 ffn=0",
    "gn_mean_ref_eps1e-2 norm=graph dropout=0 bs=64 lr=1e-4 prop=mean depth=4 ffn=0 eps=1e-2",
    "gn_mean_ref_eps1e-6 norm=graph dropout=0 bs=64 lr=1e-4 prop=mean depth=4 ffn=0 eps=1e-6",
]
# The probes' own settings (the OGB baseline's layout by default), not a recipe's: the probes compare
# variants of them, and the stored table was measured with exactly these.
KEYS = {"norm": str, "dropout": float, "lr": float, "bs": int, "eps": float, "prop": str, "depth": int, "ffn": int}
DEFAULTS = {"norm": "graph", "dropout": 0.5, "lr": 1e-3, "bs": 32, "eps": None, "prop": "symmetric", "depth": 5,
            "ffn": 1}


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``"NAME key=value ..."`` -> (name, settings with defaults filled in)."""
    name, *pairs = text.split()
    opts = dict(DEFAULTS)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in KEYS:
            raise ValueError(f"variant {name!r}: bad setting {pair!r}; use key=value with key in {sorted(KEYS)}")
        opts[key] = KEYS[key](value)
    return name, opts


def run_variant(job: tuple[str, dict[str, Any], int, int, str]) -> dict[str, Any]:
    """Train one variant; per-epoch loss, training and validation ROC-AUC."""
    name, opts, epochs, n_train, data_root = job
    import torch

    torch.set_num_threads(1)
    from sklearn.metrics import roc_auc_score

    from molgraph.data.loader import GraphBatcher, graph_loader
    from molgraph.data.splits import make_split
    from molgraph.methods.property.method import model_config_for
    from molgraph.methods.property.model import PropertyModel
    from molgraph.methods.property.prepare import prepare_data
    from molgraph.train import TrainConfig

    cfg = TrainConfig(dataset="hiv", data_root=data_root, featurizer="ogb", split="scaffold", model="gcn",
                      norm=opts["norm"], norm_eps=opts["eps"], residual=True, depth=opts["depth"], hidden_dim=300,
                      dropout=opts["dropout"], batch_size=opts["bs"], gcn_propagation=opts["prop"],
                      ffn_layers=opts["ffn"])
    data = prepare_data(cfg, progress=False)
    split = make_split("scaffold", smiles=data.smiles, sizes=[0.8, 0.1, 0.1])
    train = np.random.default_rng(0).permutation(split.train)[:n_train]
    torch.manual_seed(0)
    model = PropertyModel(**model_config_for(cfg, data, 0))
    batcher = GraphBatcher(data.graphs, data.y)
    opt = torch.optim.Adam(model.parameters(), opts["lr"])

    def roc_auc(idx: np.ndarray) -> float:
        model.eval()
        scores, labels = [], []
        with torch.no_grad():
            for b in graph_loader(batcher, idx, batch_size=256):
                scores.append(model(b).view(-1))
                labels.append(b.y.view(-1))
        model.train()
        return float(roc_auc_score(torch.cat(labels).numpy(), torch.cat(scores).numpy()))

    out: dict[str, Any] = {"name": name, "settings": opts, "train_loss": [], "train_roc_auc": [], "val_roc_auc": []}
    t0 = time.perf_counter()
    for epoch in range(epochs):
        total, count = 0.0, 0
        for b in graph_loader(batcher, train, batch_size=opts["bs"], shuffle=True,
                              generator=torch.Generator().manual_seed(epoch)):
            y = b.y.view(-1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(b).view(-1), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(y)
            count += len(y)
        out["train_loss"].append(round(total / count, 4))
        out["train_roc_auc"].append(round(roc_auc(train[:4000]), 4))
        out["val_roc_auc"].append(round(roc_auc(split.val), 4))
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out), file=sys.stderr, flush=True)
    return out


PROTOCOL = {"model": "gcn preset, hidden 300, residual, ogb features, Adam constant lr (depth, head, propagation per "
                        "variant)",
            "split": "deterministic scaffold 0.8/0.1/0.1; a random subset (seed 0) of its training part"}
# file-level keys of the results file before per-variant records: the protocol of whichever run wrote it last
LEGACY_KEYS = ("protocol",)


def _table(variants: dict[str, Any]) -> str:
    lines = ["| variant | settings | training loss per epoch | training ROC-AUC (eval mode) | validation ROC-AUC |",
             "|---|---|---|---|---|"]
    for name, r in variants.items():
        settings = ", ".join(f"{k} {v}" for k, v in r["settings"].items() if v is not None)
        lines.append(f"| {name} | {settings} | {' / '.join(map(str, r['train_loss']))} | "
                     f"{' / '.join(map(str, r['train_roc_auc']))} | {' / '.join(map(str, r['val_roc_auc']))} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, help='"NAME key=value ..."')
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--train-molecules", type=int, default=8000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--data-root", default=None, help="data root (default $MOLGRAPH_DATA, else ../shared/data)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "graphnorm_hiv_probe.json")
    ap.add_argument("--merge", action="store_true",
                    help="keep the variants of an existing --out that this run does not redo: always done now (the "
                         "flag is accepted so that older command lines still run)")
    args = ap.parse_args(argv)
    if args.data_root is None:
        default = ROOT.parent / "shared" / "data"
        args.data_root = os.environ.get("MOLGRAPH_DATA") or (str(default) if default.is_dir() else None)
    if args.data_root is None:
        ap.error("no data root: pass --data-root or set MOLGRAPH_DATA (HIV is not bundled)")
    variants = [parse_variant(v) for v in args.variants]
    run = harness.start_run(argv, script=__file__, output=args.out)
    jobs = [(name, opts, args.epochs, args.train_molecules, args.data_root) for name, opts in variants]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(run_variant, jobs))
    parts = [harness.Part(("variants", r["name"]), r, {**PROTOCOL, "epochs": args.epochs,
                                                      "train_molecules": args.train_molecules, **r["settings"]})
             for r in runs]

    def finalize(results: dict[str, Any]) -> None:
        results["table"] = _table(results["variants"])

    results = harness.update_results(args.out, parts, run, legacy_keys=LEGACY_KEYS, finalize=finalize)
    print(results["table"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
