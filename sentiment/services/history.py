"""Stored predictions: a page to browse, a keyset page for API clients, or every match exported as CSV or
JSON Lines, streamed."""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Literal

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from sentiment.core.clock import WallClock, utc_now
from sentiment.core.domain import LABELS, InvalidInput
from sentiment.services.tabular import LINE_END, neutralised
from sentiment.storage.datasets import Dataset, DatasetRepository
from sentiment.storage.history import (
    SORTS,
    HistoryPage,
    HistoryRepository,
    Position,
    PredictionFilters,
    Sort,
    StoredPrediction,
    position_of,
)

__all__ = [
    "SORTS",
    "ExportFormat",
    "HistoryPage",
    "HistoryService",
    "PredictionFilters",
    "PredictionList",
    "Sort",
    "StoredPrediction",
]

ExportFormat = Literal["csv", "jsonl"]
CSV_COLUMNS = (
    "id",
    "created_at",
    "text",
    "text_length",
    "sentiment",
    "confidence",
    *(f"score_{label}" for label in LABELS),
    "model_requested",
    "model_used",
    "fallback_used",
    "processing_time_ms",
    "dataset_id",
    "group",
)
EXPORT_CHUNK = 5000


class PredictionList(msgspec.Struct):
    predictions: list[StoredPrediction]
    total: Annotated[
        int | None,
        msgspec.Meta(description="predictions matching the filters; on the first page only (null after it)"),
    ]
    next_cursor: Annotated[
        str | None, msgspec.Meta(description="pass as `cursor` for the next page; null on the last page")
    ]


class _Cursor(msgspec.Struct, frozen=True, array_like=True):
    sort: Sort
    position: Position


def encode_cursor(sort: Sort, position: Position) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(_Cursor(sort, position))).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sort) -> Position:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = msgspec.json.decode(raw, type=_Cursor)
    except (binascii.Error, ValueError, msgspec.DecodeError) as error:
        raise InvalidInput(
            "cursor is not one this service gave: pass a page's next_cursor unchanged"
        ) from error
    if decoded.sort != sort:
        raise InvalidInput(
            f"cursor belongs to sort={decoded.sort}, not sort={sort}: keep the filters of its page"
        )
    return decoded.position


def csv_rows(rows: Sequence[StoredPrediction]) -> list[list[str]]:
    """Rows as CSV cells, the free-text ones (text, group) neutralised against formula injection."""
    return [
        [
            str(row.id),
            row.created_at.isoformat().replace("+00:00", "Z"),
            neutralised(row.text or ""),
            str(row.text_length),
            row.sentiment,
            f"{row.confidence:.6f}",
            *(f"{row.scores[label]:.6f}" if label in row.scores else "" for label in LABELS),
            row.model_requested,
            row.model_used,
            "true" if row.fallback_used else "false",
            f"{row.processing_time_ms:.3f}",
            str(row.dataset_id or ""),
            neutralised(row.group or ""),
        ]
        for row in rows
    ]


def _csv_bytes(rows: Sequence[Sequence[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator=LINE_END).writerows(rows)
    return out.getvalue().encode()


class HistoryService:
    def __init__(
        self, engine: AsyncEngine, model_keys: Sequence[str] = (), clock: WallClock = utc_now
    ) -> None:
        self._engine = engine
        self._clock = clock
        self.model_keys = list(model_keys)

    async def page(self, filters: PredictionFilters, page: int = 1, page_size: int = 25) -> HistoryPage:
        async with self._engine.connect() as connection:
            return await HistoryRepository(connection).page(filters, page, page_size)

    async def listing(self, filters: PredictionFilters, cursor: str | None, limit: int) -> PredictionList:
        """A page of `limit` after `cursor`; one row more is read to know whether another page follows."""
        position = decode_cursor(cursor, filters.sort) if cursor else None
        async with self._engine.connect() as connection:
            history = HistoryRepository(connection)
            rows = await history.after(filters, position, limit + 1)
            total = await history.count(filters) if position is None else None
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(filters.sort, position_of(rows[-1], filters.sort)) if more else None
        return PredictionList(rows, total, next_cursor)

    async def datasets(self, limit: int = 100) -> list[Dataset]:
        """The data sets a list can be narrowed to, newest first."""
        async with self._engine.connect() as connection:
            return await DatasetRepository(connection).recent(limit)

    def export_name(self, export_format: ExportFormat) -> str:
        return f"predictions-{self._clock().strftime('%Y%m%dT%H%M%SZ')}.{export_format}"

    async def export(self, filters: PredictionFilters, export_format: ExportFormat) -> AsyncIterator[bytes]:
        """Every matching prediction stored before the export began (unless `until` says otherwise), encoded a
        chunk at a time: each chunk a keyset page read on a connection of its own, so nothing is held while
        the client reads, and a client that goes away leaves nothing open."""
        if filters.until is None:
            filters = msgspec.structs.replace(filters, until=self._clock())
        encoder = msgspec.json.Encoder()
        if export_format == "csv":
            yield _csv_bytes([CSV_COLUMNS])
        position = None
        while True:
            async with self._engine.connect() as connection:
                rows = await HistoryRepository(connection).after(filters, position, EXPORT_CHUNK)
            if rows:
                yield _csv_bytes(csv_rows(rows)) if export_format == "csv" else encoder.encode_lines(rows)
            if len(rows) < EXPORT_CHUNK:
                return
            position = position_of(rows[-1], filters.sort)
