"""``smoothed_gcn``: a node classifier trained under sparse randomized smoothing, as a :class:`Method`.

Rooms: ``config`` (settings), ``model`` (the base GCN over sparse binary attributes), ``smoothing``
(the noise), ``task`` (one noisy graph per step), ``predict`` (votes of the smoothed classifier),
``base`` (per-node certificates), ``receptive`` and ``collective`` (the collective certificate),
``cli`` (``molgraph certify``), and this module, which joins them for the trainer.

``molgraph train --method smoothed_gcn`` trains; ``molgraph certify --model RUN`` certifies;
``molgraph predict --model RUN -i nodes.csv`` writes smoothed predictions of given nodes.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from molgraph.methods.certificates.config import SmoothedGCNConfig
from molgraph.train.method import Method, Prepared

__all__ = ["SmoothedGCNMethod"]

#: noisy copies per node for the accuracy of the smoothed classifier reported after training
EVAL_SAMPLES = 100


@dataclass
class NodePrepared(Prepared):
    graph: Any = None
    split: Any = None


class SmoothedGCNMethod(Method):
    """Node classification under sparse randomized smoothing (Bojchevski et al., ICML 2020)."""

    name = "smoothed_gcn"
    help = "node classifier trained under sparse randomized smoothing, for robustness certificates"
    config_class = SmoothedGCNConfig
    run_files = ("splits.json",)
    example_noun = "nodes"
    commands = ("molgraph.methods.certificates.cli",)

    def validate(self, config: SmoothedGCNConfig) -> None:
        config.smoothing.validate()
        if config.dropout >= 1:
            raise ValueError(f"dropout must be < 1, got {config.dropout}")

    def logged_values(self, config: Any) -> tuple[str, ...]:
        return ("val_loss", "val_acc", "train_loss", "train_acc")

    def monitor_mode(self, monitor: str) -> str:
        return "max" if monitor.endswith("_acc") else "min"

    def prepare(self, config: SmoothedGCNConfig, *, run_dir: Path, resume: bool,
                say: Callable[[str], None]) -> NodePrepared:
        from molgraph.data.node_graph import NodeBatcher, load_node_graph
        from molgraph.data.splits import Split, per_class_split
        from molgraph.train.datamodule import GraphDataModule

        graph = load_node_graph(config.dataset, config.data_root, lcc=config.lcc)
        say(f"data: {graph}")
        splits_file = run_dir / "splits.json"
        if resume and splits_file.is_file():
            split = Split.load(splits_file)
        else:
            split = per_class_split(graph.labels, config.n_train_per_class, config.n_val_per_class, config.split_seed)
        say(f"split (per class): train {len(split.train)}, val {len(split.val)}, test {len(split.test)}")
        dm = GraphDataModule(NodeBatcher(graph), split.train, split.val, split.test,
                             batch_size=config.batch_size, data_seed=config.split_seed, num_workers=0)
        return NodePrepared(datamodule=dm, n_train=len(split.train), summary=str(graph), graph=graph, split=split)

    def write_start(self, config: SmoothedGCNConfig, prepared: NodePrepared, run_dir: Path) -> None:
        prepared.split.save(run_dir / "splits.json")

    def build_model(self, config: SmoothedGCNConfig, prepared: NodePrepared) -> Any:
        from molgraph.methods.certificates.model import SparseGCN

        g = prepared.graph
        return SparseGCN(g.num_features, g.num_classes, config.hidden, config.n_layers, config.dropout)

    def build_task(self, config: SmoothedGCNConfig, prepared: NodePrepared, model: Any, *, member: int) -> Any:
        import torch

        from molgraph.methods.certificates.predict import noisy_graph_of
        from molgraph.methods.certificates.task import SmoothedNodeTask

        return SmoothedNodeTask(
            model, noisy_graph_of(prepared.graph, _smoothing(config)), torch.from_numpy(prepared.graph.labels),
            val_seed=config.seed, optimizer=config.optimizer, weight_decay=config.weight_decay,
            schedule=config.schedule, warmup_epochs=config.warmup_epochs, init_lr=config.init_lr,
            max_lr=config.max_lr, final_lr=config.final_lr, seed=config.seed + member,
        )

    def finish(self, config: SmoothedGCNConfig, prepared: NodePrepared, models: list[Any], run_dir: Path,
               *, say: Callable[[str], None]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Accuracy of the smoothed classifier (majority of :data:`EVAL_SAMPLES` noisy copies) and
        of the base network on the clean graph; the model file's section."""
        import torch

        from molgraph.methods.certificates.predict import count_votes, noisy_graph_of

        graph, split = prepared.graph, prepared.split
        model = models[0].eval()
        noisy = noisy_graph_of(graph, _smoothing(config))
        votes = count_votes(model, noisy, EVAL_SAMPLES, n_classes=graph.num_classes, seed=config.seed)
        with torch.no_grad():
            clean = model(noisy.attr_index, noisy.edge_index, graph.num_nodes).argmax(1).numpy()
        results: dict[str, Any] = {}
        for part, idx in (("train", split.train), ("val", split.val), ("test", split.test)):
            idx = np.asarray(idx, dtype=np.int64)
            if idx.size:
                y = graph.labels[idx]
                results[part] = {"accuracy_smoothed": float((votes[idx].argmax(1) == y).mean()),
                                 "accuracy_clean": float((clean[idx] == y).mean()), "n": int(idx.size)}
        results["primary_metric"] = "accuracy_smoothed"
        results["eval_samples"] = EVAL_SAMPLES
        if "test" in results:
            say(f"test accuracy: smoothed {results['test']['accuracy_smoothed']:.3f} "
                f"({EVAL_SAMPLES} noisy copies per node), clean graph {results['test']['accuracy_clean']:.3f}")
        section = {
            "model_config": dict(model.config),
            "data": {"dataset": config.dataset, "data_root": config.data_root, "lcc": bool(config.lcc)},
            "node_ids": graph.node_ids.tolist(),
            "class_names": list(graph.class_names),
            "smoothing": _smoothing(config),
            "split": {"train": np.asarray(split.train).tolist(), "val": np.asarray(split.val).tolist(),
                      "test": np.asarray(split.test).tolist()},
        }
        return results, section

    # -- a model file --------------------------------------------------------------------------------
    def load(self, section: dict[str, Any], payload: dict[str, Any]) -> Any:
        from molgraph.methods.certificates.predict import SmoothedClassifier

        return SmoothedClassifier.from_section(section, payload)

    def add_predict_arguments(self, parser: argparse.ArgumentParser) -> None:
        from molgraph.methods.certificates.cli import add_predict_arguments

        add_predict_arguments(parser)

    def predict_command(self, predictor: Any, args: argparse.Namespace) -> int:
        from molgraph.methods.certificates.cli import predict_command

        return predict_command(predictor, args)


def _smoothing(config: SmoothedGCNConfig) -> dict[str, float]:
    return {k: float(getattr(config, k)) for k in ("p_plus", "p_minus", "p_plus_adj", "p_minus_adj")}
