"""Settings of a CGCF run: the flow, its training, the energy model, sampling.

One dataclass (:class:`CGCFConfig`); its fields are the keyword arguments of the training entry
point and the options of ``molgraph cgcf train`` (help text in each field's metadata). The model
file stores it as a plain dict, so a loaded model knows how it was built and trained.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["CGCFConfig", "ENERGY_NOISE", "FLOW_FIELDS"]

#: what the energy network is trained against (see ``CGCFConfig.energy_noise``)
ENERGY_NOISE = ("flow", "etkdg")
#: settings that define a trained flow and its data order: taken from the base run when only the
#: energy network is trained on an existing flow (``molgraph cgcf train --flow-from RUN``)
FLOW_FIELDS = ("hidden", "layers", "max_hops", "integration_time", "noise_std", "train_solver", "train_steps", "lr",
               "batch_size", "max_iters", "max_minutes", "n_train", "seed")


def _f(default: Any, help: str) -> Any:  # noqa: A002 - "help" is the metadata key the CLI reads
    return field(default=default, metadata={"help": help})


@dataclass
class CGCFConfig:
    """CGCF (Xu et al., ICLR 2021): a continuous flow over extended-graph distances plus an energy tilt."""

    # network of the flow's dynamics f(z, t; G)
    hidden: int = _f(64, "width of node, edge and time-conditioned layers")
    layers: int = _f(3, "message-passing layers of the dynamics network")
    max_hops: int = _f(3, "extended graph: atom pairs at hop distance 1..max_hops")
    integration_time: float = _f(0.5, "initial flow time T (learned, as in the reference)")
    # flow training
    noise_std: float = _f(0.1, "Gaussian noise (angstrom) added to target distances during training")
    train_solver: str = _f("rk4", "ODE solver in training: rk4 (fixed step) or dopri5 (adaptive)")
    train_steps: int = _f(4, "fixed-step solver: steps over [0, T]")
    lr: float = _f(1e-3, "Adam learning rate (betas 0.95, 0.999, as in the reference)")
    batch_size: int = _f(64, "molecules per training batch")
    max_iters: int = _f(20000, "flow training iterations (stops earlier at max_minutes)")
    max_minutes: float = _f(15.0, "wall-clock budget of flow training, minutes")
    # evaluation / sampling solver
    eval_solver: str = _f("dopri5", "ODE solver for sampling and log-likelihoods: dopri5 (adaptive) or rk4")
    eval_steps: int = _f(8, "steps of the rk4 speed mode")
    atol: float = _f(1e-5, "dopri5 absolute tolerance")
    rtol: float = _f(1e-5, "dopri5 relative tolerance")
    # distance geometry
    dg_weight_base: float = _f(0.5, "weight of an order-k edge in the least squares: base ** (k - 1)")
    dg_steps: int = _f(200, "Adam steps of the weighted least squares (then a 100-step L-BFGS polish)")
    dg_restarts: int = _f(4, "starts per conformer in the least squares (the lowest objective is kept)")
    # energy model (noise-contrastive estimation against the frozen flow)
    energy_hidden: int = _f(64, "width of the SchNet-style energy network")
    energy_layers: int = _f(3, "interaction blocks of the energy network")
    energy_epochs: int = _f(30, "NCE epochs over the data/flow-sample pairs")
    energy_lr: float = _f(5e-4, "Adam learning rate of the energy network")
    energy_max_minutes: float = _f(8.0, "wall-clock budget of energy training, minutes")
    nce_samples: int = _f(1, "flow samples per training molecule as NCE noise (data:noise = 1:this)")
    nce_molecules: int = _f(1000, "training molecules whose DFT geometry and flow samples train the energy network")
    energy_noise: str = _f("flow", "what the energy network learns against: 'flow' (NCE against frozen-flow samples, "
                                   "the paper) or 'etkdg' (conditional NCE against ETKDG+MMFF94 conformers of the same "
                                   "molecule, the DFT geometry relaxed with MMFF94 as the data: a ranker of ETKDG conformers)")
    energy_pool: int = _f(12, "energy_noise etkdg: ETKDG+MMFF94 conformers embedded per molecule as noise")
    energy_same_rmsd: float = _f(0.25, "energy_noise etkdg: pool conformers within this heavy-atom RMSD (angstrom) "
                                       "of the relaxed DFT geometry are the same conformer, not noise")
    # Langevin tilt at sampling
    langevin_steps: int = _f(0, "Langevin steps on log p_flow - E after the flow (0: flow samples only)")
    langevin_step_size: float = _f(1e-4, "Langevin step size eta (angstrom^2): x += eta/2 grad + sqrt(eta) noise")
    # data
    n_train: int = _f(5000, "QM9 training molecules (Cormorant train split, first after a seeded shuffle)")
    n_val: int = _f(500, "QM9 validation molecules (Cormorant validation split) for the NCE accuracy")
    seed: int = _f(0, "seed of the data order, initialisation, noise and probes")

    def validate(self) -> None:
        """Raise ``ValueError`` naming the setting when a value is out of range."""
        for name in ("hidden", "layers", "train_steps", "eval_steps", "batch_size", "max_iters",
                     "energy_hidden", "energy_layers", "nce_samples", "nce_molecules", "n_train", "dg_steps", "dg_restarts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 1 <= self.max_hops <= 4:
            raise ValueError(f"max_hops must be in 1..4, got {self.max_hops}")
        for name in ("train_solver", "eval_solver"):
            if getattr(self, name) not in ("rk4", "dopri5"):
                raise ValueError(f"{name} must be rk4 or dopri5, got {getattr(self, name)!r}")
        for name in ("noise_std", "langevin_step_size", "integration_time", "lr", "energy_lr"):
            if getattr(self, name) < 0 or (name in ("integration_time", "lr", "energy_lr") and getattr(self, name) == 0):
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.energy_noise not in ENERGY_NOISE:
            raise ValueError(f"energy_noise must be one of {ENERGY_NOISE}, got {self.energy_noise!r}")
        if self.energy_pool < 2:
            raise ValueError(f"energy_pool must be >= 2, got {self.energy_pool}")
        if self.energy_same_rmsd < 0:
            raise ValueError(f"energy_same_rmsd must be >= 0, got {self.energy_same_rmsd}")
        if self.langevin_steps < 0 or self.seed < 0:
            raise ValueError("langevin_steps and seed must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "CGCFConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown CGCF settings {unknown}")
        return cls(**values)
