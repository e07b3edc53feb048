"""Stored predictions as people browse them: search by text, filter by label, model and time, one page at a
time."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from sentiment.core.clock import as_utc
from sentiment.storage.repositories import storable_text
from sentiment.storage.tables import PredictionRow


class HistoryFilters(msgspec.Struct, frozen=True):
    text: str | None = None
    label: str | None = None
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    page: int = 1
    page_size: int = 25


class StoredPrediction(msgspec.Struct, frozen=True):
    id: UUID
    created_at: datetime
    text: str | None
    text_length: int
    sentiment: str
    confidence: float
    model_used: str
    fallback_used: bool
    processing_time_ms: float


class HistoryPage(msgspec.Struct, frozen=True):
    rows: list[StoredPrediction]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return page_count(self.total, self.page_size)


def page_count(total: int, page_size: int) -> int:
    """Pages needed to show `total` rows; an empty result is still one (empty) page."""
    return max(1, -(-total // page_size))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class HistoryRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def page(self, filters: HistoryFilters) -> HistoryPage:
        conditions: list[ColumnElement[bool]] = []
        if filters.text:
            pattern = f"%{_escape_like(storable_text(filters.text))}%"
            conditions.append(PredictionRow.text.ilike(pattern, escape="\\"))
        if filters.label:
            conditions.append(PredictionRow.sentiment == filters.label)
        if filters.model:
            conditions.append(PredictionRow.model_used == storable_text(filters.model))
        if filters.since:
            conditions.append(PredictionRow.created_at >= filters.since)
        if filters.until:
            conditions.append(PredictionRow.created_at < filters.until)
        total = int(
            await self._connection.scalar(select(func.count()).select_from(PredictionRow).where(*conditions))
            or 0
        )
        # A page past the end (an old link, a hand-edited URL) shows the last one rather than an empty table.
        page = min(filters.page, page_count(total, filters.page_size))
        columns = [getattr(PredictionRow, field) for field in StoredPrediction.__struct_fields__]
        query = (
            select(*columns)
            .where(*conditions)
            .order_by(PredictionRow.created_at.desc(), PredictionRow.id.desc())
            .limit(filters.page_size)
            .offset((page - 1) * filters.page_size)
        )
        rows = [
            StoredPrediction(**{**row._mapping, "created_at": as_utc(row.created_at)})
            for row in await self._connection.execute(query)
        ]
        return HistoryPage(rows, total, page, filters.page_size)
