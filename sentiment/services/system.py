"""What /ready, /status and /db/health report."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from sentiment.breaker import BreakerState
from sentiment.core.domain import VADER_KEY, NotReady
from sentiment.inference.cache import ResultCache
from sentiment.inference.registry import ModelRegistry
from sentiment.services.alert_rules import BACKLOG_WARNING_SHARE, StorageState
from sentiment.services.failsafe import Failsafe
from sentiment.services.models import DefaultOrigin, ModelService
from sentiment.storage.database import database_away, head_revision, missing_schema, ping, schema_problem
from sentiment.storage.journal import unwritable
from sentiment.storage.writer import PredictionWriter


class ModelState(msgspec.Struct):
    key: str
    source: str
    status: str
    is_default: bool
    error: str | None
    load_seconds: float | None


StorageHealth = Literal["ok", "journal_failing", "unreachable", "schema_behind", "writes_failing", "backlog"]


class DatabaseHealth(msgspec.Struct):
    reachable: bool
    dialect: str
    latency_ms: float | None
    error: str | None
    pending_writes: int
    written: int
    dropped: int
    last_write_error: str | None
    # What is wrong with the schema (not migrated, or behind the code) and how to fix it; None when current.
    schema: str | None = None
    # ok, or the first of: journal_failing (the local journal cannot write: predictions get 503), unreachable,
    # schema_behind, writes_failing (the database answers but refuses the writes: a full disk), backlog (over
    # half the room for waiting predictions used).
    state: StorageHealth = "ok"
    # Share of the room for predictions waiting to be written that is used; at 1.0 predictions get 503.
    backlog_share: float = 0.0
    # Why the last append to the local journal failed, until one succeeds.
    journal_error: str | None = None


def storage_health(storage: StorageState) -> StorageHealth:
    if storage.journal_error is not None:
        return "journal_failing"
    if storage.unreachable is not None:
        return "unreachable"
    if storage.schema is not None:
        return "schema_behind"
    if storage.write_error is not None:
        return "writes_failing"
    return "backlog" if storage.backlog_share >= BACKLOG_WARNING_SHARE else "ok"


def missing_schema_error(error: BaseException) -> bool:
    """For the error table: a database error that means the schema is missing or behind, not an outage."""
    return missing_schema(error)


def journal_problem(folder: str) -> str | None:
    """Why the prediction journal cannot live in `folder` (said before serving), or None."""
    return unwritable(Path(folder))


def database_away_error(error: BaseException) -> bool:
    """For the error table: the database did not answer (503), as opposed to a query that is wrong (500)."""
    return database_away(error)


class Readiness(msgspec.Struct):
    ready: bool
    default_model: str
    database_latency_ms: float | None  # None while the database is away (the journal keeps the rows)
    storage: StorageHealth = "ok"


class Status(msgspec.Struct):
    version: str
    uptime_s: float
    default_model: str
    default_model_origin: DefaultOrigin
    serving: str
    fallback_reason: str | None
    models: list[ModelState]
    breakers: dict[str, str]
    queue_depths: dict[str, int]
    cache: CacheStats
    database: DatabaseHealth


class CacheStats(msgspec.Struct):
    size: int
    hits: int
    misses: int


BREAKER_STATE_CODE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class Gauges(msgspec.Struct):
    """The figures a Prometheus scrape reads from this process's own objects."""

    pending_writes: int
    journal_bytes: int
    dropped_writes: int
    breaker_states: Annotated[dict[str, int], msgspec.Meta(description="0 closed, 1 half-open, 2 open")]
    queue_depths: dict[str, int]
    cache_hits: int
    cache_misses: int


