"""CAW-N's set-based anonymization: node identities replaced by their positions in the walk sets.

For a query pair ``(u, v)`` with walk sets ``S_u`` and ``S_v`` (``M`` walks of ``L`` hops
each), every node ``w`` that occurs in either set gets ``C_w`` in ``R^{2 x (L+1)}``:
``C_w[s, k]`` = the fraction of the ``M`` walks from endpoint ``s`` (0: ``u``, 1: ``v``) that
are at ``w`` at step ``k``. Every walk step then carries ``C`` of its node instead of the node's
id, so the encoding depends on the pair's joint neighbourhood structure and never on the ids:
relabelling the nodes leaves it unchanged (the test checks this). Keys are node ids only, not
(node, time): the reference's choice (its ``nodets2key`` zeroes the time).

Padding steps (walks that stopped early) get ``C = 0`` and are masked downstream.
"""

from __future__ import annotations

import numpy as np

__all__ = ["anonymize"]


def anonymize(node_u: np.ndarray, mask_u: np.ndarray, node_v: np.ndarray, mask_v: np.ndarray) -> np.ndarray:
    """The counts ``C`` of every walk step of every query pair.

    Args:
        node_u, node_v: ``(Q, M, L + 1)`` int64 walk nodes from each pair's two endpoints.
        mask_u, mask_v: ``(Q, M, L + 1)`` bool valid steps.

    Returns:
        ``(Q, 2, M, L + 1, 2, L + 1)`` float32: ``out[q, s, m, k]`` is ``C_w`` (rows: endpoint
        0/1; columns: step) of the node ``w`` at step ``k`` of walk ``m`` from endpoint ``s`` of
        pair ``q``; zeros at padding steps.
    """
    if node_u.shape != node_v.shape or mask_u.shape != node_u.shape or mask_v.shape != node_v.shape:
        raise ValueError(f"walk shapes differ: {node_u.shape}, {mask_u.shape}, {node_v.shape}, {mask_v.shape}")
    q, m, steps = node_u.shape
    nodes = np.stack([node_u, node_v], axis=1)  # (Q, 2, M, S)
    mask = np.stack([mask_u, mask_v], axis=1)
    # one key per (pair, node): dense ids of the distinct keys by np.unique (sorting, vectorized)
    n_max = int(nodes.max(initial=0)) + 2
    key = np.where(mask, np.arange(q)[:, None, None, None] * n_max + nodes + 1, -1)
    uniq, inv = np.unique(key.reshape(-1), return_inverse=True)
    inv = inv.reshape(key.shape)
    side = np.broadcast_to(np.arange(2)[None, :, None, None], key.shape)
    step = np.broadcast_to(np.arange(steps)[None, None, None, :], key.shape)
    counts = np.zeros((uniq.size, 2, steps), dtype=np.float32)
    valid = mask.reshape(-1)
    np.add.at(counts, (inv.reshape(-1)[valid], side.reshape(-1)[valid], step.reshape(-1)[valid]), 1.0)
    counts /= m
    out = counts[inv]  # (Q, 2, M, S, 2, S)
    out[~mask] = 0.0
    return out
