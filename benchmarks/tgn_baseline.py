"""TGN baseline for the CAW-N benchmark, on PyG's ``TGNMemory`` (Rossi et al., "Temporal Graph
Networks for Deep Learning on Dynamic Graphs", 2020).

The usual PyG composition: a per-node GRU memory updated by identity messages (the two memories,
the event's raw features and a time encoding of the gap since the node's last update) and the
last message per node; node embeddings from one graph-attention layer (``TransformerConv``) over
each node's most recent neighbours with the edge's time encoding and features as edge attributes;
a two-layer link scorer. Events stream in chronological batches; each batch is scored against the
memory *before* it, then written into the memory and the neighbour table.

Protocol (the same splits, negative pools and metrics as ``molgraph train --method caw``):

* per epoch the memory and the neighbour table restart empty and the training events stream
  through; then the validation events stream on (no gradients) and are scored; the epoch with the
  best validation AP is kept;
* test continues the stream of the kept epoch: every event after the validation cut that the
  model has not yet seen streams in time order (in the inductive setting this includes the
  validation-period events of masked nodes, which CAW-N's test store also holds), and the test
  events are scored;
* inductive: training and validation stream only their own events, which touch no masked node;
  masked nodes therefore reach the test with an empty memory.

The three streams have no edge features: the raw message is one constant zero per event.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class TGNSettings:
    memory_dim: int = 100
    time_dim: int = 100
    embedding_dim: int = 100
    neighbors: int = 10
    batch_size: int = 200
    lr: float = 1e-4
    epochs: int = 3
    seed: int = 0


class _Embedding(nn.Module):
    """One graph-attention layer over the last-neighbour graph: ``(N, memory_dim) -> (N, embedding_dim)``."""

    def __init__(self, memory_dim: int, msg_dim: int, time_enc: nn.Module, out_dim: int) -> None:
        super().__init__()
        from torch_geometric.nn import TransformerConv

        self.time_enc = time_enc
        self.conv = TransformerConv(memory_dim, out_dim // 2, heads=2, dropout=0.1,
                                    edge_dim=msg_dim + time_enc.out_channels)

    def forward(self, x: torch.Tensor, last_update: torch.Tensor, edge_index: torch.Tensor,
                t: torch.Tensor, msg: torch.Tensor) -> torch.Tensor:
        # gap between the source node's last memory update and the neighbour event
        rel_t = (last_update[edge_index[0]] - t).to(x.dtype)
        edge_attr = torch.cat([self.time_enc(rel_t), msg], dim=-1)
        return self.conv(x, edge_index, edge_attr)


class _Scorer(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.src, self.dst, self.out = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, 1)

    def forward(self, zs: torch.Tensor, zd: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.src(zs) + self.dst(zd))).squeeze(-1)


class TGNBaseline:
    """TGN on one event stream (``src``, ``dst`` integer node ids, ``t`` seconds)."""

    def __init__(self, src: np.ndarray, dst: np.ndarray, t: np.ndarray, num_nodes: int,
                 settings: TGNSettings, device: str = "cpu") -> None:
        from torch_geometric.nn.models.tgn import IdentityMessage, LastAggregator, LastNeighborLoader, TGNMemory

        self.s = settings
        self.device = torch.device(device)
        torch.manual_seed(settings.seed)
        self.src = torch.as_tensor(src, dtype=torch.long)
        self.dst = torch.as_tensor(dst, dtype=torch.long)
        # relative seconds in float64 before the cast: unix seconds in float32 lose ~2 minutes
        self.t = torch.as_tensor(np.asarray(t, np.float64) - float(np.min(t)), dtype=torch.float64).long()
        self.msg = torch.zeros(self.src.numel(), 1)
        self.num_nodes = num_nodes
        d = settings
        self.memory = TGNMemory(num_nodes, 1, d.memory_dim, d.time_dim,
                                message_module=IdentityMessage(1, d.memory_dim, d.time_dim),
                                aggregator_module=LastAggregator()).to(self.device)
        self.gnn = _Embedding(d.memory_dim, 1, self.memory.time_enc, d.embedding_dim).to(self.device)
        self.scorer = _Scorer(d.embedding_dim).to(self.device)
        self.loader = LastNeighborLoader(num_nodes, size=d.neighbors, device=self.device)
        params = list(self.memory.parameters()) + list(self.gnn.parameters()) + list(self.scorer.parameters())
        self.opt = torch.optim.Adam(set(params), lr=d.lr)
        self.assoc = torch.empty(num_nodes, dtype=torch.long, device=self.device)
        # the loader numbers events by insertion order; ``order`` maps that number to the event id
        self.order = torch.zeros(self.src.numel(), dtype=torch.long)

    def _reset(self) -> None:
        self.memory.reset_state()
        self.loader.reset_state()

    def _insert(self, ids: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> None:
        self.order[self.loader.cur_e_id:self.loader.cur_e_id + ids.numel()] = ids
        self.loader.insert(src, dst)

    def _batch(self, ids: torch.Tensor, neg: torch.Tensor, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        src, dst, t, msg = (x[ids].to(self.device) for x in (self.src, self.dst, self.t, self.msg))
        neg = neg.to(self.device)
        n_id = torch.cat([src, dst, neg]).unique()
        n_id, edge_index, e_id = self.loader(n_id)
        self.assoc[n_id] = torch.arange(n_id.numel(), device=self.device)
        z, last_update = self.memory(n_id)
        ev = self.order[e_id.cpu()]
        z = self.gnn(z, last_update, edge_index, self.t[ev].to(self.device), self.msg[ev].to(self.device))
        pos = self.scorer(z[self.assoc[src]], z[self.assoc[dst]])
        negs = self.scorer(z[self.assoc[src]], z[self.assoc[neg]])
        if train:
            loss = nn.functional.binary_cross_entropy_with_logits(pos, torch.ones_like(pos)) \
                + nn.functional.binary_cross_entropy_with_logits(negs, torch.zeros_like(negs))
            self.opt.zero_grad()
            # the memory is written after the loss is formed, as TGN's training loop does
            self.memory.update_state(src, dst, t, msg)
            self._insert(ids, src, dst)
            loss.backward()
            self.opt.step()
            self.memory.detach()
        else:
            self.memory.update_state(src, dst, t, msg)
            self._insert(ids, src, dst)
        return torch.sigmoid(pos).detach().cpu(), torch.sigmoid(negs).detach().cpu()

    def _stream(self, ids: np.ndarray, pool: np.ndarray, rng: np.random.Generator, *, train: bool,
                score: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stream ``ids`` (time-sorted) in batches; score those in ``score`` (all when None).

        Returns the scored event ids and their positive and negative probabilities.
        """
        for m in (self.memory, self.gnn, self.scorer):
            m.train(train)
        keep = np.ones(ids.size, bool) if score is None else np.isin(ids, score)
        out_ids, pos_all, neg_all = [], [], []
        for i in range(0, ids.size, self.s.batch_size):
            b = ids[i:i + self.s.batch_size]
            neg = torch.as_tensor(pool[rng.integers(0, pool.size, b.size)], dtype=torch.long)
            with torch.set_grad_enabled(train):
                pos, negs = self._batch(torch.as_tensor(b), neg, train)
            k = keep[i:i + self.s.batch_size]
            out_ids.append(b[k])
            pos_all.append(pos.numpy()[k])
            neg_all.append(negs.numpy()[k])
        return np.concatenate(out_ids), np.concatenate(pos_all), np.concatenate(neg_all)

    def fit_and_test(self, train_ids: np.ndarray, val_ids: np.ndarray, test_stream: np.ndarray,
                     test_ids: np.ndarray, pools: tuple[np.ndarray, np.ndarray, np.ndarray]
                     ) -> dict:
        """Train, select the epoch on validation AP, then score ``test_ids`` while streaming ``test_stream``.

        Returns ``{"val": metrics, "test_scores": (ids, pos, neg), "best_epoch", "val_ap_per_epoch"}``.
        """
        from molgraph.methods.caw.task import link_metrics

        best, best_ap, history = None, -1.0, []
        for epoch in range(self.s.epochs):
            rng = np.random.default_rng((self.s.seed, epoch))
            self._reset()
            self._stream(train_ids, pools[0], rng, train=True)
            with torch.no_grad():
                _, p, n = self._stream(val_ids, pools[1], rng, train=False)
            ap = link_metrics(p, n)["ap"]
            history.append(ap)
            print(f"tgn epoch {epoch}: val AP {ap:.4f}", flush=True)
            if ap > best_ap:
                best_ap = ap
                # the whole state continues into the test stream: memory.state_dict() holds the memory
                # buffers, the message stores are plain dicts, the neighbour table lives in the loader
                best = copy.deepcopy((self.memory.state_dict(), self.gnn.state_dict(), self.scorer.state_dict(),
                                      self.memory.msg_s_store, self.memory.msg_d_store, self.loader.neighbors,
                                      self.loader.e_id, self.loader.cur_e_id, self.order, link_metrics(p, n)))
        (ms, gs, ss, s_store, d_store, nbrs, e_id, cur, order, val) = best
        self.memory.load_state_dict(ms)
        self.gnn.load_state_dict(gs)
        self.scorer.load_state_dict(ss)
        self.memory.msg_s_store, self.memory.msg_d_store = s_store, d_store
        self.order = order
        self.loader.neighbors.copy_(nbrs)
        self.loader.e_id.copy_(e_id)
        self.loader.cur_e_id = cur
        with torch.no_grad():
            ids, p, n = self._stream(test_stream, pools[2], np.random.default_rng((self.s.seed, 10_000)),
                                     train=False, score=test_ids)
        return {"val": val, "test_scores": (ids, p, n), "best_epoch": int(np.argmax(history)),
                "val_ap_per_epoch": history}


