"""Alembic environment: async engine, URL from the caller (`sentiment db upgrade`) or from the settings."""

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from sentiment.settings import Settings
from sentiment.storage.database import MIGRATION_LOCK, create_engine
from sentiment.storage.tables import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return config.attributes.get("database_url") or Settings.from_env().database_url


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_engine(_url())
    async with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Replicas starting together migrate one after the other; the later ones find nothing to do.
            await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            await connection.commit()
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
