"""Stored predictions, newest first, filtered and paged."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from sentiment.storage.history import HistoryFilters, HistoryPage, HistoryRepository

__all__ = ["HistoryFilters", "HistoryPage", "HistoryService"]


class HistoryService:
    def __init__(self, engine: AsyncEngine, model_keys: Sequence[str] = ()) -> None:
        self._engine = engine
        self.model_keys = list(model_keys)

    async def page(self, filters: HistoryFilters) -> HistoryPage:
        async with self._engine.connect() as connection:
            return await HistoryRepository(connection).page(filters)
