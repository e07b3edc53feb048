"""Scored corpora brought back to the pages: `sentiment import-scores` loads a file that `sentiment score`
wrote (on one machine or on a Dask cluster) into the database as a data set, so that its report (label shares,
the trend by the corpus's own time, groups, metrics against a gold column) reads as an uploaded file's does.

Batched and resumable: each chunk's predictions, counts and progress are stored in one transaction, and the
data set's id is derived from the file and the options, so running the same import again after a crash goes on
after the last chunk stored, and an import that finished is not stored twice.
"""

from __future__ import annotations

import asyncio
import csv
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, NamedTuple, Protocol
from uuid import UUID, uuid5

import msgspec
import structlog

from sentiment.core.clock import WallClock, utc_now
from sentiment.core.domain import LABELS, Label, Scored
from sentiment.services.datasets import (
    DatasetOptions,
    JobTally,
    chunk_predictions,
    confusion_from,
    export_path,
    plan_reading,
    store_chunk,
)
from sentiment.services.offline import Report
from sentiment.services.settings import DatasetSettings
from sentiment.services.tabular import (
    LINE_END,
    Chunk,
    Problem,
    Row,
    Table,
    TableError,
    inspect_rows,
    neutralised,
    open_table,
    read_chunks,
    read_rows,
)
from sentiment.storage.database import create_engine, upgrade
from sentiment.storage.datasets import Dataset, DatasetRepository

log = structlog.get_logger(__name__)

# Data-set ids of imports are UUIDs named by the file and the options under this namespace.
IMPORT_NAMESPACE = UUID("5c1e8a52-7a0e-4d0b-9a43-2f0b7c2e61d4")
ADDED = re.compile(r"(?:predicted_)*(label|confidence|score_(negative|neutral|positive))")


class ImportSettings(Protocol):
    """What an import reads of the settings (`sentiment.settings.Settings` has it all)."""

    @property
    def database_url(self) -> str: ...
    @property
    def auto_migrate(self) -> bool: ...
    @property
    def datasets(self) -> DatasetSettings: ...
    @property
    def store_text(self) -> bool: ...


class ImportOptions(msgspec.Struct, frozen=True):
    name: str
    text_column: str = "text"
    # What scored the corpus, as the pages name it (a model key, or "minilm-sst2 on the cluster").
    model: str = "imported"
    time_column: str | None = None
    group_column: str | None = None
    gold_column: str | None = None
    time_format: str | None = None


class ImportSummary(msgspec.Struct, frozen=True):
    dataset_id: UUID
    name: str
    rows: int
    scored: int
    skipped: int
    resumed_after: int  # rows stored by an earlier run of the same import
    already_done: bool
    seconds: float


class ScoredColumns(NamedTuple):
    """Where `sentiment score` put its columns: label, confidence and one score per class."""

    label: int
    confidence: int
    scores: dict[Label, int]


def scored_columns(columns: Sequence[str]) -> ScoredColumns:
    """The last run of added columns (label, confidence, score_*; each `predicted_` as often as the input
    needed to keep its own columns)."""
    kinds = [match.group(1) if (match := ADDED.fullmatch(name)) else None for name in columns]
    for index in range(len(columns) - 2, -1, -1):
        if kinds[index] == "label" and kinds[index + 1] == "confidence":
            scores: dict[Label, int] = {}
            for position in range(index + 2, len(columns)):
                kind = kinds[position]
                if kind is None or not kind.startswith("score_"):
                    break
                scores[kind.removeprefix("score_")] = position  # type: ignore[index]  # ADDED names a Label
            return ScoredColumns(index, index + 1, scores)
    raise TableError(
        "the file has no scored columns (label, confidence, score_<class>, side by side): import a file "
        "that `sentiment score` wrote"
    )


def read_scored(row: Row, columns: ScoredColumns) -> Scored | str:
    """The row's answer, or why it has none."""
    label = row.values[columns.label].strip().lower()
    if label not in LABELS:
        return f"label {label[:40]!r} is not one of {', '.join(LABELS)}"
    try:
        confidence = float(row.values[columns.confidence])
        scores = {name: float(row.values[position]) for name, position in columns.scores.items()}
    except ValueError:
        return "a confidence or a score is not a number"
    return Scored(label, confidence, scores)  # type: ignore[arg-type]  # checked against LABELS above


def import_id(source: Path, options: ImportOptions) -> UUID:
    """The same file (path, size, time written) imported with the same options is the same data set."""
    status = source.stat()
    key = msgspec.json.encode([str(source.resolve()), status.st_size, status.st_mtime_ns, options]).decode()
    return uuid5(IMPORT_NAMESPACE, key)


