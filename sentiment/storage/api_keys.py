"""API keys in the shared database: looked up by digest, listed without their digests, revoked by stamping a
time, and their usage added in one batched UPDATE from each replica's buffer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import msgspec
from sqlalchemy import DateTime, Row, Table, bindparam, case, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sentiment.core.api_keys import ApiKey
from sentiment.core.clock import as_utc
from sentiment.storage.tables import ApiKeyRow

_TABLE = cast(Table, ApiKeyRow.__table__)
_RECORD = [_TABLE.c[name] for name in ApiKey.__struct_fields__]


class KeyUsage(msgspec.Struct, frozen=True):
    """Usage gathered by one replica since its last flush."""

    key_id: UUID
    requests: int
    texts: int
    last_used_at: datetime


class ApiKeyRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, key: ApiKey, digest: str) -> None:
        values = msgspec.structs.asdict(key)
        await self._connection.execute(insert(ApiKeyRow), [{**values, "key_hash": digest}])

    async def by_digest(self, digest: str) -> ApiKey | None:
        row = (await self._connection.execute(select(*_RECORD).where(ApiKeyRow.key_hash == digest))).first()
        return _key(row) if row else None

    async def list(self) -> list[ApiKey]:
        """Every key, newest first, revoked ones included (their usage stays worth seeing)."""
        query = select(*_RECORD).order_by(ApiKeyRow.created_at.desc(), ApiKeyRow.id)
        return [_key(row) for row in await self._connection.execute(query)]

    async def revoke(self, key_id: UUID, at: datetime) -> ApiKey | None:
        """Stamp the key revoked (one revoked before keeps its first time); None when there is no such key."""
        await self._connection.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        row = (await self._connection.execute(select(*_RECORD).where(ApiKeyRow.id == key_id))).first()
        return _key(row) if row else None

    async def add_usage(self, usage: Sequence[KeyUsage]) -> None:
        """Add each replica's counts to the stored ones, so that replicas never overwrite each other's."""
        used_at = bindparam("used_at", type_=DateTime(timezone=True))
        statement = (
            update(_TABLE)
            .where(_TABLE.c.id == bindparam("key_id"))
            .values(
                requests=_TABLE.c.requests + bindparam("more_requests"),
                texts=_TABLE.c.texts + bindparam("more_texts"),
                last_used_at=case(
                    (or_(_TABLE.c.last_used_at.is_(None), _TABLE.c.last_used_at < used_at), used_at),
                    else_=_TABLE.c.last_used_at,
                ),
            )
        )
        await self._connection.execute(
            statement,
            [
                {
                    "key_id": item.key_id,
                    "more_requests": item.requests,
                    "more_texts": item.texts,
                    "used_at": as_utc(item.last_used_at),
                }
                for item in usage
            ],
        )


def _key(row: Row[Any]) -> ApiKey:
    values = dict(row._mapping)
    for field in ("created_at", "revoked_at", "last_used_at"):
        values[field] = as_utc(values[field])
    return ApiKey(**values)
