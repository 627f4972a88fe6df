"""Featurizing a molecule library into shards on a Dask cluster (``dask.distributed``).

:func:`featurize_to_shards_dask` writes the same shard folder as the local engine
(``molgraph featurize -i FILE -o DIR/ --shard-size N``, :mod:`molgraph.data.shards`), byte for
byte: the same arrays in the same shards, the same rejects, the same ``manifest.json``. The
manifest records no engine, worker count or timing, so the two outputs are interchangeable and a
run started with one engine can be resumed with the other.

**Partitions.** One Dask task per shard: shard ``k`` is input rows ``[k * N, (k + 1) * N)``. The
client sends each task only ``(path, first row, row count)`` and the featurizer config, never the
SMILES; the worker opens the input itself, streams it to its first row with the reader the local
engine uses (CSV/TSV, ``.gz`` included, through
:func:`molgraph.data.table.iter_smiles_column`, or pandas in chunks when targets are read;
``.smi``), featurizes its rows (:func:`molgraph.featurizers.batch.iter_featurize_chunks`,
one process per task) and collects them in a :class:`~molgraph.data.shards.ShardBuilder`, which
narrows the arrays as they arrive (OGB features to ``uint8``, float arrays of only 0/1 to ``uint8``).
Streaming to the first row costs about 1 us per skipped row (about 3 us when targets are read,
measured on MOSES): shard ``k`` skips ``k * N`` rows, so the skipping adds up to about
``K / 2 * N`` row reads over ``K`` shards. For MOSES train (1.58M rows, 16 shards of 100k) that is
12M row reads, 12-36 s of worker time against 500-850 s of featurizing (2-7%); it grows
linearly with the number of shards, so inputs of hundreds of shards want larger shards.

**Who writes the shards: the client.** Each task returns its :class:`ShardBuilder` (already
narrow: ~0.5 KB per molecule for OGB features; ~7 KB for ``multihot``, whose float features stay
float32) and the client writes it with :class:`~molgraph.data.shards.ShardWriter`, the single
writer of the folder: one process owns the manifest, so it is replaced atomically after every
shard exactly as in the local engine, resume and the final completeness check need no
coordination, and the output folder needs to be visible only to the client. The trade-off: every
shard's bytes pass through the client's network link and disk, and the client hashes and fsyncs
them. Gathering and writing a 100k-molecule shard takes the client 1-3 s while featurizing it
takes a worker 30-60 s, so one client keeps up with tens of workers; beyond that, writing on the
workers into a shared file system (the client only merging manifest entries) would scale further,
at the cost of a shared output folder and a multi-writer manifest protocol that
:mod:`molgraph.data.shards` does not have. The client gathers results directly from the workers
(through the scheduler a shard would be copied twice: 1.7 s instead of 0.1 s for 340 MB here)
unless the client was created with ``direct_to_workers=False``, and writes one shard in a thread
while it gathers the next.

Memory: a worker holds the shard it featurizes (``shard_size`` x the bytes per molecule above,
plus ~150 MB of interpreter, RDKit and Dask); the client at most two shards (one being written,
one gathered). At most ``2 x`` (worker threads) shards are in flight at once, so finished shards
never pile up in worker memory when the client writes slowly.

Failures: with ``errors="raise"`` shards are written in input order and the run stops at the
first bad row: the shards before it are complete, none after it is written. A failed task (a
worker that cannot read the input, a task whose workers died more often than Dask's
``distributed.scheduler.allowed-failures``) stops the run the same way. The
complete shards stay, listed in the manifest, and ``resume=True`` continues with either engine.

**Pointing it at a real cluster.**

1. Put the input file and molgraph where every node sees them: the input on a shared file system
   at the same path on every worker (the client passes an absolute path); ``pip install
   'molgraph-ml[dask]'`` (the same molgraph and RDKit versions, which the client checks) on the
   client and every worker.
2. Start a scheduler on one node, ``dask scheduler`` (it prints ``tcp://HOST:8786``), and workers
   on the others, ``dask worker tcp://HOST:8786 --nthreads 1 --nworkers N``: one thread per
   worker process, as many processes as cores (featurizing is Python code under the GIL, so
   threads in one process do not add speed).
3. Run ``featurize_to_shards_dask(input, out_dir, smiles_column="smiles",
   scheduler="tcp://HOST:8786")`` on a machine that sees the input (it counts the rows and hashes
   the file) and can write ``out_dir``; the client must reach the workers' addresses.

Without ``scheduler`` a :class:`distributed.LocalCluster` of 2 worker processes with one thread
each starts for the call and stops after it, with :data:`LOCAL_CLUSTER_CONFIG` (no statistical
profiler, rarer health checks: ~5% faster tasks); give real workers the same settings. Worker
processes start with ``spawn``: a script that calls this function needs the
``if __name__ == "__main__":`` guard.

SDF input is refused: skipping to a partition's first record would parse every record before it
(the SDF reader parses while it splits records), so partitions would cost quadratic time; use the
local engine for SDF.

It reads inputs with the readers of :mod:`molgraph.data.table`, as the local engine does (which
is what makes the rows identical), and writes with :mod:`molgraph.data.shards`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal, NamedTuple, Sequence

import numpy as np

from molgraph.featurizers.batch import PackedChunk, Reject, default_progress, iter_featurize_chunks
from molgraph.featurizers.graph import GraphArrays, MolGraphFeaturizer

if TYPE_CHECKING:
    from distributed import Client

    from molgraph.data.shards import ShardBuilder

__all__ = [
    "DEFAULT_WORKERS", "LOCAL_CLUSTER_CONFIG", "ShardInfo", "count_rows", "featurize_partition",
    "featurize_to_shards_dask", "require_dask",
]

DEFAULT_WORKERS = 2  # the LocalCluster started when no scheduler is given: processes, one thread each
# Dask settings of the LocalCluster this module starts. A featurization task holds the GIL; every
# wake-up of the worker's event loop takes it from the task. Measured on this 2-core machine (one
# 15k-molecule multihot task): with Dask's defaults the event loop used 0.67 s of CPU in a 7.9 s
# task; without the statistical profiler (10 ms samples of the task's stack, shown only on a
# dashboard) 0.27 s, and with the health tick every 500 ms (20 ms) and the system monitor every 2 s
# (500 ms) 0.08 s; tasks ran ~5% faster over repeated runs. For a cluster of your own, set the same
# keys on the workers (e.g. DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False).
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
}
# molecules per featurization chunk inside a task: bounds a task's per-molecule objects; the
# shard's content does not depend on it (ShardBuilder's narrowing is exact piece by piece)
_CHUNK = 1024


def require_dask() -> None:
    """Raise :class:`ImportError` with the install command when ``dask.distributed`` is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "the Dask engine needs dask.distributed, which is not installed: pip install 'molgraph-ml[dask]' "
            "(or pip install 'dask[distributed]')"
        ) from exc


