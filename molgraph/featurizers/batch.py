"""Featurizing many molecules: streaming, in parallel, with every failure reported.

:func:`iter_featurize` streams ``(index, GraphArrays | Reject)`` in input order over any iterable
(a generator over a 1M-row file never has more than ``2 * n_jobs`` chunks in memory);
:func:`featurize_smiles` collects the graphs as ``Data`` plus the list of rejects.

Worker processes send numpy arrays (:class:`~molgraph.featurizers.graph.GraphArrays`) back,
never torch tensors: plain numpy pickles are cheap, torch's multiprocessing pickling is not.
:func:`iter_featurize_chunks` streams whole chunks (:class:`PackedChunk`: a few concatenated
arrays per chunk) for callers that collate everything anyway, such as ``molgraph featurize``.

Nothing here imports torch or PyG until a ``Data`` is built (:func:`featurize_smiles`), so a
caller that only wants arrays does not pay seconds of imports for them.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import multiprocessing as mp
import os
import sys
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Literal, NamedTuple, Sequence, Union

import numpy as np
from rdkit import Chem

from molgraph.chem import MoleculeError
from molgraph.featurizers.graph import GraphArrays, MolGraphFeaturizer

if TYPE_CHECKING:
    from torch_geometric.data import Data

__all__ = [
    "Reject", "FeaturizeResult", "PackedChunk", "iter_featurize", "iter_featurize_chunks", "featurize_smiles",
    "default_progress",
]

Errors = Literal["raise", "skip"]


class Reject(NamedTuple):
    """An input that could not be featurized: its position, the input text and why."""

    index: int
    input: str
    reason: str


@dataclass
class FeaturizeResult:
    """Graphs in input order (failures left out), the rejects, and each graph's input index.

    Unpacks as ``graphs, rejects = featurize_smiles(...)``.
    """

    graphs: list[Data]
    rejects: list[Reject]
    indices: list[int] = field(default_factory=list)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.graphs, self.rejects))


def default_progress(progress: bool | None) -> bool:
    """``None`` means: show a progress bar only when stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else bool(progress)


# -- worker side ----------------------------------------------------------------------------------
_WORKER_FEATURIZER: MolGraphFeaturizer | None = None


def _init_worker(config: dict[str, Any]) -> None:
    global _WORKER_FEATURIZER
    from rdkit import rdBase

    rdBase.DisableLog("rdApp.*")  # reasons are captured per molecule; keep workers quiet
    _WORKER_FEATURIZER = MolGraphFeaturizer.from_config(config)


def _featurize_item(featurizer: MolGraphFeaturizer, index: int, item: Any) -> GraphArrays | Reject:
    if isinstance(item, MoleculeError):  # a reader's failure (e.g. an SDF record) passes through
        return Reject(index, item.input or "", item.reason)
    try:
        return featurizer.arrays(item, index=index)
    except MoleculeError as err:
        reason = err.reason
    except Exception as exc:  # an RDKit failure we did not foresee still names the molecule
        reason = f"{type(exc).__name__}: {exc}"
    shown = item if isinstance(item, str) else (Chem.MolToSmiles(item) if isinstance(item, Chem.Mol) else repr(item))
    return Reject(index, shown, reason)


def _featurize_chunk(start: int, items: Sequence[Any]) -> "PackedChunk":
    assert _WORKER_FEATURIZER is not None, "worker not initialised"
    return _pack([_featurize_item(_WORKER_FEATURIZER, start + k, item) for k, item in enumerate(items)])


class PackedChunk(NamedTuple):
    """A chunk's results concatenated into a few arrays: one pickle of ~10 objects per chunk
    instead of ~5 per molecule, which keeps the parent process's share of the work small.

    Graphs appear in input order; ``kinds[k]`` says whether the chunk's ``k``-th item became a
    graph (True) or a reject. ``x``/``edge_index``/``edge_attr`` are ``None`` when the chunk has no
    graph; ``pos``/``z`` hold only the graphs with ``has_pos``.
    """

    kinds: list[bool]  # per item: True = graph, False = reject
    rejects: list[Reject]
    smiles: list[str]
    atom_counts: list[int]
    edge_counts: list[int]
    x: np.ndarray | None
    edge_index: np.ndarray | None
    edge_attr: np.ndarray | None
    has_pos: list[bool]
    pos: np.ndarray | None
    z: np.ndarray | None


_PackedChunk = PackedChunk  # the name before it was public


def _pack(results: list[GraphArrays | Reject]) -> PackedChunk:
    kinds = [not isinstance(r, Reject) for r in results]
    graphs = [r for r, is_graph in zip(results, kinds) if is_graph]
    with_pos = [g for g in graphs if g.pos is not None]
    return PackedChunk(
        kinds=kinds,
        rejects=[r for r, is_graph in zip(results, kinds) if not is_graph],
        smiles=[g.smiles for g in graphs],
        atom_counts=[g.x.shape[0] for g in graphs],
        edge_counts=[g.edge_index.shape[1] for g in graphs],
        x=np.concatenate([g.x for g in graphs]) if graphs else None,
        edge_index=np.concatenate([g.edge_index for g in graphs], axis=1) if graphs else None,
        edge_attr=np.concatenate([g.edge_attr for g in graphs]) if graphs else None,
        has_pos=[g.pos is not None for g in graphs],
        pos=np.concatenate([g.pos for g in with_pos]) if with_pos else None,
        z=np.concatenate([g.z for g in with_pos]) if with_pos else None,
    )


