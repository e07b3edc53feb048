"""Page sessions kept in the database, so that logout, expiry and an idle timeout end a session on every
replica: a litestar `Store` over the `sessions` table. Rows are keyed by the SHA-256 digest of the session id,
so that a copy of the table lets nobody in."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from litestar.stores.base import Store
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from sentiment.core.clock import WallClock, as_utc, utc_now
from sentiment.storage.dialects import insert_for
from sentiment.storage.tables import SessionRow

# What a value stored without an expiry gets: the column takes no NULL, and no session lives to see this.
FOREVER = datetime(9999, 12, 31, tzinfo=UTC)
# Expired rows are deleted when read; what is never read again goes with the first write after this long.
PURGE_INTERVAL = timedelta(minutes=10)


def _id_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _delta(seconds: int | timedelta) -> timedelta:
    return seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)


class DatabaseStore(Store):
    """The app builds its session middleware before its lifespan creates the database engine: the store is
    made with the app and attached to the engine when the lifespan starts."""

    def __init__(self, clock: WallClock = utc_now) -> None:
        self._clock = clock
        self._engine: AsyncEngine | None = None
        self._purged_at: datetime | None = None

    def attach(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError(
                "the session store is used before the app started: no database engine attached"
            )
        return self._engine

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        now = self._clock()
        data = value.encode() if isinstance(value, str) else value
        expires_at = FOREVER if expires_in is None else now + _delta(expires_in)
        async with self.engine.begin() as connection:
            insert = insert_for(connection, SessionRow).values(
                id_hash=_id_hash(key), data=data, expires_at=expires_at
            )
            await connection.execute(
                insert.on_conflict_do_update(
                    index_elements=[SessionRow.id_hash],
                    set_={"data": insert.excluded.data, "expires_at": insert.excluded.expires_at},
                )
            )
            if self._purged_at is None or now - self._purged_at >= PURGE_INTERVAL:
                await connection.execute(delete(SessionRow).where(SessionRow.expires_at <= now))
                self._purged_at = now

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        """The value while it lives; `renew_for` moves its expiry to that long from now (a sliding idle
        timeout). An update, never an insert: a session ended meanwhile, on any replica, stays ended."""
        now = self._clock()
        id_hash = _id_hash(key)
        async with self.engine.begin() as connection:
            query = select(SessionRow.data, SessionRow.expires_at).where(SessionRow.id_hash == id_hash)
            row = (await connection.execute(query)).first()
            if row is None:
                return None
            expires_at = as_utc(row.expires_at)
            if expires_at <= now:
                await connection.execute(
                    delete(SessionRow).where(SessionRow.id_hash == id_hash, SessionRow.expires_at <= now)
                )
                return None
            if renew_for is not None and expires_at != FOREVER:
                await connection.execute(
                    update(SessionRow)
                    .where(SessionRow.id_hash == id_hash)
                    .values(expires_at=now + _delta(renew_for))
                )
            return bytes(row.data)

    async def delete(self, key: str) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(delete(SessionRow).where(SessionRow.id_hash == _id_hash(key)))

    async def delete_all(self) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(delete(SessionRow))

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None

    async def expires_in(self, key: str) -> int | None:
        """Whole seconds left; None for a value that is missing, expired or stored without an expiry."""
        async with self.engine.connect() as connection:
            query = select(SessionRow.expires_at).where(SessionRow.id_hash == _id_hash(key))
            expires_at = (await connection.execute(query)).scalar_one_or_none()
        if expires_at is None or as_utc(expires_at) == FOREVER:
            return None
        left = as_utc(expires_at) - self._clock()
        return int(left.total_seconds()) if left > timedelta(0) else None