# -- reading a partition's rows -------------------------------------------------------------------
def _input_kind(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".sdf"):
        return "sdf"
    return "smi" if name.endswith(".smi") else "csv"


def _check_input(path: Path, target_columns: Sequence[str]) -> str:
    kind = _input_kind(path)
    if kind == "sdf":
        raise ValueError(f"{path}: the Dask engine reads CSV/TSV (.gz) and .smi inputs, not SDF (reaching a "
                         f"partition's first record would parse every record before it); use the local engine")
    if target_columns and kind != "csv":
        raise ValueError(f"target columns need a CSV/TSV input, got {path}")
    return kind


def _input_rows(path: Path, smiles_column: str | None, target_columns: Sequence[str]) -> Iterator[Any]:
    """Every data row of the input, as the local engine reads it: a SMILES string per row, or
    ``(smiles, targets)`` when target columns are given.

    The local engine's readers (:mod:`molgraph.data.table`) are called, so both engines number
    the rows alike (blank lines, quoted fields, ``.gz``) and parse labels alike.
    """
    from molgraph.data.table import iter_molecule_inputs, iter_rows_with_targets

    if target_columns:
        return iter_rows_with_targets(path, str(smiles_column), list(target_columns))
    return iter_molecule_inputs(path, smiles_column)


