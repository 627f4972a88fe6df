"""The Lightning data module for graph datasets split into train/val/test.

Training batches come from a :class:`~torch.utils.data.DistributedSampler` even on one process:
its permutation depends only on ``(data_seed, epoch)``, so a resumed run sees the same batches,
and with ``W`` processes each rank takes every ``W``-th item of the same permutation. A
``W``-process run with per-process batch ``b`` therefore sees exactly the batches of a
1-process run with batch ``W * b`` (the test of data-parallel training relies on it).

Validation is not sharded: every process evaluates the whole validation set, so validation
metrics, checkpoint selection and early stopping are exact and identical on all ranks (no
padding duplicates) at the cost of redundant work on a set that is usually small.
"""

from __future__ import annotations

from typing import Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from molgraph.data.loader import Collate, IndexDataset, graph_loader

__all__ = ["GraphDataModule"]


class GraphDataModule(L.LightningDataModule):
    """Train/val/test loaders over the items of any :class:`~molgraph.data.loader.Collate`.

    The batcher may be a :class:`~molgraph.data.loader.GraphBatcher` (molecules), a node-subset or
    temporal-query batcher, or a method's own: anything that maps an index array to a batch.

    Args:
        batcher: turns an array of item indices into a batch (graphs with ``y``/``extra``, ...).
        train, val, test: positions of the items in each part.
        batch_size: items per batch *per process*.
        data_seed: seeds the training order.
        num_workers: DataLoader workers (0: collate in the training process, usually fastest
            here because a batch is a handful of vectorized gathers).
    """

    def __init__(
        self,
        batcher: Collate,
        train: Sequence[int],
        val: Sequence[int] = (),
        test: Sequence[int] = (),
        *,
        batch_size: int = 64,
        data_seed: int = 0,
        num_workers: int = 0,
    ):
        super().__init__()
        self.batcher = batcher
        self.train_idx = np.asarray(train, dtype=np.int64)
        self.val_idx = np.asarray(val, dtype=np.int64)
        self.test_idx = np.asarray(test, dtype=np.int64)
        if len(self.train_idx) == 0:
            raise ValueError("the training set is empty")
        self.batch_size = int(batch_size)
        self.data_seed = int(data_seed)
        self.num_workers = int(num_workers)

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 1, 0
        return int(trainer.world_size), int(trainer.global_rank)

    def train_dataloader(self) -> DataLoader:
        world, rank = self._world()
        dataset = IndexDataset(self.train_idx)
        sampler = DistributedSampler(
            dataset, num_replicas=world, rank=rank, shuffle=True, seed=self.data_seed, drop_last=False
        )
        # an own generator: creating the iterator must not draw from torch's global RNG
        generator = torch.Generator().manual_seed(self.data_seed)
        return graph_loader(
            self.batcher, self.train_idx, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers,
            generator=generator,
        )

    def val_dataloader(self) -> DataLoader | list:
        if len(self.val_idx) == 0:
            return []
        return graph_loader(self.batcher, self.val_idx, batch_size=max(self.batch_size, 256), num_workers=self.num_workers)

    def test_dataloader(self) -> DataLoader | list:
        if len(self.test_idx) == 0:
            return []
        return graph_loader(self.batcher, self.test_idx, batch_size=max(self.batch_size, 256), num_workers=self.num_workers)

    def loader(self, indices: Sequence[int]) -> DataLoader:
        """A plain, ordered loader over any positions (for prediction after training)."""
        return graph_loader(self.batcher, indices, batch_size=max(self.batch_size, 256))


