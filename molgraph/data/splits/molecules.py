"""Splits of molecule tables (random, scaffold, stratified, k-fold), saved as ``splits.json``.

Every split function returns a :class:`Split` holding three arrays of row indices (int64, each
sorted ascending) into the input, plus how the split was made (method, seed, requested sizes)
and an ``info`` dict (number of scaffolds, rejected rows, ...).

Conventions shared by all functions here:

* ``sizes`` are three non-negative fractions (train, val, test) summing to 1 within 1e-6.
* Part sizes are counted with :func:`part_sizes` (largest remainder), so the three parts
  cover exactly the rows that were split.
* The seed is an integer; the same seed gives the same split and it is recorded in the
  :class:`Split`. The deterministic scaffold split does not use it and records ``None``.
* Rows whose SMILES cannot be parsed are never dropped silently: with ``errors="raise"`` the
  first one raises :class:`~molgraph.chem.MoleculeError` (its ``index`` is the row); with
  ``errors="skip"`` they are put in no part and listed in ``info["rejected"]`` as
  ``(index, input, reason)`` tuples. Sizes are then fractions of the rows that were kept.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Hashable, Sequence

import numpy as np
import pandas as pd

from molgraph.chem import MoleculeError, mol_from_smiles, murcko_scaffold
from molgraph.data.splits.base import (
    DEFAULT_SIZES,
    Errors,
    Rejected,
    Split,
    _check_errors,
    _check_seed,
    check_sizes,
    part_sizes,
)
from molgraph.registry import SPLITS

__all__ = [
    "SPLIT_METHODS",
    "balanced_scaffold_split",
    "kfold",
    "make_split",
    "ogb_scaffold_split",
    "random_split",
    "scaffold_split",
    "stratified_kfold",
    "stratified_split",
]

SPLIT_METHODS: tuple[str, ...] = ("random", "scaffold", "ogb_scaffold", "balanced_scaffold", "stratified")


def _map_molecules(
    smiles: Sequence[Any], errors: Errors, fn: Callable[[Any], Hashable]
) -> tuple[np.ndarray, list[Hashable], list[Rejected]]:
    """Parse every SMILES and apply ``fn`` to the molecule.

    Returns:
        (kept row indices, ``fn`` value per kept row, rejected rows).
    """
    _check_errors(errors)
    kept: list[int] = []
    values: list[Hashable] = []
    rejected: list[Rejected] = []
    for i, text in enumerate(smiles):
        try:
            mol = mol_from_smiles(text, index=i)
            try:
                value = fn(mol)
            except MoleculeError:
                raise
            except Exception as exc:  # RDKit raises many types; report them like parse errors
                raise MoleculeError(f"{type(exc).__name__}: {exc}", str(text), i) from exc
        except MoleculeError as exc:
            if errors == "raise":
                raise
            rejected.append((i, text if isinstance(text, str) else str(exc.input), exc.reason))
            continue
        kept.append(i)
        values.append(value)
    return np.asarray(kept, dtype=np.int64), values, rejected


def _scaffold_groups(
    smiles: Sequence[str] | None,
    scaffolds: Sequence[Hashable] | None,
    generic: bool,
    errors: Errors,
    include_chirality: bool = False,
) -> tuple[list[np.ndarray], int, list[Rejected], int]:
    """Group rows by scaffold.

    Returns:
        (groups of row indices in order of first occurrence, number of rows kept, rejected
        rows, number of input rows).
    """
    if scaffolds is not None:
        if smiles is not None and len(smiles) != len(scaffolds):
            raise ValueError(f"got {len(smiles)} SMILES but {len(scaffolds)} scaffolds")
        _check_errors(errors)
        kept = np.arange(len(scaffolds), dtype=np.int64)
        keys, rejected, n_rows = list(scaffolds), [], len(scaffolds)
    elif smiles is not None:
        kept, keys, rejected = _map_molecules(
            smiles, errors, lambda m: murcko_scaffold(m, generic=generic, include_chirality=include_chirality)
        )
        n_rows = len(smiles)
    else:
        raise ValueError("scaffold splits need smiles (or precomputed scaffolds)")
    by_key: dict[Hashable, list[int]] = {}  # dicts keep insertion = first-occurrence order
    for row, key in zip(kept.tolist(), keys):
        by_key.setdefault(key, []).append(row)
    groups = [np.asarray(rows, dtype=np.int64) for rows in by_key.values()]
    return groups, int(kept.size), rejected, n_rows


def _assign_groups(groups: Sequence[np.ndarray], targets: tuple[int, int, int]) -> list[np.ndarray]:
    """First-fit assignment of whole groups to train, val, test (in the given group order).

    A group goes to train if train would then hold at most its target count; otherwise to val
    under the same condition; otherwise to test, which takes whatever is left. Later (smaller)
    groups can still go to train after an earlier one did not fit.
    """
    chosen: list[list[np.ndarray]] = [[], [], []]
    filled = [0, 0, 0]
    for group in groups:
        part = next((p for p in (0, 1) if filled[p] + len(group) <= targets[p]), 2)
        chosen[part].append(group)
        filled[part] += len(group)
    return [np.sort(np.concatenate(c)) if c else np.zeros(0, dtype=np.int64) for c in chosen]


# --------------------------------------------------------------------------------------------
# Split functions
# --------------------------------------------------------------------------------------------


def random_split(n: int, sizes: Sequence[float] = DEFAULT_SIZES, seed: int = 0) -> Split:
    """Shuffle ``range(n)`` with ``seed`` and cut it into parts of :func:`part_sizes` rows."""
    fractions = check_sizes(sizes)
    seed = _check_seed(seed)
    n_train, n_val, _ = part_sizes(n, fractions)
    order = np.random.default_rng(seed).permutation(int(n))
    return Split(
        train=np.sort(order[:n_train]),
        val=np.sort(order[n_train : n_train + n_val]),
        test=np.sort(order[n_train + n_val :]),
        method="random",
        seed=seed,
        sizes=fractions,
        info={"n_rows": int(n)},
    )


def scaffold_split(
    smiles: Sequence[str] | None,
    sizes: Sequence[float] = DEFAULT_SIZES,
    *,
    scaffolds: Sequence[Hashable] | None = None,
    generic: bool = False,
    errors: Errors = "raise",
    tie_break: str = "first",
    include_chirality: bool = False,
) -> Split:
    """Deterministic Bemis-Murcko scaffold split (MoleculeNet/DeepChem style).

    Rule: rows are grouped by scaffold (:func:`~molgraph.chem.murcko_scaffold`; acyclic
    molecules share the empty scaffold). Groups are sorted by size, largest first, ties broken
    by first occurrence in the input: earliest first (``tie_break="first"``) or latest first
    (``"last"``, as DeepChem's ``ScaffoldSplitter`` and the pretrain-gnns code of Hu et al. that
    made OGB's ``ogbg-mol*`` splits, which also keeps chirality in the scaffolds).
    Most groups are singletons, so the tie rule decides which molecules make up val and test:
    on HIV the two rules' test sets share no molecule.
    With targets ``(t_train, t_val, t_test) = part_sizes(n_kept, sizes)``, each group in turn
    goes to train if train then holds at most ``t_train`` rows, else to val if val then holds
    at most ``t_val`` rows, else to test. So no scaffold is in two parts, the largest scaffold
    sets land in train, train and val never exceed their targets and fall short of them by
    less than the smallest group placed after them, and test takes the remainder.

    Args:
        smiles: one SMILES per row (may be ``None`` when ``scaffolds`` is given).
        sizes: (train, val, test) fractions.
        scaffolds: precomputed group key per row; when given no SMILES is parsed.
        generic: group by generic scaffolds (all atoms carbon, all bonds single).
        errors: ``"raise"`` or ``"skip"`` for unparsable SMILES (see the module doc).
        tie_break: ``"first"`` or ``"last"`` (see above).
        include_chirality: keep stereo in the scaffold SMILES (DeepChem and OGB do).

    Returns:
        A :class:`Split` with ``seed=None``; ``info`` holds ``n_rows``, ``n_scaffolds``,
        ``largest_scaffold``, ``generic``, ``tie_break``, ``include_chirality`` and ``rejected``.
    """
    if tie_break not in ("first", "last"):
        raise ValueError(f"tie_break must be 'first' or 'last', got {tie_break!r}")
    fractions = check_sizes(sizes)
    groups, n_kept, rejected, n_rows = _scaffold_groups(smiles, scaffolds, generic, errors, include_chirality)
    if tie_break == "first":
        # sorted() is stable, so equal-sized groups keep first-occurrence order.
        ordered = sorted(groups, key=lambda g: -len(g))
    else:  # each group's rows are in input order, so g[0] is its first occurrence
        ordered = sorted(groups, key=lambda g: (-len(g), -int(g[0])))
    train, val, test = _assign_groups(ordered, part_sizes(n_kept, fractions))
    info = {
        "n_rows": n_rows,
        "n_scaffolds": len(groups),
        "largest_scaffold": max((len(g) for g in groups), default=0),
        "generic": bool(generic),
        "tie_break": tie_break,
        "include_chirality": bool(include_chirality),
        "rejected": rejected,
    }
    return Split(train, val, test, method="scaffold", seed=None, sizes=fractions, info=info)


def ogb_scaffold_split(
    smiles: Sequence[str] | None,
    sizes: Sequence[float] = DEFAULT_SIZES,
    *,
    scaffolds: Sequence[Hashable] | None = None,
    generic: bool = False,
    errors: Errors = "raise",
) -> Split:
    """The rule of OGB's ``ogbg-mol*`` splits: :func:`scaffold_split` with latest-first ties and chiral scaffolds.

    Same as ``scaffold_split(..., tie_break="last", include_chirality=True)``, recorded as
    ``method="ogb_scaffold"``.
    """
    split = scaffold_split(smiles, sizes, scaffolds=scaffolds, generic=generic, errors=errors, tie_break="last",
                           include_chirality=True)
    return replace(split, method="ogb_scaffold")


def balanced_scaffold_split(
    smiles: Sequence[str] | None,
    sizes: Sequence[float] = DEFAULT_SIZES,
    seed: int = 0,
    *,
    scaffolds: Sequence[Hashable] | None = None,
    generic: bool = False,
    errors: Errors = "raise",
) -> Split:
    """Randomized scaffold split that keeps big scaffold sets out of val and test (chemprop style).

    Rule: with targets ``(t_train, t_val, t_test) = part_sizes(n_kept, sizes)``, a scaffold
    group is "big" if it has more than ``t_val / 2`` or more than ``t_test / 2`` rows. The big
    groups are shuffled with the seed and placed first, then the other groups, shuffled with
    the same generator. Groups are then assigned by the same first-fit rule as
    :func:`scaffold_split`, so big groups go to train whenever they fit. No scaffold is in two
    parts; different seeds give different splits (unless there are too few groups to differ).

    Returns:
        A :class:`Split` recording ``seed``; ``info`` holds ``n_rows``, ``n_scaffolds``,
        ``n_big_scaffolds``, ``generic`` and ``rejected``.
    """
    fractions = check_sizes(sizes)
    seed = _check_seed(seed)
    groups, n_kept, rejected, n_rows = _scaffold_groups(smiles, scaffolds, generic, errors)
    targets = part_sizes(n_kept, fractions)
    is_big = [len(g) > targets[1] / 2 or len(g) > targets[2] / 2 for g in groups]
    big = [g for g, b in zip(groups, is_big) if b]
    small = [g for g, b in zip(groups, is_big) if not b]
    rng = np.random.default_rng(seed)
    ordered = [big[i] for i in rng.permutation(len(big))] + [small[i] for i in rng.permutation(len(small))]
    train, val, test = _assign_groups(ordered, targets)
    info = {
        "n_rows": n_rows,
        "n_scaffolds": len(groups),
        "n_big_scaffolds": len(big),
        "generic": bool(generic),
        "rejected": rejected,
    }
    return Split(train, val, test, method="balanced_scaffold", seed=seed, sizes=fractions, info=info)


def _strata(labels: Any) -> np.ndarray:
    """Integer stratum per row: the label itself (1-D) or the first task's label (2-D).

    NaN/None (a missing label) is its own stratum, so unlabelled rows are spread evenly too.
    """
    arr = np.asarray(labels, dtype=object) if not isinstance(labels, np.ndarray) else labels
    if arr.ndim == 2:
        arr = arr[:, 0]
    elif arr.ndim != 1:
        raise ValueError(f"labels must be 1-D (one task) or 2-D (rows x tasks), got shape {arr.shape}")
    codes, _ = pd.factorize(pd.Series(arr, dtype=object), use_na_sentinel=False)
    return np.asarray(codes, dtype=np.int64)


def _merge_rare(strata: np.ndarray) -> np.ndarray:
    """Merge strata with a single row so scikit-learn can stratify the rest.

    Single rows are pooled into one extra stratum; if that pool is itself one row, it joins
    the most common stratum. Classes with two or more rows are stratified as given.
    """
    values, counts = np.unique(strata, return_counts=True)
    rare = values[counts < 2]
    if rare.size == 0:
        return strata
    merged = strata.copy()
    is_rare = np.isin(strata, rare)
    pool = int(values.max()) + 1
    if is_rare.sum() == 1:
        common = values[counts >= 2]
        pool = int(common[np.argmax(counts[counts >= 2])]) if common.size else pool
    merged[is_rare] = pool
    return merged


def _stratified_take(
    rows: np.ndarray, strata: np.ndarray, n_take: int, rng: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified draw of ``n_take`` of ``rows`` -> (taken, rest)."""
    from sklearn.model_selection import train_test_split

    if n_take == 0:
        return rows[:0], rows
    if n_take == rows.size:
        return rows, rows[:0]
    try:
        taken, rest = train_test_split(
            rows, train_size=n_take, test_size=rows.size - n_take, stratify=_merge_rare(strata), random_state=rng
        )
    except ValueError as exc:
        raise ValueError(
            f"cannot stratify {rows.size} rows into parts of {n_take} and {rows.size - n_take} "
            f"({exc}); use a random split or larger parts"
        ) from exc
    return np.asarray(taken, dtype=np.int64), np.asarray(rest, dtype=np.int64)


def stratified_split(labels: Any, sizes: Sequence[float] = DEFAULT_SIZES, seed: int = 0) -> Split:
    """Random split that keeps each class's share in every part (classification).

    Stratifies on the label for one task; for 2-D labels (rows x tasks) on the first task's
    label, with a missing value (NaN) counted as a class of its own. Part sizes follow
    :func:`part_sizes`; train is drawn first (scikit-learn's ``train_test_split`` with
    ``stratify``), then the rest is divided into val and test the same way, so each part's
    count of every class is within about one row of proportional. A class with a single row
    (overall, or left for val/test) is pooled with other such rows, since a single row cannot be
    shared out.

    Raises:
        ValueError: when a part is too small to hold one row of each class.
    """
    fractions = check_sizes(sizes)
    seed = _check_seed(seed)
    strata = _strata(labels)
    n = strata.size
    n_train, n_val, n_test = part_sizes(n, fractions)
    # One RandomState drives both draws, so the whole split is a function of the seed.
    rng = np.random.RandomState(seed)
    rows = np.arange(n, dtype=np.int64)
    train, rest = _stratified_take(rows, strata, n_train, rng)
    val, test = _stratified_take(rest, strata[rest], n_val, rng)
    info = {
        "n_rows": int(n),
        "n_strata": int(np.unique(strata).size),
        "stratified_on": "first task" if np.ndim(labels) == 2 else "labels",
    }
    return Split(np.sort(train), np.sort(val), np.sort(test), "stratified", seed, fractions, info)


def kfold(n: int, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """K-fold cross-validation folds of ``range(n)`` (scikit-learn ``KFold``, shuffled with ``seed``).

    Returns:
        ``k`` pairs ``(train_idx, test_idx)`` of sorted int64 arrays; every index is in exactly
        one test fold. Carve a validation set out of ``train_idx`` if one is needed.
    """
    from sklearn.model_selection import KFold

    seed = _check_seed(seed)
    folds = KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros((int(n), 1)))
    return [(np.sort(tr).astype(np.int64), np.sort(te).astype(np.int64)) for tr, te in folds]


def stratified_kfold(labels: Any, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold folds (scikit-learn ``StratifiedKFold``, shuffled with ``seed``).

    Strata are formed as in :func:`stratified_split` (first task for 2-D labels, NaN its own
    class). Returns ``k`` pairs ``(train_idx, test_idx)`` like :func:`kfold`.
    """
    from sklearn.model_selection import StratifiedKFold

    seed = _check_seed(seed)
    strata = _strata(labels)
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros((strata.size, 1)), strata)
    return [(np.sort(tr).astype(np.int64), np.sort(te).astype(np.int64)) for tr, te in folds]


# --------------------------------------------------------------------------------------------
# Dispatcher and user split files
# --------------------------------------------------------------------------------------------


def _row_count(smiles: Sequence[Any] | None, labels: Any, n: int | None) -> int:
    counts = {}
    if smiles is not None:
        counts["smiles"] = len(smiles)
    if labels is not None:
        counts["labels"] = len(labels)
    if n is not None:
        counts["n"] = int(n)
    if not counts:
        raise ValueError("give smiles, labels or n")
    if len(set(counts.values())) > 1:
        raise ValueError(f"row counts disagree: {counts}")
    return next(iter(counts.values()))


def _restrict(split: Split, kept: np.ndarray, n_rows: int, rejected: list[Rejected]) -> Split:
    """Map a split of ``kept`` rows (positions 0..len-1) back to input row indices."""
    info = {**split.info, "n_rows": n_rows, "rejected": rejected}
    return Split(kept[split.train], kept[split.val], kept[split.test], split.method, split.seed, split.sizes, info)


def make_split(
    method: str,
    *,
    smiles: Sequence[str] | None = None,
    labels: Any = None,
    n: int | None = None,
    sizes: Sequence[float] = DEFAULT_SIZES,
    seed: int = 0,
    errors: Errors = "raise",
    generic: bool = False,
) -> Split:
    """Make a split by name (used by the CLI and the trainer).

    Args:
        method: ``"random"``, ``"scaffold"``, ``"ogb_scaffold"`` (:func:`scaffold_split` with
            latest-first ties and chiral scaffolds: the rule of OGB's ``ogbg-mol*`` splits),
            ``"balanced_scaffold"`` or ``"stratified"``.
        smiles: one SMILES per row; needed for scaffold splits. When given for the other
            methods too, unparsable rows are handled by ``errors`` as well, so every method
            splits the same usable rows.
        labels: one label per row (or rows x tasks); needed for ``"stratified"``.
        n: number of rows, for ``"random"`` when neither smiles nor labels are given.
        sizes: (train, val, test) fractions.
        seed: random seed (not used by ``"scaffold"``, which records ``None``).
        errors: ``"raise"`` or ``"skip"`` for unparsable SMILES.
        generic: scaffold splits group by generic scaffolds.

    Returns:
        The :class:`Split`; ``info`` always has ``n_rows`` and ``rejected``.
    """
    if method not in SPLIT_METHODS:
        raise ValueError(f"unknown split method {method!r}; choose from {', '.join(SPLIT_METHODS)}")
    fractions = check_sizes(sizes)
    n_rows = _row_count(smiles, labels, n)
    if method == "scaffold":
        if smiles is None:
            raise ValueError("the scaffold split needs smiles")
        return scaffold_split(smiles, fractions, generic=generic, errors=errors)
    if method == "ogb_scaffold":
        if smiles is None:
            raise ValueError("the ogb_scaffold split needs smiles")
        return ogb_scaffold_split(smiles, fractions, generic=generic, errors=errors)
    if method == "balanced_scaffold":
        if smiles is None:
            raise ValueError("the balanced_scaffold split needs smiles")
        return balanced_scaffold_split(smiles, fractions, seed, generic=generic, errors=errors)
    if method == "stratified" and labels is None:
        raise ValueError("the stratified split needs labels (a target column)")

    if smiles is not None:
        kept, _, rejected = _map_molecules(smiles, errors, lambda m: None)
    else:
        kept, rejected = np.arange(n_rows, dtype=np.int64), []
    if method == "random":
        inner = random_split(kept.size, fractions, seed)
    else:
        label_arr = labels if isinstance(labels, np.ndarray) else np.asarray(labels, dtype=object)
        inner = stratified_split(label_arr[kept], fractions, seed)
    return _restrict(inner, kept, n_rows, rejected)




# The molecule splits, by the names ``make_split`` (``molgraph split``/``molgraph train --split``)
# accepts, plus the k-fold generators. ``SPLIT_METHODS`` stays the tuple of the first five: the
# registry also holds node and temporal splits, which ``make_split`` does not make.
SPLITS.register("random", random_split, help="molecules: shuffle the rows with the seed, cut by sizes")
SPLITS.register("scaffold", scaffold_split,
                help="molecules: deterministic Bemis-Murcko scaffold groups, largest first (DeepChem/MoleculeNet)")
SPLITS.register("ogb_scaffold", ogb_scaffold_split,
                help="molecules: scaffold split with latest-first ties and chiral scaffolds (OGB ogbg-mol*)")
SPLITS.register("balanced_scaffold", balanced_scaffold_split,
                help="molecules: seeded scaffold split keeping big scaffold sets in train (chemprop)")
SPLITS.register("stratified", stratified_split, help="molecules: random split keeping each class's share per part")
SPLITS.register("kfold", kfold, help="k shuffled folds of range(n) (scikit-learn KFold)")
SPLITS.register("stratified_kfold", stratified_kfold, help="k stratified folds (scikit-learn StratifiedKFold)")