def count_rows(input_path: str | os.PathLike[str], smiles_column: str | None,
               target_columns: Sequence[str] = ()) -> int:
    """Data rows of the input, counted with the reader the partitions use (so the partitions cover
    exactly the rows the local engine would read). Missing columns and bad labels raise here."""
    path = Path(input_path)
    _check_input(path, target_columns)
    n = 0
    for n, _ in enumerate(_input_rows(path, smiles_column, target_columns), start=1):
        pass
    return n


class _Partition:
    """Rows ``[first_row, first_row + n_rows)`` of the input, streamed: the SMILES go to the
    featurizer and the targets (float32, as the local engine stores them) into :attr:`y_rows`."""

    def __init__(self, path: Path, first_row: int, n_rows: int, smiles_column: str | None,
                 target_columns: Sequence[str]):
        self.path, self.first_row, self.n_rows = path, first_row, n_rows
        self.smiles_column, self.target_columns = smiles_column, list(target_columns)
        self.n_read = 0
        self.y_rows = (np.full((n_rows, len(self.target_columns)), np.nan, dtype=np.float32)
                       if self.target_columns else None)

    def __iter__(self) -> Iterator[Any]:
        rows = _input_rows(self.path, self.smiles_column, self.target_columns)
        for k, item in enumerate(itertools.islice(rows, self.first_row, self.first_row + self.n_rows)):
            self.n_read = k + 1
            if self.y_rows is not None:
                item, values = item
                self.y_rows[k] = values
            yield item

    def check_complete(self) -> None:
        if self.n_read != self.n_rows:
            raise ValueError(
                f"{self.path}: expected {self.n_rows} rows from row {self.first_row}, the file has only "
                f"{self.first_row + self.n_read}: it changed since the rows were counted, or this worker sees "
                f"another file at that path"
            )

    def y_of(self, rows: np.ndarray) -> np.ndarray | None:
        """Targets of the given input rows (``(len(rows), T)`` float32), or ``None`` without targets."""
        return None if self.y_rows is None else self.y_rows[rows - self.first_row]


def _chunks(part: _Partition, featurizer: MolGraphFeaturizer) -> Iterator[tuple[int, PackedChunk]]:
    """``(input row of the chunk's first item, PackedChunk)``, in one process (a Dask task is one
    core's worth of work), every failure a reject with its input row."""
    for start, chunk in iter_featurize_chunks(part, featurizer, n_jobs=1, chunk_size=_CHUNK, errors="skip",
                                              progress=False, total=part.n_rows):
        yield part.first_row + start, chunk


def featurize_partition(
    input_path: str | os.PathLike[str],
    first_row: int,
    n_rows: int,
    smiles_column: str | None,
    target_columns: Sequence[str],
    featurizer_config: dict[str, Any],
    errors: Literal["raise", "skip"] = "skip",
) -> tuple[list[GraphArrays], list[int], np.ndarray | None, list[Reject]]:
    """Featurize input rows ``[first_row, first_row + n_rows)``: what one Dask task does, as
    molecules (the task itself returns the narrow shard content).

    Args:
        input_path: CSV/TSV (``.gz`` allowed) or ``.smi`` file.
        first_row: 0-based data row to start at (the file is streamed up to it).
        n_rows: rows to featurize; the file must hold them all.
        smiles_column: the SMILES column of a CSV (ignored for ``.smi``).
        target_columns: CSV columns returned as ``y`` (float32; empty and NaN-like cells are NaN).
        featurizer_config: :meth:`MolGraphFeaturizer.to_config`.
        errors: ``"skip"``: a row that gives no graph becomes a :class:`Reject`; ``"raise"``: the
            first one raises :class:`~molgraph.chem.MoleculeError` with its input row as ``index``.

    Returns:
        ``(arrays, rows, y, rejects)``: the graphs in input order, each graph's input row, their
        targets ``(len(arrays), T)`` (``None`` without target columns) and the rejects
        (``Reject.index`` = input row). The same as :func:`~molgraph.featurizers.batch.iter_featurize`
        over those rows with indices shifted by ``first_row``.
    """
    from molgraph.chem import MoleculeError
    from molgraph.featurizers.batch import _unpack  # PackedChunk -> molecules, as iter_featurize does

    if errors not in ("raise", "skip"):
        raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
    path = Path(input_path)
    _check_input(path, target_columns)
    part = _Partition(path, int(first_row), int(n_rows), smiles_column, target_columns)
    featurizer = MolGraphFeaturizer.from_config(featurizer_config)
    arrays: list[GraphArrays] = []
    rows: list[int] = []
    rejects: list[Reject] = []
    for row0, chunk in _chunks(part, featurizer):
        for k, result in enumerate(_unpack(chunk)):
            if isinstance(result, Reject):
                reject = result._replace(index=row0 + k)  # the stream's position -> the input row
                if errors == "raise":
                    raise MoleculeError(reject.reason, reject.input, reject.index)
                rejects.append(reject)
            else:
                arrays.append(result)
                rows.append(row0 + k)
    part.check_complete()
    return arrays, rows, part.y_of(np.asarray(rows, dtype=np.int64)), rejects


