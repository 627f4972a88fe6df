"""Settings of GraphCNF (``molgraph train --method graphcnf``).

Sections ``[data]``, ``[network]``, ``[flow]`` and ``[train]``. The paper's model (Lippe & Gavves
2021; reference defaults in ``../shared/notes/graphcnf.md``) is hidden 384/192, flows 4/6/6,
mixtures 16/8, about 70 M parameters, 150k iterations on a GPU. The defaults here are a
CPU-sized model (hidden 64/32, flows 2/3/3, two message-passing rounds: about 0.5 M parameters)
on molecules with at most 20 heavy atoms; the latent widths (6 for atoms, 2 for bonds) and the
mixture counts are the paper's. Two departures keep encode -> decode exact after training (see
docs/graphcnf.md): beta stays at 3 (the paper anneals 2 -> 1: ``--beta-start 2 --beta-end 1``)
and the atom and bond encoders' scales are bounded by their spacing (``--encoder-separation 48``;
0 frees them, as in the paper).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from molgraph.registry import SCHEDULES
from molgraph.train.settings import SectionedConfig, TrainerSettings, setting

__all__ = ["GraphCNFConfig"]


@dataclass
class GenerativeDataSettings:
    dataset: str | None = setting("moses", flags=("-d",),
                                  help="registered molecule set (moses), or none with --data-path (default moses)")
    data_path: str | None = setting(None, help="a SMILES file (.csv/.tsv with --smiles-column, or .smi) instead of "
                                               "a registered set", path=True, default_text="none")
    smiles_column: str = setting("SMILES", help="SMILES column of --data-path (default SMILES)")
    data_root: str | None = setting(None, help="data root holding zinc/moses/", path=True,
                                    default_text="$MOLGRAPH_DATA, else ../shared/data")
    max_atoms: int = setting(20, help="keep molecules with at most N heavy atoms (default 20)", minimum=1)
    max_molecules: int | None = setting(None, help="keep the first N molecules (train + val) of a seeded shuffle",
                                        minimum=2, default_text="all")
    val_size: int = setting(500, help="molecules held out for validation (default 500)", minimum=1)
    data_seed: int = setting(0, help="seed of the shuffle, the split and the batch order (default 0)")


@dataclass
class GraphCNFNetworkSettings:
    node_dim: int = setting(6, help="latent width of an atom (default 6)", minimum=2)
    edge_dim: int = setting(2, help="latent width of a pair (default 2)", minimum=2)
    hidden: int = setting(64, help="node width of the conditioner networks (default 64)", minimum=1)
    edge_hidden: int = setting(32, help="pair width of the edge GNNs and of the edge decoder (default 32)", minimum=1)
    gnn_layers: int = setting(2, help="message-passing rounds of every conditioner (default 2)", minimum=1)
    node_flows: int = setting(2, help="coupling blocks of step 1, atoms (default 2)", minimum=1)
    bond_flows: int = setting(3, help="coupling blocks of step 2, bonds (default 3)", minimum=1)
    pair_flows: int = setting(3, help="coupling blocks of step 3, all pairs (default 3)", minimum=1)
    node_mixtures: int = setting(16, help="logistic components of the atom couplings (default 16)", minimum=1)
    edge_mixtures: int = setting(8, help="logistic components of the pair couplings (default 8)", minimum=1)
    encoder_separation: float = setting(
        48.0, help="bound on the atom and bond encoders' scales: the L1 distance from a category's mean to the "
                   "nearest other mean, in scales (default 48; 0 = free scales, as in the paper)", minimum=0)


@dataclass
class FlowSettings:
    beta_start: float = setting(3.0, help="initial weight of the decoders' log-likelihoods (default 3.0; the "
                                          "paper anneals 2 -> 1)", minimum=1)
    beta_end: float = setting(3.0, help="the value beta settles at (default 3.0: constant; the paper's 1.0 gives "
                                        "the likelihood bound but not exact encode -> decode)", minimum=1)
    beta_half_life: float = setting(1000.0, help="steps in which beta - beta_end halves (default 1000)", minimum=1)
    cdf_reg: float = setting(1.0, help="weight of the mixture-CDF penalty, per atom (default 1.0)", minimum=0)
    val_samples: int = setting(0, help="molecules sampled at each validation for val_validity (default 0: none)",
                               minimum=0)
    eval_samples: int = setting(1000, help="molecules sampled after training for the run's metrics (default 1000)",
                                minimum=0)
    steps_per_epoch: int | None = setting(None, help="batches per epoch (default: one pass over the training set)",
                                          minimum=1, default_text="one pass")
    time_limit: float | None = setting(None, help="stop after the first epoch that ends past this many minutes",
                                       minimum=0, default_text="none")


@dataclass
class GraphCNFTrainSettings(TrainerSettings):
    """The shared trainer's settings with GraphCNF's defaults (Adam, constant lr 1e-3, clip 1)."""

    epochs: int = setting(20, help="default 20", minimum=1)
    batch_size: int = setting(64, flags=("-b",), help="molecules per batch (default 64)", minimum=1)
    schedule: str = setting("constant", choices=SCHEDULES, help="LR schedule: %(choices)s (default constant)")
    warmup_epochs: float = setting(0.0, help="warm-up of the schedule, in epochs (default 0)", minimum=0)
    max_lr: float = setting(1e-3, help="default 1e-3")
    grad_clip: float | None = setting(1.0, help="gradient norm clipping (default 1.0)")
    monitor: str = setting("val_loss", flags=("--tracking-metric",),
                           help="what selects the best epoch: val_loss (bits per atom, default) or val_validity")


@dataclass(init=False, eq=False, repr=False)
class GraphCNFConfig(SectionedConfig):
    data: GenerativeDataSettings = field(default_factory=GenerativeDataSettings)
    network: GraphCNFNetworkSettings = field(default_factory=GraphCNFNetworkSettings)
    flow: FlowSettings = field(default_factory=FlowSettings)
    train: GraphCNFTrainSettings = field(default_factory=GraphCNFTrainSettings)
