"""CAW-N's network and method: last valid GRU step, no inductive leakage, train and predict via the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from molgraph.data.splits.temporal import inductive_split
from molgraph.data.temporal import EventBatcher, TemporalEvents
from molgraph.methods.caw.method import build_contexts
from molgraph.methods.caw.model import CAWModel, pair_inputs
from molgraph.methods.caw.task import CAWTask, link_metrics


def _stream(seed: int = 0, n_events: int = 2000, n_nodes: int = 80) -> TemporalEvents:
    rng = np.random.default_rng(seed)
    return TemporalEvents.from_arrays("toy", rng.integers(0, n_nodes, n_events), rng.integers(0, n_nodes, n_events),
                                      np.sort(rng.uniform(0, 1e6, n_events)))


def test_gru_reads_the_last_valid_step_not_the_padding():
    """Extra padding steps must not change a walk's encoding (the reference read padded positions)."""
    torch.manual_seed(0)
    short, long_ = CAWModel(2, position="node_id", num_nodes=20), CAWModel(3, position="node_id", num_nodes=20)
    long_.load_state_dict(short.state_dict())  # no parameter depends on the length in the node_id variant
    rng = np.random.default_rng(0)
    q, m = 3, 4
    node = torch.from_numpy(rng.integers(1, 20, (q, 2, m, 3)))
    mask = torch.ones(q, 2, m, 3, dtype=torch.bool)
    mask[:, :, 0, 2] = False
    mask[:, :, 1, 1:] = False  # walks of 1, 2 and 3 valid steps
    dt = torch.from_numpy(rng.uniform(0, 100, (q, 2, m, 3)).astype(np.float32))
    inp = {"node": node * mask, "mask": mask, "dt": dt, "edge_feat": torch.zeros(q, 2, m, 3, 0),
           "pos": torch.zeros(q, 2, m, 3, 2, 3)}
    pad = {"node": torch.cat([inp["node"], torch.zeros(q, 2, m, 1, dtype=torch.long)], -1),
           "mask": torch.cat([mask, torch.zeros(q, 2, m, 1, dtype=torch.bool)], -1),
           "dt": torch.cat([dt, torch.full((q, 2, m, 1), 7.0)], -1), "edge_feat": torch.zeros(q, 2, m, 4, 0),
           "pos": torch.zeros(q, 2, m, 4, 2, 4)}
    short.eval(), long_.eval()
    torch.testing.assert_close(short(inp), long_(pad))
    # and a valid step does matter
    inp2 = dict(inp, dt=dt.clone())
    inp2["dt"][:, :, 2, 2] += 50.0
    assert not torch.allclose(short(inp), short(inp2))


def test_model_variants_and_gradients():
    ev = _stream()
    from molgraph.methods.caw.store import WalkStore

    store = WalkStore.from_events(ev, 1e-5)
    q = np.arange(1500, 1540)
    inp = pair_inputs(store, ev, ev.src[q], ev.dst[q], ev.t[q], 6, 2, np.random.default_rng(0))
    assert inp["pos"].shape == (40, 2, 6, 3, 2, 3) and inp["dt"].min() >= 0
    for pooling in ("mean", "attn"):
        for position in ("anonymous", "node_id"):
            model = CAWModel(2, pooling=pooling, position=position, num_nodes=ev.num_nodes, hidden=16, pos_dim=8,
                             time_dim=8)
            out = model(inp)
            assert out.shape == (40,) and torch.isfinite(out).all()
            out.sum().backward()
            assert all(p.grad is not None for n, p in model.named_parameters() if "attn" not in n or pooling == "attn")


@pytest.mark.filterwarnings("ignore:You are trying to:UserWarning")
def test_inductive_masked_nodes_do_not_leak_into_training():
    ev = _stream(1)
    split = inductive_split(ev.src, ev.dst, ev.t, mask_fraction=0.1, seed=3)
    masked = np.asarray(split.info["masked_nodes"])
    assert masked.size == 8
    train_ctx, val_ctx, test_ctx = build_contexts(ev, split, inductive=True, alpha=1e-5, n_walks=8, length=2)
    for ctx in (train_ctx, val_ctx):
        nb = ctx.store.nbrs
        assert not np.isin(nb.neighbor, masked).any()
        assert (nb.degree()[masked] == 0).all()
        assert not np.isin(ctx.negatives, masked).any()
    assert np.isin(test_ctx.store.nbrs.neighbor, masked).any()  # the test store is the full stream

    # a training step's walks, recorded: no masked node anywhere
    visited: list[np.ndarray] = []
    original = train_ctx.store.walks

    def recording(*args, **kwargs):
        w = original(*args, **kwargs)
        visited.append(w.node[w.mask])
        return w

    train_ctx.store.walks = recording  # type: ignore[method-assign]
    model = CAWModel(2, hidden=8, pos_dim=8, time_dim=8)
    task = CAWTask(model, train_ctx, val_ctx, schedule="constant", warmup_epochs=0.0)
    batch = EventBatcher(ev)(split.train[-300:])
    loss = task.training_step(batch, 0)  # outside a Trainer: Lightning warns that self.log has no trainer
    assert torch.isfinite(loss)
    seen = np.concatenate(visited)
    assert seen.size > 300 * 2 * 8 and not np.isin(seen, masked).any()


def test_link_metrics_exact():
    m = link_metrics(np.array([3.0, 2.0, 0.5]), np.array([1.0, 0.0, 4.0]), chunk=2)
    # pairs (pos > neg): 3>1,3>0,2>1,2>0,0.5>0 -> 5 of 9
    assert m["auc"] == pytest.approx(5 / 9) and m["n"] == 3
    assert m["batch_avg_auc"] == pytest.approx((1.0 + 0.0) / 2)


def test_train_and_predict_through_the_cli(data_root, tmp_path, monkeypatch):
    from molgraph.cli.main import main
    from molgraph.methods.caw.method import CAWMethod
    from molgraph.registry import METHODS

    added = "caw" not in METHODS
    if added:
        METHODS.register("caw", CAWMethod(), help=CAWMethod.help)
    try:
        monkeypatch.chdir(tmp_path)
        args = ["train", "--method", "caw", "-d", "uci", "--max-events", "1200", "--inductive", "--n-walks", "4",
                "--hidden", "8", "--pos-dim", "4", "--time-dim", "4", "--epochs", "1", "--accelerator", "cpu",
                "--no-progress", "-o", "run"]
        assert main(args) == 0
        import json

        metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
        text = json.dumps(metrics)
        for key in ("test_new_new", "test_new_old", "test_old", "batch_avg_ap"):
            assert key in text
        pd.DataFrame({"u": [1, 2, 123456], "v": [2, 3, 1], "t": [1.09e9, 1.09e9, 1.09e9]}).to_csv("q.csv", index=False)
        assert main(["predict", "--model", "run", "-i", "q.csv", "-o", "p.csv"]) == 0
        p = pd.read_csv("p.csv")
        assert len(p) == 3 and p["score"].between(0, 1).all() and list(p["u_known"]) == [True, True, False]
    finally:
        if added:
            METHODS.unregister("caw")
