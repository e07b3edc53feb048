"""API keys: each team gets its own, with its own rate limit and usage, and an admin can revoke it.

Replicas share the keys through the database. A verified key is cached for `CACHE_S` seconds at most, so a
revocation reaches every replica within that; usage is counted in memory and added to the database every
`FLUSH_S` seconds and at shutdown, one UPDATE per key used rather than one per request. The per-key rate limit
is kept in each replica's memory: behind N replicas a key gets up to N times its rate."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from uuid import UUID

import msgspec
import structlog
from cachetools import TTLCache
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from sentiment.core.api_keys import (
    MAX_NAME_LENGTH,
    MAX_RATE_PER_MINUTE,
    ApiKey,
    display_prefix,
    key_digest,
    new_key,
)
from sentiment.core.clock import WallClock, utc_now
from sentiment.core.domain import InvalidInput, RateLimited, first_line
from sentiment.core.ids import new_id
from sentiment.core.rate_budget import RateBudget
from sentiment.core.tasks import cancel_and_wait
from sentiment.services.metrics import API_KEY_RATE_LIMITED, API_KEY_REQUESTS, API_KEY_TEXTS
from sentiment.services.settings import UploadPolicy
from sentiment.storage.api_keys import ApiKeyRepository, KeyUsage
from sentiment.storage.database import create_engine

log = structlog.get_logger(__name__)

CACHE_S = 5.0
FLUSH_S = 2.0
MAX_CACHED_KEYS = 10_000


class CreatedKey(msgspec.Struct, frozen=True):
    """A new key and its record: the only time the key itself is known to the service."""

    key: str
    record: ApiKey


class ApiKeyService:
    def __init__(
        self,
        engine: AsyncEngine,
        required: bool = False,
        uploads: UploadPolicy = "open",
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: WallClock = utc_now,
        cache_s: float = CACHE_S,
        flush_s: float = FLUSH_S,
    ) -> None:
        self._engine = engine
        self.required = required  # SENTIMENT_API_KEYS: the JSON endpoints need a key
        self.uploads = uploads  # SENTIMENT_UPLOADS
        self._wall_clock = wall_clock
        self._verified: TTLCache[str, ApiKey] = TTLCache(MAX_CACHED_KEYS, ttl=cache_s, timer=clock)
        self._clock = clock
        # One budget per rate in use, holding the keys that have that rate.
        self._budgets: dict[int, RateBudget] = {}
        self._usage: dict[UUID, KeyUsage] = {}
        self._flush_s = flush_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever(), name="api-key-usage")

    async def close(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        if not await self.flush():
            log.error("api_key_usage_lost", keys=len(self._usage))

    # -- management ----------------------------------------------------------------------------------------

    async def create(self, name: str, rate_per_minute: int | None = None) -> CreatedKey:
        name = name.strip()
        if not name or len(name) > MAX_NAME_LENGTH:
            raise InvalidInput(f"a key needs a name of 1 to {MAX_NAME_LENGTH} characters")
        if not name.isprintable():  # it shows on pages, in tables and in metric labels; Postgres refuses NUL
            raise InvalidInput("a key's name is one line of printable characters")
        if rate_per_minute is not None and not 1 <= rate_per_minute <= MAX_RATE_PER_MINUTE:
            raise InvalidInput(f"rate_per_minute must be between 1 and {MAX_RATE_PER_MINUTE:,}, or absent")
        key = new_key()
        record = ApiKey(
            id=new_id(),
            name=name,
            prefix=display_prefix(key),
            rate_per_minute=rate_per_minute,
            created_at=self._wall_clock(),
            revoked_at=None,
            last_used_at=None,
            requests=0,
            texts=0,
        )
        async with self._engine.begin() as connection:
            await ApiKeyRepository(connection).add(record, key_digest(key))
        log.info("api_key_created", key=record.label, key_id=str(record.id))
        return CreatedKey(key, record)

    async def list(self) -> list[ApiKey]:
        """Every key with its usage; this replica's unwritten usage is written first, so it shows at once."""
        await self.flush()
        async with self._engine.connect() as connection:
            return await ApiKeyRepository(connection).list()

    async def revoke(self, selector: str) -> ApiKey | None:
        """Revoke the key with this id or this prefix (as listed); None when no key has it. Every replica
        refuses it within CACHE_S seconds, this one at once."""
        selector = selector.strip().rstrip("…")
        if not selector:
            raise InvalidInput("name the key to revoke by its id or its prefix")
        async with self._engine.begin() as connection:
            keys = ApiKeyRepository(connection)
            stored = await keys.list()
            matches = [key for key in stored if selector in (str(key.id), key.prefix)]
            if len(matches) > 1:
                ids = ", ".join(f"{key.id} ({key.name})" for key in matches)
                raise InvalidInput(f"{selector!r} matches {len(matches)} keys; give one id: {ids}")
            if not matches:
                return None
            revoked = await keys.revoke(matches[0].id, self._wall_clock())
        if revoked is not None:
            for digest in [digest for digest, key in self._verified.items() if key.id == revoked.id]:
                self._verified.pop(digest, None)
            log.info("api_key_revoked", key=revoked.label, key_id=str(revoked.id))
        return revoked

    # -- use -----------------------------------------------------------------------------------------------

    async def verify(self, supplied: str) -> ApiKey | None:
        """The record of the key supplied (revoked ones too, so the caller can say so), or None."""
        return await self.verify_digest(key_digest(supplied))

    async def verify_digest(self, digest: str) -> ApiKey | None:
        """As `verify`, from the key's digest: what a page session logged in with a key keeps."""
        key = self._verified.get(digest)
        if key is None:
            async with self._engine.connect() as connection:
                key = await ApiKeyRepository(connection).by_digest(digest)
            if key is not None:
                self._verified[digest] = key
        return key

    def admit(self, key: ApiKey, scores_text: bool) -> None:
        """Count one request made with `key`; one that scores text first takes from the key's own rate limit,
        and is refused (and not counted) when that is spent."""
        if scores_text and key.rate_per_minute is not None:
            budget = self._budgets.get(key.rate_per_minute)
            if budget is None:
                budget = self._budgets[key.rate_per_minute] = RateBudget(
                    key.rate_per_minute, 60.0, self._clock
                )
            wait = budget.take(str(key.id))
            if wait > 0:
                API_KEY_RATE_LIMITED.labels(key_name=key.name, key_prefix=key.prefix).inc()
                raise RateLimited(
                    f"this API key is over its limit of {key.rate_per_minute} scoring requests per minute: "
                    "retry after the number of seconds in Retry-After",
                    retry_after_s=math.ceil(wait),
                )
        self._count(key, requests=1, texts=0)

    def count_texts(self, key: ApiKey, texts: int) -> None:
        self._count(key, requests=0, texts=texts)

    def _count(self, key: ApiKey, requests: int, texts: int) -> None:
        before = self._usage.get(key.id) or KeyUsage(key.id, 0, 0, self._wall_clock())
        self._usage[key.id] = KeyUsage(
            key.id, before.requests + requests, before.texts + texts, self._wall_clock()
        )
        if requests:
            API_KEY_REQUESTS.labels(key_name=key.name, key_prefix=key.prefix).inc(requests)
        if texts:
            API_KEY_TEXTS.labels(key_name=key.name, key_prefix=key.prefix).inc(texts)

    async def flush(self) -> bool:
        """Add the usage counted since the last flush to the database; False (the counts kept for the next
        try) when the database does not answer."""
        usage, self._usage = self._usage, {}
        if not usage:
            return True
        try:
            async with self._engine.begin() as connection:
                await ApiKeyRepository(connection).add_usage(list(usage.values()))
        except (SQLAlchemyError, OSError) as error:
            for item in usage.values():
                later = self._usage.get(item.key_id)
                if later is not None:
                    item = KeyUsage(
                        item.key_id,
                        item.requests + later.requests,
                        item.texts + later.texts,
                        later.last_used_at,
                    )
                self._usage[item.key_id] = item
            log.warning("api_key_usage_waiting_for_database", keys=len(usage), error=first_line(error))
            return False
        return True

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            await self.flush()


@asynccontextmanager
async def _keys(database_url: str) -> AsyncIterator[ApiKeyService]:
    """A service of its own for one command of `sentiment keys`, without a server."""
    engine = create_engine(database_url)
    try:
        yield ApiKeyService(engine)
    finally:
        await engine.dispose()


async def create_key(database_url: str, name: str, rate_per_minute: int | None) -> CreatedKey:
    async with _keys(database_url) as keys:
        return await keys.create(name, rate_per_minute)


async def list_keys(database_url: str) -> list[ApiKey]:
    async with _keys(database_url) as keys:
        return await keys.list()


async def revoke_key(database_url: str, selector: str) -> ApiKey | None:
    async with _keys(database_url) as keys:
        return await keys.revoke(selector)
