"""Corpora beyond one machine: scoring on a Dask cluster with the service's own inference engine.

Two ways in. `score_frame` adds label, confidence and per-class score columns to a Dask DataFrame, partition
by partition, for researchers who already hold their corpus as one. `score_file_on_cluster` is `sentiment
score --cluster`: the file is read here as a stream (the same reader, line numbers and problem rows as without
a cluster), its chunks go to the workers, a bounded number in flight, and the scored rows are written back in
input order as they return: memory stays flat whatever the corpus size, and every row appears exactly once,
also when a worker dies (Dask runs its chunks again elsewhere).

On a worker, each model loads once per process (`worker_backend`), never per chunk, and a chunk is scored as
the service scores: sorted by length, cut into batches by the same token budget, answers back in input order.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import msgspec

from sentiment.core.domain import (
    InvalidInput,
    Label,
    ModelLoadError,
    Scored,
    SentimentError,
    first_line,
    is_blank,
)
from sentiment.inference.backend import Backend
from sentiment.inference.batching import BatchPolicy, batch_length, estimate_tokens
from sentiment.inference.catalogue import ModelSpec
from sentiment.inference.long_texts import LongTexts
from sentiment.inference.memory import peak_rss_mb
from sentiment.inference.paths import ExecutionPath
from sentiment.inference.queue import forward_passes
from sentiment.inference.registry import load_backend, policy_for
from sentiment.services.offline import ModelSettings, Report, ScoreRequest, ScoreSummary, resolve_model
from sentiment.services.scoring import length_order, restore_order, slices
from sentiment.services.tabular import (
    Chunk,
    added_columns,
    read_chunks,
    scored_sink,
)

if TYPE_CHECKING:
    import dask.dataframe as dd
    import pandas as pd
    from distributed import Client, Future

LOCAL_PREFIX = "local:"
CONNECT_TIMEOUT_S = 10
# Chunks sent ahead per worker thread: enough that no worker waits for the next one, few enough that memory
# holds a handful of chunks, not the corpus.
CHUNKS_AHEAD_PER_THREAD = 3
MISSING_EXTRA = "scoring on a cluster needs Dask: pip install 'sentiment[cluster]'"
DEVELOPER_LOGS = {
    "distributed.admin.low-level-log-length": 16,
    "distributed.diagnostics.computations.max-history": 4,
}


class WorkerModel(msgspec.Struct, frozen=True):
    """Everything a worker needs to load a model the way this process would; hashable, so that it keys the
    worker's cache."""

    spec: ModelSpec
    policy: BatchPolicy
    threads: int | None = None
    cache_dir: str | None = None
    device: str = "cpu"
    long_texts: LongTexts = "head"


class ScoredTexts(msgspec.Struct, frozen=True):
    """What a worker sends back for one chunk: the model's labels and one answer per text, in input order."""

    labels: tuple[Label, ...]
    scored: list[Scored]


_loading = threading.Lock()


@lru_cache(maxsize=4)
def _loaded(model: WorkerModel) -> Backend:
    return load_backend(
        model.spec,
        threads=model.threads,
        cache_dir=model.cache_dir,
        device=model.device,
        long_texts=model.long_texts,
    )


def worker_backend(model: WorkerModel) -> Backend:
    """The model, loaded once per worker process (a lock: a worker with several threads loads it once)."""
    with _loading:
        return _loaded(model)


def score_texts(model: WorkerModel, texts: Sequence[str]) -> ScoredTexts:
    """Score texts on a worker as the service would: sorted by length, handed over in slices of a batch,
    each batch run in the queue's forward passes (`forward_passes`: the same passes give the same scores)."""
    backend = worker_backend(model)
    policy = policy_for(model.policy, backend)
    order = length_order(texts)
    ordered = [texts[index] for index in order]
    results: list[Scored] = []
    for part in slices(range(len(ordered)), policy.max_batch_size):
        results.extend(_forward(backend, [ordered[index] for index in part], policy))
    return ScoredTexts(backend.labels, restore_order(order, results))


