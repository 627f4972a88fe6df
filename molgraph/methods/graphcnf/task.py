"""Training GraphCNF through the shared trainer: the data module, the beta schedule, the loss.

Training batches come from a :class:`~molgraph.data.dense_graphs.LengthBucketSampler` (molecules
of similar sizes together, seeded by ``(data_seed, epoch)``). The loss of a batch is its negative
log-likelihood in bits per atom (the sum over its graphs divided by its atoms) with the decoders'
terms weighted by ``beta = beta_end + (beta_start - beta_end) * 0.5 ** (step / half_life)``, plus ``cdf_reg``
times the mixture-CDF penalty per atom. ``val_loss`` is the same bound with ``beta = 1`` and
encoder noise seeded by the batch number (the same every epoch), in bits per atom: comparable
across epochs and runs. With ``val_samples > 0`` each validation also samples that many
molecules (seeded) and logs ``val_validity``.
"""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from molgraph.data.dense_graphs import DenseGraphBatcher, DenseMolGraphs, LengthBucketSampler
from molgraph.data.loader import IndexDataset, graph_loader
from molgraph.train.task import Task

__all__ = ["GraphCNFDataModule", "GraphCNFTask", "beta_at", "evaluate_bits"]


def beta_at(step: int, beta_start: float, half_life: float, beta_end: float = 1.0) -> float:
    """The decoders' weight at optimizer step ``step``:
    ``beta_end + (beta_start - beta_end) * 0.5 ** (step / half_life)``."""
    return float(beta_end) + (float(beta_start) - float(beta_end)) * 0.5 ** (float(step) / float(half_life))


class _Batches:
    """Collate of index lists from a batch sampler (each item is already a whole batch)."""

    def __init__(self, batcher: DenseGraphBatcher, positions: np.ndarray):
        self.batcher, self.positions = batcher, positions

    def __call__(self, items: list) -> Any:
        return self.batcher(self.positions[np.asarray(items, dtype=np.int64)])


class GraphCNFDataModule(L.LightningDataModule):
    """Length-bucketed training batches and ordered validation batches of dense graphs.

    Args:
        graphs: every molecule of the run; train, val: positions in ``graphs``.
        batch_size: molecules per training batch; data_seed: seed of the order;
        steps_per_epoch: batches per epoch (``None``: one pass).
    """

    def __init__(self, graphs: DenseMolGraphs, train: np.ndarray, val: np.ndarray, *, batch_size: int,
                 data_seed: int = 0, steps_per_epoch: int | None = None):
        super().__init__()
        self.graphs = graphs
        self.batcher = DenseGraphBatcher(graphs)
        self.train_idx = np.asarray(train, dtype=np.int64)
        self.val_idx = np.asarray(val, dtype=np.int64)
        if self.train_idx.size == 0:
            raise ValueError("the training set is empty")
        self.batch_size, self.data_seed, self.steps_per_epoch = int(batch_size), int(data_seed), steps_per_epoch

    def train_dataloader(self) -> DataLoader:
        sampler = LengthBucketSampler(self.graphs.lengths[self.train_idx], self.batch_size, seed=self.data_seed,
                                      num_batches=self.steps_per_epoch)
        # the sampler yields positions in train_idx; the collate maps them to graph indices
        return DataLoader(IndexDataset(np.arange(self.train_idx.size)), batch_sampler=sampler,
                          collate_fn=_Batches(self.batcher, self.train_idx))

    def val_dataloader(self) -> DataLoader | list:
        if self.val_idx.size == 0:
            return []
        order = self.val_idx[np.argsort(self.graphs.lengths[self.val_idx], kind="stable")]
        return graph_loader(self.batcher, order, batch_size=max(self.batch_size, 128))


@torch.no_grad()
def evaluate_bits(model: torch.nn.Module, batcher: DenseGraphBatcher, indices: np.ndarray, *, seed: int = 0,
                  batch_size: int = 128) -> np.ndarray:
    """``(len(indices),)`` bits per atom (beta = 1) of the molecules at ``indices``, with encoder
    noise from a generator seeded by ``seed``."""
    was = model.training
    model.eval()
    gen = torch.Generator().manual_seed(int(seed))
    out = np.zeros(len(indices))
    for i in range(0, len(indices), batch_size):
        b = batcher(np.asarray(indices[i:i + batch_size]))
        noise = model.noise(b["mask"], gen)
        r = model.encode(b["types"], b["adj"], b["mask"], beta=1.0, noise=noise)
        out[i:i + batch_size] = model.bits_per_node(r["ll"], b["mask"]).double().numpy()
    model.train(was)
    return out


