"""Scoring and evaluating files without a server (`sentiment score`, `sentiment eval`): the same registry,
batching queue and chunked, length-sorted scoring the service uses, reading and writing the files as
streams."""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path
from typing import IO, Protocol

import msgspec

from sentiment.core.domain import VADER_KEY, InvalidInput, ModelLoadError
from sentiment.core.evaluation import Confusion, Metrics, metrics, missing_classes_note, read_gold_values
from sentiment.inference.batching import BatchPolicy
from sentiment.inference.catalogue import ModelSpec, spec_from_source
from sentiment.inference.long_texts import LongTexts
from sentiment.inference.memory import peak_rss_mb
from sentiment.inference.paths import ExecutionPath
from sentiment.inference.registry import ModelRegistry, load_backend
from sentiment.services.scoring import ChunkScorer
from sentiment.services.tabular import (
    Chunk,
    Problem,
    Table,
    inspect_rows,
    open_table,
    read_chunks,
    scored_sink,
)

MAX_PROBLEMS_SHOWN = 100


class ModelSettings(Protocol):
    """What scoring a file reads of the settings (`sentiment.settings.Settings` has it all): the model
    catalogue, the default model, and how models load and batch. A protocol, so that this module does not
    import the settings."""

    @property
    def models(self) -> tuple[ModelSpec, ...]: ...
    @property
    def default_model(self) -> str: ...
    @property
    def batching(self) -> BatchPolicy: ...
    @property
    def torch_threads(self) -> int | None: ...
    @property
    def cache_dir(self) -> str: ...
    @property
    def long_texts(self) -> LongTexts: ...
    @property
    def device(self) -> str: ...
    @property
    def execution_path(self) -> ExecutionPath: ...


class ScoreSummary(msgspec.Struct, frozen=True):
    model: str
    rows: int
    scored: int
    skipped: int
    seconds: float
    peak_rss_mb: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


class EvalSummary(msgspec.Struct, frozen=True):
    model: str
    figures: Metrics
    note: str | None
    skipped: int
    seconds: float


def resolve_model(
    settings: ModelSettings, model: str | None, execution_path: ExecutionPath | None = None
) -> tuple[tuple[ModelSpec, ...], ModelSpec]:
    """The catalogue, with `model` (a configured key, or a model folder) in it, and `model`'s spec; a
    transformers model runs on `execution_path` when one is given."""
    specs, spec = _find_model(settings, model)
    if execution_path is None or spec.kind != "transformers":
        return specs, spec
    chosen = msgspec.structs.replace(spec, path=execution_path)
    return tuple(chosen if known is spec else known for known in specs), chosen


def _find_model(settings: ModelSettings, model: str | None) -> tuple[tuple[ModelSpec, ...], ModelSpec]:
    key = model or settings.default_model
    specs = settings.models
    keys = {spec.key for spec in specs}
    if key not in keys:
        if not Path(key).is_dir():
            raise InvalidInput(
                f"unknown model {key!r}: give a model key ({', '.join(spec.key for spec in specs)}), "
                f"a model folder, or add it with SENTIMENT_MODELS={key}=/path/to/folder"
            )
        spec = spec_from_source(Path(key).resolve().name, key, settings.execution_path)
        if spec.key in keys:
            spec = msgspec.structs.replace(spec, key=str(Path(key).resolve()))
        return (*specs, spec), spec
    return specs, next(spec for spec in specs if spec.key == key)


async def open_model(
    settings: ModelSettings, model: str | None, execution_path: ExecutionPath | None = None
) -> ModelRegistry:
    """A registry with `model` (a configured key, or a model folder) as its default, loaded."""
    specs, spec = resolve_model(settings, model, execution_path)
    key = spec.key
    loader = partial(
        load_backend,
        threads=settings.torch_threads,
        cache_dir=settings.cache_dir,
        device=settings.device,
        long_texts=settings.long_texts,
    )
    # No call deadline offline: a slow machine is not a failing model.
    registry = ModelRegistry(specs, key, loader, settings.batching, None)
    if key != VADER_KEY:
        entry = await registry.load(key)
        if entry.error is not None:
            await registry.close()
            raise ModelLoadError(f"model {key} failed to load: {entry.error}")
    return registry


class TextPrediction(msgspec.Struct, frozen=True):
    text: str
    sentiment: str
    confidence: float
    scores: dict[str, float]
    model_used: str
    processing_time_ms: float
    truncated: bool


async def predict_text(settings: ModelSettings, text: str, model: str | None) -> TextPrediction:
    """One text scored without a server (`sentiment predict`)."""
    registry = await open_model(settings, model)
    try:
        result = await registry.entry(registry.default_key).run([text])
    finally:
        await registry.close()
    scored = result.scored[0]
    return TextPrediction(
        text=text,
        sentiment=scored.label,
        confidence=scored.confidence,
        scores=scored.scores,
        model_used=registry.default_key,
        processing_time_ms=round(result.inference_ms, 3),
        truncated=scored.truncated,
    )


