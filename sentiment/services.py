"""Services own the stories the web layer and the CLI tell: predicting, loading models, reporting health."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from uuid_utils.compat import uuid7

from sentiment.alerts import AlertService
from sentiment.analytics import AnalyticsService
from sentiment.clock import WallClock, utc_now
from sentiment.datasets import DatasetService  # data sets
from sentiment.domain import VADER_KEY, InvalidInput, ModelNotLoaded, NotReady, Prediction, Scored
from sentiment.failsafe import Failsafe
from sentiment.inference.cache import ResultCache
from sentiment.inference.queue import ModelCallFailed, QueueTimeout
from sentiment.inference.registry import ModelEntry, ModelRegistry
from sentiment.inference.stats import RecentWindow
from sentiment.management import ModelService
from sentiment.metrics import FALLBACKS, PREDICTIONS, QUEUE_TIME
from sentiment.settings import Settings
from sentiment.storage.database import ping
from sentiment.storage.history import HistoryFilters, HistoryPage, HistoryRepository
from sentiment.storage.writer import PredictionWriter

log = structlog.get_logger(__name__)

class PredictionBatch(msgspec.Struct, frozen=True):
    predictions: list[Prediction]
    model_requested: str
    queue_ms: float
    inference_ms: float
    total_ms: float


class _Answer(msgspec.Struct, frozen=True):
    scored: list[Scored]
    model_used: str
    fallback_used: bool
    queue_ms: float = 0.0
    inference_ms: float = 0.0


class PredictionService:
    """pick the model -> cache -> its breaker -> its batching queue (or VADER) -> predictions -> the writer."""

    def __init__(
        self,
        registry: ModelRegistry,
        failsafe: Failsafe,
        cache: ResultCache,
        writer: PredictionWriter,
        recent: RecentWindow,
        max_text_length: int,
        max_batch_size: int,
        clock: WallClock = utc_now,
    ) -> None:
        self._registry = registry
        self._failsafe = failsafe
        self._cache = cache
        self._writer = writer
        self._recent = recent
        self._max_text_length = max_text_length
        self._max_batch_size = max_batch_size
        self._clock = clock

    async def predict(self, texts: Sequence[str], model: str | None = None) -> PredictionBatch:
        self._validate(texts)
        started = time.perf_counter()
        entry = self._registry.select(model)
        answers = await self._answer(entry, texts)
        total_ms = (time.perf_counter() - started) * 1000
        now = self._clock()
        predictions = [
            Prediction(
                id=uuid7(),
                text=text,
                sentiment=scored.label,
                confidence=scored.confidence,
                scores=scored.scores,
                model_requested=entry.key,
                model_used=answer.model_used,
                fallback_used=answer.fallback_used,
                processing_time_ms=total_ms,
                timestamp=now,
            )
            for text, (answer, scored) in zip(texts, answers, strict=True)
        ]
        self._writer.submit(predictions)
        fallback_texts = sum(prediction.fallback_used for prediction in predictions)
        entry.stats.record_request(len(predictions), total_ms, fallback_texts)
        self._recent.record(len(predictions), fallback_texts, total_ms)
        for prediction in predictions:
            PREDICTIONS.labels(model=prediction.model_used, label=prediction.sentiment).inc()
        queue_ms = max((answer.queue_ms for answer, _ in answers), default=0.0)
        inference_ms = max((answer.inference_ms for answer, _ in answers), default=0.0)
        return PredictionBatch(predictions, entry.key, queue_ms, inference_ms, total_ms)

    async def _answer(self, entry: ModelEntry, texts: Sequence[str]) -> list[tuple[_Answer, Scored]]:
        """Per text, its answer: cached model answers first, then one model call (or VADER) for the rest."""
        if entry.key == VADER_KEY:
            return self._per_text(await self._vader(texts, fallback=False))
        cached = [self._cache.get(entry.key, text) for text in texts]
        missing = [text for text, hit in zip(texts, cached, strict=True) if hit is None]
        fresh: list[tuple[_Answer, Scored]] = []
        if missing:
            fresh = self._per_text(await self._through_breaker(entry, missing))
            for text, (answer, scored) in zip(missing, fresh, strict=True):
                if not answer.fallback_used:
                    self._cache.put(entry.key, text, scored)
        from_cache = _Answer([], entry.key, False)
        remaining = iter(fresh)
        return [(from_cache, hit) if hit is not None else next(remaining) for hit in cached]

    async def _through_breaker(self, entry: ModelEntry, texts: Sequence[str]) -> _Answer:
        """Ask the model through its breaker; whenever it cannot answer in time, VADER does."""
        breaker = self._failsafe.breaker(entry.key)
        if not entry.loaded:
            breaker.record_unavailable(f"model is {entry.status}")
            return await self._vader(texts, fallback=True, asked=entry.key)
        permit = breaker.acquire()
        if permit is None:
            return await self._vader(texts, fallback=True, asked=entry.key)
        try:
            result = await entry.run(texts, permit.trial, self._failsafe.settings.call_timeout_s)
        except QueueTimeout as timeout:
            # A call that ran late is counted by the queue; one that never started leaves no verdict.
            if not timeout.started:
                breaker.release(permit)
        except ModelCallFailed:
            pass  # the queue has told the breaker about the failed call
        except ModelNotLoaded:
            breaker.record_failure(permit, "model was unloaded")
        except BaseException:
            breaker.release(permit)  # cancelled, or the queue is full: no verdict on the model
            raise
        else:
            QUEUE_TIME.labels(model=entry.key).observe(result.queue_ms / 1000)
            return _Answer(result.scored, entry.key, False, result.queue_ms, result.inference_ms)
        return await self._vader(texts, fallback=True, asked=entry.key)

    async def _vader(self, texts: Sequence[str], fallback: bool, asked: str | None = None) -> _Answer:
        if fallback:
            FALLBACKS.labels(model=asked).inc(len(texts))
        result = await self._registry.vader.run(texts)
        return _Answer(result.scored, VADER_KEY, fallback, result.queue_ms, result.inference_ms)

    @staticmethod
    def _per_text(answer: _Answer) -> list[tuple[_Answer, Scored]]:
        return [(answer, scored) for scored in answer.scored]

    def _validate(self, texts: Sequence[str]) -> None:
        if not texts:
            raise InvalidInput("texts must hold at least one text")
        if len(texts) > self._max_batch_size:
            raise InvalidInput(f"a batch holds at most {self._max_batch_size} texts; got {len(texts)}")
        for index, text in enumerate(texts):
            where = f"texts[{index}]" if len(texts) > 1 else "text"
            if not text.strip():
                raise InvalidInput(f"{where} is empty or whitespace only")
            if len(text) > self._max_text_length:
                raise InvalidInput(f"{where} is {len(text)} characters; the limit is {self._max_text_length}")


class ModelState(msgspec.Struct):
    key: str
    source: str
    status: str
    is_default: bool
    error: str | None
    load_seconds: float | None


class DatabaseHealth(msgspec.Struct):
    reachable: bool
    dialect: str
    latency_ms: float | None
    error: str | None
    pending_writes: int
    written: int
    dropped: int
    last_write_error: str | None


class Readiness(msgspec.Struct):
    ready: bool
    default_model: str
    database_latency_ms: float


class Status(msgspec.Struct):
    version: str
    uptime_s: float
    default_model: str
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


class SystemService:
    """What /ready, /status and /db/health report, gathered from the registry, the writer and the database."""

    PING_TIMEOUT_S = 2.0

    def __init__(
        self,
        registry: ModelRegistry,
        failsafe: Failsafe,
        cache: ResultCache,
        writer: PredictionWriter,
        engine: AsyncEngine,
        version: str,
    ) -> None:
        self._registry = registry
        self._failsafe = failsafe
        self._cache = cache
        self._writer = writer
        self._engine = engine
        self._version = version
        self._started = time.monotonic()

    async def database_health(self) -> DatabaseHealth:
        latency_ms: float | None = None
        error: str | None = None
        try:
            async with asyncio.timeout(self.PING_TIMEOUT_S):
                latency_ms = await ping(self._engine)
        except (SQLAlchemyError, OSError) as failure:
            error = f"{type(failure).__name__}: {str(failure).splitlines()[0] if str(failure) else 'no answer'}"
        return DatabaseHealth(
            reachable=error is None,
            dialect=self._engine.dialect.name,
            latency_ms=latency_ms,
            error=error,
            pending_writes=self._writer.pending,
            written=self._writer.written,
            dropped=self._writer.dropped,
            last_write_error=self._writer.last_error,
        )

    async def database_error(self) -> str | None:
        return (await self.database_health()).error

    async def readiness(self) -> Readiness:
        default = self._registry.entry(self._registry.default_key)
        database = await self.database_health()
        reasons = []
        if not default.loaded:
            reasons.append(f"default model {default.key} is {default.status}" + (f": {default.error}" if default.error else ""))
        if not database.reachable:
            reasons.append(f"database does not answer: {database.error}")
        if reasons:
            raise NotReady("; ".join(reasons))
        return Readiness(True, default.key, database.latency_ms or 0.0)

    def models(self) -> list[ModelState]:
        return [
            ModelState(e.key, e.spec.source, e.status, e.key == self._registry.default_key, e.error, e.load_seconds)
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
            serving=default.key if default.loaded else VADER_KEY,
            fallback_reason=fallback_reason,
            models=self.models(),
            breakers={
                e.key: self._failsafe.breaker(e.key).state.value for e in self._registry.entries() if e.key != VADER_KEY
            },
            queue_depths={e.key: e.queue.depth for e in self._registry.entries() if e.queue is not None},
            cache=CacheStats(self._cache.size, self._cache.hits, self._cache.misses),
            database=await self.database_health(),
        )


@dataclass
class Services:
    """Everything the app wires together, built in the lifespan and reached through dependency injection."""

    settings: Settings
    engine: AsyncEngine
    registry: ModelRegistry
    writer: PredictionWriter
    predictions: PredictionService
    alerts: AlertService
    failsafe: Failsafe
    cache: ResultCache
    models: ModelService
    history: HistoryService
    analytics: AnalyticsService
    system: SystemService
    datasets: DatasetService  # data sets


class HistoryService:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def page(self, filters: HistoryFilters) -> HistoryPage:
        async with self._engine.connect() as connection:
            return await HistoryRepository(connection).page(filters)