class GraphCNFTask(Task):
    """Negative log-likelihood in bits per atom (see the module doc).

    Args:
        model: a :class:`~molgraph.methods.graphcnf.model.GraphCNF`.
        beta_start, beta_half_life, beta_end: the decoders' weight schedule (``beta_end = 1``:
            the paper's, a likelihood bound; above 1 the decoders' terms are weighted up so
            that encode -> decode stays exact, see docs/graphcnf.md).
        cdf_reg: weight of the mixture-CDF penalty.
        val_seed: seed of the validation noise and samples.
        val_samples: molecules sampled per validation (0: none) and the length histogram they
            draw sizes from (``length_hist``).
        vocab: the atom vocabulary (to judge the samples).
        time_limit: minutes; training stops after the first epoch that ends past it.
        **kwargs: :class:`~molgraph.train.task.Task`'s.
    """

    def __init__(self, model: torch.nn.Module, *, beta_start: float = 2.0, beta_half_life: float = 1000.0,
                 beta_end: float = 1.0, cdf_reg: float = 1.0, val_seed: int = 0, val_samples: int = 0, length_hist: Any = None,
                 vocab: Any = None, time_limit: float | None = None, **kwargs: Any):
        super().__init__(model, **kwargs)
        self.beta_start, self.beta_half_life, self.cdf_reg = beta_start, beta_half_life, cdf_reg
        self.beta_end = beta_end
        self.val_seed, self.val_samples = int(val_seed), int(val_samples)
        self.length_hist, self.vocab = length_hist, vocab
        self.time_limit = time_limit
        self._t0: float | None = None
        self._val_sum = 0.0
        self._val_nodes = 0.0

    def _loss(self, batch: dict[str, torch.Tensor], beta: float, noise: Any = None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r = self.model.encode(batch["types"], batch["adj"], batch["mask"], beta=beta, noise=noise)
        nodes = batch["mask"].sum().to(r["ll"].dtype)
        nll_bits = -r["ll"].sum() / (nodes * math.log(2.0))
        return nll_bits, r["reg"].sum() / nodes, nodes

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self._t0 is None:
            self._t0 = time.monotonic()
        beta = beta_at(self.global_step, self.beta_start, self.beta_half_life, self.beta_end)
        nll, reg, nodes = self._loss(batch, beta)
        loss = nll + self.cdf_reg * reg
        n = int(batch["types"].shape[0])
        self.log("train_loss", nll, on_step=False, on_epoch=True, batch_size=n)
        self.log("beta", beta, on_step=False, on_epoch=True, batch_size=n)
        return loss

    def on_train_epoch_end(self) -> None:
        if self.time_limit is not None and self._t0 is not None and \
                time.monotonic() - self._t0 > 60.0 * float(self.time_limit):
            self.trainer.should_stop = True

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        gen = torch.Generator().manual_seed(self.val_seed * 1_000_003 + batch_idx)
        noise = self.model.noise(batch["mask"], gen)
        r = self.model.encode(batch["types"], batch["adj"], batch["mask"], beta=1.0, noise=noise)
        self._val_sum += float(-r["ll"].sum()) / math.log(2.0)
        self._val_nodes += float(batch["mask"].sum())

    def on_validation_epoch_end(self) -> None:
        if self._val_nodes:
            self.log("val_loss", self._val_sum / self._val_nodes)
        self._val_sum, self._val_nodes = 0.0, 0.0
        if self.val_samples and self.length_hist is not None:
            from molgraph.methods.graphcnf.sampling import generate_graphs, judge

            types, adj, lengths = generate_graphs(self.model, self.length_hist, self.val_samples, seed=self.val_seed)
            checks = judge(types, adj, lengths, self.vocab)
            self.log("val_validity", float(np.mean([c.valid for c in checks])))
