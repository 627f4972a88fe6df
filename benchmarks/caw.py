"""CAW-N benchmark: CAW-N vs EdgeBank vs a node-id ablation, and the sampler's throughput.

Usage (CPU; see docs/caw.md for the measured table)::

    python benchmarks/caw.py --data-root ../shared/data --dataset uci --epochs 1 \
        --out benchmarks/results/caw.json

Rows, in one run, on the same chronological 70/15/15 split (and the same inductive split):

* ``caw``: ``molgraph train --method caw`` (anonymized positions), transductive and inductive;
* ``node_id``: the same network with raw node-id embeddings instead of the anonymization;
* ``tgn``: TGN on PyG's ``TGNMemory`` (``benchmarks/tgn_baseline.py``), trained for the same
  number of epochs on the same splits and negative pools, the epoch chosen on validation AP;
* ``edgebank``: EdgeBank with unlimited memory, streaming: a pair scores 1 if the directed pair
  ``(u, v)`` occurred strictly before the query time (any part of the stream), else 0. Its
  negatives are drawn like the model's (uniform over the same destination pool, same source and
  time) from its own seeded generator.

Metrics are global AUC/AP over all evaluated events; ``batch_avg_*`` are the reference's
batch-of-30 averages, for comparability only. ``sampler``: walks per second of the vectorized
sampler against a per-hop Python sampler like the reference's (backward scan with acceptance
``p_k``), from the hub of a star of growing degree.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def edgebank_scores(src: np.ndarray, dst: np.ndarray, t: np.ndarray, qu: np.ndarray, qv: np.ndarray,
                    qt: np.ndarray) -> np.ndarray:
    """1.0 where the directed pair ``(qu, qv)`` has an event strictly before ``qt``, else 0.0."""
    n = int(max(src.max(), dst.max(), qu.max(), qv.max())) + 1
    key = src.astype(np.int64) * n + dst
    first = {}
    for k, tt in zip(key.tolist(), t.tolist()):  # events are time-sorted: the first time of each pair
        first.setdefault(k, tt)
    qk = (qu.astype(np.int64) * n + qv).tolist()
    return np.array([1.0 if first.get(k, np.inf) < tt else 0.0 for k, tt in zip(qk, qt.tolist())])


def edgebank_rows(events, split, negatives: np.ndarray, ids_by_part: dict[str, np.ndarray], seed: int) -> dict:
    from molgraph.methods.caw.task import link_metrics

    rng = np.random.default_rng(seed)
    out = {}
    for part, ids in ids_by_part.items():
        neg = negatives[rng.integers(0, negatives.size, ids.size)]
        pos_s = edgebank_scores(events.src, events.dst, events.t, events.src[ids], events.dst[ids], events.t[ids])
        neg_s = edgebank_scores(events.src, events.dst, events.t, events.src[ids], neg, events.t[ids])
        out[part] = link_metrics(pos_s, neg_s)
    return out


def python_reference_walks(store, p: np.ndarray, node: int, cut: float, n: int,
                           rng: np.random.Generator) -> np.ndarray:
    """One-hop picks by the reference's per-walk backward scan: accept entry k with ``p[k]`` (= exp(log_p[k]))."""
    start, stop = store.nbrs.before(node, cut)
    start, stop = int(start), int(stop)
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        k = stop - 1
        while k > start and rng.random() >= p[k]:
            k -= 1
        out[i] = k
    return out


