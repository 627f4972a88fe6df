"""Graph transformer measurements (issue 28, part 1): Pre-LN vs Post-LN, TUPE vs added positions.

Usage (CPU; the numbers in docs/techniques.md come from these two commands, run in this order;
a run keeps the measurements of the results file it does not redo)::

    OMP_NUM_THREADS=1 python benchmarks/techniques_transformer.py --pe-epochs 12   # (a), (b) with one seed, (c)
    OMP_NUM_THREADS=1 python benchmarks/techniques_transformer.py --only a b      # (a) again, (b) with 3 seeds

Measurements, all on the bundled ``zinc_constrained`` set (12,000 MOSES molecules, constrained
solubility, its fixed 10k/1k/1k ``splits.json``), ``multihot`` atom/bond features, a
:class:`~molgraph.nn.graph_transformer.GraphTransformerEncoder` -> mean readout -> one-hidden-layer
FFN, Adam with a constant learning rate (no warm-up), targets standardized with the training
mean and standard deviation:

* ``grad_norms`` (a): at initialization, the Frobenius norm of the gradient of the MSE loss with
  respect to each block's second FFN weight ``W2`` (the quantity Xiong et al. 2020 plot) and its
  attention output projection, averaged over ``--grad-batches`` training batches and ``--seeds``
  initializations, Pre-LN against Post-LN; plotted per layer.
* ``warmup_free`` (b): Pre-LN and Post-LN trained for ``--ln-epochs`` epochs at lr 1e-3 without
  warm-up, MSE loss, on the first ``--ln-train`` training molecules; the reported training loss
  is recomputed after the last epoch in a full eval pass (not the running batch mean).
* ``tupe_vs_add`` (c): ``pe=tupe`` against ``pe=add`` (both random-walk encodings), L1 loss,
  ``--pe-epochs`` epochs, test MAE at the epoch of best validation MAE, over ``--seeds`` seeds.

Self-checks (the run stops with an error if one fails): the split has 10,000/1,000/1,000
disjoint rows; every loss and gradient is finite; the mean predictor's test MAE is reported as a
floor for "learned something"; the two arms of each comparison differ only in the named option
(their configs are compared key by key).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from molgraph.nn import FFN, Readout  # noqa: E402
from molgraph.nn.graph_transformer import GraphTransformerEncoder  # noqa: E402

DATASET = "zinc_constrained"
BASE_CONFIG: dict[str, Any] = {
    "hidden_dim": 64, "depth": 4, "heads": 4, "dropout": 0.0, "pe": "tupe", "pe_kind": "rw", "pe_dim": 16,
    "norm_first": True, "ffn_hidden_dim": 64, "batch_size": 128,
}


class TransformerRegressor(nn.Module):
    """Graph transformer -> mean readout -> FFN: a batch -> ``(B, 1)`` standardized prediction."""

    def __init__(self, atom_dim: int, bond_dim: int, config: dict[str, Any]):
        super().__init__()
        c = config
        self.encoder = GraphTransformerEncoder(
            atom_dim, bond_dim, c["hidden_dim"], c["depth"], c["dropout"], "relu",
            heads=c["heads"], norm_first=c["norm_first"], pe=c["pe"], pe_kind=c["pe_kind"], pe_dim=c["pe_dim"],
        )
        self.readout = Readout("mean", c["hidden_dim"])
        self.head = FFN(c["hidden_dim"], 1, c["ffn_hidden_dim"], 1, 0.0, "relu")

    def forward(self, batch: Any) -> Tensor:
        h = self.encoder(batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.num_graphs)
        return self.head(self.readout(h, batch.batch, batch.num_graphs))


def load_data() -> dict[str, Any]:
    """The featurized set, its split (checked) and the training target statistics."""
    from molgraph.data.loader import GraphBatcher
    from molgraph.data.registry import dataset_file, load_dataset
    from molgraph.data.splits import load_split_file
    from molgraph.featurizers import MolGraphFeaturizer

    featurizer = MolGraphFeaturizer.multihot()
    ds = load_dataset(DATASET, featurizer=featurizer)
    split = load_split_file(dataset_file(DATASET, "splits.json"), n=len(ds))
    parts = split.parts()
    assert {k: len(v) for k, v in parts.items()} == {"train": 10000, "val": 1000, "test": 1000}, split
    assert not set(parts["train"]) & set(parts["test"]) and not set(parts["val"]) & set(parts["test"])
    assert len(ds.rejects) == 0 and len(ds) == 12000
    y = ds.y.to(torch.float32)
    mean, std = float(y[parts["train"]].mean()), float(y[parts["train"]].std())
    return {
        "batcher": GraphBatcher(ds.graphs, (y - mean) / std), "parts": parts, "mean": mean, "std": std,
        "y": y, "atom_dim": featurizer.atom_dim, "bond_dim": featurizer.bond_dim,
    }


def _loader(data: dict[str, Any], indices: np.ndarray, batch_size: int, shuffle: bool, seed: int):
    from molgraph.data.loader import graph_loader

    g = torch.Generator().manual_seed(seed)
    return graph_loader(data["batcher"], indices, batch_size=batch_size, shuffle=shuffle, generator=g)


def _model(data: dict[str, Any], config: dict[str, Any], seed: int) -> TransformerRegressor:
    torch.manual_seed(seed)
    return TransformerRegressor(data["atom_dim"], data["bond_dim"], config)


def _same_but(a: dict[str, Any], b: dict[str, Any], key: str) -> None:
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    assert diff == [key], f"the compared configs differ in {diff}, expected only {key!r}"


@torch.no_grad()
def evaluate(model: nn.Module, data: dict[str, Any], indices: np.ndarray) -> dict[str, float]:
    """MAE in target units and MSE in standardized units over ``indices``."""
    model.eval()
    abs_err, sq_err, n = 0.0, 0.0, 0
    for batch in _loader(data, indices, 256, False, 0):
        pred = model(batch)
        err = pred - batch.y
        sq_err += float((err ** 2).sum())
        abs_err += float(err.abs().sum()) * data["std"]
        n += batch.num_graphs
    return {"mae": abs_err / n, "mse_std": sq_err / n}


# --------------------------------------------------------------------------------------------
# (a) gradient norms at initialization


def grad_norms_at_init(data: dict[str, Any], norm_first: bool, depth: int, seeds: list[int], n_batches: int) -> dict[str, Any]:
    """Per-layer gradient norms of ``W2`` (FFN) and the attention output projection at init.

    Returns ``{"ffn_w2": [depth floats], "attn_out": [...], "per_seed_ffn_w2": [[...], ...]}``:
    norms averaged over ``n_batches`` batches of the training part (no parameter update) and
    over the seeds.
    """
    config = {**BASE_CONFIG, "depth": depth, "norm_first": norm_first}
    per_seed_ffn, per_seed_attn = [], []
    for seed in seeds:
        model = _model(data, config, seed).train()
        ffn = np.zeros(depth)
        attn = np.zeros(depth)
        loader = _loader(data, data["parts"]["train"], config["batch_size"], True, seed)
        for i, batch in enumerate(loader):
            if i == n_batches:
                break
            model.zero_grad()
            loss = ((model(batch) - batch.y) ** 2).mean()
            loss.backward()
            for layer, block in enumerate(model.encoder.blocks):
                g2, go = block.ffn[3].weight.grad, block.out.weight.grad
                assert torch.isfinite(g2).all() and torch.isfinite(go).all()
                ffn[layer] += float(g2.norm()) / n_batches
                attn[layer] += float(go.norm()) / n_batches
        per_seed_ffn.append(ffn.tolist())
        per_seed_attn.append(attn.tolist())
    return {
        "ffn_w2": np.mean(per_seed_ffn, 0).tolist(), "attn_out": np.mean(per_seed_attn, 0).tolist(),
        "per_seed_ffn_w2": per_seed_ffn, "config": config, "seeds": seeds, "batches": n_batches,
    }


def plot_grad_norms(pre: dict[str, Any], post: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, key, title in ((axes[0], "ffn_w2", "FFN W2"), (axes[1], "attn_out", "attention output")):
        layers = np.arange(1, len(pre[key]) + 1)
        ax.plot(layers, pre[key], "o-", label="Pre-LN")
        ax.plot(layers, post[key], "s-", label="Post-LN")
        ax.set_xlabel("layer")
        ax.set_ylabel("gradient norm at init")
        ax.set_title(title)
        ax.set_xticks(layers)
        ax.legend()
    fig.suptitle(f"zinc_constrained, depth {len(pre['ffn_w2'])}, mean over {len(pre['seeds'])} inits")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# training runs for (b) and (c)


def train_run(
    data: dict[str, Any],
    config: dict[str, Any],
    seed: int,
    epochs: int,
    lr: float,
    loss_name: str,
    train_indices: np.ndarray,
    log: Any = None,
) -> dict[str, Any]:
    """Train with Adam at a constant ``lr`` (no warm-up); evaluate every epoch.

    Returns per-epoch running training loss, validation MAE, the test MAE at the best validation
    epoch, the final full-pass training loss and the mean epoch time (seconds, this machine).
    """
    model = _model(data, config, seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.MSELoss() if loss_name == "mse" else nn.L1Loss()
    history: dict[str, list[float]] = {"train_loss": [], "val_mae": [], "test_mae": [], "epoch_s": []}
    best: tuple[float, int, dict[str, Any]] | None = None
    for epoch in range(epochs):
        model.train()
        start, total, n = time.perf_counter(), 0.0, 0
        for batch in _loader(data, train_indices, config["batch_size"], True, seed * 1000 + epoch):
            loss = loss_fn(model(batch), batch.y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite training loss at epoch {epoch} ({config}, seed {seed})")
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * batch.num_graphs
            n += batch.num_graphs
        history["epoch_s"].append(time.perf_counter() - start)
        history["train_loss"].append(total / n)
        val = evaluate(model, data, data["parts"]["val"])
        test = evaluate(model, data, data["parts"]["test"])
        history["val_mae"].append(val["mae"])
        history["test_mae"].append(test["mae"])
        if best is None or val["mae"] < best[0]:
            best = (val["mae"], epoch, test)
        if log:
            log(f"  epoch {epoch + 1}/{epochs} train {total / n:.4f} val MAE {val['mae']:.4f} "
                f"test MAE {test['mae']:.4f} ({history['epoch_s'][-1]:.0f} s)")
    final_train = evaluate(model, data, train_indices)
    assert best is not None
    return {
        "config": config, "seed": seed, "epochs": epochs, "lr": lr, "loss": loss_name,
        "n_train": int(len(train_indices)), "history": history,
        "final_train_loss": final_train["mse_std"] if loss_name == "mse" else final_train["mae"] / data["std"],
        "final_train_mae": final_train["mae"],
        "best_epoch": best[1] + 1, "best_val_mae": best[0], "test_mae_at_best_val": best[2]["mae"],
        "epoch_s_mean": float(np.mean(history["epoch_s"])),
    }


def mean_predictor_mae(data: dict[str, Any]) -> float:
    """Test MAE of predicting the training mean (the floor any learner must beat)."""
    return float((data["y"][data["parts"]["test"]] - data["mean"]).abs().mean())


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Graph transformer: Pre-LN vs Post-LN and TUPE vs pe=add on zinc_constrained")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "techniques_transformer.json",
                   help="results JSON (rewritten after every finished measurement)")
    p.add_argument("--plot", type=Path, default=REPO / "benchmarks" / "results" / "plots" / "techniques_transformer_grad_norms.png",
                   help="per-layer gradient-norm plot (a)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of (a) and (c)")
    p.add_argument("--grad-depth", type=int, default=6, help="blocks of the model in (a)")
    p.add_argument("--grad-batches", type=int, default=8, help="batches averaged per initialization in (a)")
    p.add_argument("--ln-depth", type=int, default=6, help="blocks of the models in (b)")
    p.add_argument("--ln-epochs", type=int, default=20, help="epochs of (b)")
    p.add_argument("--ln-seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of (b)")
    p.add_argument("--ln-train", type=int, default=2000, help="training molecules in (b) (the first of the training part)")
    p.add_argument("--pe-epochs", type=int, default=10, help="epochs of (c)")
    p.add_argument("--pe-train", type=int, default=10000, help="training molecules in (c)")
    p.add_argument("--lr", type=float, default=1e-3, help="constant learning rate of (b) and (c)")
    p.add_argument("--only", choices=("a", "b", "c"), nargs="+", default=["a", "b", "c"], help="measurements to run")
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    def log(msg: str) -> None:
        print(msg, flush=True)

    results: dict[str, Any] = {}
    if args.out.is_file():  # keep the measurements a partial rerun does not redo
        results = json.loads(args.out.read_text())
    results["environment"] = {
        "python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
        "threads": torch.get_num_threads(),
    }
    command = " ".join(["python", "benchmarks/techniques_transformer.py", *(sys.argv[1:] if argv is None else argv)])

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1) + "\n")
        tmp.replace(args.out)

    data = load_data()
    results["data"] = {"dataset": DATASET, "train_mean": data["mean"], "train_std": data["std"],
                       "mean_predictor_test_mae": mean_predictor_mae(data)}
    if "a" in args.only:
        log("(a) gradient norms at initialization")
        pre = grad_norms_at_init(data, True, args.grad_depth, args.seeds, args.grad_batches)
        post = grad_norms_at_init(data, False, args.grad_depth, args.seeds, args.grad_batches)
        _same_but(pre["config"], post["config"], "norm_first")
        plot_grad_norms(pre, post, args.plot)
        results["grad_norms"] = {
            "pre_ln": pre, "post_ln": post, "plot": str(args.plot.relative_to(REPO)) if args.plot.is_relative_to(REPO) else str(args.plot),
            "last_layer_ratio_post_over_pre": post["ffn_w2"][-1] / pre["ffn_w2"][-1],
            "post_last_over_first": post["ffn_w2"][-1] / post["ffn_w2"][0],
            "pre_last_over_first": pre["ffn_w2"][-1] / pre["ffn_w2"][0],
            "command": command,
        }
        save()
        log(json.dumps({k: v for k, v in results["grad_norms"].items() if "ratio" in k or "over" in k}))
    if "b" in args.only:
        log("(b) Pre-LN vs Post-LN, no warm-up")
        train_idx = data["parts"]["train"][: args.ln_train]
        runs: dict[str, Any] = {"pre_ln": [], "post_ln": []}
        for seed in args.ln_seeds:
            for name, norm_first in (("pre_ln", True), ("post_ln", False)):
                config = {**BASE_CONFIG, "depth": args.ln_depth, "norm_first": norm_first}
                log(f" {name} seed {seed}")
                runs[name].append(train_run(data, config, seed, args.ln_epochs, args.lr, "mse", train_idx, log))
        _same_but(runs["pre_ln"][0]["config"], runs["post_ln"][0]["config"], "norm_first")
        pre = [r["final_train_loss"] for r in runs["pre_ln"]]
        post = [r["final_train_loss"] for r in runs["post_ln"]]
        last = [(r["history"]["train_loss"][-1], q["history"]["train_loss"][-1]) for r, q in zip(runs["pre_ln"], runs["post_ln"])]
        runs["summary"] = {
            "pre_final_train_loss": pre, "post_final_train_loss": post,
            "pre_below_post_per_seed": [a < b for a, b in zip(pre, post)],
            "last_epoch_running_loss_pre_post": last,
            "pre_test_mae_at_best_val": [r["test_mae_at_best_val"] for r in runs["pre_ln"]],
            "post_test_mae_at_best_val": [r["test_mae_at_best_val"] for r in runs["post_ln"]],
        }
        results["warmup_free"] = {**runs, "command": command}
        save()
        log(json.dumps(runs["summary"]))
    if "c" in args.only:
        log("(c) TUPE vs pe=add")
        train_idx = data["parts"]["train"][: args.pe_train]
        out: dict[str, Any] = {"tupe": [], "add": [], "command": command}
        for seed in args.seeds:
            for pe in ("tupe", "add"):
                log(f" pe={pe} seed {seed}")
                out[pe].append(train_run(data, {**BASE_CONFIG, "pe": pe}, seed, args.pe_epochs, args.lr, "l1", train_idx, log))
                results["tupe_vs_add"] = out
                save()
        _same_but(out["tupe"][0]["config"], out["add"][0]["config"], "pe")
        t = [r["test_mae_at_best_val"] for r in out["tupe"]]
        a = [r["test_mae_at_best_val"] for r in out["add"]]
        out["summary"] = {
            "tupe_test_mae": t, "add_test_mae": a,
            "tupe_mean": float(np.mean(t)), "tupe_std": float(np.std(t, ddof=1)) if len(t) > 1 else math.nan,
            "add_mean": float(np.mean(a)), "add_std": float(np.std(a, ddof=1)) if len(a) > 1 else math.nan,
            "tupe_wins_per_seed": [x <= y for x, y in zip(t, a)],
            "tupe_epoch_s": float(np.mean([r["epoch_s_mean"] for r in out["tupe"]])),
            "add_epoch_s": float(np.mean([r["epoch_s_mean"] for r in out["add"]])),
        }
        save()
        log(json.dumps(out["summary"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