def _forward(backend: Backend, texts: Sequence[str], policy: BatchPolicy) -> list[Scored]:
    """What the batching queue does with a slice: batches within the token budget, each in forward passes."""
    tokens = [estimate_tokens(text, policy) for text in texts]
    scored: list[Scored] = []
    start = 0
    while start < len(texts):
        count = batch_length(islice(tokens, start, None), policy)
        batch = slice(start, start + count)
        scored.extend(forward_passes(backend, texts[batch], tokens[batch], policy))
        start += count
    return scored


def worker_model(
    settings: ModelSettings,
    model: str | None,
    execution_path: ExecutionPath | None = None,
    threads: int | None = None,
) -> WorkerModel:
    """The model a key or a folder names, as workers will load it."""
    _, spec = resolve_model(settings, model, execution_path)
    return WorkerModel(
        spec,
        settings.batching,
        threads or settings.torch_threads,
        settings.cache_dir,
        settings.device,
        settings.long_texts,
    )


# -- a Dask DataFrame ----------------------------------------------------------------------------------------


def score_frame(
    frame: dd.DataFrame,
    text_column: str,
    settings: ModelSettings,
    model: str | None = None,
    execution_path: ExecutionPath | None = None,
    threads: int | None = None,
) -> dd.DataFrame:
    """`frame` with label, confidence and `score_<class>` columns added, computed lazily, partition by
    partition, on the workers. A row whose text is empty or missing keeps a null label and NaN scores: it is
    never dropped. `model` is a configured key or a model folder the workers can read."""
    if text_column not in frame.columns:
        raise InvalidInput(
            f"there is no column {text_column!r}; the columns are: {', '.join(map(repr, frame.columns))}"
        )
    target = worker_model(settings, model, execution_path, threads)
    labels = target.spec.labels
    if not labels:
        raise ModelLoadError(
            f"the labels of model {target.spec.key} are not known before it is downloaded: "
            f"run `sentiment models pull {target.spec.key}` first"
        )
    added = added_columns(list(frame.columns), labels)
    meta = frame._meta.assign(**{added[0]: frame._meta[text_column].astype(object)})
    meta = meta.assign(**{name: 0.0 for name in added[1:]})
    return frame.map_partitions(_score_partition, text_column, target, added, labels, meta=meta)


def _score_partition(
    part: pd.DataFrame, text_column: str, model: WorkerModel, added: list[str], labels: tuple[Label, ...]
) -> pd.DataFrame:
    import numpy as np

    texts = part[text_column]
    usable = np.array([isinstance(text, str) and not is_blank(text) for text in texts], dtype=bool)
    scored = score_texts(model, texts[usable].tolist()).scored if usable.any() else []
    label = np.full(len(part), None, dtype=object)
    label[usable] = [result.label for result in scored]
    columns: dict[str, Any] = {added[0]: label}
    values = [[result.confidence for result in scored]]
    values += [[result.scores.get(name, 0.0) for result in scored] for name in labels]
    for name, numbers in zip(added[1:], values, strict=True):
        column = np.full(len(part), np.nan)
        column[usable] = numbers
        columns[name] = column
    return part.assign(**columns)


# -- a file, streamed through a cluster ----------------------------------------------------------------------


