"""Settings of Cormorant (``molgraph train --method cormorant``).

Sections ``[data]``, ``[network]``, ``[objective]`` and ``[train]``. Network defaults follow the
reference repository's (risilab/cormorant ``engine/args.py``: 4 CG levels, lmax 3, charge power
2, radial basis (3, 3), soft cutoff 1.73 angstrom wide 0.2, input MLP 256, readout 256/64),
except ``channels`` (16 real channels; the reference has 10 complex ones, i.e. 20 real) and the
per-level normalization (see :mod:`molgraph.methods.cormorant.model`). The trainer defaults are
the reference's protocol: AMSGrad, learning rate 1e-3 to 1e-5 by a cosine stepped per batch,
batch 25, no weight decay; epochs default to 20 (the reference runs 255 on a GPU).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from molgraph.registry import OPTIMIZERS, SCHEDULES
from molgraph.train.settings import SectionedConfig, TrainerSettings, setting

__all__ = ["CormorantConfig", "QM9_TARGET_CHOICES", "register_amsgrad"]

QM9_TARGET_CHOICES = ("mu", "alpha", "homo", "lumo", "gap", "r2", "zpve", "U0", "U", "H", "G", "Cv")


def _amsgrad(params, lr: float, weight_decay: float = 0.0, **kwargs) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, amsgrad=True, **kwargs)


def register_amsgrad() -> None:
    """Make ``amsgrad`` (Adam with the AMSGrad maximum, Reddi et al. 2018) a registered optimizer."""
    if "amsgrad" not in OPTIMIZERS:
        OPTIMIZERS.register("amsgrad", _amsgrad, help="Adam with AMSGrad (Reddi et al. 2018; Cormorant's optimizer)")


register_amsgrad()


@dataclass
class CormorantDataSettings:
    dataset: str = setting("qm9", flags=("-d",), choices=("qm9", "rmd17"), help="%(choices)s (default qm9)")
    target: str = setting("U0", choices=QM9_TARGET_CHOICES,
                          help="QM9 target (energies in meV after atomref subtraction, mu in D, alpha in bohr^3; "
                               "default U0)")
    molecule: str = setting("aspirin", choices=("aspirin", "ethanol", "malonaldehyde", "uracil"),
                            help="rMD17 molecule (default aspirin)")
    rmd17_split: int = setting(1, help="official rMD17 split 1..5 (default 1)", minimum=1)
    data_root: str | None = setting(None, help="data root holding 3d/qm9/ or 3d/rmd17/", path=True,
                                    default_text="$MOLGRAPH_DATA, else ../shared/data")
    n_train: int | None = setting(None, help="training examples: a seeded subset of the split's training part",
                                  minimum=1, default_text="all (QM9: 100,000; rMD17: 950)")
    n_valid: int | None = setting(None, help="validation examples (a seeded subset)", minimum=1,
                                  default_text="all (QM9: 17,748; rMD17: 50 of the 1,000 training frames)")
    n_test: int | None = setting(None, help="test examples (a seeded subset)", minimum=1,
                                 default_text="all (QM9: 13,083; rMD17: the 1,000 test frames)")
    subset_seed: int = setting(0, help="seed of the subsets and of rMD17's train/valid division (default 0)")
    cutoff: float = setting(5.0, help="radius graph cutoff, angstrom (default 5)", minimum=0)


@dataclass
class CormorantNetworkSettings:
    levels: int = setting(4, help="CG levels (default 4)", minimum=1)
    lmax: int = setting(2, help="highest degree of features and edge harmonics (reference 3; default 2 on CPU)",
                        minimum=0)
    channels: int = setting(16, help="real channels per irrep (default 16)", minimum=1)
    parity: str = setting("e3", choices=("e3", "so3"),
                          help="e3: natural-parity irreps (O(3)-invariant); so3: both parities of every l, all of "
                               "the reference's CG paths at twice the features (default e3)")
    charge_power: int = setting(2, help="inputs one-hot x (Z/Zmax)^p for p = 0..P (default 2)", minimum=0)
    max_power: int = setting(3, help="radial basis r^-p, p = 0..P (default 3)", minimum=0)
    max_freq: int = setting(3, help="radial basis frequencies k = 0..K (default 3)", minimum=0)
    soft_cutoff: float = setting(1.73, help="initial learned soft cutoff, angstrom (default 1.73)", minimum=0)
    soft_width: float = setting(0.2, help="initial soft cutoff width, angstrom (default 0.2)", minimum=0)
    input_block: str = setting("mpnn", choices=("mpnn", "linear"), help="input block: %(choices)s (default mpnn)")
    input_hidden: int = setting(256, help="input MLP hidden width (default 256)", minimum=1)
    readout_hidden: list[int] = setting(default_factory=lambda: [256, 64], nargs=2, metavar=("H1", "H2"),
                                        help="readout MLP widths (default 256 64)")
    activation: str = setting("auto", choices=("auto", "leakyrelu", "silu"),
                              help="MLP activation; auto: leakyrelu (reference) for energies only, silu (smooth) "
                                   "when forces are trained")
    modern: bool = setting(False, help="gates and residuals after each level (NequIP-style ablation)")
    level_norm: bool = setting(True, help="per-atom RMS normalization of each level's output (default on)")


@dataclass
class CormorantObjectiveSettings:
    offsets: str = setting("species", choices=("species", "none"),
                           help="species: subtract a least-squares fit on the per-species atom counts (training "
                                "part) before standardizing; none: the reference's plain standardization "
                                "(default species)")
    forces: bool | None = setting(None, help="train on forces too (rMD17 only)", default_text="on for rmd17")
    force_weight: float = setting(10.0, help="weight of the force MSE (both in units of the energy's training "
                                             "standard deviation; default 10)", minimum=0)


@dataclass
class CormorantTrainSettings(TrainerSettings):
    """The shared trainer's settings with the reference's protocol as defaults."""

    epochs: int = setting(20, help="default 20 (reference: 255)", minimum=1)
    batch_size: int = setting(25, flags=("-b",), help="molecules per batch (default 25, the reference's)",
                              minimum=1)
    optimizer: str = setting("amsgrad", choices=OPTIMIZERS, help="%(choices)s (default amsgrad)")
    schedule: str = setting("cosine", choices=SCHEDULES, help="LR schedule: %(choices)s (default cosine per step)")
    warmup_epochs: float = setting(0.0, help="warm-up of the schedule, in epochs (default 0)", minimum=0)
    init_lr: float = setting(1e-3)
    max_lr: float = setting(1e-3)
    final_lr: float = setting(1e-5)
    monitor: str = setting("val_mae", flags=("--tracking-metric",),
                           help="what selects the best epoch: val_mae (default; energy MAE on rMD17), val_loss, "
                                "or val_force_mae")


@dataclass(init=False, eq=False, repr=False)
class CormorantConfig(SectionedConfig):
    data: CormorantDataSettings = field(default_factory=CormorantDataSettings)
    network: CormorantNetworkSettings = field(default_factory=CormorantNetworkSettings)
    objective: CormorantObjectiveSettings = field(default_factory=CormorantObjectiveSettings)
    train: CormorantTrainSettings = field(default_factory=CormorantTrainSettings)