def _unpack(chunk: PackedChunk) -> list[GraphArrays | Reject]:
    atom_cuts = np.cumsum(chunk.atom_counts)[:-1]
    edge_cuts = np.cumsum(chunk.edge_counts)[:-1]
    xs = np.split(chunk.x, atom_cuts) if chunk.x is not None else []
    eis = np.split(chunk.edge_index, edge_cuts, axis=1) if chunk.edge_index is not None else []
    eas = np.split(chunk.edge_attr, edge_cuts) if chunk.edge_attr is not None else []
    pos_iter = iter(())
    if chunk.pos is not None:
        counts = [c for c, has in zip(chunk.atom_counts, chunk.has_pos) if has]
        cuts = np.cumsum(counts)[:-1]
        pos_iter = zip(np.split(chunk.pos, cuts), np.split(chunk.z, cuts))
    graphs = iter(range(len(chunk.smiles)))
    rejects = iter(chunk.rejects)
    out: list[GraphArrays | Reject] = []
    for is_graph in chunk.kinds:
        if not is_graph:
            out.append(next(rejects))
            continue
        g = next(graphs)
        pos, z = next(pos_iter) if chunk.has_pos[g] else (None, None)
        out.append(GraphArrays(xs[g], eis[g], eas[g], chunk.smiles[g], pos, z))
    return out


# -- driver ----------------------------------------------------------------------------------------
def _chunks(items: Iterable[Any], size: int) -> Iterator[tuple[int, list[Any]]]:
    it = iter(items)
    start = 0
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        yield start, chunk
        start += len(chunk)


def _mp_context() -> mp.context.BaseContext:
    # fork starts workers in milliseconds (no re-import of torch/RDKit); workers only touch
    # RDKit and numpy, so forking a process that has imported torch is safe here.
    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods else "spawn")


# A chunk travels as the list of its results (serial) or packed (from a worker); each consumer
# converts only when it needs the other form.
_Chunk = Union[list, PackedChunk]


