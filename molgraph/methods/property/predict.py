"""Predictions from trained models: ensembles, MC dropout, and models loaded from files.

:class:`Predictor` rebuilds everything from a model file alone (featurizer, scalers, task,
target names), so ``molgraph predict`` needs no other setting.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from molgraph.data.collated import CollatedGraphs
from molgraph.data.loader import GraphBatcher, graph_loader
from molgraph.featurizers.batch import Reject, iter_featurize
from molgraph.featurizers.graph import MolGraphFeaturizer
from molgraph.methods.property.model import PropertyModel
from molgraph.train.calibration import Calibrator
from molgraph.train.checkpoint import CheckpointError, load_model_file
from molgraph.methods.ngram.features import learned_from_state
from molgraph.methods.property.prepare import molecule_features, scale_extra
from molgraph.train.scaling import StandardScaler

__all__ = ["predict_values", "enable_mc_dropout", "Predictor", "MODEL_CLASSES"]

MODEL_CLASSES: dict[str, type[torch.nn.Module]] = {"PropertyModel": PropertyModel}


def enable_mc_dropout(model: torch.nn.Module) -> int:
    """Eval mode everywhere except dropout layers (Gal & Ghahramani 2016); returns their count."""
    model.eval()
    n = 0
    for module in model.modules():
        if isinstance(module, torch.nn.modules.dropout._DropoutNd):
            module.train()
            n += 1
    return n


@torch.no_grad()
def _outputs(model: torch.nn.Module, loader: Any, device: torch.device) -> torch.Tensor:
    outs = [model(batch.to(device)).float().cpu() for batch in loader]
    return torch.cat(outs) if outs else torch.zeros(0)


@torch.no_grad()
def predict_values(
    models: Sequence[torch.nn.Module],
    batcher: GraphBatcher,
    indices: Sequence[int],
    *,
    task_type: str,
    target_scaler: StandardScaler | None = None,
    mc_dropout_samples: int = 0,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    seed: int = 0,
    head: str = "point",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean prediction and predictive standard deviation, over ensemble members, MC-dropout
    samples and the head's own distribution.

    Each draw (a member, or one dropout mask of a member) gives a mean ``m_k`` and, for the
    ``mve``, ``evidential`` and ``dirichlet`` heads, a variance ``v_k``; the prediction is the
    mixture's: ``mean = avg_k m_k`` and ``var = avg_k v_k + var_k(m_k)`` (the spread of the
    draws with ``ddof = 1``, as for a plain ensemble).

    Returns:
        ``mean`` ``(N, T)`` in user units (probabilities for classification) and ``std``
        ``(N, T)`` in the same units, or ``None`` for a single deterministic point model.
    """
    from molgraph.methods.property.uncertainty import head_moments

    device = torch.device(device)
    loader = graph_loader(batcher, indices, batch_size=batch_size)
    means, variances = [], []
    for model in models:
        model.to(device)
        if mc_dropout_samples:
            if enable_mc_dropout(model) == 0:
                raise ValueError("MC dropout asked for, but the model has no dropout layer")
            gen_state = torch.get_rng_state()
            torch.manual_seed(seed)  # repeatable uncertainty estimates
            runs = [_outputs(model, loader, device) for _ in range(mc_dropout_samples)]
            torch.set_rng_state(gen_state)
        else:
            model.eval()
            runs = [_outputs(model, loader, device)]
        num_tasks = int(getattr(model, "num_tasks", runs[0].shape[-1] if runs[0].dim() == 2 else 1))
        for out in runs:
            if out.numel() == 0:
                out = out.reshape(0, num_tasks * (1 if head == "point" else _width(head)))
            mean, var = head_moments(out.double(), head, num_tasks)
            if task_type == "classification":
                mean = torch.sigmoid(mean) if head == "point" else mean
            elif target_scaler is not None:
                mean = target_scaler.inverse_transform(mean)
                if var is not None:
                    var = var * torch.as_tensor(target_scaler.to_dict()["scale"], dtype=var.dtype) ** 2
            means.append(mean.numpy())
            if var is not None:
                variances.append(var.numpy())
    stack = np.stack(means).astype(np.float64)
    total = np.mean(np.stack(variances), axis=0) if variances else None
    if stack.shape[0] > 1:
        spread = stack.var(axis=0, ddof=1)
        total = spread if total is None else total + spread
    return stack.mean(axis=0), (None if total is None else np.sqrt(total))


def _width(head: str) -> int:
    from molgraph.methods.property.uncertainty import head_width

    return head_width(head)


