"""Node splits (per class) and temporal splits (chronological, inductive) of molgraph.data.splits."""

from __future__ import annotations

import numpy as np
import pytest

from molgraph.data.splits import (
    SPLIT_METHODS,
    Split,
    chronological_split,
    inductive_split,
    inductive_test_subsets,
    make_split,
    per_class_split,
)
from molgraph.registry import SPLITS


def test_every_split_is_registered_with_a_help_line() -> None:
    names = set(SPLITS)
    assert set(SPLIT_METHODS) <= names
    assert {"per_class", "chronological", "inductive", "kfold", "stratified_kfold"} <= names
    for name in names:
        entry = SPLITS.entry(name)
        assert entry.help and "\n" not in entry.help, name
        assert entry.module.startswith("molgraph.data.splits."), name
    # make_split keeps accepting exactly the molecule splits
    assert SPLIT_METHODS == ("random", "scaffold", "ogb_scaffold", "balanced_scaffold", "stratified")
    with pytest.raises(ValueError, match="unknown split method 'per_class'"):
        make_split("per_class", n=10)
    assert SPLITS["ogb_scaffold"](["CCO", "c1ccccc1", "CC"], (0.34, 0.33, 0.33)) == make_split(
        "ogb_scaffold", smiles=["CCO", "c1ccccc1", "CC"], sizes=(0.34, 0.33, 0.33))


# --------------------------------------------------------------------------------------------
# nodes


def test_per_class_split_counts_disjoint_and_seeded() -> None:
    labels = np.repeat([0, 1, 2], [30, 45, 25])
    labels = np.random.default_rng(5).permutation(labels)
    labels[[3, 50]] = -1  # unlabelled nodes go nowhere
    split = per_class_split(labels, 5, 7, seed=3)
    for part, n in (("train", 5), ("val", 7)):
        idx = split.parts()[part]
        assert np.bincount(labels[idx], minlength=3).tolist() == [n, n, n]
    assert split.test.size == 100 - 2 - 3 * 12
    assert 3 not in split.test and 50 not in split.test
    assert np.intersect1d(split.train, split.test).size == 0 and np.intersect1d(split.val, split.test).size == 0
    assert split.info["n_unlabelled"] == 2 and split.info["n_classes"] == 3 and split.method == "per_class"
    assert per_class_split(labels, 5, 7, seed=3) == split
    assert per_class_split(labels, 5, 7, seed=4) != split
    capped = per_class_split(labels, 5, 7, seed=3, n_test_per_class=4)
    assert np.array_equal(capped.train, split.train) and capped.test.size == 12
    assert np.isin(capped.test, split.test).all()


def test_per_class_split_exact_when_a_class_is_used_up(tmp_path) -> None:
    labels = np.array([1, 0, 1, 0, 1, 1])
    split = per_class_split(labels, 1, 1, seed=0)
    # class 0 has exactly two nodes: one in train, the other in val, none in test
    assert sorted(np.concatenate([split.train, split.val])[labels[np.concatenate([split.train, split.val])] == 0]) \
        == [1, 3]
    assert split.test.tolist() == sorted(set([0, 2, 4, 5]) - set(split.train) - set(split.val))
    assert Split.load(split.save(tmp_path / "s.json")) == split
    with pytest.raises(ValueError, match="class 0 has 2 nodes; need 2 train \\+ 1 val"):
        per_class_split(labels, 2, 1)
    with pytest.raises(ValueError, match="integers"):
        per_class_split(np.array([0.5, 1.0]), 1, 0)


# --------------------------------------------------------------------------------------------
# temporal


def test_chronological_split_cuts_at_quantiles_and_keeps_ties_together() -> None:
    t = np.arange(20, dtype=float)  # quantiles 0.70 -> 13.3, 0.85 -> 16.15
    split = chronological_split(t)
    assert split.train.tolist() == list(range(14))
    assert split.val.tolist() == [14, 15, 16]
    assert split.test.tolist() == [17, 18, 19]
    assert split.info["val_time"] == pytest.approx(13.3) and split.info["test_time"] == pytest.approx(16.15)
    # quantile 0.70 is 1 (all seven ties go to train), quantile 0.85 is 1.65: val is empty
    ties = np.array([0, 1, 1, 1, 1, 1, 1, 1, 2, 3], dtype=float)
    tied = chronological_split(ties)
    assert tied.train.tolist() == list(range(8)) and tied.val.tolist() == [] and tied.test.tolist() == [8, 9]
    assert chronological_split(t, (0.5, 0.5, 0.0)).test.size == 0
    with pytest.raises(ValueError, match="not finite"):
        chronological_split([0.0, np.nan])


def test_inductive_split_masks_late_nodes_from_train_and_val() -> None:
    rng = np.random.default_rng(0)
    n_events, n_nodes = 2000, 100
    src = rng.integers(0, n_nodes, n_events)
    dst = rng.integers(0, n_nodes, n_events)
    t = np.sort(rng.uniform(0, 1000, n_events))
    split = inductive_split(src, dst, t, mask_fraction=0.1, seed=1)
    masked = np.asarray(split.info["masked_nodes"])
    assert masked.size == 10 and np.all(np.diff(masked) > 0)
    val_time, test_time = split.info["val_time"], split.info["test_time"]
    late_nodes = set(src[t > val_time]) | set(dst[t > val_time])
    assert set(masked.tolist()) <= late_nodes
    for part in (split.train, split.val):
        assert not np.isin(src[part], masked).any() and not np.isin(dst[part], masked).any()
    assert (t[split.train] <= val_time).all() and (t[split.test] > test_time).all()
    assert (np.isin(src[split.test], masked) | np.isin(dst[split.test], masked)).all()
    subsets = inductive_test_subsets(split, src, dst)
    assert np.array_equal(np.sort(np.concatenate([subsets["new_new"], subsets["new_old"]])), split.test)
    assert subsets["new_new"].size == split.info["n_test_new_new"]
    both = np.isin(src, masked) & np.isin(dst, masked)
    assert both[subsets["new_new"]].all() and not both[subsets["new_old"]].any()
    assert split.info["n_dropped"] == n_events - split.train.size - split.val.size - split.test.size
    assert inductive_split(src, dst, t, seed=1) == split
    # the split survives a JSON round trip (masked nodes as a list)
    again = Split.from_dict(split.to_dict())
    assert np.array_equal(inductive_test_subsets(again, src, dst)["new_new"], subsets["new_new"])


def test_inductive_split_refuses_impossible_masks() -> None:
    src, dst, t = np.array([0, 1, 2, 3]), np.array([1, 2, 3, 0]), np.array([0.0, 1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="cannot mask"):
        inductive_split(src, dst, t, sizes=(0.9, 0.05, 0.05), mask_fraction=0.9)
    with pytest.raises(ValueError, match="one node id per event"):
        inductive_split(src[:3], dst, t)
    with pytest.raises(ValueError, match="no masked nodes"):
        inductive_test_subsets(chronological_split(t), src, dst)
