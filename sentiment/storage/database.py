"""Engine creation, schema upgrades, the health probe, and the waits while the database is down."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from sentiment.core.resources import bundled_dir
from sentiment.core.retry import Backoff

MIGRATIONS = bundled_dir("migrations")
# Waits between writes tried again while the database does not answer (restarting, failing over, locked).
OUTAGE_BACKOFF = Backoff(first_s=0.5, factor=2.0, max_s=5.0)


def _json_text(value: object) -> str:
    """JSON columns (a prediction's scores) encoded by msgspec: a fifth of the cost of the standard
    library's encoder, on every stored row."""
    return msgspec.json.encode(value).decode()


def create_engine(url: str) -> AsyncEngine:
    if make_url(url).get_backend_name() != "sqlite":
        return create_async_engine(
            url, pool_pre_ping=True, pool_size=5, max_overflow=5, json_serializer=_json_text
        )
    engine = create_async_engine(url, connect_args={"timeout": 30}, json_serializer=_json_text)

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
        # WAL lets readers (analytics, pages) run while the writer inserts.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # A checkpoint every 10,000 pages (40 MB of WAL) rather than 1,000: each one writes back and syncs
        # every page the transactions since the last one touched: fewer, larger checkpoints took a fifth off a
        # batch insert (bench/write_rate.py).
        cursor.execute("PRAGMA wal_autocheckpoint=10000")
        cursor.close()

    return engine


# SQLSTATEs of a schema that is missing or behind the code: an undefined table, an undefined column.
MISSING_SCHEMA_STATES = frozenset({"42P01", "42703"})
# Postgres advisory lock held while migrating, so that replicas starting together migrate one at a time.
MIGRATION_LOCK = 745_011_501


def missing_schema(error: BaseException) -> bool:
    """The database answered, but lacks a table or column the code uses: not migrated (or behind). Rows wait
    for `sentiment db upgrade` rather than being refused for their content."""
    cause = getattr(error, "orig", None) or error
    if getattr(cause, "sqlstate", None) in MISSING_SCHEMA_STATES:
        return True
    message = str(cause)
    return message.startswith(("no such table", "no such column")) or " has no column named " in message


def database_away(error: BaseException) -> bool:
    """The database did not answer (down, restarting, unreachable, locked, no connection free): the same work
    succeeds later. Neither a bug in a query nor a row refused for its content; a missing schema is told apart
    by `missing_schema` first (SQLite says "no such table" as an OperationalError)."""
    if isinstance(error, OSError | OperationalError | InterfaceError | DisconnectionError | PoolTimeout):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def head_revision() -> str:
    """The schema revision this code expects (the newest migration)."""
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations under {MIGRATIONS}")
    return head


async def schema_problem(engine: AsyncEngine, expected: str) -> str | None:
    """What is wrong with the database's schema, said with its fix; None when it is at `expected`."""
    try:
        async with engine.connect() as connection:
            found = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    except DBAPIError as error:
        if not missing_schema(error):
            raise
        found = None
    if found == expected:
        return None
    return (
        f"schema at revision {found or 'none (not migrated)'}, expected {expected}: "
        "run `sentiment db upgrade`"
    )


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
