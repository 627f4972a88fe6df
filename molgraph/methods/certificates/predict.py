"""The smoothed classifier: majority votes of the base GCN over noisy copies of the graph.

``g(x)_c = P(f(noisy x) = c)``, estimated by counting the base network's predictions over ``n``
noisy copies (Cohen et al. 2019; Bojchevski et al. 2020). :class:`SmoothedClassifier` is what a
model file of the ``smoothed_gcn`` method loads into: the network, the graph it was trained on
and the noise it was trained with.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from molgraph.methods.certificates.model import SparseGCN
from molgraph.methods.certificates.smoothing import SmoothingParams
from molgraph.methods.certificates.task import NoisyGraph

__all__ = ["SmoothedClassifier", "count_votes", "noisy_graph_of"]

SMOOTHING_KEYS = ("p_plus", "p_minus", "p_plus_adj", "p_minus_adj")


def noisy_graph_of(graph: Any, smoothing: dict[str, float]) -> NoisyGraph:
    """The :class:`NoisyGraph` of a :class:`~molgraph.data.node_graph.NodeGraph` and flip probabilities."""
    coo = graph.attr.tocoo()
    attr_index = torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64))
    return NoisyGraph(attr_index, torch.from_numpy(graph.edge_index), graph.num_nodes, graph.num_features,
                      SmoothingParams(**{k: float(smoothing[k]) for k in SMOOTHING_KEYS}))


def count_votes(model: SparseGCN, graph: NoisyGraph, n_samples: int, *, n_classes: int, batch: int = 10,
                seed: int = 0) -> np.ndarray:
    """``(N, C)`` int64: how often the base network predicts each class for each node, over
    ``n_samples`` noisy copies of the graph drawn from a generator seeded with ``seed``.

    ``batch`` copies are classified per forward pass, as one disjoint graph (memory grows
    linearly with it); the network runs in evaluation mode (the noise is the smoothing, not
    dropout) and is left in the mode it had.
    """
    from molgraph.methods.certificates.smoothing import sample_votes

    if n_samples < 1 or batch < 1:
        raise ValueError(f"n_samples and batch must be >= 1, got {n_samples} and {batch}")
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=graph.attr_index.device).manual_seed(int(seed))
    try:
        votes = sample_votes(lambda a, e, n: model(a, e, n).argmax(1), graph.attr_index,
                             (graph.n_nodes, graph.n_features), graph.edge_index, graph.n_nodes, graph.params,
                             n_samples, n_classes, batch=batch, generator=gen)
    finally:
        model.train(was_training)
    return votes.cpu().numpy()


@dataclass
class SmoothedClassifier:
    """A trained smoothed node classifier (what ``molgraph predict``/``certify`` load from a model file).

    Attributes:
        model: the base network, in evaluation mode.
        graph: the node graph it was trained on (:class:`~molgraph.data.node_graph.NodeGraph`).
        smoothing: flip probabilities ``p_plus``, ``p_minus``, ``p_plus_adj``, ``p_minus_adj``.
        split: ``{"train", "val", "test"}`` node indices of the training run.
        section: the model file's section (kept to record where results came from).
    """

    model: SparseGCN
    graph: Any
    smoothing: dict[str, float]
    split: dict[str, np.ndarray]
    section: dict[str, Any]

    @classmethod
    def from_section(cls, section: dict[str, Any], payload: dict[str, Any],
                     root: str | os.PathLike[str] | None = None) -> "SmoothedClassifier":
        """Rebuild from a model file; the graph is re-read from the data root (``root``, else the
        one the run used, else ``$MOLGRAPH_DATA``) and must be the same nodes as at training."""
        from molgraph.data.node_graph import load_node_graph

        model = SparseGCN(**section["model_config"])
        model.load_state_dict(payload["members"][0])
        model.eval()
        data = section["data"]
        graph = load_node_graph(data["dataset"], root if root is not None else data.get("data_root"), lcc=data["lcc"])
        expected = np.asarray(section["node_ids"], dtype=np.int64)
        if not np.array_equal(graph.node_ids, expected) or graph.num_features != model.config["n_features"]:
            raise ValueError(f"{data['dataset']}: the graph in the data root is not the one the model was trained on "
                             f"({graph.num_nodes} nodes, {graph.num_features} attributes; model: {expected.size} "
                             f"nodes, {model.config['n_features']} attributes)")
        split = {k: np.asarray(v, dtype=np.int64) for k, v in section["split"].items()}
        return cls(model, graph, dict(section["smoothing"]), split, section)

    @property
    def n_classes(self) -> int:
        return int(self.model.config["n_classes"])

    def noisy_graph(self) -> NoisyGraph:
        return noisy_graph_of(self.graph, self.smoothing)

    def votes(self, n_samples: int, *, batch: int = 10, seed: int = 0, device: str = "cpu") -> np.ndarray:
        """``(N, C)`` vote counts over ``n_samples`` noisy copies (see :func:`count_votes`)."""
        model = self.model.to(device)
        return count_votes(model, self.noisy_graph().to(device), n_samples, n_classes=self.n_classes, batch=batch,
                           seed=seed)
