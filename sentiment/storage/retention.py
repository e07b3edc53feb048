"""Retention: predictions older than SENTIMENT_RETENTION_DAYS are deleted on a schedule."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from sentiment.core.clock import WallClock, utc_now
from sentiment.core.domain import first_line
from sentiment.storage.analytics import RollupRepository
from sentiment.storage.tables import PredictionRow

log = structlog.get_logger(__name__)

PURGE_INTERVAL_S = 3600.0


async def delete_predictions_before(engine: AsyncEngine, cutoff: datetime) -> int:
    async with engine.begin() as connection:
        result = await connection.execute(delete(PredictionRow).where(PredictionRow.created_at < cutoff))
        # The hourly rollups must forget the same rows, or "all time" figures would still count them.
        await RollupRepository(connection).forget_before(cutoff)
    return int(result.rowcount or 0)


async def purge_forever(engine: AsyncEngine, days: int, clock: WallClock = utc_now) -> None:
    """Every hour, delete what is older than `days`; a database error waits for the next round."""
    while True:
        try:
            deleted = await delete_predictions_before(engine, clock() - timedelta(days=days))
        except (SQLAlchemyError, OSError) as error:
            log.warning("retention_purge_failed", error=first_line(error))
        else:
            if deleted:
                log.info("retention_purged", deleted=deleted, older_than_days=days)
        await asyncio.sleep(PURGE_INTERVAL_S)