@contextmanager
def cluster_client(address: str) -> Iterator[Client]:
    """A client of the scheduler at `address`, or of a loopback cluster of N single-threaded worker processes
    for `local:N` (closed on the way out)."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise InvalidInput(MISSING_EXTRA) from None
    # Dask logs every worker's start and stop at info: shown only when the service logs at debug.
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("distributed").setLevel(logging.WARNING)
    # Dask keeps its last 1,000 messages and 100 computations for debugging, each holding a chunk's texts: a
    # few hundred MB here for a large corpus. A short memory keeps this process's size flat and small.
    with dask.config.set(DEVELOPER_LOGS):
        if address.startswith(LOCAL_PREFIX):
            workers = address.removeprefix(LOCAL_PREFIX)
            if not workers.isdigit() or int(workers) < 1:
                raise InvalidInput(f"--cluster {address!r}: say how many workers, e.g. local:2")
            local = LocalCluster(
                n_workers=int(workers),
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            )
            with local, Client(local) as client:
                yield client
            return
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as error:
            raise SentimentError(
                f"no Dask scheduler answers at {address} within {CONNECT_TIMEOUT_S} s ({error}); start one "
                "with `dask scheduler`, or use --cluster local:N"
            ) from None
        with client:
            yield client


def local_threads(address: str) -> int | None:
    """Torch threads per worker of a loopback cluster: the machine's cores shared out between the workers.
    (A remote cluster's workers get one each unless told otherwise, as Dask sets its workers' OMP_NUM_THREADS:
    one single-threaded worker process per core.)"""
    if not address.startswith(LOCAL_PREFIX) or not address.removeprefix(LOCAL_PREFIX).isdigit():
        return None
    return max(1, (os.cpu_count() or 1) // max(1, int(address.removeprefix(LOCAL_PREFIX))))


def _answers(future: Future, chunk: Chunk, position: str, target: Path) -> ScoredTexts:
    """A chunk's answers, or one line saying which rows the cluster could not score (a chunk whose workers
    died more often than Dask allows, a model that fails on them)."""
    try:
        answers: ScoredTexts = future.result()
    except SentimentError:
        raise
    except Exception as error:  # noqa: BLE001 - a worker's failure of any kind, said in one line
        raise SentimentError(
            f"the cluster could not score the rows from {position} {chunk.rows[0].line} on "
            f"({type(error).__name__}: {first_line(error)}); {target} holds the rows before them"
        ) from None
    return answers


class ClusterSummary(msgspec.Struct, frozen=True):
    scoring: ScoreSummary
    workers: int
    worker_peak_rss_mb: list[float]


def score_file_on_cluster(
    settings: ModelSettings,
    request: ScoreRequest,
    cluster: str,
    threads: int | None = None,
    show_bar: bool = True,
    stream: IO[str] = sys.stderr,
) -> ClusterSummary:
    """`sentiment score --cluster`: the same output as without a cluster, the scoring done by the workers."""
    started = time.perf_counter()
    table, text, total = request.open()
    threads = threads or local_threads(cluster) or settings.torch_threads or 1
    target_model = worker_model(settings, request.model, request.execution_path, threads)
    target = request.target
    with cluster_client(cluster) as client:
        # One chunk first: the model loads (and exports, for an ONNX path) on one worker before the others
        # start, and a model that cannot load says so at once instead of once per chunk.
        warm = client.submit(score_texts, target_model, ["warm up"], pure=False)
        try:
            labels = warm.result().labels
        except SentimentError:
            raise
        except Exception as error:  # noqa: BLE001 - whatever stopped the worker, said in one line
            reason = f"{type(error).__name__}: {first_line(error)}"
            raise ModelLoadError(f"model {target_model.spec.key} failed on a worker: {reason}") from None
        workers = len(client.scheduler_info()["workers"])
        ahead = max(2, CHUNKS_AHEAD_PER_THREAD * sum(client.nthreads().values()))
        report = Report(total, show_bar, stream, table.position)
        scored_rows = 0
        pending: deque[tuple[Chunk, Future | None]] = deque()
        try:
            with scored_sink(target, table, labels) as sink:

                def write_oldest() -> None:
                    nonlocal scored_rows
                    chunk, future = pending.popleft()
                    if future is not None:
                        sink.write(chunk.rows, _answers(future, chunk, table.position, target).scored)
                        scored_rows += len(chunk.rows)
                    report.chunk(chunk)

                for chunk in read_chunks(table, text, request.chunk_rows):
                    texts = [row.values[text] for row in chunk.rows]
                    future = client.submit(score_texts, target_model, texts, pure=False) if texts else None
                    pending.append((chunk, future))
                    if len(pending) >= ahead:
                        write_oldest()
                while pending:
                    write_oldest()
        finally:
            report.close()
            for _, future in pending:
                if future is not None:
                    future.cancel()
        worker_memory = sorted(client.run(peak_rss_mb).values())
    summary = ScoreSummary(
        target_model.spec.key,
        total,
        scored_rows,
        report.problems,
        time.perf_counter() - started,
        peak_rss_mb(),
    )
    return ClusterSummary(summary, workers, worker_memory)
