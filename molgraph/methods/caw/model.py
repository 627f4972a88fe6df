"""CAW-N's walk encoder and pair scorer, and the inputs it reads from sampled walks.

:func:`pair_inputs` samples the walks of a batch of query pairs ``(u, v, t)`` and turns them
into tensors; :class:`CAWModel` maps them to one logit per pair:

1. each walk step gets ``[edge feature of the hop into it, time encoding cos(dt * omega + phi),
   position encoding]``, with ``dt = t_query - t_step`` in seconds (0 at step 0). The position
   encoding is ``g(C[0]) + g(C[1])`` of the step's anonymized counts (``g`` a 2-layer MLP), or,
   in the ``node_id`` ablation, a learned embedding of the node's id (which cannot generalise to
   nodes unseen in training: that is the point of the ablation);
2. a bidirectional GRU reads each walk; packed sequences make the forward state end at the
   walk's last *valid* step (the reference reads the padded position for short walks);
3. walks are pooled per endpoint by the mean, or by one self-attention layer then the mean;
4. the pair's score is ``MLP([h_u, h_v])``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from molgraph.data.temporal import TemporalEvents
from molgraph.methods.caw.anonymize import anonymize
from molgraph.methods.caw.store import WalkStore

__all__ = ["CAWModel", "TimeEncoding", "pair_inputs", "POSITIONS", "POOLINGS"]

POSITIONS = ("anonymous", "node_id")
POOLINGS = ("mean", "attn")


def pair_inputs(store: WalkStore, events: TemporalEvents, u: np.ndarray, v: np.ndarray, t: np.ndarray,
                n_walks: int, length: int, rng: np.random.Generator,
                walks_u: Any = None) -> dict[str, torch.Tensor]:
    """Sample and anonymize the walks of the pairs ``(u[q], v[q])`` at cut times ``t[q]``.

    Args:
        store: the neighbour store the walks may use (train + val only while training inductively).
        events: the stream (for edge features of the hops).
        u, v: ``(Q,)`` endpoints; t: ``(Q,)`` cut times (seconds).
        n_walks, length: ``M`` walks of ``L`` hops per endpoint.
        walks_u: already sampled walks of ``u`` (a :class:`~molgraph.methods.caw.store.Walks`),
            so a positive and its negative share the source's walks as in the reference.

    Returns:
        ``pos``: ``(Q, 2, M, S, 2, S)`` float32 anonymized counts (``S = L + 1``);
        ``dt``: ``(Q, 2, M, S)`` float32 seconds before the cut; ``mask``: ``(Q, 2, M, S)`` bool;
        ``node``: ``(Q, 2, M, S)`` int64 node id + 1 (0 = padding; for the ablation);
        ``edge_feat``: ``(Q, 2, M, S, d)`` float32 (zeros at step 0 and padding);
        ``walks_u``: the source walks, for reuse.
    """
    u, v, t = np.asarray(u, np.int64), np.asarray(v, np.int64), np.asarray(t, np.float64)
    q, s = u.size, length + 1
    wu = walks_u if walks_u is not None else store.walks(u, t, n_walks, length, rng)
    wv = store.walks(v, t, n_walks, length, rng)
    shape = (q, n_walks, s)
    node = np.stack([wu.node.reshape(shape), wv.node.reshape(shape)], 1)
    mask = np.stack([wu.mask.reshape(shape), wv.mask.reshape(shape)], 1)
    times = np.stack([wu.t.reshape(shape), wv.t.reshape(shape)], 1)
    eid = np.stack([wu.edge_id.reshape(shape), wv.edge_id.reshape(shape)], 1)
    pos = anonymize(node[:, 0], mask[:, 0], node[:, 1], mask[:, 1])
    dt = (t[:, None, None, None] - times).astype(np.float32)
    d = events.edge_feat.shape[1]
    feat = np.zeros((*eid.shape, d), dtype=np.float32)
    if d:
        ok = eid >= 0
        feat[ok] = events.edge_feat[eid[ok]]
    return {"pos": torch.from_numpy(pos), "dt": torch.from_numpy(dt), "mask": torch.from_numpy(mask),
            "node": torch.from_numpy(np.where(mask, node + 1, 0)), "edge_feat": torch.from_numpy(feat),
            "walks_u": wu}


class TimeEncoding(nn.Module):
    """``cos(dt * omega + phi)``, ``omega`` initialised to ``10^-linspace(0, 9, dim)`` (1/seconds).

    The frequencies span periods from seconds to ~30 years, so both bursts and long gaps are
    resolved from the start; both are learned.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.omega = nn.Parameter(torch.from_numpy(1.0 / 10 ** np.linspace(0, 9, dim)).float())
        self.phi = nn.Parameter(torch.zeros(dim))

    def forward(self, dt: torch.Tensor) -> torch.Tensor:
        """``dt``: any shape, seconds -> ``(*dt.shape, dim)``."""
        return torch.cos(dt.unsqueeze(-1) * self.omega + self.phi)