def sampler_throughput(degrees: list[int], alphas: list[float], n_walks: int = 2000) -> list[dict]:
    from molgraph.data.temporal import TemporalNeighbors
    from molgraph.methods.caw.store import WalkStore

    rows = []
    for d in degrees:
        times = np.arange(d, dtype=np.float64) * 60.0  # one event a minute
        nb = TemporalNeighbors.from_arrays(np.zeros(d, int), np.arange(1, d + 1), times, d + 1)
        for alpha in alphas:
            store = WalkStore(nb, alpha)
            rng = np.random.default_rng(0)
            cut = times[-1] + 1.0
            t0 = time.perf_counter()
            store.walks(np.zeros(n_walks, int), np.full(n_walks, cut), 1, 1, rng)
            vec = n_walks / (time.perf_counter() - t0)
            n_ref = max(20, min(n_walks, 200_000 // max(d, 1)))  # the O(degree) scan gets fewer walks
            p = np.exp(store.log_p)  # precomputed once, as the reference's store does: not timed
            t0 = time.perf_counter()
            python_reference_walks(store, p, 0, cut, n_ref, rng)
            ref = n_ref / (time.perf_counter() - t0)
            rows.append({"degree": d, "alpha_per_s": alpha, "vectorized_walks_per_s": vec,
                         "python_scan_walks_per_s": ref})
            print(f"sampler degree {d:>7} alpha {alpha:g}: vectorized {vec:,.0f} walks/s, python scan {ref:,.0f}",
                  flush=True)
    return rows


def train_row(args, position: str, inductive: bool, workdir: Path) -> dict:
    from molgraph.cli.main import main

    run = workdir / f"{position}_{'ind' if inductive else 'trans'}"
    cli = ["train", "--method", "caw", "-d", args.dataset, "--data-root", args.data_root, "--position", position,
           "--n-walks", str(args.n_walks), "--walk-length", str(args.walk_length), "--alpha", str(args.alpha),
           "--hidden", str(args.hidden), "--pos-dim", str(args.pos_dim), "--time-dim", str(args.pos_dim),
           "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--accelerator", args.accelerator,
           "--no-progress", "-o", str(run)]
    if args.max_events:
        cli += ["--max-events", str(args.max_events)]
    if inductive:
        cli += ["--inductive"]
    t0 = time.perf_counter()
    rc = main(cli)
    if rc != 0:
        raise SystemExit(f"training failed: {' '.join(cli)}")
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["wall_seconds"] = time.perf_counter() - t0
    metrics["command"] = "molgraph " + " ".join(cli[:-2])
    return metrics


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"), help="data root (default ../shared/data)")
    p.add_argument("--dataset", default="uci", help="uci | enron | wikipedia (default uci)")
    p.add_argument("--max-events", type=int, default=None, help="use a prefix of the stream (default: all events)")
    p.add_argument("--epochs", type=int, default=1, help="training epochs per model (default 1)")
    p.add_argument("--n-walks", type=int, default=16, help="walks per endpoint M (default 16)")
    p.add_argument("--walk-length", type=int, default=2, help="hops per walk L (default 2)")
    p.add_argument("--alpha", type=float, default=1e-6, help="time bias of the sampler, per second (default 1e-6)")
    p.add_argument("--hidden", type=int, default=32, help="hidden width (default 32)")
    p.add_argument("--pos-dim", type=int, default=16, help="position and time encoding width (default 16)")
    p.add_argument("--batch-size", type=int, default=200, help="positive events per batch (default 200)")
    p.add_argument("--accelerator", default="cpu", help="Lightning accelerator of the training runs (default cpu)")
    p.add_argument("--settings", default="trans,ind", help="trans, ind or both (default): which split settings the "
                   "caw and node_id rows train")
    p.add_argument("--tgn-lr", type=float, default=1e-3, help="TGN learning rate (default 1e-3, as CAW-N's)")
    p.add_argument("--rows", default="caw,node_id,tgn,edgebank,sampler", help="which rows to run (comma-separated)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "caw.json"), help="results JSON")
    p.add_argument("--update", action="store_true", help="keep the rows already in --out (same dataset)")
    args = p.parse_args(argv)
    rows = set(args.rows.split(","))

    import torch

    from molgraph.data.splits.temporal import chronological_split, inductive_split, inductive_test_subsets
    from molgraph.methods.caw.method import load_events

    events = load_events(args.dataset, args.data_root, "keep", args.max_events)
    result = {"dataset": args.dataset, "events": events.num_events, "nodes": events.num_nodes,
              "settings": {k: v for k, v in vars(args).items() if k not in ("out",)},
              "machine": {"platform": platform.platform(), "torch_threads": torch.get_num_threads()},
              "rows": {}}
    out = Path(args.out)
    if args.update and out.is_file():
        old = json.loads(out.read_text())
        if old.get("dataset") == args.dataset and old.get("events") == events.num_events:
            result["rows"] = old.get("rows", {})
            if "sampler" in old:
                result["sampler"] = old["sampler"]
            result["settings_of_kept_rows"] = old.get("settings")

    def save() -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=float) + "\n")

    if "sampler" in rows:
        result["sampler"] = sampler_throughput([10, 100, 1000, 10_000, 100_000], [0.0, 1e-3])
        save()
    trans = chronological_split(events.t)
    ind = inductive_split(events.src, events.dst, events.t, mask_fraction=0.1, seed=0)
    subsets = inductive_test_subsets(ind, events.src, events.dst)
    masked = np.asarray(ind.info["masked_nodes"])
    old = np.flatnonzero((events.t > ind.info["test_time"]) & ~np.isin(events.src, masked)
                         & ~np.isin(events.dst, masked))
    if "tgn" in rows:
        from tgn_baseline import TGNSettings, tgn_rows

        device = "cuda" if args.accelerator in ("gpu", "cuda") else "cpu"
        t0 = time.perf_counter()
        settings = TGNSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.tgn_lr)
        tgn = tgn_rows(events, trans, ind, subsets, old, settings, device)
        for name, row in tgn.items():
            row["settings"] = vars(settings)
            row["wall_seconds_both"] = time.perf_counter() - t0
            result["rows"][name] = row
            print(name, json.dumps({k: v for k, v in row.items() if k.startswith("test")}), flush=True)
        save()
    if "edgebank" in rows:
        all_dst = np.unique(events.dst)
        result["rows"]["edgebank_trans"] = edgebank_rows(events, trans, all_dst,
                                                         {"test": trans.test}, seed=1)
        result["rows"]["edgebank_ind"] = edgebank_rows(
            events, ind, all_dst, {"test": ind.test, "test_new_new": subsets["new_new"],
                                   "test_new_old": subsets["new_old"], "test_old": old}, seed=1)
        save()
    with tempfile.TemporaryDirectory() as tmp:
        for position in ("anonymous", "node_id"):
            if (position == "anonymous" and "caw" not in rows) or (position == "node_id" and "node_id" not in rows):
                continue
            for inductive in [s == "ind" for s in ("trans", "ind") if s in args.settings.split(",")]:
                name = f"{'caw' if position == 'anonymous' else 'node_id'}_{'ind' if inductive else 'trans'}"
                result["rows"][name] = train_row(args, position, inductive, Path(tmp))
                print(name, json.dumps({k: v for k, v in result["rows"][name].items() if k.startswith("test")}),
                      flush=True)
                save()
    save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
