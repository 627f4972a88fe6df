"""``molgraph predict`` for CAW-N: link probabilities of ``(u, v, t)`` queries.

The predictor walks on the store of the model's whole event stream (reloaded from the data
root recorded in the model file, sha256-checked); a query at time ``t`` sees only events strictly
before ``t``, so it may ask about any moment of the stream or after it. Node ids are the file's
ids; a node absent from the stream has no history and gets a walk of its start only (its own
empty row in the store, distinct for ``u`` and ``v``), which the anonymous encoding handles as
it handles any node without earlier events.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

__all__ = ["CAWPredictor", "add_predict_arguments", "predict_command"]


class CAWPredictor:
    """A trained CAW-N model with the neighbour store of its event stream.

    Args:
        model: the :class:`~molgraph.methods.caw.model.CAWModel` (eval mode).
        events: the stream; n_walks, length, alpha: the run's walk settings.
    """

    def __init__(self, model: Any, events: Any, *, n_walks: int, length: int, alpha: float):
        from molgraph.data.temporal import TemporalNeighbors
        from molgraph.methods.caw.store import WalkStore
        from molgraph.methods.caw.task import WalkContext

        self.model, self.events = model.eval(), events
        n = events.num_nodes
        # two extra empty nodes, n and n + 1: the rows of unseen query endpoints u and v
        nbrs = TemporalNeighbors.from_arrays(events.src, events.dst, events.t, n + 2)
        store = WalkStore(nbrs, alpha, t0=float(events.t[0]) if events.num_events else 0.0)
        self.ctx = WalkContext(store, events, np.unique(events.dst), n_walks, length)
        self._position = {int(v): i for i, v in enumerate(events.node_ids)}

    @classmethod
    def from_section(cls, section: dict[str, Any], payload: dict[str, Any]) -> "CAWPredictor":
        from molgraph.methods.caw.method import load_events
        from molgraph.methods.caw.model import CAWModel

        d = section["data"]
        events = load_events(d["dataset"], d["data_root"], d["self_loops"], d["max_events"])
        model = CAWModel(**section["model_config"])
        model.load_state_dict(payload["members"][0])
        w = section["walks"]
        return cls(model, events, n_walks=int(w["n_walks"]), length=int(w["length"]), alpha=float(w["alpha"]))

    def dense(self, ids: np.ndarray, spare: int) -> tuple[np.ndarray, np.ndarray]:
        """Dense node index of file ids (unseen: the spare row ``num_nodes + spare``) and a known mask."""
        n = self.events.num_nodes
        out = np.array([self._position.get(int(i), n + spare) for i in ids], dtype=np.int64)
        return out, out < n

    def scores(self, u: np.ndarray, v: np.ndarray, t: np.ndarray, *, seed: int = 0, batch_size: int = 200,
               device: str | None = None) -> np.ndarray:
        """``(Q,)`` link probabilities of the file-id pairs ``(u, v)`` at times ``t`` (seconds)."""
        import torch

        from molgraph.methods.caw.task import score_pairs

        if device:
            self.model.to(device)
        uu, _ = self.dense(np.asarray(u), 0)
        vv, _ = self.dense(np.asarray(v), 1)
        tt = np.asarray(t, dtype=np.float64)
        if not np.isfinite(tt).all():
            raise ValueError("query times must be finite")
        rng = np.random.default_rng(seed)
        out = []
        with torch.no_grad():
            for i in range(0, uu.size, batch_size):
                s = slice(i, i + batch_size)
                logits, _ = score_pairs(self.model, self.ctx, uu[s], vv[s], tt[s], rng)
                out.append(torch.sigmoid(logits).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)


def add_predict_arguments(parser: argparse.ArgumentParser | Any) -> None:
    if isinstance(parser, argparse._ArgumentGroup) and not parser.description:
        parser.description = ("input: a CSV with columns u, v, t (the dataset's node ids and time unit); output: "
                               "u, v, t, score (link probability), u_known, v_known")
    parser.add_argument("--walk-seed", type=int, default=0, help="seed of the sampled walks (default 0)")


def predict_command(predictor: CAWPredictor, args: argparse.Namespace) -> int:
    """Score every ``(u, v, t)`` row of ``args.input``; malformed rows go to ``<OUT stem>.rejects.csv``."""
    import pandas as pd

    from molgraph.io import atomic_output, error_exit

    if args.output.exists() and not args.overwrite:
        return error_exit(f"{args.output} exists (use --overwrite to replace it)", 2)
    frame = pd.read_csv(args.input, dtype=str, keep_default_na=False)
    missing = [c for c in ("u", "v", "t") if c not in frame.columns]
    if missing:
        return error_exit(f"{args.input}: no column(s) {missing} (columns: {list(frame.columns)})", 2)
    rows, rejects = [], []
    for i, (u, v, t) in enumerate(zip(frame["u"], frame["v"], frame["t"])):
        try:
            uu, vv, tt = int(u.strip()), int(v.strip()), float(t.strip())
            if not np.isfinite(tt):
                raise ValueError
        except ValueError:
            rejects.append((i, u, v, t, "u and v must be integer node ids and t a finite number"))
            continue
        rows.append((uu, vv, tt))
    arr = np.array(rows, dtype=np.float64).reshape(-1, 3)
    u, v, t = arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2]
    device = getattr(args, "device", None)
    scores = predictor.scores(u, v, t, seed=args.walk_seed, batch_size=int(getattr(args, "batch_size", None) or 200),
                              device=None if device in (None, "auto") else device)
    _, ku = predictor.dense(u, 0)
    _, kv = predictor.dense(v, 1)
    out = pd.DataFrame({"u": u, "v": v, "t": t, "score": scores, "u_known": ku, "v_known": kv})
    with atomic_output(args.output, "w", newline="") as fh:
        out.to_csv(fh, index=False)
    if rejects:
        path = args.output.with_name(args.output.stem + ".rejects.csv")
        pd.DataFrame(rejects, columns=["row", "u", "v", "t", "reason"]).to_csv(path, index=False)
    return 0