class CAWModel(nn.Module):
    """The CAW-N network (see the module doc).

    Args:
        length: hops per walk ``L`` (the position MLP reads ``L + 1`` counts).
        edge_dim: edge feature width (0: none).
        time_dim, pos_dim, hidden: widths of the time encoding, position encoding and GRU.
        pooling: ``mean`` or ``attn`` over the walks of an endpoint.
        position: ``anonymous`` (CAW-N) or ``node_id`` (the ablation: raw node-id embeddings).
        num_nodes: node ids for the ablation's embedding table.
        dropout: dropout before the scorer.
    """

    def __init__(self, length: int, edge_dim: int = 0, *, time_dim: int = 32, pos_dim: int = 32, hidden: int = 64,
                 pooling: str = "mean", position: str = "anonymous", num_nodes: int = 0, dropout: float = 0.1,
                 attn_heads: int = 4):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if position not in POSITIONS:
            raise ValueError(f"position must be one of {POSITIONS}, got {position!r}")
        if position == "node_id" and num_nodes < 1:
            raise ValueError("the node_id position encoding needs num_nodes >= 1")
        self.config = {"length": int(length), "edge_dim": int(edge_dim), "time_dim": int(time_dim),
                       "pos_dim": int(pos_dim), "hidden": int(hidden), "pooling": pooling, "position": position,
                       "num_nodes": int(num_nodes), "dropout": float(dropout), "attn_heads": int(attn_heads)}
        steps = length + 1
        self.position = position
        if position == "anonymous":
            self.pos_mlp = nn.Sequential(nn.Linear(steps, pos_dim), nn.ReLU(), nn.Linear(pos_dim, pos_dim))
        else:
            self.node_emb = nn.Embedding(num_nodes + 1, pos_dim, padding_idx=0)
        self.time = TimeEncoding(time_dim)
        self.rnn = nn.GRU(edge_dim + time_dim + pos_dim, hidden, batch_first=True, bidirectional=True)
        self.walk_proj = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU())
        self.pooling = pooling
        if pooling == "attn":
            self.attn = nn.TransformerEncoderLayer(hidden, attn_heads, dim_feedforward=2 * hidden, dropout=dropout,
                                                   batch_first=True)
        self.node_proj = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU())
        self.score = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, hidden), nn.ReLU(),
                                   nn.Linear(hidden, 1))

    def step_features(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(Q, 2, M, S, F)`` per-step features."""
        if self.position == "anonymous":
            pos = self.pos_mlp(inputs["pos"]).sum(-2)  # g(C[0]) + g(C[1])
        else:
            pos = self.node_emb(inputs["node"])
        parts = [inputs["edge_feat"], self.time(inputs["dt"]), pos] if inputs["edge_feat"].shape[-1] else \
            [self.time(inputs["dt"]), pos]
        return torch.cat(parts, -1) * inputs["mask"].unsqueeze(-1)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(Q,)`` logits of the pairs in ``inputs`` (from :func:`pair_inputs`)."""
        x = self.step_features(inputs)
        q, two, m, s, f = x.shape
        lengths = inputs["mask"].sum(-1).reshape(-1).cpu()  # >= 1: step 0 is always valid
        packed = nn.utils.rnn.pack_padded_sequence(x.reshape(q * two * m, s, f), lengths, batch_first=True,
                                                   enforce_sorted=False)
        _, h = self.rnn(packed)  # (2, W, H): forward state at the last valid step, backward at step 0
        walk = self.walk_proj(torch.cat([h[0], h[1]], -1)).reshape(q * two, m, -1)
        if self.pooling == "attn":
            walk = self.attn(walk)
        node = self.node_proj(walk.mean(1)).reshape(q, two, -1)
        return self.score(node.reshape(q, -1)).squeeze(-1)
