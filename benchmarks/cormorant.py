"""Cormorant benchmark: QM9 learning curve and rMD17 energies/forces against SchNet and a linear anchor.

Usage (CPU; docs/cormorant.md has the measured tables and the exact commands)::

    OMP_NUM_THREADS=1 python benchmarks/cormorant.py qm9 --target U0 --n-train 1000 5000 \
        --budget-s 300 --out benchmarks/results/cormorant_qm9.json
    OMP_NUM_THREADS=1 python benchmarks/cormorant.py rmd17 --molecule aspirin --budget-s 300 \
        --out benchmarks/results/cormorant_rmd17.json
    OMP_NUM_THREADS=1 python benchmarks/cormorant.py speed --out benchmarks/results/cormorant_speed.json

Rows of one ``qm9`` run, for each training size, on the same molecules (seeded subsets of
Cormorant's QM9 split: the first ``n`` of a seeded order of its 100,000 training molecules, and
fixed validation and test subsets), each model trained for the **same wall-clock budget**:

* ``linear``: least squares on the per-species atom counts plus an intercept (the anchor);
* ``cormorant``: :class:`~molgraph.methods.cormorant.model.CormorantNet` with the method's
  defaults (4 levels, lmax 2, 16 channels), MSE on the standardized target, AMSGrad;
* ``schnet``: PyG's ``SchNet`` (128 channels, 6 interactions, 50 Gaussians, 5 angstrom) on the
  package's radius graph (``interaction_graph``: PyG's own ``radius_graph`` needs torch-cluster),
  the same loss, Adam.

Both networks learn the standardized residual of the per-species linear fit (``--offsets
species``, the method's default; ``none``: the plain standardized target, as the reference).
The learning rate of both networks follows a cosine from 1e-3 to 1e-5 over the **wall-clock**
budget (so the schedule ends when the budget does); the final weights are evaluated. MAE in the
paper's units (meV for energies after atomref subtraction). ``rmd17``: one official split,
950 training / 50 validation frames of the train file, the 1,000 test frames; energy + force
loss (force weight 10, forces by autograd) for both networks; anchor: mean energy, zero forces.
``speed``: molecules per second (training step and inference) of both networks on the same QM9
batches, and the share of Cormorant's forward time spent in its tensor products.

Self-checks (the run stops with an error when one fails): the parts are disjoint; a trained
Cormorant's test predictions change by < 1e-4 standard deviations under a random rotation and
translation; the linear fit beats the mean on its own training set; every MAE is finite.

DimeNet++ is not run. PyG 2.8's ``DimeNetPlusPlus.forward(z, pos, batch)`` takes no graph argument
and builds its own: it calls ``torch_geometric.nn.radius_graph`` (which raises "'radius_graph' requires
'pyg-lib>=0.6.0'" here), then the module-level ``triplets``, which builds a ``torch_sparse.SparseTensor``
(raises "'SparseTensor' requires 'torch-sparse'"). Neither pyg-lib, torch-cluster nor torch-sparse
installs as a wheel from the registries here, so running it would mean replacing those two
module-level functions of ``torch_geometric.nn.models.dimenet`` (patching PyG's internals) or
rewriting its forward pass.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from molgraph.methods.cormorant.method import species_counts  # noqa: E402
from molgraph.methods.cormorant.task import Standardizer, predict_batch  # noqa: E402

PAPER = {
    "source": "Anderson, Hy & Kondor, NeurIPS 2019, via a results-aggregator page (aggregator figures, "
              "not read from the paper); 100k training molecules, 255 epochs on a GPU",
    "qm9": {"U0": {"mae": 22.0, "unit": "meV"}, "mu": {"mae": 0.038, "unit": "D"},
            "alpha": {"mae": 0.085, "unit": "bohr^3"}, "Cv": {"mae": 0.026, "unit": "cal/(mol K)"}},
    "qm9_recalled": {"note": "recalled from the paper's table, unverified", "homo": {"mae": 34.0, "unit": "meV"}},
}


class SchNetWrap(torch.nn.Module):
    """PyG's SchNet with the signature of CormorantNet, on a given graph: ``(B,)`` standardized output."""

    def __init__(self, cutoff: float = 5.0):
        super().__init__()
        from torch_geometric.nn.models import SchNet

        self.graph: tuple[torch.Tensor, torch.Tensor] | None = None
        self.net = SchNet(hidden_channels=128, num_filters=128, num_interactions=6, num_gaussians=50, cutoff=cutoff,
                          interaction_graph=self._graph)

    def _graph(self, pos: torch.Tensor, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ei = self.graph[0]
        return ei, (pos.index_select(0, ei[0]) - pos.index_select(0, ei[1])).norm(dim=-1)

    def forward(self, z, pos, edge_index, batch, num_graphs):
        self.graph = (edge_index,)
        out = self.net(z, pos, batch).reshape(-1)
        if out.shape[0] != num_graphs:  # a trailing molecule without atoms cannot occur here
            raise RuntimeError("SchNet returned the wrong number of molecules")
        return out


def _to(batch: Any, device: torch.device) -> Any:
    return batch.to(device) if device.type != "cpu" else batch


def fit(model: torch.nn.Module, batches: Callable[[np.random.Generator], Any], loss_fn: Callable[[Any], torch.Tensor],
        *, budget_s: float, optimizer: str, seed: int, device: torch.device, max_lr: float = 1e-3,
        final_lr: float = 1e-5) -> dict[str, Any]:
    """Train until ``budget_s`` seconds have passed; cosine lr over the elapsed fraction of the budget."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=max_lr, amsgrad=optimizer == "amsgrad")
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    steps, seen, losses = 0, 0, []
    while True:
        elapsed = time.perf_counter() - start
        if elapsed >= budget_s:
            break
        for g in opt.param_groups:
            g["lr"] = final_lr + 0.5 * (max_lr - final_lr) * (1 + math.cos(math.pi * elapsed / budget_s))
        batch = _to(batches(rng), device)
        loss = loss_fn(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
        seen += int(batch.num_graphs)
        losses.append(loss.item())
    wall = time.perf_counter() - start
    return {"steps": steps, "molecules_seen": seen, "epochs": None, "wall_s": round(wall, 1),
            "final_train_loss": float(np.mean(losses[-20:])) if losses else None}


def evaluate(model, batcher, rows, scale, field, device, *, forces=False, batch_size=100) -> dict[str, float]:
    model.eval()
    ys, ts, fs, gs = [], [], [], []
    for i in range(0, len(rows), batch_size):
        batch = _to(batcher(rows[i:i + batch_size]), device)
        if forces:
            _, y, f = predict_batch(model, batch, scale, forces=True)
            fs.append(f.detach().cpu())
            gs.append(batch.forces.double().cpu())
        else:
            with torch.no_grad():
                _, y, _ = predict_batch(model, batch, scale)
        ys.append(y.detach().cpu())
        ts.append(getattr(batch, field).reshape(-1).double().cpu())
    model.train()
    y, t = torch.cat(ys), torch.cat(ts)
    out = {"mae": float((y - t).abs().mean()), "rmse": float((y - t).pow(2).mean().sqrt()), "n": int(t.numel())}
    if forces:
        f, g = torch.cat(fs), torch.cat(gs)
        out["force_mae"] = float((f - g).abs().mean())
    for k, v in out.items():
        if not math.isfinite(v):
            raise SystemExit(f"self-check failed: {k} is not finite ({v})")
    return out


def check_invariance(model, batcher, rows, device) -> float:
    """Largest change of the standardized prediction under a random rotation + translation (self-check)."""
    from e3nn import o3

    model.eval()
    batch = _to(batcher(rows[:50]), device)
    with torch.no_grad():
        y = model(batch.z, batch.pos.float(), batch.edge_index, batch.batch, int(batch.num_graphs))
        rot = o3.rand_matrix().to(device)
        moved = batch.pos.float() @ rot.T + torch.tensor([1.5, -2.0, 3.0], device=device)
        y2 = model(batch.z, moved, batch.edge_index, batch.batch, int(batch.num_graphs))
    model.train()
    err = float((y - y2).abs().max())
    if err > 1e-4:
        raise SystemExit(f"self-check failed: a rotation changed a prediction by {err:.2e} standard deviations")
    return err


def linear_counts(graphs, field: str, parts: dict[str, np.ndarray], species: list[int]) -> dict[str, Any]:
    """Least squares on per-species atom counts + intercept; MAE per part (target units)."""
    z = graphs.field("z").numpy()
    ptr = graphs.atom_ptr.numpy()
    mol = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    counts = np.stack([np.bincount(mol, weights=(z == s).astype(float), minlength=len(ptr) - 1) for s in species], 1)
    x = np.concatenate([counts, np.ones((counts.shape[0], 1))], axis=1)
    y = graphs.field(field).reshape(len(ptr) - 1, -1)[:, 0].numpy().astype(np.float64)
    tr = parts["train"]
    coef, *_ = np.linalg.lstsq(x[tr], y[tr], rcond=None)
    out = {p: {"mae": float(np.abs(x[idx] @ coef - y[idx]).mean()), "n": int(len(idx))} for p, idx in parts.items()}
    if out["train"]["mae"] > float(np.abs(y[tr] - y[tr].mean()).mean()) + 1e-9:
        raise SystemExit("self-check failed: the linear fit is worse than the mean on its own training set")
    return out


NET: dict[str, Any] = {"levels": 4, "lmax": 2, "channels": 16, "modern": False}  # set from the command line


def _cormorant(species, avg_neighbors, *, activation="leakyrelu"):
    from molgraph.methods.cormorant.model import CormorantNet

    return CormorantNet(species, levels=NET["levels"], lmax=NET["lmax"], channels=NET["channels"],
                        modern=NET["modern"], activation=activation, avg_neighbors=avg_neighbors)


def _data(args, dataset: str, n_train: int | None):
    from molgraph.methods.cormorant.config import CormorantConfig
    from molgraph.methods.cormorant.method import average_neighbors, prepare_data

    cfg = CormorantConfig(dataset=dataset, target=getattr(args, "target", "U0"),
                          molecule=getattr(args, "molecule", "aspirin"), data_root=args.data_root, n_train=n_train,
                          n_valid=args.n_valid, n_test=args.n_test, subset_seed=args.seed)
    data = prepare_data(cfg)
    parts = {"train": data.train, "val": data.val, "test": data.test}
    if dataset == "qm9":  # the parts must not share molecules
        ids = data.graphs.field("qm9_id").numpy()
        a, b, c = (set(ids[p].tolist()) for p in parts.values())
        if a & b or a & c or b & c:
            raise SystemExit("self-check failed: the QM9 parts share molecules")
    return data, parts, average_neighbors(data.graphs, data.train)


def run_qm9(args, device) -> list[dict[str, Any]]:
    from molgraph.data.loader import GraphBatcher

    rows = []
    for n in args.n_train:
        data, parts, avg_nb = _data(args, "qm9", n)
        y = data.graphs.field("y")[:, 0].numpy()
        if args.offsets == "species":
            scale = Standardizer.fit(y[data.train], species_counts(data.graphs, data.species)[data.train], data.species)
        else:
            scale = Standardizer.fit(y[data.train])
        batcher = GraphBatcher(data.graphs, fields=("z", "pos", "y"))
        lin = linear_counts(data.graphs, "y", parts, data.species)
        base = {"dataset": "qm9", "target": args.target, "unit": data.unit, "n_train": len(data.train),
                "n_valid": len(data.val), "n_test": len(data.test), "split": "cormorant (seeded subsets)",
                "budget_s": args.budget_s, "offsets": args.offsets}
        rows.append({**base, "model": "linear_counts", "val": lin["val"], "test": lin["test"]})
        print(f"qm9 {args.target} n={n} linear: test MAE {lin['test']['mae']:.1f} {data.unit}", flush=True)
        for name in args.models:
            torch.manual_seed(args.seed)
            model = (_cormorant(data.species, avg_nb) if name == "cormorant" else SchNetWrap()).to(device)

            def batches(rng, _b=batcher, _tr=data.train):
                return _b(np.sort(rng.choice(_tr, size=min(args.batch_size, len(_tr)), replace=False)))

            def loss_fn(batch, _m=model, _s=scale):
                out, _, _ = predict_batch(_m, batch, _s)
                t = _s.standardize(batch.y[:, 0], batch).to(out.dtype)
                return torch.nn.functional.mse_loss(out, t)

            info = fit(model, batches, loss_fn, budget_s=args.budget_s,
                       optimizer="amsgrad" if name == "cormorant" else "adam", seed=args.seed, device=device)
            info["epochs"] = round(info["molecules_seen"] / len(data.train), 2)
            row = {**base, "model": name, "train": info,
                   "params": int(sum(p.numel() for p in model.parameters())),
                   "val": evaluate(model, batcher, data.val, scale, "y", device),
                   "test": evaluate(model, batcher, data.test, scale, "y", device)}
            if name == "cormorant":
                row["invariance_max_err_std_units"] = check_invariance(model, batcher, data.test, device)
            rows.append(row)
            print(f"qm9 {args.target} n={n} {name}: test MAE {row['test']['mae']:.1f} {data.unit} "
                  f"({info['steps']} steps, {info['epochs']} epochs, {info['wall_s']} s)", flush=True)
    return rows


def run_rmd17(args, device) -> list[dict[str, Any]]:
    from molgraph.data.loader import GraphBatcher

    data, parts, avg_nb = _data(args, "rmd17", None)
    e = data.graphs.field("energy").numpy()
    scale = Standardizer.fit(e[data.train])
    batcher = GraphBatcher(data.graphs, fields=("z", "pos", "energy", "forces"))
    f_all = data.graphs.field("forces").numpy()
    ptr = data.graphs.atom_ptr.numpy()
    test_atoms = np.concatenate([np.arange(ptr[i], ptr[i + 1]) for i in data.test])
    base = {"dataset": "rmd17", "molecule": args.molecule, "split": 1, "unit": "kcal/mol",
            "force_unit": "kcal/mol/angstrom", "n_train": len(data.train), "n_valid": len(data.val),
            "n_test": len(data.test), "budget_s": args.budget_s, "force_weight": args.force_weight}
    rows = [{**base, "model": "mean_energy_zero_forces",
             "test": {"mae": float(np.abs(e[data.test] - scale.mean).mean()),
                      "force_mae": float(np.abs(f_all[test_atoms]).mean()), "n": len(data.test)}}]
    for name in args.models:
        torch.manual_seed(args.seed)
        model = (_cormorant(data.species, avg_nb, activation="silu") if name == "cormorant" else SchNetWrap()).to(device)

        def batches(rng, _tr=data.train):
            return batcher(np.sort(rng.choice(_tr, size=min(args.batch_size, len(_tr)), replace=False)))

        def loss_fn(batch, _m=model):
            out, _, f = predict_batch(_m, batch, scale, forces=True, create_graph=True)
            t = scale.standardize(batch.energy, batch).to(out.dtype)
            lf = ((f - batch.forces.double()) / scale.std).pow(2).mean().to(out.dtype)
            return torch.nn.functional.mse_loss(out, t) + args.force_weight * lf

        info = fit(model, batches, loss_fn, budget_s=args.budget_s,
                   optimizer="amsgrad" if name == "cormorant" else "adam", seed=args.seed, device=device)
        info["epochs"] = round(info["molecules_seen"] / len(data.train), 2)
        row = {**base, "model": name, "train": info, "params": int(sum(p.numel() for p in model.parameters())),
               "test": evaluate(model, batcher, data.test, scale, "energy", device, forces=True, batch_size=50)}
        if name == "cormorant":
            row["invariance_max_err_std_units"] = check_invariance(model, batcher, data.test, device)
        rows.append(row)
        print(f"rmd17 {args.molecule} {name}: energy MAE {row['test']['mae']:.3f} kcal/mol, force MAE "
              f"{row['test']['force_mae']:.3f} kcal/mol/A ({info['steps']} steps, {info['epochs']} epochs)", flush=True)
    return rows


def run_speed(args, device) -> list[dict[str, Any]]:
    """Molecules per second, training step and inference, on the same QM9 batches; TP share of the forward."""
    from molgraph.data.loader import GraphBatcher

    data, parts, avg_nb = _data(args, "qm9", 1000)
    batcher = GraphBatcher(data.graphs, fields=("z", "pos", "y"))
    scale = Standardizer.fit(data.graphs.field("y")[:, 0].numpy()[data.train])
    batches = [_to(batcher(data.train[i:i + args.batch_size]), device)
               for i in range(0, args.batch_size * args.speed_batches, args.batch_size)]
    n_mols = sum(int(b.num_graphs) for b in batches)
    rows = []
    for name in ("cormorant", "schnet"):
        torch.manual_seed(args.seed)
        model = (_cormorant(data.species, avg_nb) if name == "cormorant" else SchNetWrap()).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        tp_time = [0.0]
        hooks = []
        if name == "cormorant":
            def pre(_m, _i):
                _m._t0 = time.perf_counter()

            def post(_m, _i, _o):
                tp_time[0] += time.perf_counter() - _m._t0

            for level in model.levels:
                for mod in (level.msg_tp, level.square):
                    hooks += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
        for b in batches[:2]:  # warm-up
            predict_batch(model, b, scale)[0].sum().backward()
        opt.zero_grad()
        t0 = time.perf_counter()
        for b in batches:
            out, _, _ = predict_batch(model, b, scale)
            loss = out.pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        train_s = time.perf_counter() - t0
        tp_time[0] = 0.0
        t0 = time.perf_counter()
        with torch.no_grad():
            for b in batches:
                predict_batch(model, b, scale)
        infer_s = time.perf_counter() - t0
        row = {"model": name, "molecules": n_mols, "batch_size": args.batch_size,
               "train_molecules_per_s": round(n_mols / train_s, 1), "infer_molecules_per_s": round(n_mols / infer_s, 1),
               "params": int(sum(p.numel() for p in model.parameters()))}
        if name == "cormorant":
            row["tensor_product_share_of_inference"] = round(tp_time[0] / infer_s, 3)
            for h in hooks:
                h.remove()
        rows.append(row)
        print(f"speed {name}: {row}", flush=True)
    return rows


DEFAULT_NET = {"levels": 4, "lmax": 2, "channels": 16, "modern": False}


def plot_learning_curves(inputs: list[Path], out: Path) -> None:
    """Test MAE against training-set size (log-log), one panel per (target, Cormorant network).

    Files with the same target and network (e.g. one run per training size) share a panel; files
    written before the network was recorded used the defaults (4 levels, lmax 2, 16 channels).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[tuple, list[dict[str, Any]]] = {}
    for path in inputs:
        res = json.loads(Path(path).read_text())
        if res.get("benchmark") != "cormorant/qm9":
            raise SystemExit(f"plot: {path} is not a qm9 result file (benchmark {res.get('benchmark')!r})")
        net = {**DEFAULT_NET, **(res.get("cormorant_network") or {})}
        key = (res["rows"][0]["target"], net["levels"], net["lmax"], net["channels"], net["modern"],
               res["rows"][0]["budget_s"])
        panels.setdefault(key, []).extend(res["rows"])
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
    for ax, ((target, levels, lmax, _ch, modern, budget), rows) in zip(axes[0], panels.items()):
        for model in dict.fromkeys(r["model"] for r in rows):
            pts = sorted((r["n_train"], r["test"]["mae"]) for r in rows if r["model"] == model)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=model)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training molecules")
        ax.set_ylabel(f"test MAE ({rows[0]['unit']})")
        ax.set_title(f"QM9 {target}; Cormorant {levels} levels, lmax {lmax}{', modern' if modern else ''}; "
                     f"{budget:.0f} s per model", fontsize=8)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("part", choices=("qm9", "rmd17", "speed", "plot"),
                   help="which benchmark; plot: learning curves of qm9 result files (--inputs) into --out (PNG)")
    p.add_argument("--inputs", type=Path, nargs="+", default=[], help="plot: qm9 result files")
    p.add_argument("--data-root", default=os.environ.get("MOLGRAPH_DATA") or str(REPO.parent / "shared" / "data"),
                   help="data root holding 3d/ (default $MOLGRAPH_DATA, else ../shared/data)")
    p.add_argument("--target", default="U0", help="QM9 target (default U0)")
    p.add_argument("--molecule", default="aspirin", help="rMD17 molecule (default aspirin)")
    p.add_argument("--n-train", type=int, nargs="+", default=[1000], help="QM9 training sizes (default 1000)")
    p.add_argument("--n-valid", type=int, default=None, help="validation subset (default: QM9 1000, rMD17 50)")
    p.add_argument("--n-test", type=int, default=None, help="test subset (default: QM9 2000, rMD17 all 1000)")
    p.add_argument("--models", nargs="+", default=["cormorant", "schnet"], choices=("cormorant", "schnet"))
    p.add_argument("--budget-s", type=float, default=300.0, help="wall-clock training budget per model (default 300)")
    p.add_argument("--batch-size", type=int, default=25, help="molecules per step (default 25, the reference's)")
    p.add_argument("--force-weight", type=float, default=10.0, help="rMD17 force weight (default 10)")
    p.add_argument("--speed-batches", type=int, default=10, help="batches timed by 'speed' (default 10)")
    p.add_argument("--offsets", default="species", choices=("species", "none"),
                   help="QM9: both networks learn the residual of the per-species linear fit (species, the "
                        "method's default) or the plain standardized target (none, the reference's)")
    p.add_argument("--levels", type=int, default=4, help="Cormorant CG levels (default 4)")
    p.add_argument("--lmax", type=int, default=2, help="Cormorant lmax (default 2)")
    p.add_argument("--channels", type=int, default=16, help="Cormorant channels per irrep (default 16)")
    p.add_argument("--modern", action="store_true", help="Cormorant with gates and residuals")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--accelerator", default="cpu", choices=("cpu", "gpu"), help="cpu (default) or gpu (CUDA)")
    p.add_argument("--out", type=Path, required=True, help="results JSON (written anew; one file per part)")
    args = p.parse_args(argv)
    if args.part == "qm9":
        args.n_valid = args.n_valid or 1000
        args.n_test = args.n_test or 2000
    if args.part == "plot":
        plot_learning_curves(args.inputs, args.out)
        print(f"wrote {args.out}")
        return 0
    NET.update(levels=args.levels, lmax=args.lmax, channels=args.channels, modern=args.modern)
    device = torch.device("cuda" if args.accelerator == "gpu" else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--accelerator gpu: no CUDA device is visible")
    started = time.time()
    rows = {"qm9": run_qm9, "rmd17": run_rmd17, "speed": run_speed}[args.part](args, device)
    result = {
        "benchmark": f"cormorant/{args.part}",
        "command": "python benchmarks/cormorant.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device)},
        "wall_s": round(time.time() - started, 1),
        "cormorant_network": dict(NET),
        "paper": PAPER,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
