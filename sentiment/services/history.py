"""Stored predictions, newest first, filtered and paged."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from sentiment.storage.history import HistoryFilters, HistoryPage, HistoryRepository


class HistoryService:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def page(self, filters: HistoryFilters) -> HistoryPage:
        async with self._engine.connect() as connection:
            return await HistoryRepository(connection).page(filters)
