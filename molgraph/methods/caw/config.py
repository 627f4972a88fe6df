"""Settings of CAW-N (``molgraph train --method caw``).

Sections ``[data]``, ``[splits]``, ``[walks]``, ``[network]`` and ``[train]``. Defaults follow
the reference's README and the notes (``../shared/notes/caw.md``): M = 32 walks of L = 2 hops,
alpha = 1e-6 per second, position width 32, mean pooling, dropout 0.1, one negative per
positive, chronological 70/15/15 split, 10 % masked nodes in the inductive setting. The trainer
defaults differ from the reference's (Adam at 1e-4, batch 32-64, 50 epochs) for CPU budgets:
batch 200 events, constant lr 1e-3, 5 epochs, early stopping on ``val_ap`` after 2 epochs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from molgraph.data.temporal import TEMPORAL_SETS
from molgraph.registry import SCHEDULES
from molgraph.train.settings import SectionedConfig, TrainerSettings, setting

__all__ = ["CAWConfig"]


@dataclass
class TemporalDataSettings:
    dataset: str = setting("uci", flags=("-d",), choices=tuple(TEMPORAL_SETS), help="%(choices)s (default uci)")
    data_root: str | None = setting(None, help="data root holding graphs/<dataset>/", path=True,
                                    default_text="$MOLGRAPH_DATA, else ../shared/data")
    self_loops: str = setting("keep", choices=("keep", "drop"), help="events with src == dst: %(choices)s "
                                                                      "(default keep; Enron has 16,410)")
    max_events: int | None = setting(None, help="use only the first N events (a CPU-sized prefix)", minimum=10,
                                      default_text="all")


@dataclass
class TemporalSplitSettings:
    inductive: bool = setting(False, help="inductive setting: mask nodes after the train cut, train on a store "
                                          "without them, test on events touching them (default off: transductive)")
    mask_fraction: float = setting(0.1, help="inductive: masked nodes as a fraction of all nodes (default 0.1)",
                                   minimum=0)
    split_seed: int = setting(0, help="seed of the masked nodes and the evaluation negatives (default 0)")


@dataclass
class WalkSettings:
    n_walks: int = setting(32, help="walks per endpoint M (default 32)", minimum=1)
    walk_length: int = setting(2, help="hops per walk L (default 2)", minimum=1)
    alpha: float = setting(1e-6, help="time bias per second: P(event) ~ exp(alpha (t_e - t_cut)) (default 1e-6)",
                           minimum=0)


@dataclass
class CAWNetworkSettings:
    position: str = setting("anonymous", choices=("anonymous", "node_id"),
                            help="position encoding: %(choices)s (node_id: the raw-id ablation; default anonymous)")
    pooling: str = setting("mean", choices=("mean", "attn"), help="walk pooling: %(choices)s (default mean)")
    pos_dim: int = setting(32, help="position encoding width (default 32)", minimum=1)
    time_dim: int = setting(32, help="time encoding width (default 32)", minimum=1)
    hidden: int = setting(64, help="GRU and embedding width (default 64)", minimum=1)
    dropout: float = setting(0.1, help="dropout (default 0.1)", minimum=0)


@dataclass
class CAWTrainSettings(TrainerSettings):
    """The shared trainer's settings with CAW-N's CPU-sized defaults."""

    epochs: int = setting(5, help="default 5", minimum=1)
    patience: int | None = setting(2, help="early stopping after N epochs without a better val_ap (default 2)",
                                   minimum=1)
    batch_size: int = setting(200, flags=("-b",), help="positive events per batch (default 200)", minimum=1)
    schedule: str = setting("constant", choices=SCHEDULES, help="LR schedule: %(choices)s (default constant)")
    warmup_epochs: float = setting(0.0, help="warm-up of the schedule, in epochs (default 0)", minimum=0)
    monitor: str = setting("val_ap", flags=("--tracking-metric",),
                           help="what selects the best epoch: val_ap (default), val_auc or val_loss")


@dataclass(init=False, eq=False, repr=False)
class CAWConfig(SectionedConfig):
    data: TemporalDataSettings = field(default_factory=TemporalDataSettings)
    splits: TemporalSplitSettings = field(default_factory=TemporalSplitSettings)
    walks: WalkSettings = field(default_factory=WalkSettings)
    network: CAWNetworkSettings = field(default_factory=CAWNetworkSettings)
    train: CAWTrainSettings = field(default_factory=CAWTrainSettings)
