"""Training the smoothed classifier's base GCN through the shared trainer.

Each training step classifies ONE noisy copy of the whole graph, drawn from the smoothing
distribution, and takes the cross-entropy on the batch's training nodes (the sparse-smoothing
experiments' protocol: ``n_samples_train = 1``). The noise comes from torch's global RNG, which
:class:`~molgraph.train.task.Task` reseeds before every batch, so a run (and a resumed run)
repeats exactly.

Validation classifies one noisy copy too, in evaluation mode, drawn from a generator seeded
with the run's seed: every epoch sees the same copy, so ``val_loss`` moves only with the weights
and early stopping compares like with like.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from molgraph.methods.certificates.smoothing import SmoothingParams, perturb_attributes, perturb_edges
from molgraph.train.task import Task

__all__ = ["NoisyGraph", "SmoothedNodeTask"]


class NoisyGraph(torch.nn.Module):
    """One attributed graph and its smoothing distribution; :meth:`sample` draws a noisy copy.

    Args:
        attr_index: ``(2, nnz)`` int64 (node, column) of the attribute matrix's 1-entries.
        edge_index: ``(2, E)`` int64, both directions, no self loops.
        n_nodes, n_features: the attribute matrix's shape.
        params: flip probabilities (0->1, 1->0) of attributes and of edges.

    The tensors are non-persistent buffers: they follow the module to its device and stay out
    of checkpoints.
    """

    def __init__(self, attr_index: torch.Tensor, edge_index: torch.Tensor, n_nodes: int, n_features: int,
                 params: SmoothingParams):
        super().__init__()
        self.register_buffer("attr_index", attr_index.long(), persistent=False)
        self.register_buffer("edge_index", edge_index.long(), persistent=False)
        self.n_nodes, self.n_features = int(n_nodes), int(n_features)
        self.params = params

    def sample(self, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(attr_index, edge_index)`` of one noisy copy (``generator=None``: torch's global RNG)."""
        p = self.params
        attr = (perturb_attributes(self.attr_index, (self.n_nodes, self.n_features), p.p_plus, p.p_minus,
                                   generator=generator)
                if p.p_plus > 0 or p.p_minus > 0 else self.attr_index)
        edges = (perturb_edges(self.edge_index, self.n_nodes, p.p_plus_adj, p.p_minus_adj, generator=generator)
                 if p.perturbs_edges else self.edge_index)
        return attr, edges


class SmoothedNodeTask(Task):
    """Cross-entropy of the base GCN on one noisy copy per step (see the module docstring).

    Args:
        model: a :class:`~molgraph.methods.certificates.model.SparseGCN`.
        graph: the clean graph and its noise.
        labels: ``(N,)`` int64 class of every node.
        val_seed: seed of the validation copy.
        **kwargs: :class:`~molgraph.train.task.Task`'s (optimizer, schedule, seed).
    """

    def __init__(self, model: torch.nn.Module, graph: NoisyGraph, labels: torch.Tensor, *, val_seed: int = 0,
                 **kwargs: Any):
        super().__init__(model, **kwargs)
        self.graph = graph
        self.register_buffer("labels", labels.long(), persistent=False)
        self.val_seed = int(val_seed)

    def _loss(self, batch: Any, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        attr, edges = self.graph.sample(generator)
        logits = self.model(attr, edges, self.graph.n_nodes)
        nodes = batch.input_id.to(logits.device)
        out, y = logits[nodes], self.labels[nodes]
        return F.cross_entropy(out, y), (out.argmax(1) == y).float().mean()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss, acc = self._loss(batch, None)
        n = int(batch.input_id.numel())
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=n)
        self.log("train_acc", acc, on_step=False, on_epoch=True, batch_size=n)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        generator = torch.Generator(device=self.graph.attr_index.device).manual_seed(self.val_seed + batch_idx)
        loss, acc = self._loss(batch, generator)
        n = int(batch.input_id.numel())
        self.log("val_loss", loss, on_step=False, on_epoch=True, batch_size=n)
        self.log("val_acc", acc, on_step=False, on_epoch=True, batch_size=n)