# -- the Dask task -----------------------------------------------------------------------------------
class _ShardTask(NamedTuple):
    index: int
    path: str  # absolute: workers may run in another directory
    input_size: int  # bytes, as the client saw the file: a worker seeing another file fails early
    first_row: int
    n_rows: int
    smiles_column: str | None
    target_columns: tuple[str, ...]
    featurizer_config: dict[str, Any]
    stop_at_reject: bool  # errors="raise": the shard is not written, so featurizing past the first reject is waste


class _ShardResult(NamedTuple):
    index: int
    builder: ShardBuilder | None  # None when stop_at_reject stopped at a reject
    y: np.ndarray | None
    n_rows: int
    first_reject: Reject | None
    seconds: float
    worker: str


def _featurize_shard(task: _ShardTask) -> _ShardResult:
    """Runs on a worker: read and featurize one shard's rows into a (narrow) ShardBuilder."""
    from rdkit import rdBase

    from molgraph.data.shards import ShardBuilder

    start = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    path = Path(task.path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FileNotFoundError(f"worker {worker} cannot read the input {path} ({exc}); the input must be on a "
                                f"file system every worker sees, at the same path") from None
    if size != task.input_size:
        raise ValueError(f"worker {worker} sees {path} with {size} bytes, the client saw {task.input_size}: "
                         f"the workers must read the same file as the client")
    rdBase.DisableLog("rdApp.*")  # reasons are captured per molecule; keep worker logs quiet
    part = _Partition(path, task.first_row, task.n_rows, task.smiles_column, task.target_columns)
    featurizer = MolGraphFeaturizer.from_config(task.featurizer_config)
    builder = ShardBuilder(task.index, task.first_row)
    for row0, chunk in _chunks(part, featurizer):
        if task.stop_at_reject and chunk.rejects:
            first = chunk.rejects[0]
            item = chunk.kinds.index(False)
            reject = Reject(row0 + item, first.input, first.reason)
            return _ShardResult(task.index, None, None, task.n_rows, reject, time.perf_counter() - start, worker)
        builder.add_packed(chunk, row0)
    part.check_complete()
    rows = np.concatenate(builder.rows) if builder.rows else np.zeros(0, dtype=np.int64)
    first_reject = min(builder.rejects, key=lambda r: r.index) if builder.rejects else None
    return _ShardResult(task.index, builder, part.y_of(rows), task.n_rows, first_reject,
                        time.perf_counter() - start, worker)


def _worker_versions() -> dict[str, str]:
    """What makes a worker's graphs identical to the client's: the versions of molgraph, RDKit, numpy."""
    import rdkit

    import molgraph

    return {"molgraph": molgraph.__version__, "rdkit": rdkit.__version__, "numpy": np.__version__}


def _check_workers(client: Client) -> int:
    """Check that the cluster has workers whose molgraph/RDKit/numpy are the client's; return its threads."""
    try:
        seen = client.run(_worker_versions)
    except (ModuleNotFoundError, ImportError) as exc:
        raise RuntimeError(f"the Dask workers cannot import molgraph ({exc}): install molgraph-ml on every worker "
                           f"(pip install 'molgraph-ml[dask]')") from exc
    if not seen:
        raise RuntimeError("the Dask cluster has no workers")
    mine = _worker_versions()
    for address, versions in seen.items():
        if versions != mine:
            diff = ", ".join(f"{k} {versions.get(k)} (client {v})" for k, v in mine.items() if versions.get(k) != v)
            raise RuntimeError(f"Dask worker {address} runs {diff}: the graphs would differ from the local engine's; "
                               f"install the same versions on every worker")
    return max(1, sum(client.nthreads().values()))


@contextlib.contextmanager
def _connect(scheduler: str | Client | None, n_workers: int | None = None) -> Iterator[Client]:
    """A client: on a new LocalCluster of ``n_workers`` processes (``scheduler=None``), on a
    scheduler address, or the caller's own (left open)."""
    from distributed import Client, LocalCluster

    if isinstance(scheduler, Client):
        yield scheduler
        return
    if scheduler is None:
        import dask

        # the config reaches the worker processes (their nannies pass it on at start); the
        # scheduler's HTTP server takes a free port: the default 8787 may be taken (another run)
        with dask.config.set(LOCAL_CLUSTER_CONFIG):
            cluster = LocalCluster(n_workers=n_workers or DEFAULT_WORKERS, threads_per_worker=1, processes=True,
                                   dashboard_address=":0")
        with cluster, Client(cluster) as client:
            yield client
        return
    if not isinstance(scheduler, str):
        raise TypeError(f"scheduler must be an address (str), a distributed.Client or None, "
                        f"got {type(scheduler).__name__}")
    with Client(scheduler) as client:
        yield client


# -- the client side -----------------------------------------------------------------------------
class ShardInfo(NamedTuple):
    """What :func:`featurize_to_shards_dask` passes to a ``progress`` callable after writing a shard."""

    index: int
    first_row: int
    n_rows: int
    n_graphs: int
    n_rejected: int
    seconds: float  # the worker's time for the task (reading + featurizing)
    worker: str  # host:pid of the worker that featurized it


def featurize_to_shards_dask(
    input_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    smiles_column: str | None,
    target_columns: Sequence[str] = (),
    featurizer: MolGraphFeaturizer | dict[str, Any] | None = None,
    shard_size: int = 100_000,
    errors: Literal["raise", "skip"] = "skip",
    scheduler: str | Client | None = None,
    n_workers: int | None = None,
    resume: bool = False,
    progress: bool | None | Callable[[ShardInfo], None] = None,
) -> dict[str, Any]:
    """Featurize a CSV/TSV (``.gz``) or ``.smi`` file into a shard folder on a Dask cluster.

    The folder is the one ``molgraph featurize -i INPUT -o OUT_DIR/`` writes with the same options
    (see the module doc for how the work is split and who writes).

    Args:
        input_path: the molecule file; recorded in the manifest as given, read by the workers
            through its absolute path.
        out_dir: the shard folder: new or empty, or a folder to resume.
        smiles_column: the SMILES column of a CSV (``None`` or anything for ``.smi``; the
            manifest records ``None`` for ``.smi`` as the local engine does).
        target_columns: CSV columns stored as ``y``.
        featurizer: a :class:`MolGraphFeaturizer` or its config (default: the OGB preset).
        shard_size: input rows per shard (and per Dask task).
        errors: ``"skip"`` (default): rows that give no graph go to the shards' ``rejects.csv``;
            ``"raise"``: stop at the first one with :class:`~molgraph.chem.MoleculeError`
            (``index`` = input row), leaving the shards before it complete.
        scheduler: ``None``: a LocalCluster of :data:`DEFAULT_WORKERS` processes with one thread
            each, for this call; a scheduler address (``"tcp://host:8786"``); or a connected
            ``distributed.Client`` (left open).
        n_workers: worker processes of the LocalCluster started without ``scheduler`` (default
            :data:`DEFAULT_WORKERS`); an error with a scheduler (its workers are what they are).
        resume: continue the folder's interrupted run (same input, featurizer, columns and shard
            size; its complete shards are skipped).
        progress: ``True``/``False``/``None`` (a bar over the input rows; ``None``: only on a
            terminal), or a callable that gets a :class:`ShardInfo` after each shard is written.

    Returns:
        The manifest, as written (``complete: true``).

    Raises:
        ImportError: ``dask.distributed`` is not installed.
        FileNotFoundError: the input does not exist (or a worker cannot read it).
        KeyError: a named column is absent (before any folder is created).
        ValueError: an SDF input, targets without a CSV, a bad label or ``errors`` value.
        molgraph.data.shards.ShardError: ``out_dir`` holds something else, or the run to resume differs.
        molgraph.chem.MoleculeError: ``errors="raise"`` and a row gives no graph.

    After any failure the folder is what the local engine leaves: the complete shards and an
    incomplete manifest (``resume=True`` continues), or, when no shard was written into a folder
    that was absent or empty, the folder as it was.
        RuntimeError: workers without molgraph, or with other molgraph/RDKit/numpy versions.
    """
    require_dask()
    from molgraph.data.shards import ShardWriter

    if errors not in ("raise", "skip"):
        raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
    if isinstance(shard_size, bool) or not isinstance(shard_size, (int, np.integer)) or shard_size < 1:
        raise ValueError(f"shard_size must be an integer >= 1, got {shard_size!r}")
    if n_workers is not None and scheduler is not None:
        raise ValueError("n_workers sizes the LocalCluster started without a scheduler; with a scheduler, "
                         "start the workers you want with `dask worker`")
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1):
        raise ValueError(f"n_workers must be an integer >= 1, got {n_workers!r}")
    shard_size = int(shard_size)
    path = Path(input_path)
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    kind = _check_input(path, target_columns)
    target_columns = tuple(str(c) for c in target_columns)
    if isinstance(featurizer, dict):
        featurizer = MolGraphFeaturizer.from_config(featurizer)
    config = (featurizer or MolGraphFeaturizer.ogb()).to_config()
    out = Path(out_dir)
    with ThreadPoolExecutor(1, thread_name_prefix="molgraph-scan") as pool:
        # the rows are counted (with the partitions' own reader) and the input hashed while the
        # cluster starts: both read the whole file, and a missing column or a bad label fails
        # there, before any folder exists or any task runs
        scan = pool.submit(_scan_input, path, smiles_column, target_columns)
        with _connect(scheduler, n_workers) as client:
            n_input, sha256 = scan.result()
            fresh = not out.exists()
            was_empty = fresh or (out.is_dir() and not any(out.iterdir()))
            writer = ShardWriter(
                out, featurizer_config=config, input_path=path, input_sha256=sha256,
                smiles_column=smiles_column if kind == "csv" else None, target_columns=target_columns,
                shard_size=shard_size, resume=resume,
            )
            try:
                _write_shards(client, writer, path, n_input, smiles_column, target_columns, config, errors, progress)
                return writer.close(n_input)
            except BaseException:
                _after_failure(writer, out, fresh, was_empty)
                raise


