"""Engine creation, schema upgrades, the health probe, and the waits while the database is down."""

from __future__ import annotations

import time
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from sentiment.core.resources import bundled_dir
from sentiment.core.retry import Backoff

MIGRATIONS = bundled_dir("migrations")
# Waits between writes tried again while the database does not answer (restarting, failing over, locked).
OUTAGE_BACKOFF = Backoff(first_s=0.5, factor=2.0, max_s=5.0)


def create_engine(url: str) -> AsyncEngine:
    if make_url(url).get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    engine = create_async_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
        # WAL lets readers (analytics, pages) run while the writer inserts.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema up to `revision`. Blocking: call it from a thread inside a running event loop."""
    command.upgrade(alembic_config(url), revision)


async def ping(engine: AsyncEngine) -> float:
    """Round-trip one query; return its latency in milliseconds (raises when the database does not answer)."""
    started = time.perf_counter()
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    return (time.perf_counter() - started) * 1000
