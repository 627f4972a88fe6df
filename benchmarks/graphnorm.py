"""GraphNorm benchmark (Cai et al., ICML 2021): TU accuracy, convergence by normalization, speed.

Parts (``--parts``):

``accuracy``
    GIN (4 layers, hidden 64, dropout 0.5 on the logits as in the reference code), Adam lr 1e-2
    with linear decay to 0, batch 128, with GraphNorm, under 10-fold stratified cross-validation.
    With ``--reference-settings`` (the default) each dataset gets the settings of the reference's
    scripts (:data:`REFERENCE_SETTINGS`): GIN eps = 1 (its self-loops) for every set, mean pooling
    for IMDB-B/M (sum otherwise), weight decay 0.05 and a learned eps for PROTEINS; each entry
    records its ``settings``. Inside each training fold 10% (stratified) is held out as an inner
    validation set and the model trains on the rest; test and validation accuracy are recorded
    after every epoch. Two numbers come out:

    * *paper protocol*: the per-epoch test accuracy averaged over folds, at its best epoch
      (Xu et al. 2019 and Cai et al. 2021). This picks the epoch on the test folds and is
      optimistic;
    * *honest protocol*: per fold, the epoch with the best inner-validation accuracy (latest on
      ties), its test accuracy, averaged over folds.

    The paper trained on the whole 9 training folds; here both numbers come from the same runs,
    which train on 90% of them, so the two protocols differ only in how the epoch is chosen.
    ``--full-training-folds`` trains on all nine folds as the reference did (paper protocol only,
    no validation set; stored under ``accuracy_full_folds``).

``convergence``
    The paper's main claim: GraphNorm vs BatchNorm vs LayerNorm vs InstanceNorm vs none, same
    GIN (sum pooling and eps 0 on every set: the reference settings of the accuracy part are not
    applied here), several seeds, trained on the training part of fold 0; per-epoch training loss
    and accuracy (training-mode averages over each epoch's batches); epochs until the training
    loss first reaches a fixed threshold (``--loss-threshold``, as a fraction of ln(C), the loss
    of a uniform guess; runs that never reach it count as ``epochs + 1``). GraphNorm and BatchNorm
    are compared by :func:`_compare`: fewer mean epochs to the threshold decides; where the two
    means are equal (in practice: neither reached the threshold on any seed) the lower mean
    training loss over all epochs decides instead, and each entry says which (``decided_by``).
    PNG curves per dataset (mean and min-max band over seeds) go to ``--plots``.

``hiv``
    Molecules: MoleculeNet HIV with the ``ogb_scaffold`` split 0.8/0.1/0.1 (deterministic: the
    largest scaffold sets to train, ties latest first, chiral scaffolds; the rule of ogbg-molhiv's
    split) in every setting, OGB atom/bond features, the trainer's GIN and GCN models (``--hiv-models``)
    with the layer, depth, width and head of the chosen setting below, residual connections in
    every layer as in the reference's molecule models, mean pooling, and the norms of
    ``--hiv-norms`` (default GraphNorm and BatchNorm); the epoch with the best validation ROC-AUC,
    its test ROC-AUC. Settings (``--hiv-setting``):

    - ``full`` (the recipe ``models/gcn_graphnorm_hiv.toml``, 3 seeds): the reference's molhiv
      model and protocol (lsj2408/GraphNorm, ``ogbg_ws``): its
      "GCN" layer (``gcn_propagation="mean"``, :class:`molgraph.nn.MeanBondConv`), 4 message-passing
      layers (its ``n_layers=5`` counts the input embedding), hidden 300, mean pooling into a single
      linear head, no dropout inside the model but dropout 0.5 on the output logit while training
      (``output_dropout``), batch 64, 50 epochs, Adam lr 1e-4 decayed linearly to 0, 3 seeds;
      about 35 min per run on one CPU core, minutes on a GPU. The 0.77 target applies here, to
      the mean over its seeds. ``--hiv-output-dropout 0`` gives the setting without the logit
      dropout (stored as ``hiv_full_output_dropout=0.0``).
    - ``full_leaderboard``: the reference's leaderboard configuration (its README, behind the
      0.7883 it reports): the same layer, 5 of them, dropout 0.1 after each layer and on the logit,
      batch 128, otherwise as ``full``.
    - ``full_gin`` (the recipe ``models/gin_graphnorm_hiv.toml``, 3 seeds): the reference's
      molecule GIN in its paper-table protocol (its GIN scripts run
      ``train_dgl_ogb.py``'s defaults): 4 layers of messages ``h_u + e_uv`` summed without a ReLU
      (``gin_message_activation=False``), the 2-layer MLP 300 -> 600 -> 300 with the norm inside and
      after it, no ReLU after the last layer (``gin_last_activation=False``), residuals, mean
      pooling, a linear head with logit dropout 0.5, batch 128, 25 epochs, Adam lr 1e-4 decayed
      linearly to 0. The 0.77 target applies here too (the paper's table gives 0.7773 for GIN+GraphNorm,
      a recalled figure, stored as ``paper_recalled``).
    - ``full_symmetric``: the ``full`` protocol (batch 64, 50 epochs, Adam lr 1e-4 decayed linearly)
      on the OGB baseline's GCN layer (Kipf & Welling weights, ``gcn_propagation="symmetric"``),
      5 layers, one hidden head layer, dropout 0.1, norm eps 1e-2, no logit dropout.
    - ``ogb_baseline``: the OGB baselines' protocol on that layer: 5 layers of 300, dropout 0.5,
      batch 32, 100 epochs, constant lr 1e-3.
    - ``reduced``: the ``ogb_baseline`` layout at hidden 64, batch 128, 3 epochs, one seed; runs in
      minutes and checks the pipeline, not the paper's number.

    The authors' ogbg-molhiv figures are stored per model as ``paper`` when read from a cited table
    (with ``paper_source``) and as ``paper_recalled`` when recalled (:data:`HIV_PAPER_FIGURES`).

    ``--hiv-epochs``/``--hiv-hidden``/``--hiv-seeds``/``--hiv-lr``/``--hiv-batch-size``/
    ``--hiv-dropout``/``--hiv-norm-eps``/``--hiv-gcn-propagation``/``--hiv-output-dropout`` override
    a setting; such runs are stored under their own key. ``--hiv-seeds`` is the exception: it picks
    which seeds to run, and with ``--merge`` their runs join the setting's entry (a redone seed is
    replaced), so seeds can be run in separate invocations or on separate machines.

``speed``
    Per-epoch training time of the same GIN with GraphNorm (ours), torch_geometric's GraphNorm
    and BatchNorm, on the same batches, interleaved (median over rounds), as ratios to BatchNorm.

Usage::

    python benchmarks/graphnorm.py                                   # speed, convergence, accuracy (not hiv)
    python benchmarks/graphnorm.py --parts accuracy --datasets mutag ptc_mr --epochs 400
    python benchmarks/graphnorm.py --parts convergence --conv-epochs 100 --seeds 0 1 2 --jobs 2
    python benchmarks/graphnorm.py --parts speed
    python benchmarks/graphnorm.py --parts hiv --hiv-setting reduced --merge

Writes ``benchmarks/results/graphnorm.json`` (``--out``) and prints Markdown tables. Results are
merged by part: ``speed/<dataset>`` (``speed_threads<N>/<dataset>``), ``convergence/<dataset>``,
``accuracy/<dataset>`` (``accuracy_full_folds/<dataset>``) and one ``hiv_<setting>...`` entry per
setting. A run replaces the parts it ran and keeps all others; a replaced accuracy or HIV entry is
kept in ``<part>_previous`` with its record. Each part's record (command, date, machine,
versions and the settings it ran with) is under ``parts`` (``benchmarks/_harness.py``); files
from before per-part records keep their one file-level ``settings`` under ``legacy_run``. Each
part is written as soon as it is measured. The convergence comparison, its summary and the
tables are recomputed from all parts at every write.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
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

DATASETS = ["mutag", "ptc_mr", "proteins", "nci1", "imdb_binary", "imdb_multi"]
NORMS = ["graph", "batch", "layer", "instance", "none"]
# Cai et al. 2021, GIN + GraphNorm, 10-fold test accuracy (paper protocol), percent. Recalled figures: no table
# of the paper was read or cited for them, so the results store them as ``paper_recalled`` (``paper`` stays None).
PAPER_RECALLED = {"mutag": 91.6, "ptc_mr": 64.9, "proteins": 77.4, "nci1": 81.4, "imdb_binary": 76.0}
PAPER_RECALLED_SOURCE = ("Cai et al. 2021 (ICML), GIN + GraphNorm test accuracy; recalled, not read from a cited "
                         "table of the paper")
TARGETS = {"mutag": 89.0, "proteins": 75.0, "nci1": 80.0}  # accuracy goals (docs/graphnorm.md), paper protocol
# per-dataset settings of the reference's test scripts (lsj2408/GraphNorm; defaults otherwise), used
# by the accuracy part unless --no-reference-settings
# (the social sets pool with the mean: `--graph_pooling_type mean` in its IMDB scripts).
_SELF_LOOPS = {"eps": 1.0}  # every reference script passes --self_loop: GIN with eps = 1 (tested equal)
REFERENCE_SETTINGS: dict[str, dict[str, Any]] = {
    "mutag": dict(_SELF_LOOPS), "ptc_mr": dict(_SELF_LOOPS), "nci1": dict(_SELF_LOOPS),
    "proteins": {**_SELF_LOOPS, "weight_decay": 0.05, "train_eps": True},
    "imdb_binary": {**_SELF_LOOPS, "readout": "mean"}, "imdb_multi": {**_SELF_LOOPS, "readout": "mean"},
}


# The TU graph-classification GIN and its optimizer (Cai et al.'s TU protocol). They stay here, not in
# a models/*.toml recipe: recipes are `molgraph train` settings, and `molgraph train` trains molecule
# property models, not this classifier (molgraph.methods.graph_classification).
TU_MODEL = {"hidden_dim": 64, "num_layers": 4, "dropout": 0.5, "dropout_on": "logits"}
TU_OPTIM = {"batch_size": 128, "lr": 1e-2, "schedule": "linear", "final_lr": 0.0}
TU_MODEL_TEXT = ("GIN, 4 layers, hidden 64, dropout 0.5 on the logits, residual; convergence and speed: sum pooling, "
                 "eps fixed at 0; accuracy: each entry's settings (the reference's per dataset)")
TU_OPTIM_TEXT = "Adam lr 1e-2, linear decay to 0, batch 128"
SPEED_LR = 1e-3  # the speed part times epochs; its learning rate does not matter, only that all norms share it


def _model_kwargs(ds: Any, norm: str, train_eps: bool = False, readout: str = "sum", eps: float = 0.0) -> dict[str, Any]:
    return dict(in_dim=ds.num_features, num_classes=ds.num_classes, norm=norm, readout=readout, train_eps=train_eps,
                eps=eps, **TU_MODEL)


def _tu_paper_fields(name: str) -> dict[str, Any]:
    """The paper's figure for a TU set, labelled: ``paper`` is None (none was read from a cited table)."""
    if name not in PAPER_RECALLED:
        return {"paper": None}
    return {"paper": None, "paper_recalled": PAPER_RECALLED[name], "paper_source": PAPER_RECALLED_SOURCE}


