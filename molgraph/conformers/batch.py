"""Conformer generation over many molecules, in worker processes, results in input order.

Each molecule is one task: generation costs milliseconds to seconds per molecule, far more than
sending a SMILES out and a pickled molecule back, and one-molecule tasks keep both processes busy
when a few hard molecules take most of the time. At most ``4 * n_jobs`` tasks are in flight, so
memory stays bounded and results can stream to a file as they arrive.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Iterable, Iterator

from rdkit import Chem

from molgraph.chem.errors import MoleculeError
from molgraph.conformers.generate import ConformerResult, GenerationOptions, generate_conformers

__all__ = ["generate_batch", "resolve_n_jobs"]


def resolve_n_jobs(n_jobs: int) -> int:
    """``n_jobs`` as a process count: -1 means all cores, 0 and 1 mean in-process."""
    if n_jobs < 0:
        return max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return max(1, n_jobs)


def _one(index: int, item: Any, options: GenerationOptions) -> ConformerResult:
    try:
        return generate_conformers(item, options=options, index=index)
    except MoleculeError as err:
        text = item if isinstance(item, str) else repr(item)
        return ConformerResult(index=index, input=text, failure=f"could not read molecule: {err.reason}")
    except Exception as err:  # an RDKit error on one molecule must not end a long batch
        text = item if isinstance(item, str) else repr(item)
        return ConformerResult(index=index, input=text, failure=f"{type(err).__name__}: {err}")


def _mp_context() -> mp.context.BaseContext:
    # fork starts workers in milliseconds and shares the imported RDKit; fall back elsewhere.
    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods and sys.platform != "darwin" else "spawn")


def generate_batch(
    items: Iterable[Chem.Mol | str],
    n_confs: int | None = None,
    *,
    options: GenerationOptions | None = None,
    n_jobs: int = 1,
    progress: bool = False,
    total: int | None = None,
    **kwargs: Any,
) -> Iterator[ConformerResult]:
    """Generate conformers for each item; yields one :class:`ConformerResult` per item, in order.

    Args:
        items: SMILES strings or RDKit molecules (a :class:`MoleculeError` instance, e.g. from
            :func:`molgraph.chem.read_sdf`, becomes a failed result carrying its reason).
        n_confs / options / kwargs: as for :func:`generate_conformers`.
        n_jobs: worker processes (1: in this process; -1: all cores).
        progress: show a tqdm progress bar.
        total: number of items, for the progress bar when ``items`` has no ``len``.

    Failed molecules are yielded too (``result.failure`` says why): nothing is dropped.
    """
    options = options or GenerationOptions()
    if n_confs is not None:
        kwargs["n_confs"] = n_confs
    if kwargs:
        from dataclasses import replace

        options = replace(options, **kwargs)
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="mol", desc="conformers", disable=not progress)
    jobs = resolve_n_jobs(n_jobs)
    try:
        if jobs == 1:
            for index, item in enumerate(items):
                yield _prefailed(index, item) or _one(index, item, options)
                bar.update(1)
            return
        pending: deque[Future | ConformerResult] = deque()
        with ProcessPoolExecutor(max_workers=jobs, mp_context=_mp_context()) as pool:
            source = enumerate(items)
            for index, item in source:
                pending.append(_prefailed(index, item) or pool.submit(_one, index, item, options))
                if len(pending) >= 4 * jobs:
                    yield _resolve(pending.popleft())
                    bar.update(1)
            while pending:
                yield _resolve(pending.popleft())
                bar.update(1)
    finally:
        bar.close()


def _prefailed(index: int, item: Any) -> ConformerResult | None:
    if isinstance(item, MoleculeError):
        return ConformerResult(index=index, input=item.input or "", failure=f"could not read molecule: {item.reason}")
    return None


def _resolve(entry: Future | ConformerResult) -> ConformerResult:
    return entry.result() if isinstance(entry, Future) else entry