class Predictor:
    """A trained model (or ensemble) with everything it needs, loaded from a model file.

    Args:
        payload: the dict from :func:`~molgraph.train.checkpoint.load_model_file`.
    """

    def __init__(self, payload: dict[str, Any]):
        self.payload = payload
        cls_name = payload["model_class"]
        if cls_name not in MODEL_CLASSES:
            raise CheckpointError(f"unknown model class {cls_name!r} in model file")
        cls = MODEL_CLASSES[cls_name]
        self.models = []
        for state in payload["members"]:
            model = cls(**payload["model_config"])
            model.load_state_dict(state)
            model.eval()
            self.models.append(model)
        self.featurizer = MolGraphFeaturizer.from_config(payload["featurizer"])
        self.task_type: str = payload["task_type"]
        self.target_names: list[str] = list(payload["target_names"])
        scaler = payload.get("target_scaler")
        self.target_scaler = StandardScaler.from_dict(scaler) if scaler else None
        mf = payload.get("molecule_features")
        self.molecule_featurizers: list[str] = list(mf["featurizers"]) if mf else []
        self.extra_scaler = StandardScaler.from_dict(mf["scaler"]) if mf else None
        self.learned = {name: learned_from_state(st) for name, st in (mf.get("learned") or {}).items()} if mf else {}
        self.mc_dropout_samples = int(payload.get("mc_dropout_samples", payload.get("config", {}).get("mc_dropout_samples", 0)) or 0)
        self.head: str = payload["model_config"].get("head", "point")
        cal = payload.get("calibration")
        self.calibrator = Calibrator.from_dict(cal) if cal else None
        # model files before the uncertainty options: the spread of an ensemble / MC dropout, or none
        self.uncertainty: str = payload.get("uncertainty") or (
            f"ensemble({len(self.models)})" if len(self.models) > 1
            else f"mc-dropout({self.mc_dropout_samples})" if self.mc_dropout_samples else "none")

    @classmethod
    def from_section(cls, section: dict[str, Any], payload: dict[str, Any]) -> "Predictor":
        """From the ``property`` section of a model file and the file's common parts."""
        from molgraph.train.settings import flatten

        return cls({**section, "members": payload["members"], "config": flatten(payload.get("config", {})),
                    "metrics": payload.get("metrics", {}), "versions": payload.get("versions", {})})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Predictor":
        """From a model file, or a run folder holding ``model.pt`` (of the property method)."""
        path = Path(path)
        if path.is_dir():
            path = path / "model.pt"
        payload = load_model_file(path)
        if payload["method"] != "property":
            raise CheckpointError(f"{path}: a model of the {payload['method']!r} method, not a property model")
        return cls.from_section(payload["property"], payload)

    @property
    def has_uncertainty(self) -> bool:
        """Whether predictions carry a std (ensembles, MC dropout, the MVE / evidential / Dirichlet heads)."""
        return len(self.models) > 1 or self.mc_dropout_samples > 0 or self.head != "point"

    @property
    def calibrates_probability(self) -> bool:
        """A classification model with a calibration: ``molgraph predict`` adds ``T_prob``."""
        return self.calibrator is not None and self.task_type == "classification"

    def calibrated_prob(self, prob: np.ndarray) -> np.ndarray:
        """The calibrated probabilities ``(N, T)`` of class 1 (classification models with a calibration)."""
        if not self.calibrates_probability:
            raise ValueError("this model has no probability calibration (train with --calibration platt|isotonic)")
        return self.calibrator.apply_prob(prob)

    def _values(self, batcher: Any, indices: Any, batch_size: int, device: str) -> tuple[np.ndarray, np.ndarray | None]:
        """Mean and std; a regression calibration (fitted on the validation split) is applied to the std."""
        mean, std = predict_values(
            self.models, batcher, indices, task_type=self.task_type, target_scaler=self.target_scaler,
            mc_dropout_samples=self.mc_dropout_samples, batch_size=batch_size, device=device, head=self.head,
        )
        if self.calibrator is not None and self.task_type == "regression" and std is not None:
            std = self.calibrator.apply_std(std)
        return mean, std

    def predict_shards(
        self, shards: Any, *, batch_size: int = 256, device: str = "cpu"
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions for a folder of featurized shards (:class:`molgraph.data.shards.ShardedGraphs`),
        read batch by batch from the memory-mapped files.

        Raises:
            ValueError: the shards were featurized differently from the model's training data, or
                the model needs molecule-level features (those need every SMILES in memory).
        """
        if shards.featurizer_config != self.featurizer.to_config():
            raise ValueError("the shards were featurized with another featurizer than the model was trained on; "
                             "featurize them again with the model's settings (its featurizer config is in the "
                             "model file's property section)")
        if self.molecule_featurizers:
            raise ValueError(f"the model uses molecule features {self.molecule_featurizers}: give a CSV input instead")
        return self._values(shards, np.arange(len(shards)), batch_size, device)

    def predict_graphs(
        self, graphs: CollatedGraphs, smiles: Sequence[str] | None = None, *, batch_size: int = 256, device: str = "cpu"
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions for featurized graphs (``smiles`` needed for molecule-level features)."""
        extra = None
        if self.molecule_featurizers:
            raw, _ = molecule_features(self.molecule_featurizers, smiles if smiles is not None else graphs.smiles,
                                       self.learned)
            extra = scale_extra(raw, self.extra_scaler)
        batcher = GraphBatcher(graphs, extra=extra)
        return self._values(batcher, np.arange(len(graphs)), batch_size, device)

    def predict_smiles(
        self, smiles: Sequence[str], *, n_jobs: int = 1, batch_size: int = 256, device: str = "cpu", progress: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, list[Reject]]:
        """Featurize and predict.

        Returns:
            ``mean`` ``(M, T)``, ``std`` ``(M, T)`` or ``None``, ``kept`` ``(M,)`` positions in
            ``smiles`` that were predicted, and the rejects (position, input, reason).
        """
        arrays, kept_list, rejects = [], [], []
        for index, result in iter_featurize(smiles, self.featurizer, n_jobs=n_jobs, errors="skip", progress=progress):
            if isinstance(result, Reject):
                rejects.append(result)
            else:
                arrays.append(result)
                kept_list.append(index)
        kept = np.asarray(kept_list, dtype=np.int64)
        if len(kept) == 0:
            t = len(self.target_names)
            return np.zeros((0, t)), (np.zeros((0, t)) if self.has_uncertainty else None), kept, rejects
        graphs = CollatedGraphs.from_arrays(arrays, rows=kept_list)
        mean, std = self.predict_graphs(graphs, [smiles[i] for i in kept_list], batch_size=batch_size, device=device)
        return mean, std, kept, rejects

