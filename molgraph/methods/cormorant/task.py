"""Training Cormorant through the shared trainer: a QM9 property, or rMD17 energies and forces.

The network predicts the **standardized** target ``(y - mean) / std`` (mean and standard
deviation of the training part); the loss is its MSE, as in the reference. With per-species
offsets (:class:`Standardizer`, the method's default), ``mean`` becomes a least-squares fit on
the atom counts and ``std`` the spread of what it leaves. Energies and
errors come back in the target's units: ``y = offsets + std * out``, computed in float64 because
rMD17 total energies are about -4e5 kcal/mol. With forces, ``F = -dE/dpos = -std * d out/d pos``
by autograd (the graph is kept while training, so the force error trains the network), and the
loss adds ``force_weight * mean(((F_pred - F) / std)^2)`` over all force components.

Validation logs ``val_loss``, ``val_mae`` (target units) and, with forces, ``val_force_mae``.
Lightning runs validation under ``torch.inference_mode``; forces need autograd, so the positions
are cloned into a normal tensor inside ``inference_mode(False)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from molgraph.train.task import Task

__all__ = ["Standardizer", "CormorantTask", "predict_batch", "evaluate"]


@dataclass
class Standardizer:
    """``y = mean + sum_atoms coef[Z] + std * out``: the target's scale, fitted on the training part.

    Attributes:
        mean: the intercept (target units).
        std: standard deviation of the training targets after the offsets (target units).
        species, coef: per-species offsets (target units per atom), or ``None`` for none: a
            least-squares fit of the target on the per-species atom counts. QM9 energies are
            about 99 % explained by the atom counts (U0 after atomref subtraction: 866 meV MAE of
            the linear fit against a 10 eV spread), so the network learns the residual.
    """

    mean: float
    std: float
    species: list[int] | None = None
    coef: list[float] | None = None

    @classmethod
    def fit(cls, y: np.ndarray, counts: np.ndarray | None = None, species: list[int] | None = None
            ) -> "Standardizer":
        """From training targets ``y`` (M,) and, for offsets, per-species atom counts ``(M, S)``."""
        y = np.asarray(y, dtype=np.float64)
        if counts is None:
            std = float(y.std())
            return cls(float(y.mean()), std if std > 0 else 1.0)
        x = np.concatenate([np.asarray(counts, dtype=np.float64), np.ones((len(y), 1))], axis=1)
        sol, *_ = np.linalg.lstsq(x, y, rcond=None)
        resid = y - x @ sol
        std = float(resid.std())
        return cls(float(sol[-1]), std if std > 0 else 1.0, [int(s) for s in species], [float(c) for c in sol[:-1]])

    def offsets(self, z: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
        """``(B,)`` float64: ``mean + sum_atoms coef[Z]`` per molecule."""
        base = torch.full((num_graphs,), self.mean, dtype=torch.float64, device=z.device)
        if self.coef is None:
            return base
        table = torch.zeros(max(max(self.species), int(z.max()) if z.numel() else 0) + 1, dtype=torch.float64,
                            device=z.device)
        table[torch.tensor(self.species, device=z.device)] = torch.tensor(self.coef, dtype=torch.float64,
                                                                           device=z.device)
        return base.index_add(0, batch, table[z])

    def standardize(self, y: torch.Tensor, batch: Any) -> torch.Tensor:
        """``(y - offsets) / std`` for a batch's targets ``y`` (B,), float64."""
        return (y.to(torch.float64) - self.offsets(batch.z, batch.batch, int(batch.num_graphs))) / self.std


def _target(batch: Any, field: str) -> torch.Tensor:
    y = getattr(batch, field)
    return y.reshape(-1).to(torch.float64)