class Report:
    """Problem rows to stderr (the first ones; all are counted), around the progress bar when there is one."""

    def __init__(self, total: int, show_bar: bool, stream: IO[str], position: str = "line") -> None:
        from tqdm import tqdm

        self._stream = stream
        self._position = position
        self.bar = tqdm(
            total=total,
            unit=" rows",
            unit_scale=True,
            disable=not show_bar,
            file=stream,
            dynamic_ncols=True,
            smoothing=0.1,
        )
        self.problems = 0

    def chunk(self, chunk: Chunk) -> None:
        for problem in chunk.problems:
            self.problem(problem)
        self.bar.update(chunk.consumed)

    def problem(self, problem: Problem) -> None:
        self.problems += 1
        if self.problems <= MAX_PROBLEMS_SHOWN:
            self.bar.write(f"{self._position} {problem.line}: {problem.reason}; skipped", file=self._stream)
        elif self.problems == MAX_PROBLEMS_SHOWN + 1:
            self.bar.write("(more problem rows are counted but not shown)", file=self._stream)

    def close(self) -> None:
        self.bar.close()


class ScoreRequest(msgspec.Struct, frozen=True):
    """`sentiment score`: which file, into which, with which model; the same with or without a cluster."""

    source: Path
    target: Path
    text_column: str
    model: str | None = None
    chunk_rows: int = 1024
    execution_path: ExecutionPath | None = None

    def open(self) -> tuple[Table, int, int]:
        """The input's table, the position of its text column and its row count."""
        if self.target.resolve() == self.source.resolve():
            raise InvalidInput("the output file is the input file: write the scored rows somewhere else")
        table = open_table(self.source)
        return table, table.index(self.text_column, "text"), inspect_rows(table).rows


async def score_file(
    settings: ModelSettings, request: ScoreRequest, show_bar: bool = True, stream: IO[str] = sys.stderr
) -> ScoreSummary:
    """Score every row of the source into the target (input columns, label, confidence, per-class scores)."""
    started = time.perf_counter()
    table, text, total = request.open()
    registry = await open_model(settings, request.model, request.execution_path)
    entry = registry.entry(registry.default_key)
    report = Report(total, show_bar, stream, table.position)
    scored_rows = 0
    try:
        scorer = ChunkScorer(entry)
        with scored_sink(request.target, table, entry.labels) as writer:
            for chunk in read_chunks(table, text, request.chunk_rows):
                if chunk.rows:
                    scored = await scorer.score([row.values[text] for row in chunk.rows])
                    writer.write(chunk.rows, scored)
                    scored_rows += len(chunk.rows)
                report.chunk(chunk)
    finally:
        report.close()
        await registry.close()
    return ScoreSummary(
        entry.key, total, scored_rows, report.problems, time.perf_counter() - started, peak_rss_mb()
    )


async def evaluate_file(
    settings: ModelSettings,
    source: Path,
    model: str | None,
    text_column: str,
    label_column: str,
    chunk_rows: int,
    show_bar: bool = True,
    stream: IO[str] = sys.stderr,
) -> EvalSummary:
    """Score `source` and compare with its gold labels."""
    table = open_table(source)
    text = table.index(text_column, "text")
    gold_index = table.index(label_column, "label")
    started = time.perf_counter()
    inspection = inspect_rows(table, gold_index=gold_index)
    gold = read_gold_values(inspection.gold_values)
    registry = await open_model(settings, model)
    entry = registry.entry(registry.default_key)
    report = Report(inspection.rows, show_bar, stream, table.position)
    confusion = Confusion()
    unlabelled = 0
    try:
        scorer = ChunkScorer(entry)
        for chunk in read_chunks(table, text, chunk_rows):
            if chunk.rows:
                scored = await scorer.score([row.values[text] for row in chunk.rows])
                for row, result in zip(chunk.rows, scored, strict=True):
                    truth = gold.label(row.values[gold_index])
                    if truth is None:
                        unlabelled += 1
                    else:
                        confusion.add(truth, result.label)
            report.chunk(chunk)
    finally:
        report.close()
        await registry.close()
    note = missing_classes_note(entry.key, entry.labels, confusion)
    if unlabelled:
        extra = f"{unlabelled:,} rows have no usable gold label and are left out"
        note = f"{note} {extra}." if note else f"{extra}."
    return EvalSummary(entry.key, metrics(confusion), note, report.problems, time.perf_counter() - started)


def summary_line(summary: ScoreSummary, target: Path) -> str:
    return (
        f"scored {summary.scored:,} of {summary.rows:,} rows ({summary.skipped:,} skipped) "
        f"with {summary.model} in {summary.seconds:.1f} s: {summary.rate:,.0f} rows/s; "
        f"peak memory {summary.peak_rss_mb:,.0f} MB -> {target}"
    )