class SystemService:
    """What /ready, /status and /db/health report, gathered from the registry, the writer and the database."""

    PING_TIMEOUT_S = 2.0

    def __init__(
        self,
        registry: ModelRegistry,
        models: ModelService,
        failsafe: Failsafe,
        cache: ResultCache,
        writer: PredictionWriter,
        engine: AsyncEngine,
        version: str,
    ) -> None:
        self._registry = registry
        self._models = models
        self._failsafe = failsafe
        self._cache = cache
        self._writer = writer
        self._engine = engine
        self._version = version
        self._started = time.monotonic()
        self._expected_schema = head_revision()

    async def database_health(self) -> DatabaseHealth:
        latency_ms: float | None = None
        error: str | None = None
        schema: str | None = None
        try:
            async with asyncio.timeout(self.PING_TIMEOUT_S):
                latency_ms = await ping(self._engine)
                schema = await schema_problem(self._engine, self._expected_schema)
        except (SQLAlchemyError, OSError) as failure:
            error = (
                f"{type(failure).__name__}: {str(failure).splitlines()[0] if str(failure) else 'no answer'}"
            )
        storage = StorageState(
            unreachable=error,
            write_error=self._writer.last_error,
            schema=schema,
            pending=self._writer.pending,
            backlog_share=self._writer.backlog_share,
            journal_error=self._writer.journal_error,
        )
        return DatabaseHealth(
            reachable=error is None,
            dialect=self._engine.dialect.name,
            latency_ms=latency_ms,
            error=error,
            pending_writes=self._writer.pending,
            written=self._writer.written,
            dropped=self._writer.dropped,
            last_write_error=self._writer.last_error,
            schema=schema,
            state=storage_health(storage),
            backlog_share=round(storage.backlog_share, 4),
            journal_error=storage.journal_error,
        )

    async def storage_state(self) -> StorageState:
        """What the alert rules read of storage."""
        health = await self.database_health()
        return StorageState(
            unreachable=health.error,
            write_error=health.last_write_error,
            schema=health.schema,
            pending=health.pending_writes,
            backlog_share=health.backlog_share,
            journal_error=health.journal_error,
        )

    async def readiness(self) -> Readiness:
        default = self._registry.entry(self._registry.default_key)
        database = await self.database_health()
        reasons = []
        if not default.loaded:
            reasons.append(
                f"default model {default.key} is {default.status}"
                + (f": {default.error}" if default.error else "")
            )
        # A database outage alone leaves the pod ready: it answers, and the journal keeps the rows meanwhile.
        if database.schema is not None:
            reasons.append(f"database {database.schema}; predictions are answered and wait to be stored")
        if database.journal_error is not None:
            reasons.append(f"the prediction journal cannot write: {database.journal_error}")
        if database.backlog_share >= 1.0:
            reasons.append("storage is behind: the room for predictions waiting to be written is full")
        if reasons:
            raise NotReady("; ".join(reasons))
        return Readiness(True, default.key, database.latency_ms, database.state)

    def models(self) -> list[ModelState]:
        return [
            ModelState(
                e.key, e.spec.source, e.status, e.key == self._registry.default_key, e.error, e.load_seconds
            )
            for e in self._registry.entries()
        ]

    async def status(self) -> Status:
        default = self._registry.entry(self._registry.default_key)
        fallback_reason = None
        if not default.loaded:
            fallback_reason = f"default model {default.key} is {default.status}" + (
                f": {default.error}" if default.error else "; VADER answers until it is loaded"
            )
        return Status(
            version=self._version,
            uptime_s=round(time.monotonic() - self._started, 3),
            default_model=default.key,
            default_model_origin=self._models.default_origin,
            serving=default.key if default.loaded else VADER_KEY,
            fallback_reason=fallback_reason,
            models=self.models(),
            breakers={key: state.value for key, state in self._breaker_states().items()},
            queue_depths=self._queue_depths(),
            cache=CacheStats(self._cache.size, self._cache.hits, self._cache.misses),
            database=await self.database_health(),
        )

    def gauges(self) -> Gauges:
        return Gauges(
            pending_writes=self._writer.pending,
            journal_bytes=self._writer.pending_bytes,
            dropped_writes=self._writer.dropped,
            breaker_states={key: BREAKER_STATE_CODE[state] for key, state in self._breaker_states().items()},
            queue_depths=self._queue_depths(),
            cache_hits=self._cache.hits,
            cache_misses=self._cache.misses,
        )

    def _breaker_states(self) -> dict[str, BreakerState]:
        return {
            e.key: self._failsafe.breaker(e.key).state for e in self._registry.entries() if e.key != VADER_KEY
        }

    def _queue_depths(self) -> dict[str, int]:
        return {e.key: e.depth for e in self._registry.entries() if e.queue is not None}
