"""Stored predictions as people browse and export them: filtered by time, model, label, data set, group,
fallback and text; read a page at a time, by page number or after a keyset position."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from sentiment.core.clock import as_utc
from sentiment.storage.repositories import storable_text
from sentiment.storage.tables import PredictionRow

Sort = Literal["newest", "oldest", "most_confident", "least_confident"]
SORTS: tuple[Sort, ...] = ("newest", "oldest", "most_confident", "least_confident")


class PredictionFilters(msgspec.Struct, frozen=True):
    """Which stored predictions: without `dataset`, live traffic only (a corpus's rows would bury it);
    `text` matches anywhere in the text, case-insensitively, taken literally."""

    text: str | None = None
    label: str | None = None
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    dataset: UUID | None = None
    group: str | None = None
    fallback: bool | None = None
    sort: Sort = "newest"


class StoredPrediction(msgspec.Struct, frozen=True):
    id: UUID
    created_at: datetime
    text: Annotated[str | None, msgspec.Meta(description="null where texts are not stored")]
    text_length: int
    sentiment: str
    confidence: float
    scores: dict[str, float]
    model_requested: str
    model_used: str
    fallback_used: bool
    processing_time_ms: float
    dataset_id: UUID | None
    group: str | None


class HistoryPage(msgspec.Struct, frozen=True):
    rows: list[StoredPrediction]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return page_count(self.total, self.page_size)


class Position(msgspec.Struct, frozen=True, array_like=True):
    """Where a keyset page ends: the last row's sort value (its time or confidence) and id."""

    value: datetime | float
    id: UUID


def page_count(total: int, page_size: int) -> int:
    """Pages needed to show `total` rows; an empty result is still one (empty) page."""
    return max(1, -(-total // page_size))


def position_of(row: StoredPrediction, sort: Sort) -> Position:
    return Position(row.created_at if sort in ("newest", "oldest") else row.confidence, row.id)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_COLUMNS = [
    *(getattr(PredictionRow, field) for field in StoredPrediction.__struct_fields__ if field != "group"),
    PredictionRow.group_name.label("group"),
]
_FIRST_KEY = {
    "newest": PredictionRow.created_at,
    "oldest": PredictionRow.created_at,
    "most_confident": PredictionRow.confidence,
    "least_confident": PredictionRow.confidence,
}
_DESCENDING = {"newest": True, "oldest": False, "most_confident": True, "least_confident": False}


def _conditions(filters: PredictionFilters) -> list[ColumnElement[bool]]:
    p = PredictionRow
    conditions = [p.dataset_id == filters.dataset if filters.dataset is not None else p.dataset_id.is_(None)]
    if filters.text:
        conditions.append(p.text.ilike(f"%{_escape_like(storable_text(filters.text))}%", escape="\\"))
    if filters.label:
        conditions.append(p.sentiment == filters.label)
    if filters.model:
        conditions.append(p.model_used == storable_text(filters.model))
    # Bound in UTC: SQLite compares the stored text, which drops any offset.
    if filters.since:
        conditions.append(p.created_at >= as_utc(filters.since))
    if filters.until:
        conditions.append(p.created_at < as_utc(filters.until))
    if filters.group is not None:
        conditions.append(p.group_name == storable_text(filters.group))
    if filters.fallback is not None:
        conditions.append(p.fallback_used == filters.fallback)
    return conditions


def _after(sort: Sort, position: Position) -> ColumnElement[bool]:
    """Rows that come after `position` in `sort`'s order (the id breaks ties, so no row is seen twice)."""
    first = _FIRST_KEY[sort]
    value = as_utc(position.value) if isinstance(position.value, datetime) else position.value
    # The first condition alone bounds an index range scan; an OR at the top would make both databases walk
    # the index from the start on every page.
    if _DESCENDING[sort]:
        return and_(first <= value, or_(first < value, PredictionRow.id < position.id))
    return and_(first >= value, or_(first > value, PredictionRow.id > position.id))


def _ordered(query: Select[tuple[object, ...]], sort: Sort) -> Select[tuple[object, ...]]:
    first = _FIRST_KEY[sort]
    if _DESCENDING[sort]:
        return query.order_by(first.desc(), PredictionRow.id.desc())
    return query.order_by(first.asc(), PredictionRow.id.asc())


def _stored(row: object) -> StoredPrediction:
    values = dict(row._mapping)  # type: ignore[attr-defined]
    values["created_at"] = as_utc(values["created_at"])
    return StoredPrediction(**values)


class HistoryRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def count(self, filters: PredictionFilters) -> int:
        query = select(func.count()).select_from(PredictionRow).where(*_conditions(filters))
        return int(await self._connection.scalar(query) or 0)

    async def page(self, filters: PredictionFilters, page: int, page_size: int) -> HistoryPage:
        """Page `page` (from 1) of the matching rows; a page past the end (an old link, a hand-edited URL)
        shows the last one rather than an empty table."""
        total = await self.count(filters)
        page = min(page, page_count(total, page_size))
        query = _ordered(select(*_COLUMNS).where(*_conditions(filters)), filters.sort)
        query = query.limit(page_size).offset((page - 1) * page_size)
        return HistoryPage(
            [_stored(row) for row in await self._connection.execute(query)], total, page, page_size
        )

    async def after(
        self, filters: PredictionFilters, position: Position | None, limit: int
    ) -> list[StoredPrediction]:
        """Up to `limit` matching rows after `position` (from the start without one): a page that costs the
        same however deep it is, unlike an offset."""
        conditions = _conditions(filters)
        if position is not None:
            conditions.append(_after(filters.sort, position))
        query = _ordered(select(*_COLUMNS).where(*conditions), filters.sort).limit(limit)
        return [_stored(row) for row in await self._connection.execute(query)]
