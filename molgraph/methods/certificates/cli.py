"""``molgraph certify``: robustness certificates of a smoothed node classifier, per node and collective.

    molgraph train --method smoothed_gcn -d cora_ml -o run
    molgraph certify --model run -o certs            # n = 10,000 noisy copies, alpha = 0.01
    molgraph certify --base-grid attr_grid.npy -d cora_ml -o certs   # collective only, given grids

What it does:

1. votes of the smoothed classifier: ``--n0`` noisy copies pick each node's class, ``--n-samples``
   more give a Clopper-Pearson lower bound on its probability at level ``--alpha``;
2. the base certificate per node (sparse smoothing, Bojchevski et al. ICML 2020): a grid over
   (attribute additions, attribute deletions) — and edge deletions when the model was trained
   with edge noise — where the prediction provably stays the same;
3. the collective certificate (Schuchardt et al., ICLR 2021): for each budget of one shared
   perturbation of the whole graph, how many target nodes provably keep their prediction, from
   the LP relaxation solved with HiGHS (certified = targets - floor(optimum)), or ``--mode
   milp``: from the MILP's dual bound under ``--time-limit`` (never from an incumbent).

Writes into the new folder ``-o``: ``base_certificates.npz`` (votes, predictions, bounds, grids),
``curves.csv`` (perturbation type, radius, naive and collective certified ratios, solve time),
``summary.json`` (settings, accuracy, average certifiable perturbations) and
``certified_ratio.png``. The certified ratio counts predictions that provably do not change,
whether or not they are correct (as in both papers); ``summary.json`` gives accuracy besides.

``molgraph predict --model RUN -i nodes.csv -o preds.csv``: the smoothed prediction of the nodes
listed in the ``node_id`` column (rows of the source graph file).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from molgraph.io import error_exit

__all__ = ["add_predict_arguments", "predict_command", "register"]


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("certify", help="robustness certificates of a smoothed node classifier "
                                              "(per node and collective)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", type=Path, help="run folder or model.pt of `molgraph train --method smoothed_gcn`")
    src.add_argument("--base-grid", type=Path,
                     help="certify collectively from a given base grid (.npy bool (N, additions, deletions) or "
                          "(N, edge deletions)) instead of a model")
    p.add_argument("-o", "--output", required=True, type=Path, help="folder to create for the results")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    g = p.add_argument_group("smoothing votes (with --model)")
    g.add_argument("--n-samples", type=int, default=10_000, help="noisy copies for the bound (default 10000)")
    g.add_argument("--n0", type=int, default=1_000, help="noisy copies that pick the class (default 1000)")
    g.add_argument("--alpha", type=float, default=0.01, help="1 - confidence of the bounds (default 0.01)")
    g.add_argument("--multiclass", action="store_true",
                   help="certify top-class lower bound > runner-up upper bound (Bonferroni) instead of > 0.5")
    g.add_argument("--batch", type=int, default=10, help="noisy copies per forward pass (default 10)")
    g.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    g.add_argument("--device", default="cpu", help="torch device (default cpu)")
    g.add_argument("--data-root", type=Path, default=None, help="data root (default: the training run's)")
    c = p.add_argument_group("collective certificate")
    c.add_argument("-d", "--dataset", default=None,
                   help="graph of --base-grid: cora_ml | citeseer (largest connected component)")
    c.add_argument("--layers", type=int, default=None,
                   help="message-passing layers = receptive-field hops (default: the model's; 2 with --base-grid)")
    c.add_argument("--targets", choices=("test", "all"), default="test",
                   help="nodes whose predictions count (default test: the nodes the model did not train or "
                        "validate on; --base-grid: all)")
    c.add_argument("--mode", choices=("lp", "milp", "none"), default="lp",
                   help="lp (default): the LP relaxation, fast and sound; milp: the exact problem's dual bound "
                        "under --time-limit; none: base certificates only")
    c.add_argument("--time-limit", type=float, default=60.0, help="seconds per MILP (default 60)")
    c.add_argument("--max-radius", type=int, default=None,
                   help="largest budget of the curves (default: twice the largest base radius, at least 8)")
    p.set_defaults(func=run)
    return p


def _check(args: argparse.Namespace) -> str | None:
    if args.n_samples < 1 or args.n0 < 1 or args.batch < 1:
        return "--n-samples, --n0 and --batch must be >= 1"
    if not 0.0 < args.alpha < 1.0:
        return f"--alpha must be in (0, 1), got {args.alpha}"
    if args.time_limit <= 0:
        return f"--time-limit must be > 0, got {args.time_limit}"
    if args.layers is not None and args.layers < 1:
        return f"--layers must be >= 1, got {args.layers}"
    if args.max_radius is not None and args.max_radius < 1:
        return f"--max-radius must be >= 1, got {args.max_radius}"
    if args.base_grid is not None and args.dataset is None:
        return "--base-grid needs -d/--dataset: the graph whose nodes the grid rows are"
    if args.output.exists() and not args.overwrite:
        return f"{args.output} exists (use --overwrite to replace it)"
    return None


def run(args: argparse.Namespace) -> int:
    problem = _check(args)
    if problem:
        return error_exit(problem, 2)
    try:
        return _run(args)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        return error_exit(str(exc).strip("'\""))


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _load_predictor(args: argparse.Namespace) -> Any:
    from molgraph.methods.certificates.predict import SmoothedClassifier
    from molgraph.train.checkpoint import load_model_file

    path = args.model / "model.pt" if args.model.is_dir() else args.model
    payload = load_model_file(path)
    if payload["method"] != "smoothed_gcn":
        raise ValueError(f"{path} is a {payload['method']!r} model; certify needs one of `molgraph train --method "
                         f"smoothed_gcn`")
    return SmoothedClassifier.from_section(payload["smoothed_gcn"], payload, root=args.data_root)


def base_from_model(args: argparse.Namespace) -> dict[str, Any]:
    """Votes and per-node certificates of a trained smoothed classifier (``--model``)."""
    from molgraph.methods.certificates.base import clopper_pearson_lower, max_certified_radii, smoothed_certificates

    predictor = _load_predictor(args)
    sm = predictor.smoothing
    attr_noise, edge_noise = sm["p_plus"] > 0 or sm["p_minus"] > 0, sm["p_plus_adj"] > 0 or sm["p_minus_adj"] > 0
    if attr_noise and edge_noise:
        raise ValueError("the model was trained with attribute and edge noise together; joint (4-D) certificates "
                         "are not implemented: train with one kind of noise")
    kind = "attr" if attr_noise else "adj"
    p_plus, p_minus = (sm["p_plus"], sm["p_minus"]) if attr_noise else (sm["p_plus_adj"], sm["p_minus_adj"])
    graph = predictor.graph
    _say(f"{graph}; noise on {'attributes' if attr_noise else 'edges'}: p+ {p_plus}, p- {p_minus}")
    start = time.perf_counter()
    pre_votes = predictor.votes(args.n0, batch=args.batch, seed=args.seed, device=args.device)
    votes = predictor.votes(args.n_samples, batch=args.batch, seed=args.seed + 1, device=args.device)
    vote_seconds = time.perf_counter() - start
    _say(f"votes: {args.n0} + {args.n_samples} noisy copies in {vote_seconds:.1f} s")
    # the grid needs to reach the largest radius any node can get: that of a unanimous vote
    level = args.alpha / predictor.n_classes if args.multiclass else args.alpha
    best = float(clopper_pearson_lower(args.n_samples, args.n_samples, level))
    max_ra, max_rd = max_certified_radii(best, p_plus, p_minus)
    if kind == "adj":
        max_ra = 0
    certs = smoothed_certificates(pre_votes, votes, args.alpha, max(max_ra, 0), max(max_rd, 0), p_plus, p_minus,
                                  multiclass=args.multiclass)
    grid = certs.grid if kind == "attr" else certs.grid[:, 0, :]
    return {"kind": kind, "graph": graph, "grid": grid, "layers": args.layers or predictor.model.n_layers,
            "split": predictor.split, "pre_votes": pre_votes, "votes": votes, "certs": certs,
            "vote_seconds": vote_seconds, "smoothing": sm, "labels": graph.labels}


def base_from_file(args: argparse.Namespace) -> dict[str, Any]:
    """A given base grid (``--base-grid``) on the largest connected component of ``--dataset``."""
    from molgraph.data.node_graph import load_node_graph

    graph = load_node_graph(args.dataset, args.data_root, lcc=True)
    grid = np.load(args.base_grid, allow_pickle=False)
    if grid.dtype != np.bool_ or grid.ndim not in (2, 3) or grid.shape[0] != graph.num_nodes:
        raise ValueError(f"{args.base_grid}: expected a bool grid (N, additions, deletions) or (N, edge deletions) "
                         f"with N = {graph.num_nodes} nodes of {graph.name}, got {grid.dtype} {grid.shape}")
    return {"kind": "attr" if grid.ndim == 3 else "adj", "graph": graph, "grid": grid, "layers": args.layers or 2,
            "split": None, "labels": graph.labels}


def perturbation_types(base: dict[str, Any]) -> list[Any]:
    """The grid's perturbation types with the model's receptive fields (budgets 0; curves set them)."""
    from molgraph.methods.certificates.collective import attribute_perturbation, edge_deletion_perturbation
    from molgraph.methods.certificates.receptive import (
        edge_receptive_fields, node_receptive_fields, undirected_edges,
    )

    adj, layers = base["graph"].adj, base["layers"]
    if base["kind"] == "attr":
        fields = node_receptive_fields(adj, layers)
        return [attribute_perturbation("attr_add", fields, 0), attribute_perturbation("attr_del", fields, 0)]
    edges = undirected_edges(adj)
    return [edge_deletion_perturbation(edge_receptive_fields(adj, layers, edges), edges, 0)]


def sweep_radii(extent: int, max_radius: int | None) -> list[int]:
    """Every radius up to twice the grid's extent (at least 8), then steps of ~25% up to ``max_radius``."""
    dense = max(8, 2 * extent)
    top = max_radius if max_radius is not None else dense
    radii = list(range(0, min(dense, top) + 1))
    r = radii[-1]
    while r < top:
        r = min(top, max(r + 1, int(round(r * 1.25))))
        radii.append(r)
    return radii


