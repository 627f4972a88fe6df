"""Settings of the smoothed node classifier (``molgraph train --method smoothed_gcn``).

Sections ``[data]``, ``[splits]``, ``[smoothing]``, ``[network]`` and ``[train]``. The defaults are
the sparse-smoothing experiments' (Bojchevski et al., ICML 2020; their ``train_and_cert.py``):
Cora-ML's largest connected component, 20 labelled nodes per class, attribute noise p+ = 0.01,
p- = 0.6, a 2-layer GCN with 64 hidden units and dropout 0.5, Adam at lr 1e-3 with weight decay
1e-3, one noisy graph per step, early stopping after 50 epochs without a better validation loss
(at most 3000 epochs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from molgraph.registry import SCHEDULES
from molgraph.train.settings import SectionedConfig, TrainerSettings, setting

__all__ = ["SmoothedGCNConfig", "SmoothingSettings"]

NODE_DATASETS = ("cora_ml", "citeseer")


@dataclass
class NodeDataSettings:
    dataset: str = setting("cora_ml", flags=("-d",), choices=NODE_DATASETS, help="%(choices)s (default cora_ml)")
    data_root: str | None = setting(None, help="data root holding graphs/<dataset>/", path=True,
                                    default_text="$MOLGRAPH_DATA, else ../shared/data")
    lcc: bool = setting(True, help="keep the largest connected component (the certificate papers' graphs)")


@dataclass
class NodeSplitSettings:
    n_train_per_class: int = setting(20, help="labelled training nodes per class (default 20)", minimum=1)
    n_val_per_class: int = setting(20, help="validation nodes per class (default 20)", minimum=1)
    split_seed: int = setting(0, help="seed of the per-class draw (default 0)")


@dataclass
class SmoothingSettings:
    """Flip probabilities of the smoothing distribution (0 -> 1: ``p_plus``; 1 -> 0: ``p_minus``)."""

    p_plus: float = setting(0.01, help="attribute 0->1 flip probability (default 0.01)", minimum=0)
    p_minus: float = setting(0.6, help="attribute 1->0 flip probability (default 0.6)", minimum=0)
    p_plus_adj: float = setting(0.0, help="edge addition probability (default 0: attributes only)", minimum=0)
    p_minus_adj: float = setting(0.0, help="edge deletion probability (default 0: attributes only)", minimum=0)

    def validate(self) -> None:
        from molgraph.methods.certificates.smoothing import SmoothingParams

        SmoothingParams(self.p_plus, self.p_minus, self.p_plus_adj, self.p_minus_adj)  # ranges, named
        if self.p_plus == self.p_minus == self.p_plus_adj == self.p_minus_adj == 0.0:
            raise ValueError("every flip probability is 0: nothing is smoothed, so nothing can be certified")


@dataclass
class GCNSettings:
    hidden: int = setting(64, help="hidden width (default 64)", minimum=1)
    n_layers: int = setting(2, help="GCN layers = hops of the receptive field (default 2)", minimum=1)
    dropout: float = setting(0.5, help="dropout (default 0.5)", minimum=0)


@dataclass
class NodeTrainSettings(TrainerSettings):
    """The shared trainer's settings with the sparse-smoothing experiments' defaults."""

    epochs: int = setting(3000, help="at most this many epochs (default 3000; one step each)", minimum=1)
    patience: int | None = setting(50, help="early stopping after N epochs without a better val_loss (default 50)",
                                   minimum=1)
    batch_size: int = setting(100_000, flags=("-b",), help="training nodes per step (default: all of them)",
                              minimum=1)
    weight_decay: float = setting(1e-3, help="optimizer weight decay (default 1e-3)", minimum=0)
    schedule: str = setting("constant", choices=SCHEDULES, help="LR schedule: %(choices)s (default constant)")
    warmup_epochs: float = setting(0.0, help="warm-up of the schedule, in epochs (default 0)", minimum=0)


@dataclass(init=False, eq=False, repr=False)
class SmoothedGCNConfig(SectionedConfig):
    data: NodeDataSettings = field(default_factory=NodeDataSettings)
    splits: NodeSplitSettings = field(default_factory=NodeSplitSettings)
    smoothing: SmoothingSettings = field(default_factory=SmoothingSettings)
    network: GCNSettings = field(default_factory=GCNSettings)
    train: NodeTrainSettings = field(default_factory=NodeTrainSettings)
