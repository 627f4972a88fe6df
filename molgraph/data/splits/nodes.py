"""Splits of the nodes of one graph for node classification (Cora-ML, Citeseer, ...).

The certificate papers (sparse smoothing, Bojchevski et al. 2020; collective certificates,
Schuchardt et al. 2021) train on a fixed number of labelled nodes per class (20), validate on as
many, and test on every other node. :func:`per_class_split` makes that split; the parts are node
indices (int64, sorted) in a :class:`~molgraph.data.splits.base.Split`, so it saves and loads as
any ``splits.json``. For fraction-based stratified node splits use
:func:`~molgraph.data.splits.molecules.stratified_split` on the node labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from molgraph.data.splits.base import Split, _check_seed
from molgraph.registry import SPLITS

__all__ = ["per_class_split"]


def _count(value: Any, name: str, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def per_class_split(
    labels: Any,
    n_train_per_class: int = 20,
    n_val_per_class: int = 20,
    seed: int = 0,
    *,
    n_test_per_class: int | None = None,
) -> Split:
    """Draw ``n_train_per_class`` training and ``n_val_per_class`` validation nodes from every class.

    Rule: for each class ``c`` in ascending order, the nodes with label ``c`` are shuffled by one
    ``numpy.random.default_rng(seed)`` generator (one permutation per class, in class order);
    the first ``n_train_per_class`` go to train, the next ``n_val_per_class`` to val, and the rest
    to test (or only the next ``n_test_per_class``, if given; the others are in no part).
    Nodes with a negative label are unlabelled: they are in no part.

    Args:
        labels: ``(N,)`` integer class per node (negative = unlabelled).
        n_train_per_class, n_val_per_class: nodes per class in train and val.
        seed: the generator's seed (recorded in the split).
        n_test_per_class: cap on the test nodes per class (default: every remaining node).

    Returns:
        A :class:`Split` of node indices (``method="per_class"``); ``sizes`` are the realised
        fractions of the nodes placed; ``info`` has ``n_rows`` (all nodes), ``n_classes``,
        ``n_unlabelled`` and the per-class counts asked for.

    Raises:
        ValueError: a class has fewer nodes than ``n_train_per_class + n_val_per_class`` (the
            message names the class and its count), labels are not integers, or no node is
            labelled.
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be 1-D (one class per node), got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers (class indices), got dtype {arr.dtype}")
    n_train = _count(n_train_per_class, "n_train_per_class")
    n_val = _count(n_val_per_class, "n_val_per_class")
    n_test = _count(n_test_per_class, "n_test_per_class", allow_none=True)
    seed = _check_seed(seed)
    arr = arr.astype(np.int64)
    classes = np.unique(arr[arr >= 0])
    if classes.size == 0:
        raise ValueError("per_class_split: no labelled node (every label is negative)")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in classes.tolist():
        members = np.flatnonzero(arr == c)
        if members.size < n_train + n_val:
            raise ValueError(
                f"per_class_split: class {c} has {members.size} nodes; need {n_train} train + {n_val} val per class"
            )
        order = rng.permutation(members)
        parts[0].append(order[:n_train])
        parts[1].append(order[n_train:n_train + n_val])
        rest = order[n_train + n_val:]
        parts[2].append(rest if n_test is None else rest[:n_test])
    train, val, test = (np.sort(np.concatenate(p)).astype(np.int64) for p in parts)
    placed = train.size + val.size + test.size
    info = {
        "n_rows": int(arr.size),
        "n_classes": int(classes.size),
        "n_unlabelled": int((arr < 0).sum()),
        "n_train_per_class": n_train,
        "n_val_per_class": n_val,
        "n_test_per_class": n_test,
    }
    sizes = (train.size / placed, val.size / placed, 1.0 - (train.size + val.size) / placed)
    return Split(train, val, test, method="per_class", seed=seed, sizes=sizes, info=info)


SPLITS.register("per_class", per_class_split,
                help="nodes: n labelled nodes per class for train and for val (seeded), the rest test")
