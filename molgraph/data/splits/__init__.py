"""Train/validation/test splits of molecules, nodes and temporal events, saved as ``splits.json``.

Every split function returns a :class:`Split`: three sorted int64 arrays of indices into the
input (molecule rows, nodes or events), how the split was made and an ``info`` dict.

* :mod:`.base`: the :class:`Split` record, :func:`check_sizes`, :func:`part_sizes` and
  :func:`load_split_file` (user split files).
* :mod:`.molecules`: random, scaffold, OGB scaffold, balanced scaffold and stratified splits of
  molecule tables, :func:`make_split` (by name, as ``molgraph split``/``molgraph train`` use
  it), :func:`kfold` and :func:`stratified_kfold`.
* :mod:`.nodes`: :func:`per_class_split`, n labelled nodes per class (certificate papers).
* :mod:`.temporal`: :func:`chronological_split` and :func:`inductive_split` of event streams
  (CAW-N/TGAT protocol).

Every split is registered by name in :data:`molgraph.registry.SPLITS` (with a one-line help; the
entry's ``module`` says which kind of data it splits). :data:`SPLIT_METHODS` is the tuple of the
molecule splits :func:`make_split` accepts.
"""

from __future__ import annotations

import os  # noqa: F401  (kept: callers patch ``splits.os.replace`` to simulate a failed write)

from molgraph.data.splits.base import (
    DEFAULT_SIZES,
    PARTS,
    Errors,
    Rejected,
    Split,
    _atomic_write_text,  # noqa: F401  (``molgraph split`` writes its files with it)
    check_sizes,
    load_split_file,
    part_sizes,
)
from molgraph.data.splits.molecules import (
    SPLIT_METHODS,
    balanced_scaffold_split,
    kfold,
    make_split,
    ogb_scaffold_split,
    random_split,
    scaffold_split,
    stratified_kfold,
    stratified_split,
)
from molgraph.data.splits.nodes import per_class_split
from molgraph.data.splits.temporal import (
    TEMPORAL_SIZES,
    chronological_split,
    inductive_split,
    inductive_test_subsets,
)

__all__ = [
    "DEFAULT_SIZES",
    "PARTS",
    "SPLIT_METHODS",
    "TEMPORAL_SIZES",
    "Errors",
    "Rejected",
    "Split",
    "balanced_scaffold_split",
    "check_sizes",
    "chronological_split",
    "inductive_split",
    "inductive_test_subsets",
    "kfold",
    "load_split_file",
    "make_split",
    "ogb_scaffold_split",
    "part_sizes",
    "per_class_split",
    "random_split",
    "scaffold_split",
    "stratified_kfold",
    "stratified_split",
]