def predict_batch(model: torch.nn.Module, batch: Any, scale: Standardizer, *, forces: bool = False,
                  create_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(out (B,), y (B,) float64 target units, F (N, 3) float64 or None)`` for one batch.

    ``out`` is the standardized prediction (the model's output, in its dtype); ``y`` and ``F``
    are in target units (forces: target unit per angstrom).
    """
    dtype = next(model.parameters()).dtype
    pos = batch.pos.to(dtype)
    if forces:
        pos = pos.detach().clone().requires_grad_(True)
    out = model(batch.z, pos, batch.edge_index, batch.batch, int(batch.num_graphs))
    y = scale.offsets(batch.z, batch.batch, int(batch.num_graphs)) + scale.std * out.to(torch.float64)
    f = None
    if forces:
        (grad,) = torch.autograd.grad(out.sum(), pos, create_graph=create_graph)
        f = -scale.std * grad.to(torch.float64)
    return out, y, f


@torch.no_grad()
def _no_grad_eval(model, loader, scale, field):
    ys, ts = [], []
    for batch in loader:
        _, y, _ = predict_batch(model, batch, scale)
        ys.append(y)
        ts.append(_target(batch, field))
    return torch.cat(ys), torch.cat(ts), None, None


def evaluate(model: torch.nn.Module, loader: Any, scale: Standardizer, *, field: str, forces: bool = False
             ) -> dict[str, float]:
    """MAE (and RMSE) of the target, and of the forces when ``forces``, over a loader (target units)."""
    was = model.training
    model.eval()
    try:
        if forces:
            ys, ts, fs, gs = [], [], [], []
            for batch in loader:
                _, y, f = predict_batch(model, batch, scale, forces=True)
                ys.append(y.detach())
                ts.append(_target(batch, field))
                fs.append(f.detach())
                gs.append(batch.forces.to(torch.float64))
            y, t, f, g = torch.cat(ys), torch.cat(ts), torch.cat(fs), torch.cat(gs)
        else:
            y, t, f, g = _no_grad_eval(model, loader, scale, field)
    finally:
        model.train(was)
    err = y - t
    out = {"mae": float(err.abs().mean()), "rmse": float(err.pow(2).mean().sqrt()), "n": int(t.numel())}
    if f is not None:
        d = f - g
        out["force_mae"] = float(d.abs().mean())
        out["force_rmse"] = float(d.pow(2).mean().sqrt())
    return out


class CormorantTask(Task):
    """MSE of the standardized target (plus the weighted force MSE); see the module doc.

    Args:
        model: a :class:`~molgraph.methods.cormorant.model.CormorantNet`.
        scale: the target's training mean and standard deviation.
        field: the batch field holding the target (``y`` for QM9, ``energy`` for rMD17).
        forces: train on ``batch.forces`` too.
        force_weight: weight of the force term.
        **kwargs: :class:`~molgraph.train.task.Task`'s (optimizer, schedule, learning rates, seed).
    """

    def __init__(self, model: torch.nn.Module, scale: Standardizer, *, field: str = "y", forces: bool = False,
                 force_weight: float = 10.0, **kwargs: Any):
        super().__init__(model, **kwargs)
        self.scale, self.field = scale, field
        self.forces, self.force_weight = bool(forces), float(force_weight)

    def _losses(self, batch: Any, train: bool) -> dict[str, torch.Tensor]:
        out, y, f = predict_batch(self.model, batch, self.scale, forces=self.forces, create_graph=train)
        t = _target(batch, self.field)
        target = self.scale.standardize(t, batch).to(out.dtype)
        loss_e = torch.nn.functional.mse_loss(out, target)
        parts = {"loss": loss_e, "energy_loss": loss_e.detach(), "mae": (y - t).abs().mean().detach()}
        if f is not None:
            g = batch.forces.to(torch.float64)
            loss_f = ((f - g) / self.scale.std).pow(2).mean().to(out.dtype)
            parts["loss"] = loss_e + self.force_weight * loss_f
            parts["force_loss"] = loss_f.detach()
            parts["force_mae"] = (f - g).abs().mean().detach()
        return parts

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        parts = self._losses(batch, train=True)
        n = int(batch.num_graphs)
        self.log("train_loss", parts["loss"], on_step=False, on_epoch=True, batch_size=n)
        self.log("train_mae", parts["mae"], on_step=False, on_epoch=True, batch_size=n)
        if "force_mae" in parts:
            self.log("train_force_mae", parts["force_mae"], on_step=False, on_epoch=True, batch_size=n)
        return parts["loss"]

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        if self.forces:
            # batch tensors made under inference mode cannot be saved for backward: clone them
            with torch.inference_mode(False), torch.enable_grad():
                parts = self._losses(batch.clone(), train=False)
        else:
            parts = self._losses(batch, train=False)
        n = int(batch.num_graphs)
        self.log("val_loss", parts["loss"].detach(), on_step=False, on_epoch=True, batch_size=n)
        self.log("val_mae", parts["mae"], on_step=False, on_epoch=True, batch_size=n)
        if "force_mae" in parts:
            self.log("val_force_mae", parts["force_mae"], on_step=False, on_epoch=True, batch_size=n)
