"""Task grouping and transference for multi-task models (Fifty et al.).

* "Efficiently Identifying Task Groupings for Multi-Task Learning" (TAG, NeurIPS 2021): during one
  joint run, the *lookahead inter-task affinity* of task i onto task j at step t is

      Z_{i->j} = 1 - L_j(theta - lr * grad L_i(theta)) / L_j(theta)

  on the step's batch (positive: a step on task i lowers task j's loss). Averaged over the run,
  the affinities choose groups of tasks; one model is trained per group and each task is served
  by the chosen group in which its affinity from the other members is highest.
* "Measuring and Harnessing Transference in Multi-Task Learning" (increased-transfer MTL): at each
  step, take the candidate gradient whose lookahead lowers the total loss of the batch most. The
  candidates here are the plain total gradient and its PCGrad projection (Yu et al. 2020, each
  task gradient stripped of its components that conflict with the others): the combination the
  paper evaluates, as recalled.

The lookahead is an SGD step with the optimizer's current learning rate, as in the papers; it is
taken on a copy (``torch.func.functional_call``) in eval mode, so dropout noise does not enter the
ratio and batch-norm statistics are not updated by it.

The callbacks serve models whose output has one column per task (point heads of the property
method); per-task losses are the masked mean losses of each column on the task's training scale.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn

from molgraph.io import atomic_write_bytes
from molgraph.train.metrics import masked_loss
from molgraph.train.plots import plot_affinity

__all__ = [
    "lookahead_affinity",
    "pcgrad",
    "group_score",
    "select_groups",
    "random_groupings",
    "serving_group",
    "TaskAffinityCallback",
    "TransferenceCallback",
    "task_losses_of",
]

TaskLosses = Callable[[nn.Module, Any], Tensor]


def task_losses_of(task: Any) -> TaskLosses:
    """``(model, batch) -> (T,)`` masked mean loss per task, for a task with ``scale_targets``,
    ``task_type`` and ``model`` (the property method's :class:`PropertyTask`).

    A task with no labelled entry in the batch gets NaN.
    """

    def losses(model: nn.Module, batch: Any) -> Tensor:
        out = model(batch)
        y = task.scale_targets(batch.y)
        if out.shape != y.shape:
            raise ValueError(f"task grouping needs one output column per task (a point head); the model "
                             f"gives {tuple(out.shape)} for targets {tuple(y.shape)}")
        elementwise = masked_loss(out, y, task.task_type, reduction="none")  # zeros where unlabelled
        n = (~torch.isnan(y)).sum(0)
        return torch.where(n > 0, elementwise.sum(0) / n.clamp(min=1), torch.full_like(n, float("nan"), dtype=out.dtype))

    return losses


def _params(model: nn.Module) -> dict[str, Tensor]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _call(model: nn.Module, params: dict[str, Tensor], losses: TaskLosses, batch: Any) -> Tensor:
    from torch.func import functional_call

    class _Bound(nn.Module):  # lets ``losses`` call the model with substituted parameters
        def __init__(self) -> None:
            super().__init__()

        def forward(self, b: Any) -> Tensor:
            return functional_call(model, params, (b,), strict=False)

    return losses(_Bound(), batch)


def _task_grads(model: nn.Module, losses: TaskLosses, batch: Any) -> tuple[Tensor, list[dict[str, Tensor] | None]]:
    params = _params(model)
    base = losses(model, batch)
    grads: list[dict[str, Tensor] | None] = []
    for i in range(base.numel()):
        if not torch.isfinite(base[i]):
            grads.append(None)
            continue
        g = torch.autograd.grad(base[i], list(params.values()), retain_graph=True, allow_unused=True)
        grads.append({n: (torch.zeros_like(p) if gi is None else gi) for (n, p), gi in zip(params.items(), g)})
    return base.detach(), grads


def lookahead_affinity(model: nn.Module, losses: TaskLosses, batch: Any, lr: float) -> np.ndarray:
    """``(T, T)`` lookahead affinities ``Z[i, j]`` of task i onto task j on one batch.

    Rows of tasks without labels in the batch, and columns of tasks with zero or no loss, are NaN.
    The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        base, grads = _task_grads(model, losses, batch)
        params = _params(model)
        t = base.numel()
        z = np.full((t, t), np.nan)
        with torch.no_grad():
            for i, g in enumerate(grads):
                if g is None:
                    continue
                stepped = {n: p - lr * g[n] for n, p in params.items()}
                after = _call(model, stepped, losses, batch)
                z[i] = (1.0 - after / base).cpu().numpy()
        z[:, ~(torch.isfinite(base) & (base > 0)).cpu().numpy()] = np.nan
        return z
    finally:
        model.train(was_training)


def pcgrad(grads: Sequence[Tensor], rng: np.random.Generator) -> Tensor:
    """PCGrad (Yu et al. 2020): each flat task gradient loses its projection onto every other task
    gradient it conflicts with (negative dot product), others taken in random order; returns the sum."""
    out = []
    for i, g in enumerate(grads):
        g = g.clone()
        for j in rng.permutation(len(grads)):
            if j == i:
                continue
            dot = torch.dot(g, grads[j])
            if dot < 0:
                g -= dot / grads[j].pow(2).sum().clamp(min=1e-20) * grads[j]
        out.append(g)
    return torch.stack(out).sum(0)


def group_score(z: np.ndarray, groups: Sequence[Sequence[int]]) -> float:
    """TAG's objective: the sum over tasks of the best in-group affinity onto the task.

    The affinity onto task j in group g is the mean of ``z[i, j]`` over the other members i; a task
    alone in a group scores 0 (no transfer). Every task must be in some group (else ``-inf``).
    """
    s = _candidate_scores(np.nan_to_num(z), [tuple(g) for g in groups])
    return float(s.max(0).sum())


def _candidate_scores(z: np.ndarray, candidates: Sequence[tuple[int, ...]]) -> np.ndarray:
    t = z.shape[0]
    s = np.full((len(candidates), t), -np.inf)
    for c, members in enumerate(candidates):
        m = list(members)
        if len(m) == 1:
            s[c, m[0]] = 0.0
            continue
        sub = z[np.ix_(m, m)]
        s[c, m] = (sub.sum(0) - np.diag(sub)) / (len(m) - 1)
    return s


def select_groups(z: np.ndarray, n_groups: int, *, restarts: int = 64, seed: int = 0,
                  max_size: int | None = None) -> list[list[int]]:
    """``n_groups`` task groups (possibly overlapping, covering every task) maximizing :func:`group_score`.

    Candidates are all subsets up to ``max_size`` tasks (all subsets by default; 4,095 for 12
    tasks). The search is coordinate ascent from random covering starts: each group in turn is
    replaced by the best candidate given the others, until no change; the best of ``restarts``
    runs is returned. For few tasks this reaches the exhaustive optimum (tested); the paper solves
    the same selection by branch and bound.
    """
    t = z.shape[0]
    if not 1 <= n_groups <= t:
        raise ValueError(f"n_groups must be in [1, {t}], got {n_groups}")
    max_size = t if max_size is None else int(max_size)
    candidates = [c for k in range(1, max_size + 1) for c in itertools.combinations(range(t), k)]
    s = _candidate_scores(np.nan_to_num(z), candidates)
    rng = np.random.default_rng(seed)
    best, best_score = None, -np.inf
    for _ in range(restarts):
        # a random partition into n_groups non-empty parts: a covering start
        labels = np.r_[np.arange(n_groups), rng.integers(0, n_groups, t - n_groups)]
        rng.shuffle(labels)
        chosen = [candidates.index(tuple(np.flatnonzero(labels == g).tolist())) for g in range(n_groups)]
        score = s[chosen].max(0).sum()
        for _sweep in range(50):
            changed = False
            for g in range(n_groups):
                others = s[[c for k, c in enumerate(chosen) if k != g]].max(0) if n_groups > 1 else np.full(t, -np.inf)
                totals = np.maximum(others[None, :], s).sum(1)
                c = int(np.argmax(totals))
                if totals[c] > score + 1e-12:
                    chosen[g], score, changed = c, totals[c], True
            if not changed:
                break
        if score > best_score:
            best, best_score = list(chosen), score
    return [list(candidates[c]) for c in best]


def serving_group(z: np.ndarray, groups: Sequence[Sequence[int]]) -> list[int]:
    """For each task, the index of the group (containing it) whose affinity onto it is highest."""
    s = _candidate_scores(np.nan_to_num(z), [tuple(g) for g in groups])
    if np.isinf(s.max(0)).any():
        raise ValueError(f"tasks {np.flatnonzero(np.isinf(s.max(0))).tolist()} are in no group")
    return [int(k) for k in s.argmax(0)]


def random_groupings(n_tasks: int, n_groups: int, count: int, seed: int = 0) -> list[list[list[int]]]:
    """``count`` random partitions of the tasks into ``n_groups`` non-empty groups (the control)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        labels = np.r_[np.arange(n_groups), rng.integers(0, n_groups, n_tasks - n_groups)]
        rng.shuffle(labels)
        out.append([np.flatnonzero(labels == g).tolist() for g in range(n_groups)])
    return out


def _current_lr(trainer: Any) -> float:
    return float(trainer.optimizers[0].param_groups[0]["lr"])


class TaskAffinityCallback(Callback):
    """Records lookahead affinities every ``every`` training steps (before the step's update).

    After training, :attr:`affinity` is the ``(T, T)`` mean over the recorded steps (NaN entries
    skipped) and, with ``out_dir``, ``task_affinity.json`` (matrix, task names, steps, seconds
    spent) and ``task_affinity.png`` (heat map) are written there.
    """

    def __init__(self, every: int = 10, out_dir: str | Path | None = None,
                 task_names: Sequence[str] | None = None, losses: TaskLosses | None = None) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every, self.out_dir, self.task_names, self.losses = int(every), out_dir, task_names, losses
        self._sum: np.ndarray | None = None
        self._count: np.ndarray | None = None
        self.steps = 0
        self.seconds = 0.0
        self.train_seconds = 0.0
        self._t0 = 0.0

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step % self.every:
            return
        t0 = time.perf_counter()
        losses = self.losses or task_losses_of(pl_module)
        z = lookahead_affinity(pl_module.model, losses, batch, _current_lr(trainer))
        if self._sum is None:
            self._sum, self._count = np.zeros_like(z), np.zeros_like(z)
        ok = np.isfinite(z)
        self._sum[ok] += z[ok]
        self._count[ok] += 1
        self.steps += 1
        self.seconds += time.perf_counter() - t0

    @property
    def affinity(self) -> np.ndarray:
        if self._sum is None:
            raise RuntimeError("no affinity was recorded (no training step ran)")
        with np.errstate(invalid="ignore"):
            return self._sum / self._count

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self.train_seconds = time.perf_counter() - self._t0
        if self.out_dir is None or self._sum is None:
            return
        out = Path(self.out_dir)
        names = list(self.task_names or getattr(pl_module, "target_names", None) or range(self.affinity.shape[0]))
        payload = {"tasks": [str(n) for n in names], "affinity": np.where(np.isfinite(self.affinity), self.affinity,
                                                                          None).tolist(),
                   "steps_recorded": self.steps, "every": self.every, "affinity_seconds": self.seconds,
                   "train_seconds": self.train_seconds}
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / "task_affinity.json", (json.dumps(payload, indent=2) + "\n").encode())
        plot_affinity(self.affinity, [str(n) for n in names], out / "task_affinity.png")


class TransferenceCallback(Callback):
    """Increased-transfer training: before each optimizer step, compare by SGD lookahead the sum of
    the task gradients and its PCGrad projection (both at the training gradient's length, from the
    model in eval mode); where PCGrad's lowers the batch's total task loss more, it replaces the
    gradient. :attr:`chosen` counts the picks; :attr:`seconds` the time spent."""

    def __init__(self, losses: TaskLosses | None = None, seed: int = 0) -> None:
        self.losses = losses
        self.rng = np.random.default_rng(seed)
        self.chosen = {"total": 0, "pcgrad": 0}
        self.seconds = 0.0
        self._batch: Any = None

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self._batch = batch

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        t0 = time.perf_counter()
        model = pl_module.model
        losses = self.losses or task_losses_of(pl_module)
        params = _params(model)
        grad_norm = torch.sqrt(sum((p.grad.detach() ** 2).sum() for p in params.values() if p.grad is not None))
        was_training = model.training
        model.eval()
        try:
            with torch.enable_grad():
                base, grads = _task_grads(model, losses, self._batch)
            flat = [torch.cat([g[n].reshape(-1) for n in params]) for g in grads if g is not None]
            if len(flat) < 2:
                return
            # both candidates from the same (eval-mode) task gradients and at the training gradient's
            # length, so the lookahead compares directions only
            candidates = {"total": torch.stack(flat).sum(0), "pcgrad": pcgrad(flat, self.rng)}
            candidates = {k: v * (grad_norm / v.norm().clamp(min=1e-20)) for k, v in candidates.items()}
            lr = _current_lr(trainer)
            scores = {}
            with torch.no_grad():
                for name, flat_g in candidates.items():
                    stepped, k = {}, 0
                    for n, p in params.items():
                        stepped[n] = p - lr * flat_g[k:k + p.numel()].view_as(p)
                        k += p.numel()
                    after = _call(model, stepped, losses, self._batch)
                    scores[name] = float(torch.nansum(after))
            pick = min(scores, key=scores.get)
            self.chosen[pick] += 1
            if pick == "pcgrad":  # else the training gradient stays as it is
                k = 0
                for p in params.values():
                    p.grad = candidates["pcgrad"][k:k + p.numel()].view_as(p).clone()
                    k += p.numel()
        finally:
            model.train(was_training)
            self.seconds += time.perf_counter() - t0