def curve_area(radii: list[int], ratios: list[float]) -> tuple[float, float]:
    """Bounds on ``sum_{r >= 1} ratio(r)`` (the average certifiable radius) from a non-increasing
    curve known at ``radii``: equal when every integer radius up to where it reaches 0 was solved.
    Beyond the last radius the lower bound counts nothing and the upper bound is infinite unless
    the curve reached 0."""
    lo = hi = 0.0
    for (r0, c0), (r1, c1) in zip(zip(radii, ratios), zip(radii[1:], ratios[1:])):
        # radii strictly between r0 and r1 lie in [c1, c0]; r1 itself is c1
        lo += (r1 - r0) * c1
        hi += (r1 - r0 - 1) * c0 + c1
    if ratios[-1] > 0:
        hi = float("inf")
    return lo, hi


def _run(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from molgraph.methods.certificates.collective import certified_ratio_curve, naive_certificate

    base = base_from_model(args) if args.model is not None else base_from_file(args)
    graph, grid = base["graph"], base["grid"]
    if args.targets == "test" and base["split"] is not None:
        targets = np.asarray(base["split"]["test"], dtype=np.int64)
    else:
        targets = np.arange(graph.num_nodes, dtype=np.int64)
    types = perturbation_types(base)
    rows: list[tuple[Any, ...]] = []
    summary_types: dict[str, Any] = {}
    for d, t in enumerate(types):
        extent = grid.shape[d + 1] - 1
        radii = sweep_radii(extent, args.max_radius)
        if args.mode == "none":
            budgets = [[r if k == d else 0 for k in range(len(types))] for r in radii]
            n = max(len(targets), 1)
            curve = [(r, naive_certificate(grid, b, targets) / n, float("nan"), 0.0) for r, b in zip(radii, budgets)]
        else:
            curve = [tuple(row) for row in certified_ratio_curve(
                grid, types, radii, targets, mode=args.mode, sweep=d,
                time_limit=args.time_limit if args.mode == "milp" else None)]
        rows += [(t.name, *row) for row in curve]
        naive_lo, naive_hi = curve_area([r for r, *_ in curve], [c[1] for c in curve])
        entry = {"radii": [int(r) for r, *_ in curve], "grid_extent": int(extent),
                 "average_certifiable_naive": naive_lo if naive_lo == naive_hi else [naive_lo, naive_hi]}
        if args.mode != "none":
            lo, hi = curve_area([r for r, *_ in curve], [c[2] for c in curve])
            entry["average_certifiable_collective"] = lo if lo == hi else [lo, hi]
            entry["solve_seconds_total"] = float(sum(c[3] for c in curve))
        summary_types[t.name] = entry
        _say(f"{t.name}: " + ", ".join(f"r={r} {nv:.3f}/{cv:.3f}" for r, nv, cv, _ in curve[:12])
             + (" ..." if len(curve) > 12 else "") + "  (naive/collective certified ratio)")

    labels = base["labels"]
    summary: dict[str, Any] = {
        "source": str(args.model if args.model is not None else args.base_grid),
        "graph": {"name": graph.name, "nodes": graph.num_nodes, "edges": graph.num_edges},
        "targets": args.targets if base["split"] is not None else "all",
        "n_targets": int(len(targets)),
        "receptive_field_hops": int(base["layers"]),
        "mode": args.mode,
        "grid_shape": list(grid.shape),
        "types": summary_types,
        "certified_ratio_means": "share of target predictions that provably do not change (right or wrong)",
    }
    if "certs" in base:
        certs = base["certs"]
        pred = certs.predicted[targets]
        summary.update({
            "n_samples": args.n_samples, "n0": args.n0, "alpha": args.alpha, "multiclass": args.multiclass,
            "seed": args.seed, "smoothing": base["smoothing"], "vote_seconds": base["vote_seconds"],
            "accuracy_smoothed": float((pred == labels[targets]).mean()),
            "abstain_ratio": float(certs.abstain[targets].mean()),
            "certified_and_correct_at_0": float((~certs.abstain[targets] & (pred == labels[targets])).mean()),
        })
    if args.mode == "milp":
        summary["time_limit"] = args.time_limit

    tmp = Path(tempfile.mkdtemp(prefix=f".{args.output.name}.", dir=args.output.parent.resolve()))
    try:
        arrays: dict[str, np.ndarray] = {"grid": grid, "targets": targets, "labels": labels}
        if "certs" in base:
            certs = base["certs"]
            arrays.update(pre_votes=base["pre_votes"], votes=base["votes"], predicted=certs.predicted,
                          p_lower=certs.p_lower, abstain=certs.abstain)
        np.savez_compressed(tmp / "base_certificates.npz", **arrays)
        with open(tmp / "curves.csv", "w", newline="") as fh:
            import csv

            w = csv.writer(fh)
            w.writerow(["type", "radius", "naive_ratio", "collective_ratio", "solve_seconds"])
            w.writerows(rows)
        (tmp / "summary.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
        _plot(tmp / "certified_ratio.png", rows, graph.name, args.mode)
        if args.output.exists():
            shutil.rmtree(args.output)
        tmp.rename(args.output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _say(f"wrote {args.output}/ (base_certificates.npz, curves.csv, summary.json, certified_ratio.png)")
    return 0


def _plot(path: Path, rows: list[tuple[Any, ...]], name: str, mode: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(dict.fromkeys(r[0] for r in rows))
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.4), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        mine = [r for r in rows if r[0] == kind]
        ax.step([r[1] for r in mine], [r[2] for r in mine], where="post", label="naive")
        if mode != "none":
            ax.step([r[1] for r in mine], [r[3] for r in mine], where="post", label=f"collective ({mode})")
        ax.set_xlabel(f"{kind} (global budget)")
        ax.set_ylabel("certified ratio")
        ax.set_ylim(0, 1.02)
        ax.set_title(name)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- molgraph predict ------------------------------------------------------------------------------
def add_predict_arguments(parser: argparse.ArgumentParser | Any) -> None:
    if isinstance(parser, argparse._ArgumentGroup) and not parser.description:
        parser.description = ("input: a CSV with a node_id column (rows of the source graph file); output: node_id, "
                              "class_pred, class_name, vote_share")
    parser.add_argument("--votes", type=int, default=1000, help="noisy copies per prediction (default 1000)")
    parser.add_argument("--vote-seed", type=int, default=0, help="seed of the noise (default 0)")


def predict_command(predictor: Any, args: argparse.Namespace) -> int:
    """The smoothed class of every node listed in ``args.input`` (``node_id`` column); unknown
    ids go to ``<OUT stem>.rejects.csv`` with the reason."""
    import pandas as pd

    from molgraph.io import atomic_output

    frame = pd.read_csv(args.input, dtype=str, keep_default_na=False)
    if "node_id" not in frame.columns:
        return error_exit(f"{args.input}: no node_id column (columns: {list(frame.columns)})", 2)
    position = {int(v): i for i, v in enumerate(predictor.graph.node_ids)}
    nodes, rejects = [], []
    for row, raw in enumerate(frame["node_id"].tolist()):
        text = raw.strip()
        if not text.lstrip("-").isdigit():
            rejects.append((row, raw, "not an integer node id"))
        elif int(text) not in position:
            rejects.append((row, raw, f"not a node of {predictor.graph.name}"
                                      + (" (largest connected component)" if predictor.section["data"]["lcc"] else "")))
        else:
            nodes.append((row, int(text)))
    votes = predictor.votes(args.votes, batch=10, seed=args.vote_seed, device=args.device)
    names = predictor.section.get("class_names") or [str(c) for c in range(predictor.n_classes)]
    with atomic_output(args.output, "w", newline="") as fh:
        out = pd.DataFrame({
            "node_id": [n for _, n in nodes],
            "class_pred": [int(votes[position[n]].argmax()) for _, n in nodes],
            "vote_share": [float(votes[position[n]].max() / args.votes) for _, n in nodes],
        })
        out.insert(2, "class_name", [names[c] for c in out["class_pred"]])
        out.to_csv(fh, index=False)
    if rejects:
        rej = args.output.with_name(args.output.name.split(".")[0] + ".rejects.csv")
        with atomic_output(rej, "w", newline="") as fh:
            pd.DataFrame(rejects, columns=["row", "node_id", "reason"]).to_csv(fh, index=False)
    print(f"predicted {len(nodes)} nodes from {args.votes} noisy copies each"
          + (f"; {len(rejects)} rejected" if rejects else ""), file=sys.stderr)
    return 0
