"""``caw``: CAW-N temporal link prediction (Wang et al., ICLR 2021), as a :class:`Method`.

``molgraph train --method caw -d uci [--inductive]`` trains on a chronological 70/15/15 split
and reports global AUC/AP on validation and test (inductive: also the new-new and new-old test
subsets, and the test events among old nodes); ``molgraph predict --model RUN -i queries.csv``
scores ``(u, v, t)`` queries against the dataset's event stream.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from molgraph.methods.caw.config import CAWConfig
from molgraph.train.method import Method, Prepared

__all__ = ["CAWMethod", "load_events", "build_contexts"]


@dataclass
class CAWPrepared(Prepared):
    events: Any = None
    split: Any = None
    train_ctx: Any = None
    val_ctx: Any = None
    test_ctx: Any = None


def load_events(dataset: str, data_root: str | None, self_loops: str = "keep", max_events: int | None = None) -> Any:
    """The event stream of a run (the first ``max_events`` events when set)."""
    from molgraph.data.temporal import load_temporal

    events = load_temporal(dataset, data_root, self_loops=self_loops)
    if max_events is not None and max_events < events.num_events:
        events = events.subset(np.arange(max_events))
    return events


def build_contexts(events: Any, split: Any, *, inductive: bool, alpha: float, n_walks: int, length: int
                   ) -> tuple[Any, Any, Any]:
    """Walk contexts for training, validation and test.

    Transductive: one store of every event (walks only see events strictly before their cut, so
    later events cannot leak). Inductive: training and validation walk on a store of the train +
    val events only, which hold no masked node; test walks on every event. Negatives: the
    destinations of the train events (training), train + val events (validation), all events (test).
    """
    from molgraph.methods.caw.store import WalkStore
    from molgraph.methods.caw.task import WalkContext

    full = WalkStore.from_events(events, alpha)
    seen = np.sort(np.concatenate([split.train, split.val]))
    known = WalkStore.from_events(events, alpha, subset=seen) if inductive else full
    dests = (np.unique(events.dst[split.train]), np.unique(events.dst[seen]), np.unique(events.dst))
    return (WalkContext(known, events, dests[0], n_walks, length), WalkContext(known, events, dests[1], n_walks, length),
            WalkContext(full, events, dests[2], n_walks, length))


class CAWMethod(Method):
    """CAW-N: causal anonymous walks for temporal link prediction."""

    name = "caw"
    help = "CAW-N temporal link prediction (causal anonymous walks) on event streams"
    config_class = CAWConfig
    run_files = ("splits.json",)
    example_noun = "events"

    def validate(self, config: CAWConfig) -> None:
        if config.dropout >= 1:
            raise ValueError(f"dropout must be < 1, got {config.dropout}")
        if not config.mask_fraction < 1:
            raise ValueError(f"mask_fraction must be < 1, got {config.mask_fraction}")
        if config.pooling == "attn" and config.hidden % 4:
            raise ValueError(f"pooling attn uses 4 heads: hidden must be a multiple of 4, got {config.hidden}")

    def logged_values(self, config: Any) -> tuple[str, ...]:
        return ("val_loss", "val_ap", "val_auc", "train_loss", "train_acc")

    def monitor_mode(self, monitor: str) -> str:
        return "max" if monitor.endswith(("_ap", "_auc", "_acc")) else "min"

    def prepare(self, config: CAWConfig, *, run_dir: Path, resume: bool, say: Callable[[str], None]) -> CAWPrepared:
        from molgraph.data.splits import Split
        from molgraph.data.splits.temporal import chronological_split, inductive_split
        from molgraph.data.temporal import EventBatcher
        from molgraph.train.datamodule import GraphDataModule

        events = load_events(config.dataset, config.data_root, config.self_loops, config.max_events)
        say(f"data: {events}")
        splits_file = run_dir / "splits.json"
        if resume and splits_file.is_file():
            split = Split.load(splits_file)
        elif config.inductive:
            split = inductive_split(events.src, events.dst, events.t, mask_fraction=config.mask_fraction,
                                    seed=config.split_seed)
        else:
            split = chronological_split(events.t)
        say(f"split ({split.method}): train {len(split.train)}, val {len(split.val)}, test {len(split.test)} events")
        train_ctx, val_ctx, test_ctx = build_contexts(events, split, inductive=config.inductive, alpha=config.alpha,
                                                      n_walks=config.n_walks, length=config.walk_length)
        dm = GraphDataModule(EventBatcher(events), split.train, split.val, split.test, batch_size=config.batch_size,
                             data_seed=config.split_seed, num_workers=config.num_workers)
        return CAWPrepared(datamodule=dm, n_train=len(split.train), summary=repr(events), events=events, split=split,
                           train_ctx=train_ctx, val_ctx=val_ctx, test_ctx=test_ctx)

    def write_start(self, config: CAWConfig, prepared: CAWPrepared, run_dir: Path) -> None:
        prepared.split.save(run_dir / "splits.json")

    def build_model(self, config: CAWConfig, prepared: CAWPrepared) -> Any:
        from molgraph.methods.caw.model import CAWModel

        ev = prepared.events
        # two spare ids past the last node: prediction gives unseen query nodes their own empty rows
        return CAWModel(config.walk_length, ev.edge_feat.shape[1], time_dim=config.time_dim, pos_dim=config.pos_dim,
                        hidden=config.hidden, pooling=config.pooling, position=config.position,
                        num_nodes=ev.num_nodes + 2, dropout=config.dropout)

    def build_task(self, config: CAWConfig, prepared: CAWPrepared, model: Any, *, member: int) -> Any:
        from molgraph.methods.caw.task import CAWTask

        return CAWTask(model, prepared.train_ctx, prepared.val_ctx, val_seed=config.split_seed,
                       optimizer=config.optimizer, weight_decay=config.weight_decay, schedule=config.schedule,
                       warmup_epochs=config.warmup_epochs, init_lr=config.init_lr, max_lr=config.max_lr,
                       final_lr=config.final_lr, seed=config.seed + member)

    def finish(self, config: CAWConfig, prepared: CAWPrepared, models: list[Any], run_dir: Path,
               *, say: Callable[[str], None]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Global AUC/AP (and batch-averaged ones) on val and test, with seeded negatives."""
        results = evaluate_run(models[0], prepared, inductive=config.inductive, seed=config.split_seed,
                               batch_size=config.batch_size)
        results["primary_metric"] = "ap"
        for part in ("val", "test", "test_new_new", "test_new_old", "test_old"):
            if part in results and results[part].get("n"):
                r = results[part]
                say(f"{part}: AUC {r['auc']:.4f}  AP {r['ap']:.4f}  ({r['n']} events; batch-averaged AP "
                    f"{r['batch_avg_ap']:.4f})")
        ev = prepared.events
        section = {
            "model_config": dict(models[0].config),
            "data": {"dataset": config.dataset, "data_root": config.data_root, "self_loops": config.self_loops,
                     "max_events": config.max_events, "num_events": ev.num_events, "num_nodes": ev.num_nodes},
            "walks": {"n_walks": config.n_walks, "length": config.walk_length, "alpha": config.alpha},
            "inductive": bool(config.inductive),
        }
        return results, section

    # -- a model file --------------------------------------------------------------------------------
    def load(self, section: dict[str, Any], payload: dict[str, Any]) -> Any:
        from molgraph.methods.caw.predict import CAWPredictor

        return CAWPredictor.from_section(section, payload)

    def add_predict_arguments(self, parser: argparse.ArgumentParser) -> None:
        from molgraph.methods.caw.predict import add_predict_arguments

        add_predict_arguments(parser)

    def predict_command(self, predictor: Any, args: argparse.Namespace) -> int:
        from molgraph.methods.caw.predict import predict_command

        return predict_command(predictor, args)