def _prepare(
    molecules: Iterable[Any], featurizer: MolGraphFeaturizer | None, n_jobs: int, chunk_size: int | None,
    errors: str, total: int | None,
) -> tuple[MolGraphFeaturizer, int, int, int | None]:
    if errors not in ("raise", "skip"):
        raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
    featurizer = featurizer or MolGraphFeaturizer.ogb()
    if n_jobs == -1:
        n_jobs = os.cpu_count() or 1
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be >= 1 or -1, got {n_jobs}")
    if total is None and hasattr(molecules, "__len__"):
        total = len(molecules)  # type: ignore[arg-type]
    if chunk_size is None:
        chunk_size = 512 if total is None else max(16, min(512, total // (16 * n_jobs)))
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return featurizer, n_jobs, chunk_size, total


class _NoBar:
    """Stands in for a disabled tqdm bar (tqdm.auto alone takes ~0.2 s to import)."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(progress: bool | None, total: int | None) -> Any:
    if not default_progress(progress):
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="mol", desc="featurizing")


def _iter_chunks(
    molecules: Iterable[Any], featurizer: MolGraphFeaturizer, n_jobs: int, chunk_size: int,
    progress: bool | None, total: int | None,
) -> Iterator[tuple[int, _Chunk]]:
    """``(start, chunk)`` in input order, with the progress bar advanced after each chunk."""
    bar = _progress_bar(progress, total)
    try:
        results = _serial(molecules, featurizer, chunk_size) if n_jobs == 1 else _parallel(
            molecules, featurizer, n_jobs, chunk_size
        )
        for start, chunk in results:
            yield start, chunk
            bar.update(len(chunk.kinds) if isinstance(chunk, PackedChunk) else len(chunk))
    finally:
        bar.close()


def iter_featurize(
    molecules: Iterable[str | Chem.Mol],
    featurizer: MolGraphFeaturizer | None = None,
    *,
    n_jobs: int = 1,
    chunk_size: int | None = None,
    errors: Errors = "raise",
    progress: bool | None = None,
    total: int | None = None,
) -> Iterator[tuple[int, GraphArrays | Reject]]:
    """Featurize a stream of SMILES (or RDKit molecules), yielding results in input order.

    Args:
        molecules: any iterable; it is consumed lazily, chunk by chunk. An item may also be a
            :class:`MoleculeError` from a reader, which becomes a reject at its position.
        featurizer: defaults to ``MolGraphFeaturizer.ogb()``.
        n_jobs: worker processes (1 = in this process; -1 = all cores).
        chunk_size: molecules per task sent to a worker (default: about 16 tasks per worker
            when the input's length is known, so workers finish together; else 512).
        errors: ``"raise"`` stops at the first bad molecule with a :class:`MoleculeError`
            naming its index and reason; ``"skip"`` yields a :class:`Reject` for it and goes on.
        progress: show a progress bar (default: only when stderr is a terminal).
        total: number of molecules, for the progress bar when ``molecules`` has no ``len``.

    Yields:
        ``(index, GraphArrays)`` for each good molecule and ``(index, Reject)`` for each bad one.
    """
    featurizer, n_jobs, chunk_size, total = _prepare(molecules, featurizer, n_jobs, chunk_size, errors, total)
    for start, chunk in _iter_chunks(molecules, featurizer, n_jobs, chunk_size, progress, total):
        results = _unpack(chunk) if isinstance(chunk, PackedChunk) else chunk
        for k, result in enumerate(results):
            if errors == "raise" and isinstance(result, Reject):
                raise MoleculeError(result.reason, result.input, result.index)
            yield start + k, result


def iter_featurize_chunks(
    molecules: Iterable[str | Chem.Mol],
    featurizer: MolGraphFeaturizer | None = None,
    *,
    n_jobs: int = 1,
    chunk_size: int | None = None,
    errors: Errors = "raise",
    progress: bool | None = None,
    total: int | None = None,
) -> Iterator[tuple[int, PackedChunk]]:
    """Like :func:`iter_featurize`, but yields ``(start, PackedChunk)`` per chunk, in input order.

    For callers that concatenate all graphs anyway: no per-molecule objects are made in this
    process for the results of worker processes. With ``errors="raise"`` the first bad molecule
    raises :class:`MoleculeError` (before its chunk is yielded).
    """
    featurizer, n_jobs, chunk_size, total = _prepare(molecules, featurizer, n_jobs, chunk_size, errors, total)
    for start, chunk in _iter_chunks(molecules, featurizer, n_jobs, chunk_size, progress, total):
        packed = chunk if isinstance(chunk, PackedChunk) else _pack(chunk)
        if errors == "raise" and packed.rejects:
            first = packed.rejects[0]
            raise MoleculeError(first.reason, first.input, first.index)
        yield start, packed


def _serial(
    molecules: Iterable[Any], featurizer: MolGraphFeaturizer, chunk_size: int
) -> Iterator[tuple[int, list[GraphArrays | Reject]]]:
    from rdkit import rdBase

    with rdBase.BlockLogs():
        for start, chunk in _chunks(molecules, chunk_size):
            yield start, [_featurize_item(featurizer, start + k, item) for k, item in enumerate(chunk)]


def _parallel(
    molecules: Iterable[Any], featurizer: MolGraphFeaturizer, n_jobs: int, chunk_size: int
) -> Iterator[tuple[int, PackedChunk]]:
    max_in_flight = 2 * n_jobs  # bounded read-ahead: memory stays flat on any input size
    chunks = _chunks(molecules, chunk_size)
    pending: dict[int, Future] = {}
    done: dict[int, PackedChunk] = {}
    next_to_yield = 0
    with ProcessPoolExecutor(
        max_workers=n_jobs, mp_context=_mp_context(), initializer=_init_worker,
        initargs=(featurizer.to_config(),),
    ) as pool:
        try:
            exhausted = False
            while True:
                while not exhausted and len(pending) + len(done) < max_in_flight:
                    try:
                        start, chunk = next(chunks)
                    except StopIteration:
                        exhausted = True
                        break
                    pending[start] = pool.submit(_featurize_chunk, start, chunk)
                if next_to_yield in done:
                    out = done.pop(next_to_yield)
                    yield next_to_yield, out
                    next_to_yield += len(out.kinds)
                    continue
                if not pending:
                    return
                finished, _ = wait(list(pending.values()), return_when=FIRST_COMPLETED)
                for start in [s for s, f in pending.items() if f in finished]:
                    done[start] = pending.pop(start).result()
        finally:
            for fut in pending.values():
                fut.cancel()


def featurize_smiles(
    molecules: Iterable[str | Chem.Mol],
    featurizer: MolGraphFeaturizer | None = None,
    *,
    n_jobs: int = 1,
    chunk_size: int | None = None,
    errors: Errors = "raise",
    progress: bool | None = None,
) -> FeaturizeResult:
    """Featurize many molecules into a list of ``Data`` (see :func:`iter_featurize`).

    Returns:
        :class:`FeaturizeResult`; unpack as ``graphs, rejects``. With ``errors="raise"`` the
        rejects list is always empty (the first failure raises).
    """
    graphs: list[Data] = []
    rejects: list[Reject] = []
    indices: list[int] = []
    with _gc_paused():
        for index, result in iter_featurize(
            molecules, featurizer, n_jobs=n_jobs, chunk_size=chunk_size, errors=errors, progress=progress
        ):
            if isinstance(result, Reject):
                rejects.append(result)
            else:
                graphs.append(result.to_data())
                indices.append(index)
    return FeaturizeResult(graphs, rejects, indices)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a long list of ``Data`` objects is built.

    Each ``Data`` holds several GC-tracked containers and none of them form cycles; with the
    collector on, its repeated passes over the growing list cost ~20% of the featurization
    time on 20k molecules. Reference counting still frees everything; the collector's previous
    state is restored on exit, also after an exception.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