def tgn_rows(events, trans, ind, subsets: dict[str, np.ndarray], old: np.ndarray, settings: TGNSettings,
             device: str = "cpu") -> dict:
    """TGN on the transductive and the inductive split: ``{"tgn_trans": ..., "tgn_ind": ...}`` of metrics."""
    from molgraph.methods.caw.task import link_metrics

    def pools(split) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        seen = np.concatenate([split.train, split.val])
        return np.unique(events.dst[split.train]), np.unique(events.dst[seen]), np.unique(events.dst)

    out = {}
    model = TGNBaseline(events.src, events.dst, events.t, events.num_nodes, settings, device)
    res = model.fit_and_test(trans.train, trans.val, trans.test, trans.test, pools(trans))
    ids, pos, neg = res["test_scores"]
    out["tgn_trans"] = {"val": res["val"], "test": link_metrics(pos, neg), "best_epoch": res["best_epoch"],
                        "val_ap_per_epoch": res["val_ap_per_epoch"]}
    model = TGNBaseline(events.src, events.dst, events.t, events.num_nodes, settings, device)
    after_val = np.flatnonzero(events.t > ind.info["val_time"])
    stream = np.setdiff1d(after_val, ind.val)  # sorted event ids = time order
    scored = np.union1d(ind.test, old)
    res = model.fit_and_test(ind.train, ind.val, stream, scored, pools(ind))
    ids, pos, neg = res["test_scores"]
    row = {"val": res["val"], "best_epoch": res["best_epoch"], "val_ap_per_epoch": res["val_ap_per_epoch"]}
    for name, part in (("test", ind.test), ("test_new_new", subsets["new_new"]),
                       ("test_new_old", subsets["new_old"]), ("test_old", old)):
        k = np.isin(ids, part)
        row[name] = link_metrics(pos[k], neg[k])
    out["tgn_ind"] = row
    return out
