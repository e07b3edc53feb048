"""The two databases this service runs on, Postgres and
SQLite: telling them apart, and upserting in either."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def is_postgres(connection: AsyncConnection) -> bool:
    return connection.dialect.name == "postgresql"


def insert_for(connection: AsyncConnection, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT in the connection's dialect, so that it takes ON CONFLICT
    clauses (upserts): both dialects spell them alike (`on_conflict_do_update`,
    `on_conflict_do_nothing`, `excluded`), but each has its own statement."""
    return postgresql.insert(table) if is_postgres(connection) else sqlite.insert(table)