async def import_scores(
    settings: ImportSettings,
    source: Path,
    options: ImportOptions,
    show_bar: bool = True,
    stream: IO[str] = sys.stderr,
    clock: WallClock = utc_now,
) -> ImportSummary:
    started = time.perf_counter()
    table = await asyncio.to_thread(open_table, source)
    columns = scored_columns(table.columns)
    plan = await asyncio.to_thread(
        plan_reading,
        table,
        DatasetOptions(
            options.text_column,
            time_column=options.time_column,
            group_column=options.group_column,
            gold_column=options.gold_column,
            time_format=options.time_format,
        ),
    )
    dataset_id = import_id(source, options)
    if settings.auto_migrate:
        await asyncio.to_thread(upgrade, settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            earlier = await DatasetRepository(connection).get(dataset_id)
        if earlier is not None and earlier.status == "done":
            return ImportSummary(
                dataset_id,
                earlier.name,
                earlier.rows_total or 0,
                earlier.rows_scored,
                earlier.rows_skipped,
                earlier.rows_done,
                True,
                time.perf_counter() - started,
            )
        inspection = await asyncio.to_thread(inspect_rows, table, plan.time, plan.gold)
        gold = plan.gold_labels(inspection)
        tally = JobTally.resumed(earlier) if earlier is not None else JobTally()
        compared = [] if gold is None else [options.model]
        confusion = confusion_from(earlier.confusion if earlier else {}, compared)
        now = clock()
        if earlier is None:
            dataset = Dataset(
                id=dataset_id,
                name=options.name,
                status="scoring",
                created_at=now,
                size_bytes=source.stat().st_size,
                columns=table.columns,
                model=options.model,
                text_column=options.text_column,
                time_column=options.time_column,
                group_column=options.group_column,
                gold_column=options.gold_column,
                time_format=plan.time_format.name if plan.time_format else None,
                rows_total=inspection.rows,
                started_at=now,
                heartbeat_at=now,
            )
            async with engine.begin() as connection:
                await DatasetRepository(connection).add(dataset)
        else:
            async with engine.begin() as connection:
                await DatasetRepository(connection).update(dataset_id, status="scoring", heartbeat_at=now)
        resumed_after = tally.rows_done
        report = Report(inspection.rows, show_bar, stream, table.position)
        report.bar.update(resumed_after)
        labels = tuple(columns.scores)
        try:
            for chunk in read_chunks(table, plan.text, settings.datasets.chunk_rows, skip=resumed_after):
                rows: list[Row] = []
                scored: list[Scored] = []
                problems = list(chunk.problems)
                for row in chunk.rows:
                    answer = read_scored(row, columns)
                    if isinstance(answer, str):
                        problems.append(Problem(row.line, answer))
                    else:
                        rows.append(row)
                        scored.append(answer)
                usable = Chunk(rows, sorted(problems))
                counts = tally.count(plan, usable, scored, {}, gold, confusion, options.model)
                tally.rows_done += chunk.consumed
                tally.rate = (tally.rows_done - resumed_after) / max(time.perf_counter() - started, 1e-6)
                predictions = chunk_predictions(plan, rows, scored, options.model, dataset_id, clock(), 0.0)
                progress = tally.progress(confusion, clock())
                await store_chunk(engine, dataset_id, predictions, counts, progress, settings.store_text)
                report.chunk(usable)
        finally:
            report.close()
        export = export_path(Path(settings.datasets.data_dir), dataset_id)
        await asyncio.to_thread(_write_export, table, export)
        notes = tally.notes(plan, gold, options.model, labels, confusion)
        async with engine.begin() as connection:
            await DatasetRepository(connection).update(
                dataset_id, status="done", finished_at=clock(), heartbeat_at=clock(), notes=notes
            )
        log.info(
            "dataset_imported", dataset=str(dataset_id), rows=tally.rows_scored, resumed_after=resumed_after
        )
        return ImportSummary(
            dataset_id,
            options.name,
            inspection.rows,
            tally.rows_scored,
            tally.rows_skipped,
            resumed_after,
            False,
            time.perf_counter() - started,
        )
    finally:
        await engine.dispose()


def _write_export(table: Table, target: Path) -> None:
    """The data set's CSV export: the imported rows (their scores included; cells neutralised against formula
    injection), problem rows left out; built aside and renamed into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_suffix(".part")
    with part.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator=LINE_END)
        writer.writerow(map(neutralised, table.columns))
        writer.writerows(map(neutralised, item.values) for item in read_rows(table) if isinstance(item, Row))
    part.replace(target)


def summary_line(summary: ImportSummary) -> str:
    if summary.already_done:
        return f"{summary.name}: already imported as data set {summary.dataset_id} ({summary.scored:,} rows)"
    resumed = (
        f", going on after the {summary.resumed_after:,} rows of an earlier run"
        if summary.resumed_after
        else ""
    )
    return (
        f"imported {summary.scored:,} of {summary.rows:,} rows ({summary.skipped:,} skipped{resumed}) "
        f"as data set {summary.dataset_id} in {summary.seconds:.1f} s"
    )