def _scan_input(path: Path, smiles_column: str | None, target_columns: Sequence[str]) -> tuple[int, str]:
    from molgraph.data.sources import sha256_file

    return count_rows(path, smiles_column, target_columns), sha256_file(path)


def _write_shards(client: Client, writer: Any, path: Path, n_input: int, smiles_column: str | None,
                  target_columns: tuple[str, ...], config: dict[str, Any], errors: str,
                  progress: bool | None | Callable[[ShardInfo], None]) -> None:
    """Featurize the shards the writer does not have yet on the cluster and write them."""
    from molgraph.chem import MoleculeError

    size = writer.shard_size
    done = writer.done_shards
    tasks = [
        _ShardTask(k, str(path.resolve()), path.stat().st_size, k * size, min(size, n_input - k * size),
                   smiles_column, target_columns, config, stop_at_reject=errors == "raise")
        for k in range(-(-n_input // size)) if k not in done
    ]
    with _progress(progress, n_input, n_input - sum(t.n_rows for t in tasks)) as report:
        if not tasks:
            return
        # One shard is written (in a thread) while the next is gathered: at the end of a run every
        # worker finishes at once, and gathering and writing one after the other would add both
        # to the tail. The client holds at most two shards: the one being written, the one gathered.
        with ThreadPoolExecutor(1, thread_name_prefix="molgraph-write") as pool, \
                contextlib.closing(_run(client, tasks, ordered=errors == "raise")) as results:
            writing: Future | None = None
            for result in results:
                if result.builder is None or (errors == "raise" and result.first_reject is not None):
                    bad = result.first_reject
                    assert bad is not None
                    raise MoleculeError(bad.reason, bad.input, bad.index)
                if writing is not None:
                    report(writing.result())  # a failed write raises here
                writing = pool.submit(_write_one, writer, result)
                del result  # only the writer thread holds it now
            if writing is not None:
                report(writing.result())


def _write_one(writer: Any, result: _ShardResult) -> ShardInfo:
    b = result.builder
    assert b is not None
    writer.write_built(b, result.y, result.n_rows)
    return ShardInfo(b.index, b.first_row, result.n_rows, b.n_graphs, len(b.rejects), result.seconds, result.worker)


def _run(client: Client, tasks: list[_ShardTask], ordered: bool) -> Iterator[_ShardResult]:
    """Submit the tasks with a bounded window; yield results as they finish (``ordered``: in task
    order, holding early finishers). Unfinished tasks are cancelled when the caller stops."""
    from distributed import as_completed

    window = 2 * _check_workers(client)
    # direct from the workers: through the scheduler a shard's bytes would be copied twice
    direct = True if client.direct_to_workers is None else bool(client.direct_to_workers)
    run_id = uuid.uuid4().hex[:8]  # fresh keys: a long-lived cluster must not hand back an old run's result
    queue = iter(tasks)
    running = as_completed()
    in_flight: list[Any] = []
    held: dict[int, _ShardResult] = {}
    next_index = [t.index for t in tasks]  # ordered: the order in which results are handed out
    position = 0

    def submit() -> bool:
        task = next(queue, None)
        if task is None:
            return False
        fut = client.submit(_featurize_shard, task, key=f"molgraph-shard-{task.index:05d}-{run_id}", pure=False)
        in_flight.append(fut)
        running.add(fut)
        return True

    try:
        while len(in_flight) + len(held) < window and submit():
            pass
        for fut in running:
            result: _ShardResult = client.gather(fut, direct=direct)
            in_flight.remove(fut)
            fut.release()  # the worker drops its copy now
            if not ordered:
                yield result
            else:
                held[result.index] = result
                while position < len(next_index) and next_index[position] in held:
                    yield held.pop(next_index[position])
                    position += 1
            del result  # the caller has written it: not kept alive while the next one arrives
            while len(in_flight) + len(held) < window and submit():
                pass
    finally:
        if in_flight:
            client.cancel(in_flight)


def _after_failure(writer: Any, out: Path, fresh: bool, was_empty: bool) -> None:
    """What the local engine leaves after a failure: complete shards stay (``resume`` continues);
    a folder that was absent or empty and got no shard is left as it was (an empty manifest would
    only make the next run ask for ``resume``)."""
    if writer.done_shards or not was_empty:
        return
    with contextlib.suppress(OSError):  # something else appeared in it meanwhile: left alone
        (out / "manifest.json").unlink(missing_ok=True)
        if fresh:
            out.rmdir()


@contextlib.contextmanager
def _progress(progress: bool | None | Callable[[ShardInfo], None], total: int,
              initial: int) -> Iterator[Callable[[ShardInfo], None]]:
    """A per-shard report: the caller's callable, a tqdm bar over input rows, or nothing."""
    if callable(progress):
        yield progress
        return
    if not default_progress(progress):
        yield lambda info: None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=initial, unit="mol", desc="featurizing (dask)")
    try:
        yield lambda info: bar.update(info.n_rows)
    finally:
        bar.close()