def evaluate_run(model: Any, prepared: CAWPrepared, *, inductive: bool, seed: int, batch_size: int = 200
                 ) -> dict[str, Any]:
    """Metrics of a trained model on the run's validation and test events (see :meth:`CAWMethod.finish`)."""
    from molgraph.data.splits.temporal import inductive_test_subsets
    from molgraph.methods.caw.task import evaluate_events, link_metrics

    ev, split = prepared.events, prepared.split
    results: dict[str, Any] = {}
    pos, neg = evaluate_events(model, prepared.val_ctx, split.val, seed, batch_size)
    results["val"] = link_metrics(pos, neg)
    pos, neg = evaluate_events(model, prepared.test_ctx, split.test, seed + 1, batch_size)
    results["test"] = link_metrics(pos, neg)
    if inductive:
        subsets = inductive_test_subsets(split, ev.src, ev.dst)
        where = {int(e): i for i, e in enumerate(split.test)}
        for name in ("new_new", "new_old"):
            idx = np.array([where[int(e)] for e in subsets[name]], dtype=np.int64)
            results[f"test_{name}"] = link_metrics(pos[idx], neg[idx])
        # the same model on test-time events among old nodes (the transductive part of the test period)
        masked = np.asarray(split.info["masked_nodes"], dtype=np.int64)
        old = np.flatnonzero((ev.t > split.info["test_time"]) & ~np.isin(ev.src, masked) & ~np.isin(ev.dst, masked))
        pos, neg = evaluate_events(model, prepared.test_ctx, old, seed + 2, batch_size)
        results["test_old"] = link_metrics(pos, neg)
    return results