def _hiv_paper_fields(model: str, norm: str) -> dict[str, Any]:
    """The authors' ogbg-molhiv figure for a (model, norm), under ``paper`` or ``paper_recalled``, with its source."""
    if (model, norm) not in HIV_PAPER_FIGURES:
        return {"paper": None}
    key, value, source = HIV_PAPER_FIGURES[(model, norm)]
    return {"paper": None, key: value, "paper_source": source}  # key "paper" replaces the None


def _paper_cell(e: dict[str, Any]) -> str:
    """A results-table cell for the paper figure of an entry: the figure, marked when recalled."""
    if e.get("paper") is not None:
        return str(e["paper"])
    if e.get("paper_recalled") is not None:
        return f"{e['paper_recalled']} (recalled)"
    return "-"


def _fold_job(args: tuple) -> dict[str, Any]:
    """One training run (a process of its own: one torch thread each)."""
    name, norm, train_idx, eval_idx, epochs, seed, data_seed, root, *extra = args
    opts = dict(extra[0]) if extra else {}
    import torch

    torch.set_num_threads(1)
    from molgraph.data.tu import load_tu
    from molgraph.methods.graph_classification.model import GraphClassifier
    from molgraph.methods.graph_classification.task import fit_graph_classifier

    ds = load_tu(name, root=root)
    model = GraphClassifier(**_model_kwargs(ds, norm, bool(opts.get("train_eps", False)),
                                            str(opts.get("readout", "sum")), float(opts.get("eps", 0.0))))
    curves = fit_graph_classifier(model, ds.to_collated(), ds.y, train_idx, eval_idx, epochs=epochs, **TU_OPTIM,
                                  seed=seed, data_seed=data_seed, weight_decay=float(opts.get("weight_decay", 0.0)))
    return curves.to_dict()


def _inner_split(y: np.ndarray, train: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    tr, va = train_test_split(train, test_size=0.1, stratify=y[train], random_state=seed)
    return np.sort(tr), np.sort(va)


def run_accuracy(names: list[str], args: argparse.Namespace, pool: ProcessPoolExecutor) -> dict[str, Any]:
    from molgraph.data.splits import stratified_kfold
    from molgraph.data.tu import load_tu

    out: dict[str, Any] = {}
    for name in names:
        y = load_tu(name, root=args.data_root).y
        folds = stratified_kfold(y, k=args.folds, seed=args.cv_seed)
        opts = REFERENCE_SETTINGS.get(name, {}) if args.reference_settings else {}
        jobs = []
        for k, (train, test) in enumerate(folds):
            if args.full_training_folds:  # the reference's runs: all nine folds train, no validation set
                tr, evals = train, {"test": test.tolist()}
            else:
                tr, va = _inner_split(y, train, args.cv_seed + k)
                evals = {"val": va.tolist(), "test": test.tolist()}
            jobs.append((name, "graph", tr.tolist(), evals, args.epochs, k, k, args.data_root, opts))
        t0 = time.perf_counter()
        runs = list(pool.map(_fold_job, jobs))
        test = np.array([r["eval"]["test"]["acc"] for r in runs])  # (folds, epochs)
        mean_curve = test.mean(0)
        best_epoch = int(mean_curve.argmax())
        if args.full_training_folds:
            honest_entry = None  # no validation set to choose an epoch on
        else:
            val = np.array([r["eval"]["val"]["acc"] for r in runs])
            # latest epoch among the best validation accuracies: with few validation graphs many tie
            chosen = [int(len(v) - 1 - np.argmax(v[::-1])) for v in val]
            honest = np.array([test[k, e] for k, e in enumerate(chosen)])
            honest_entry = {"accuracy": 100 * float(honest.mean()), "std_over_folds": 100 * float(honest.std()),
                            "chosen_epochs": [e + 1 for e in chosen]}
        entry = {
            "paper_protocol": {"accuracy": 100 * float(mean_curve[best_epoch]),
                               "std_over_folds": 100 * float(test[:, best_epoch].std()), "best_epoch": best_epoch + 1},
            "honest_protocol": honest_entry,
            "trained_on": "all training folds" if args.full_training_folds else "90% of the training folds",
            "last_epoch_accuracy": 100 * float(test[:, -1].mean()),
            **_tu_paper_fields(name), "target": TARGETS.get(name),
            "folds": args.folds, "epochs": args.epochs, "wall_seconds": time.perf_counter() - t0,
            "settings": {"weight_decay": 0.0, "train_eps": False, "readout": "sum", "eps": 0.0, **opts},
            "test_acc_curve_mean": [float(v) for v in mean_curve],
        }
        if name in TARGETS:
            entry["meets_target"] = bool(entry["paper_protocol"]["accuracy"] >= TARGETS[name])
        out[name] = entry
        honest_text = "-" if honest_entry is None else f"{honest_entry['accuracy']:.1f}"
        print(f"accuracy {name}: paper protocol {entry['paper_protocol']['accuracy']:.1f} "
              f"(epoch {best_epoch + 1}), honest {honest_text}", file=sys.stderr, flush=True)
    return out


def _epochs_to(losses: list[float], threshold: float) -> int:
    for e, v in enumerate(losses):
        if v <= threshold:
            return e + 1
    return len(losses) + 1


def run_convergence(names: list[str], args: argparse.Namespace, pool: ProcessPoolExecutor) -> dict[str, Any]:
    from molgraph.data.splits import stratified_kfold
    from molgraph.data.tu import load_tu

    out: dict[str, Any] = {}
    for name in names:
        ds = load_tu(name, root=args.data_root)
        train, test = stratified_kfold(ds.y, k=args.folds, seed=args.cv_seed)[0]
        epochs = args.conv_epochs_for.get(name, args.conv_epochs)
        jobs = [(name, norm, train.tolist(), {}, epochs, seed, seed, args.data_root)
                for norm in args.norms for seed in args.seeds]
        t0 = time.perf_counter()
        runs = list(pool.map(_fold_job, jobs))
        threshold = args.loss_threshold * math.log(ds.num_classes)
        per_norm: dict[str, Any] = {}
        for norm in args.norms:
            rs = [r for (j, r) in zip(jobs, runs) if j[1] == norm]
            losses = np.array([r["train_loss"] for r in rs])
            accs = np.array([r["train_acc"] for r in rs])
            to_thr = [_epochs_to(list(l), threshold) for l in losses]
            per_norm[norm] = {
                "epochs_to_threshold": to_thr, "epochs_to_threshold_mean": float(np.mean(to_thr)),
                "train_loss_mean": losses.mean(0).tolist(), "train_loss_min": losses.min(0).tolist(),
                "train_loss_max": losses.max(0).tolist(), "train_acc_mean": accs.mean(0).tolist(),
                "train_acc_min": accs.min(0).tolist(), "train_acc_max": accs.max(0).tolist(),
                "final_train_loss_mean": float(losses[:, -1].mean()),
                "seconds_per_epoch_median": float(np.median([np.median(r["seconds_per_epoch"]) for r in rs])),
            }
        out[name] = _compare({"epochs": epochs, "seeds": args.seeds, "loss_threshold": threshold,
                              "threshold_rule": f"{args.loss_threshold} x ln(num_classes)", "norms": per_norm,
                              "wall_seconds": time.perf_counter() - t0})
        print(f"convergence {name}: " + ", ".join(f"{n} {v['epochs_to_threshold_mean']:.1f}" for n, v in per_norm.items()),
              file=sys.stderr, flush=True)
        if args.plots:
            _plot(name, out[name], args.plots)
    return out


DECIDED_BY_EPOCHS = "epochs to threshold"
DECIDED_BY_LOSS = "mean training loss over all epochs"


def _compare(entry: dict[str, Any]) -> dict[str, Any]:
    """GraphNorm vs BatchNorm on one dataset's convergence entry.

    Fewer mean epochs to the loss threshold decides (``decided_by = "epochs to threshold"``). When
    the two means are equal, which in practice means neither norm reached the threshold on any
    seed within the epochs run, the lower mean training loss over all epochs (the area under the
    mean loss curve, which the first epochs dominate) decides instead, and ``decided_by`` says so
    and why. ``graph_ahead_of_batch`` is the outcome. Also recorded: how many seeds of each norm
    reached the threshold, whether any norm did, and whether GraphNorm's final training loss was
    below BatchNorm's.
    """
    entry.pop("graph_faster_than_batch", None)  # the key of entries written before decided_by was spelled out
    for v in entry["norms"].values():
        v["mean_train_loss_over_epochs"] = float(np.mean(v["train_loss_mean"]))
        v["seeds_reaching_threshold"] = int(sum(e <= entry["epochs"] for e in v["epochs_to_threshold"]))
    entry["no_norm_reached_threshold"] = all(v["seeds_reaching_threshold"] == 0 for v in entry["norms"].values())
    g, b = entry["norms"].get("graph"), entry["norms"].get("batch")
    if g is None or b is None:
        entry["graph_ahead_of_batch"], entry["decided_by"] = None, None
        entry["graph_lower_final_train_loss_than_batch"] = None
        return entry
    if g["epochs_to_threshold_mean"] != b["epochs_to_threshold_mean"]:
        entry["graph_ahead_of_batch"] = g["epochs_to_threshold_mean"] < b["epochs_to_threshold_mean"]
        entry["decided_by"] = DECIDED_BY_EPOCHS
    else:
        entry["graph_ahead_of_batch"] = g["mean_train_loss_over_epochs"] < b["mean_train_loss_over_epochs"]
        why = ("neither GraphNorm nor BatchNorm reached the threshold" if g["seeds_reaching_threshold"] == 0
               and b["seeds_reaching_threshold"] == 0 else "equal mean epochs to threshold")
        entry["decided_by"] = f"{DECIDED_BY_LOSS} ({why})"
    entry["graph_lower_final_train_loss_than_batch"] = bool(g["final_train_loss_mean"] < b["final_train_loss_mean"])
    return entry


def _convergence_summary(conv: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What the convergence entries show, counted by what decided each dataset (see :func:`_compare`)."""
    by_epochs = [n for n, e in conv.items() if e.get("decided_by") == DECIDED_BY_EPOCHS]
    by_loss = [n for n, e in conv.items() if str(e.get("decided_by")).startswith(DECIDED_BY_LOSS)]
    fewer = [n for n in by_epochs if conv[n]["graph_ahead_of_batch"]]
    return {
        "datasets": len(conv),
        "graph_fewer_epochs_to_threshold": fewer,
        "batch_fewer_epochs_to_threshold": [n for n in by_epochs if not conv[n]["graph_ahead_of_batch"]],
        "decided_by_mean_train_loss": by_loss,
        "graph_lower_mean_train_loss_where_so_decided": [n for n in by_loss if conv[n]["graph_ahead_of_batch"]],
        "no_norm_reached_threshold": [n for n, e in conv.items() if e.get("no_norm_reached_threshold")],
        "graph_lower_final_train_loss": [n for n, e in conv.items() if e.get("graph_lower_final_train_loss_than_batch")],
        "goal": "GraphNorm needs fewer epochs than BatchNorm on at least 4 of the 6 TU datasets",
        # judged by the goal's own measure; datasets where no norm reached the threshold do not count either way
        "goal_met": len(fewer) >= 4,
    }


def _plot(name: str, entry: dict[str, Any], folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for norm, v in entry["norms"].items():
        x = np.arange(1, len(v["train_loss_mean"]) + 1)
        for ax, key in zip(axes, ("train_loss", "train_acc")):
            line, = ax.plot(x, v[f"{key}_mean"], label=norm)
            ax.fill_between(x, v[f"{key}_min"], v[f"{key}_max"], color=line.get_color(), alpha=0.15)
    axes[0].axhline(entry["loss_threshold"], color="grey", ls=":", lw=1)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("training loss")
    axes[1].set_ylabel("training accuracy")
    for ax in axes:
        ax.set_xlabel("epoch")
    axes[1].legend()
    fig.suptitle(f"{name}: GIN, mean and min-max over seeds {entry['seeds']}")
    fig.tight_layout()
    fig.savefig(folder / f"graphnorm_convergence_{name}.png", dpi=110)
    plt.close(fig)


def run_speed(args: argparse.Namespace) -> dict[str, Any]:
    """Per-epoch training time, GraphNorm (ours / PyG) vs BatchNorm, interleaved rounds."""
    import torch
    from torch_geometric.nn import GraphNorm as PyGGraphNorm

    torch.set_num_threads(args.speed_threads)
    from molgraph.data.loader import GraphBatcher, graph_loader
    from molgraph.data.tu import load_tu
    from molgraph.methods.graph_classification.model import GraphClassifier
    from molgraph.nn.norm import GraphNorm, NodeNorm

    out: dict[str, Any] = {}
    for name in args.speed_datasets:
        ds = load_tu(name, root=args.data_root)
        batcher = GraphBatcher(ds.to_collated(), torch.as_tensor(ds.y, dtype=torch.float32).view(-1, 1))
        batches = list(graph_loader(batcher, np.arange(len(ds)), batch_size=TU_OPTIM["batch_size"], shuffle=True,
                                    generator=torch.Generator().manual_seed(0)))
        models = {}
        for kind in ("batch", "graph", "graph_scatter", "pyg_graph"):
            torch.manual_seed(0)
            m = GraphClassifier(**_model_kwargs(ds, "batch" if kind == "batch" else "graph"))
            for mod in m.modules():
                if isinstance(mod, NodeNorm) and isinstance(mod.inner, GraphNorm):
                    if kind == "pyg_graph":  # the same network with torch_geometric's layer in every norm slot
                        mod.inner = PyGGraphNorm(mod.inner.in_channels)
                    elif kind == "graph_scatter":  # ours without the fused CPU kernels
                        mod.inner.kernel = "torch"
            models[kind] = (m, torch.optim.Adam(m.parameters(), lr=SPEED_LR))

        def epoch(kind: str) -> float:
            m, opt = models[kind]
            t0 = time.perf_counter()
            for batch in batches:
                loss = torch.nn.functional.cross_entropy(m(batch), batch.y.view(-1).long())
                opt.zero_grad()
                loss.backward()
                opt.step()
            return time.perf_counter() - t0

        times: dict[str, list[float]] = {k: [] for k in models}
        for k in models:
            epoch(k)  # warm-up
        for _ in range(args.speed_rounds):
            for k in models:
                times[k].append(epoch(k))
        med = {k: statistics.median(v) for k, v in times.items()}
        out[name] = {"seconds_per_epoch_median": med, "rounds": args.speed_rounds,
                     "graph_over_batch": med["graph"] / med["batch"],
                     "graph_scatter_over_batch": med["graph_scatter"] / med["batch"],
                     "pyg_graph_over_batch": med["pyg_graph"] / med["batch"],
                     "goal_graph_over_batch": 1.3, "meets_goal": bool(med["graph"] / med["batch"] <= 1.3),
                     "kernel": "graph: fused numba CPU kernels (kernel='auto'); graph_scatter: kernel='torch'",
                     "torch_threads": args.speed_threads}
        print(f"speed {name}: ours/BN {out[name]['graph_over_batch']:.2f}, ours without fused kernels/BN "
              f"{out[name]['graph_scatter_over_batch']:.2f}, PyG/BN {out[name]['pyg_graph_over_batch']:.2f}",
              file=sys.stderr, flush=True)
    return out


# The HIV settings. The reference's two paper-table protocols are the recipes models/gcn_graphnorm_hiv.toml
# ("full") and models/gin_graphnorm_hiv.toml ("full_gin"), read from there; the other settings are
# comparisons that no recipe describes, written below as their differences from the GCN recipe. Why each
# value was chosen, and what the probes measured: docs/experiments/graphnorm.md.
HIV_RECIPES = {"full": "gcn_graphnorm_hiv", "full_gin": "gin_graphnorm_hiv"}
HIV_SEEDS = [0, 1, 2]  # a recipe trains one seed; the benchmark reports a mean over three
# trainer settings of every HIV run, taken from the GCN recipe (the GIN recipe has the same ones)
HIV_TRAINER_KEYS = ("featurizer", "split_sizes", "residual", "readout", "warmup_epochs", "final_lr", "monitor",
                    "metrics")
HIV_TRAINER = {k: v for k, v in harness.load_recipe(HIV_RECIPES["full"], required=HIV_TRAINER_KEYS).items()
               if k in HIV_TRAINER_KEYS}


def _hiv_setting_from_recipe(name: str) -> dict[str, Any]:
    """A recipe as an HIV setting (the keys every HIV setting has, see ``_HIV_PROTOCOL``)."""
    r = harness.load_recipe(name, required=("hidden_dim", "dropout", "batch_size", "epochs", "max_lr", "schedule",
                                            "depth", "ffn_layers", "split", "output_dropout"))
    setting = {"hidden_dim": r["hidden_dim"], "dropout": r["dropout"], "batch_size": r["batch_size"],
               "epochs": r["epochs"], "lr": r["max_lr"], "schedule": r["schedule"], "seeds": list(HIV_SEEDS),
               "norm_eps": r.get("norm_eps"), "depth": r["depth"], "ffn_layers": r["ffn_layers"],
               # a GIN recipe has no GCN layer; "mean" is the layer a gcn run in its setting uses
               "gcn_propagation": r.get("gcn_propagation", "mean"), "split": r["split"],
               "output_dropout": r["output_dropout"]}
    for key in ("gin_message_activation", "gin_last_activation"):
        if key in r:
            setting[key] = r[key]
    return setting


_FULL = _hiv_setting_from_recipe(HIV_RECIPES["full"])
HIV_SETTINGS: dict[str, dict[str, Any]] = {
    "full": _FULL,
    "full_gin": _hiv_setting_from_recipe(HIV_RECIPES["full_gin"]),
    # the full protocol on the OGB baseline's GCN layer (symmetric weights), 5 layers and one hidden head layer,
    # dropout 0.1 inside the network, norm eps 1e-2 (the layer's ReLU before the norm leaves sparse features)
    "full_symmetric": {**_FULL, "dropout": 0.1, "norm_eps": 1e-2, "depth": 5, "ffn_layers": 1,
                       "gcn_propagation": "symmetric", "output_dropout": 0.0},
    # the reference's leaderboard configuration (its README; GCN_dp in gcn_all.py): 5 layers (its n_layers=6),
    # dropout 0.1 after each layer and on the logit, batch 128 (the reference skips the dropout after its last
    # layer, which has no ReLU; ours drops out after every layer)
    "full_leaderboard": {**_FULL, "dropout": 0.1, "batch_size": 128, "depth": 5, "output_dropout": 0.1},
    # the OGB baselines' protocol (Hu et al. 2020): OGB GCN layer, 5 x 300, dropout 0.5, batch 32, 100 epochs,
    # constant lr 1e-3
    "ogb_baseline": {**_FULL, "dropout": 0.5, "batch_size": 32, "epochs": 100, "lr": 1e-3, "schedule": "constant",
                     "depth": 5, "ffn_layers": 1, "gcn_propagation": "symmetric", "output_dropout": 0.0},
}
# a pipeline check in minutes, not a measurement: the ogb_baseline layout, small and short
HIV_SETTINGS["reduced"] = {**HIV_SETTINGS["ogb_baseline"], "hidden_dim": 64, "batch_size": 128, "epochs": 3,
                           "seeds": [0]}
HIV_OVERRIDES = ("epochs", "hidden_dim", "seeds", "lr", "batch_size", "dropout", "norm_eps", "gcn_propagation",
                 "output_dropout")
# the settings the 0.77 target is judged in: the reference's paper-table protocols, GCN and GIN
HIV_TARGET_SETTINGS = ("full", "full_gin")
# The authors' ogbg-molhiv test ROC-AUC per (model, norm): (results key, figure, source). "paper" only for a figure
# read from a cited table; a recalled one is stored as "paper_recalled".
HIV_PAPER_FIGURES: dict[tuple[str, str], tuple[str, float, str]] = {
    ("gcn", "graph"): ("paper", 0.7883, "lsj2408/GraphNorm README.md, 'Test Performance' table: GCN+GraphNorm "
                                        "0.7883 ± 0.0100 (10 seeds; its OGB leaderboard entry)"),
    ("gin", "graph"): ("paper_recalled", 0.7773, "Cai et al. 2021, GIN + GraphNorm on ogbg-molhiv; recalled, not "
                                                 "read from a cited table of the paper"),
}


def _epoch_curves(run_dir: Path) -> dict[str, list[float]]:
    """Per-epoch validation ROC-AUC and training loss from the run's CSV log (member 0)."""
    import csv

    logs = sorted((run_dir / "logs" / "member_0").glob("version_*/metrics.csv"))
    if not logs:
        return {}
    val: dict[int, float] = {}
    loss: dict[int, float] = {}
    with open(logs[-1], newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            epoch = int(row["epoch"])
            if row.get("val_roc_auc"):
                val[epoch] = float(row["val_roc_auc"])
            if row.get("train_loss"):
                loss[epoch] = float(row["train_loss"])
    return {"val_roc_auc_curve": [val[e] for e in sorted(val)], "train_loss_curve": [loss[e] for e in sorted(loss)]}


def _hiv_job(job: tuple) -> dict[str, Any]:
    """One trainer run on HIV (a process of its own, one torch thread)."""
    model, norm, seed, setting, data_root, workdir, accelerator = job
    import torch

    torch.set_num_threads(1)
    from molgraph.train import TrainConfig, run_training

    run_dir = Path(workdir) / f"{model}_{norm}_seed{seed}"
    trainer = HIV_TRAINER
    config = TrainConfig(
        dataset="hiv", data_root=data_root, featurizer=trainer["featurizer"], split=setting["split"],
        split_sizes=list(trainer["split_sizes"]), model=model, norm=norm, norm_eps=setting["norm_eps"],
        residual=trainer["residual"], readout=trainer["readout"], depth=setting["depth"],
        hidden_dim=setting["hidden_dim"], dropout=setting["dropout"], ffn_layers=setting["ffn_layers"],
        output_dropout=setting["output_dropout"],
        gcn_propagation=setting["gcn_propagation"] if model == "gcn" else None,
        gin_message_activation=setting.get("gin_message_activation") if model == "gin" else None,
        gin_last_activation=setting.get("gin_last_activation") if model == "gin" else None,
        batch_size=setting["batch_size"], epochs=setting["epochs"], schedule=setting["schedule"],
        max_lr=setting["lr"], warmup_epochs=trainer["warmup_epochs"],
        final_lr=trainer["final_lr"] if setting["schedule"] == "linear" else setting["lr"],
        monitor=trainer["monitor"], metrics=list(trainer["metrics"]), seed=seed, data_seed=seed, accelerator=accelerator,
        progress=False, output_dir=str(run_dir),
    )
    t0 = time.perf_counter()
    res = run_training(config)
    return {"model": model, "norm": norm, "seed": seed, "accelerator": accelerator,
            "test_roc_auc": res.metrics["test"]["roc_auc"],
            "val_roc_auc": res.metrics["val"]["roc_auc"], "wall_seconds": round(time.perf_counter() - t0, 1),
            "seconds_per_epoch": res.metrics.get("timing", {}).get("train_epoch_seconds_median"),
            "run_dir": str(run_dir), **_epoch_curves(run_dir)}


def run_hiv(args: argparse.Namespace, pool: ProcessPoolExecutor) -> dict[str, Any]:
    import tempfile

    setting = dict(HIV_SETTINGS[args.hiv_setting])
    overrides = {}
    for key in HIV_OVERRIDES:
        value = getattr(args, f"hiv_{key}")
        if value is not None and value != setting[key]:
            setting[key] = overrides[key] = value
    workdir = Path(args.hiv_workdir or tempfile.mkdtemp(prefix="graphnorm_hiv_"))
    jobs = [(m, n, s, setting, args.data_root, str(workdir), args.hiv_accelerator) for m in args.hiv_models
            for n in args.hiv_norms
            for s in setting["seeds"]]
    runs = list(pool.map(_hiv_job, jobs))
    schedule = "decayed linearly to 0" if setting["schedule"] == "linear" else setting["schedule"]
    out: dict[str, Any] = {"setting": args.hiv_setting, "overrides": overrides, **{k: v for k, v in setting.items()},
                           "split": f"{setting['split']} 0.8/0.1/0.1 (deterministic, largest scaffold sets to train; ties "
                                    + ("latest first, chiral scaffolds: OGB's rule)" if setting["split"] == "ogb_scaffold"
                                       else "earliest first)"),
                           "featurizer": HIV_TRAINER["featurizer"], "residual": HIV_TRAINER["residual"],
                           "accelerator": args.hiv_accelerator,
                           "optimizer": f"Adam, lr {setting['lr']:g} {schedule}",
                           "selection": "epoch with the best validation ROC-AUC", "runs": runs}
    out["models"] = _hiv_models(out)
    print(json.dumps(out["models"], indent=1), file=sys.stderr, flush=True)
    return out


def _hiv_key(hiv: dict[str, Any]) -> str:
    """Results key of an HIV entry: its setting and every override but the seeds.

    Seeds choose which runs to do, not how they are done, so runs of other seeds (another invocation,
    another machine) belong to the same entry; ``--merge`` adds them (:func:`_merge_hiv`).
    """
    return f"hiv_{hiv['setting']}" + "".join(f"_{k}={v}" for k, v in sorted(hiv["overrides"].items())
                                              if k != "seeds")


def _hiv_models(hiv: dict[str, Any]) -> dict[str, Any]:
    """Per model/norm summary of an HIV entry's runs: test ROC-AUC mean and (population) sd over seeds."""
    models: dict[str, Any] = {}
    pairs = sorted({(r["model"], r["norm"]) for r in hiv["runs"]}, key=lambda mn: (mn[0], mn[1] != "graph", mn[1]))
    for m, n in pairs:
        runs = [r for r in hiv["runs"] if r["model"] == m and r["norm"] == n]
        vals = [r["test_roc_auc"] for r in runs]
        # the target holds for GraphNorm in the full setting as specified, not a cut-down or altered run
        target = 0.77 if (n == "graph" and hiv["setting"] in HIV_TARGET_SETTINGS
                          and not [k for k in hiv["overrides"] if k != "seeds"]) else None
        e = {"test_roc_auc_mean": float(np.mean(vals)), "test_roc_auc_std": float(np.std(vals)), "n_seeds": len(vals),
             "seeds": sorted(r["seed"] for r in runs),
             "val_roc_auc_mean": float(np.mean([r["val_roc_auc"] for r in runs])),
             **_hiv_paper_fields(m, n), "target": target}
        if target is not None:  # a mean over fewer than 3 seeds decides nothing
            e["target_met"] = bool(e["test_roc_auc_mean"] >= target and len(vals) >= 3)
        models[f"{m}/{n}"] = e
    return models


# what must agree for runs to share an entry: every setting key but the seeds, and how the data and model were built
_HIV_PROTOCOL = tuple(k for k in HIV_SETTINGS["full"] if k != "seeds") + (
    "featurizer", "residual", "selection", "gin_message_activation", "gin_last_activation")


def _merge_hiv(old: dict[str, Any] | None, new: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Fold an earlier entry's runs into a new one of the same key.

    Returns ``(entry, displaced)``. Runs the new entry redid (same model, norm and seed) are replaced;
    the others are kept and the summary is recomputed over all of them. An old entry from another
    protocol (the setting was changed since) is not mixed in: it comes back as ``displaced``, for the
    caller to keep apart.
    """
    def runs_of(entry: dict[str, Any]) -> list[dict[str, Any]]:  # runs from before runs named their accelerator
        return [dict(r, accelerator=r.get("accelerator", entry.get("accelerator"))) for r in entry["runs"]]

    displaced = None
    runs = runs_of(new)
    if old is not None and "runs" in old and all(old.get(k) == new.get(k) for k in _HIV_PROTOCOL):
        redone = {(r["model"], r["norm"], r["seed"]) for r in runs}
        runs += [r for r in runs_of(old) if (r["model"], r["norm"], r["seed"]) not in redone]
    elif old is not None:
        displaced = old
    merged = dict(new)
    merged["overrides"] = {k: v for k, v in new["overrides"].items() if k != "seeds"}  # the runs name their seeds
    merged["runs"] = sorted(runs, key=lambda r: (r["model"], r["norm"] != "graph", r["norm"], r["seed"]))
    merged["seeds"] = sorted({r["seed"] for r in merged["runs"]})
    merged["accelerator"] = ", ".join(sorted({r["accelerator"] for r in merged["runs"]}))
    merged["models"] = _hiv_models(merged)
    return merged, displaced


def _tables(results: dict[str, Any]) -> str:
    lines = []
    acc = [("90% of training folds", n, e) for n, e in results.get("accuracy", {}).items()]
    acc += [("all training folds", n, e) for n, e in results.get("accuracy_full_folds", {}).items()]
    if acc:
        lines += ["| dataset | trained on | folds x epochs | settings | paper protocol | honest protocol | "
                  "paper (GIN+GN) | target |", "|---|---|---|---|---|---|---|---|"]
        for trained_on, n, e in acc:
            honest = e.get("honest_protocol")
            honest_text = "-" if honest is None else f"{honest['accuracy']:.1f} ± {honest['std_over_folds']:.1f}"
            st = e.get("settings", {})
            settings = ", ".join(f"{k} {v}" for k, v in st.items() if v not in (0.0, False, "sum")) or "defaults"
            lines.append(f"| {n} | {trained_on} | {e['folds']} x {e['epochs']} | {settings} | "
                         f"{e['paper_protocol']['accuracy']:.1f} ± {e['paper_protocol']['std_over_folds']:.1f} | "
                         f"{honest_text} | {_paper_cell(e)} | {('>= ' + str(e['target'])) if e['target'] else '-'} |")
    conv = results.get("convergence", {})
    if conv:
        norms = list(next(iter(conv.values()))["norms"])
        lines += ["", "| dataset | epochs | loss threshold | " + " | ".join(f"{n}: epochs to threshold" for n in norms)
                  + " | graph / batch: mean loss over epochs | graph / batch: final loss | decided by "
                  "| GraphNorm ahead of BatchNorm |", "|---|---|---|" + "---|" * (len(norms) + 4)]
        for n, e in conv.items():
            cells = [f"{e['norms'][k]['epochs_to_threshold_mean']:.1f}" if k in e["norms"] else "-" for k in norms]
            g, b = e["norms"].get("graph"), e["norms"].get("batch")
            pair = (lambda key: "-" if g is None or b is None else f"{g[key]:.3f} / {b[key]:.3f}")
            ahead = e.get("graph_ahead_of_batch")
            lines.append(f"| {n} | {e['epochs']} | {e['loss_threshold']:.3f} | " + " | ".join(cells)
                         + f" | {pair('mean_train_loss_over_epochs')} | {pair('final_train_loss_mean')} | "
                         f"{e['decided_by'] or '-'} | {'-' if ahead is None else 'yes' if ahead else 'no'} |")
    for key, hiv in sorted((k, v) for k, v in results.items()
                           if k.startswith("hiv_") and isinstance(v, dict) and "models" in v):
        gin_ref = hiv.get("gin_message_activation") is False  # the reference's GIN layout
        layer = "reference GIN layer" if gin_ref else f"{hiv.get('gcn_propagation', 'symmetric')} GCN layer"
        lines += ["", f"| {key} ({layer}, "
                  f"depth {hiv.get('depth', 5)}, hidden {hiv['hidden_dim']}, {hiv['epochs']} epochs, "
                  f"batch {hiv['batch_size']}, dropout {hiv['dropout']:g}, "
                  + (f"logit dropout {hiv['output_dropout']:g}, " if hiv.get("output_dropout") else "")
                  + f"norm eps {hiv.get('norm_eps') or 1e-5:g}, "
                  f"{hiv.get('optimizer', 'Adam, constant lr 1e-3')}) | test ROC-AUC | "
                  "seeds | paper (ogbg-molhiv) |", "|---|---|---|---|"]
        for name, e in hiv["models"].items():
            lines.append(f"| {name} | {e['test_roc_auc_mean']:.3f} ± {e['test_roc_auc_std']:.3f} | {e['n_seeds']} | "
                         f"{_paper_cell(e)} |")
    speed = results.get("speed", {})
    if speed:
        lines += ["", "| dataset | BatchNorm s/epoch | GraphNorm (ours) | ours, scatter path | PyG GraphNorm | ours / BN "
                  "| scatter path / BN | PyG / BN |", "|---|---|---|---|---|---|---|---|"]
        for n, e in speed.items():
            m = e["seconds_per_epoch_median"]
            scatter = m.get("graph_scatter")  # absent in runs before the fused kernels
            s_time, s_ratio = ("-", "-") if scatter is None else (f"{scatter:.3f}", f"{scatter / m['batch']:.2f}")
            lines.append(f"| {n} | {m['batch']:.3f} | {m['graph']:.3f} | {s_time} | {m['pyg_graph']:.3f} | "
                         f"{e['graph_over_batch']:.2f} | {s_ratio} | {e['pyg_graph_over_batch']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=["speed", "convergence", "accuracy"],
                    choices=("accuracy", "convergence", "speed", "hiv"))
    ap.add_argument("--datasets", nargs="+", default=DATASETS, choices=DATASETS)
    ap.add_argument("--epochs", type=int, default=400, help="accuracy runs (paper: 400)")
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--full-training-folds", action="store_true",
                    help="accuracy: train on all nine training folds as the reference did (paper protocol only, "
                         "no inner validation split; results under accuracy_full_folds)")
    ap.add_argument("--cv-seed", type=int, default=0)
    ap.add_argument("--conv-epochs", type=int, default=100, help="convergence runs")
    ap.add_argument("--conv-epochs-for", nargs="*", default=[], metavar="NAME=E",
                    help="per-dataset convergence epochs, e.g. nci1=30")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="convergence seeds")
    ap.add_argument("--norms", nargs="+", default=NORMS, choices=NORMS)
    ap.add_argument("--loss-threshold", type=float, default=0.5, help="fraction of ln(num_classes)")
    ap.add_argument("--speed-datasets", nargs="+", default=["proteins", "nci1"], choices=DATASETS)
    ap.add_argument("--speed-rounds", type=int, default=5)
    ap.add_argument("--speed-threads", type=int, default=1,
                    help="torch threads for the speed part (results of more than 1 go under speed_threads<N>)")
    ap.add_argument("--reference-settings", action=argparse.BooleanOptionalAction, default=True,
                    help="accuracy: the reference scripts' per-dataset settings (PROTEINS: weight decay 0.05, "
                         "learned eps)")
    ap.add_argument("--hiv-setting", choices=sorted(HIV_SETTINGS), default="reduced")
    ap.add_argument("--hiv-epochs", type=int, default=None)
    ap.add_argument("--hiv-hidden", dest="hiv_hidden_dim", type=int, default=None)
    ap.add_argument("--hiv-seeds", type=int, nargs="+", default=None)
    ap.add_argument("--hiv-lr", type=float, default=None, help="peak learning rate (overrides the setting's)")
    ap.add_argument("--hiv-batch-size", type=int, default=None)
    ap.add_argument("--hiv-dropout", type=float, default=None)
    ap.add_argument("--hiv-norm-eps", type=float, default=None, help="eps of the norms (default 1e-5)")
    ap.add_argument("--hiv-gcn-propagation", choices=("symmetric", "mean"), default=None,
                    help="the GCN's layer (overrides the setting's)")
    ap.add_argument("--hiv-output-dropout", type=float, default=None,
                    help="dropout on the logit while training (the reference's molecule models: 0.5)")
    ap.add_argument("--hiv-models", nargs="+", default=["gin", "gcn"], choices=("gin", "gcn"))
    ap.add_argument("--hiv-norms", nargs="+", default=["graph", "batch"], choices=NORMS)
    ap.add_argument("--hiv-accelerator", default="cpu", help="trainer accelerator for the HIV runs (cpu, gpu, auto)")
    ap.add_argument("--hiv-workdir", default=None, help="where the HIV run folders go (default: a temp folder)")
    ap.add_argument("--jobs", type=int, default=2, help="training processes at once (one torch thread each)")
    ap.add_argument("--data-root", default=None, help="data root for the non-bundled sets (default $MOLGRAPH_DATA)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "graphnorm.json")
    ap.add_argument("--plots", type=Path, default=ROOT / "benchmarks" / "results" / "plots")
    ap.add_argument("--merge", action="store_true",
                    help="hiv: this run's seeds join the setting's entry in --out (without it the entry is replaced "
                         "and the old one kept under <key>_previous); other parts and datasets are always kept")
    args = ap.parse_args(argv)
    args.conv_epochs_for = {k: int(v) for k, v in (item.split("=") for item in args.conv_epochs_for)}
    if args.data_root is None:
        default = ROOT.parent / "shared" / "data"
        args.data_root = os.environ.get("MOLGRAPH_DATA") or (str(default) if default.is_dir() else None)

    run = harness.start_run(argv, script=__file__, output=args.out)
    tu = {"model": TU_MODEL_TEXT, "optimizer": TU_OPTIM_TEXT, "folds": args.folds, "cv_seed": args.cv_seed,
          "jobs": args.jobs}

    def save(parts: Any) -> None:
        harness.update_results(args.out, parts, run, legacy_keys=LEGACY_KEYS, finalize=_finalize)

    # each part is saved as soon as it is measured: a failure in a later part keeps the earlier ones
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        if "speed" in args.parts:
            key = "speed" if args.speed_threads == 1 else f"speed_threads{args.speed_threads}"
            settings = {"rounds": args.speed_rounds, "threads": args.speed_threads, "model": TU_MODEL_TEXT,
                        "optimizer": f"Adam lr {SPEED_LR:g}, batch {TU_OPTIM['batch_size']}"}
            save([harness.Part((key, name), e, settings) for name, e in run_speed(args).items()])
        if "convergence" in args.parts:
            new = run_convergence(args.datasets, args, pool)
            save([harness.Part(("convergence", name), e,
                               {**tu, "epochs": e["epochs"], "seeds": args.seeds, "norms": args.norms,
                                "loss_threshold": f"{args.loss_threshold} x ln(num_classes)"})
                  for name, e in new.items()])
        if "accuracy" in args.parts:
            new = run_accuracy(args.datasets, args, pool)
            key = "accuracy_full_folds" if args.full_training_folds else "accuracy"
            settings = {**tu, "epochs": args.epochs, "reference_settings": args.reference_settings,
                        "full_training_folds": args.full_training_folds}
            save(lambda current: _replacing(current, [harness.Part((key, name), e, settings)
                                                      for name, e in new.items()]))
        if "hiv" in args.parts:
            hiv = run_hiv(args, pool)
            settings = {"setting": args.hiv_setting,
                        "recipe": f"models/{HIV_RECIPES[args.hiv_setting]}.toml" if args.hiv_setting in HIV_RECIPES
                        else None, "overrides": hiv["overrides"], "models": args.hiv_models, "norms": args.hiv_norms,
                        "accelerator": args.hiv_accelerator, "jobs": args.jobs, "trainer": HIV_TRAINER}
            save(lambda current: _hiv_parts(current, hiv, settings, args.merge))
    print(_tables(harness.read_results(args.out)))
    return 0


# file-level keys of graphnorm.json before per-part records: one "settings" that the last run overwrote
LEGACY_KEYS = ("settings", "machine")
ARCHIVE_NOTE = ("entries that later runs replaced, oldest first, each with the record of the run that measured it "
                "(under 'record', when it had one)")


def _archived(current: dict[str, Any], key: Any) -> dict[str, Any] | None:
    """The entry at ``key`` with its run's record folded in, for an archive (None when there is none)."""
    old = harness.get_part(current, key)
    if old is None:
        return None
    record = harness.part_record(current, key)
    return dict(old, record=record) if record is not None and isinstance(old, dict) else old


def _archive_record() -> dict[str, Any]:
    return {"note": ARCHIVE_NOTE, "updated": harness.utc_now()}


def _replacing(current: dict[str, Any], parts: list[harness.Part]) -> list[harness.Part]:
    """``parts``, plus archives that keep the entries they replace (``<part>_previous``, by dataset)."""
    out = list(parts)
    for part in parts:
        section, name = part.key
        old = _archived(current, part.key)
        if old is not None:
            archive = list(harness.get_part(current, (f"{section}_previous", name), []))
            out.append(harness.Part((f"{section}_previous", name), archive + [old], record=_archive_record()))
    return out


def _hiv_parts(current: dict[str, Any], hiv: dict[str, Any], settings: dict[str, Any],
               merge: bool) -> list[harness.Part]:
    """The HIV entry of this run (other seeds joined with ``merge``) and the archive of what it displaces."""
    key = _hiv_key(hiv)
    old = current.get(key)
    entry, displaced = _merge_hiv(old if merge else None, hiv)
    if not merge and old is not None:
        displaced = old
    # the record describes this run; runs of earlier invocations that the entry kept are counted in it
    settings = dict(settings, runs_kept_from_earlier=len(entry["runs"]) - len(hiv["runs"]))
    parts = [harness.Part(key, entry, settings)]
    if displaced is not None:  # an entry from an earlier version of the setting, or replaced: kept, not lost
        displaced = _archived(current, key) if displaced is old else displaced
        archive = list(current.get(f"{key}_previous", []))
        parts.append(harness.Part(f"{key}_previous", archive + [displaced], record=_archive_record()))
    return parts


def _finalize(results: dict[str, Any]) -> None:
    """What derives from all parts: the convergence comparison and summary, the tables."""
    if "convergence" in results:
        conv = {k: _compare(v) for k, v in results["convergence"].items()}
        results["convergence"] = conv
        results["convergence_summary"] = _convergence_summary(conv)
    results["tables"] = _tables(results)


if __name__ == "__main__":
    sys.exit(main())
