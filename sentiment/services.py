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
from sentiment.clock import WallClock, utc_now
from sentiment.domain import VADER_KEY, InvalidInput, NotReady, Prediction
from sentiment.failsafe import Failsafe
from sentiment.inference.registry import ModelEntry, ModelRegistry, TimedResult
from sentiment.metrics import FALLBACKS
from sentiment.settings import Settings
from sentiment.storage.database import ping
from sentiment.storage.writer import PredictionWriter

log = structlog.get_logger(__name__)

class PredictionBatch(msgspec.Struct, frozen=True):
    predictions: list[Prediction]
    model_requested: str
    queue_ms: float
    inference_ms: float
    total_ms: float


class PredictionService:
    """pick the model -> run it (or VADER when it cannot serve) -> build predictions -> hand them to the writer."""

    def __init__(
        self,
        registry: ModelRegistry,
        failsafe: Failsafe,
        writer: PredictionWriter,
        max_text_length: int,
        max_batch_size: int,
        clock: WallClock = utc_now,
    ) -> None:
        self._registry = registry
        self._failsafe = failsafe
        self._writer = writer
        self._max_text_length = max_text_length
        self._max_batch_size = max_batch_size
        self._clock = clock

    async def predict(self, texts: Sequence[str], model: str | None = None) -> PredictionBatch:
        self._validate(texts)
        started = time.perf_counter()
        entry = self._registry.select(model)
        result, used, fallback = await self._run(entry, texts)
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
                model_used=used,
                fallback_used=fallback,
                processing_time_ms=total_ms,
                timestamp=now,
            )
            for text, scored in zip(texts, result.scored, strict=True)
        ]
        self._writer.submit(predictions)
        return PredictionBatch(predictions, entry.key, result.queue_ms, result.inference_ms, total_ms)

    async def _run(self, entry: ModelEntry, texts: Sequence[str]) -> tuple[TimedResult, str, bool]:
        """Ask the model through its breaker; whenever it cannot answer in time, VADER does."""
        if entry.key == VADER_KEY:
            return await entry.run(texts), VADER_KEY, False
        breaker = self._failsafe.breaker(entry.key)
        if entry.backend is None:
            breaker.record_unavailable(f"model is {entry.status}")
            return await self._fallback(entry, texts)
        permit = breaker.acquire()
        if permit is None:
            return await self._fallback(entry, texts)
        timeout_s = self._failsafe.settings.call_timeout_s
        try:
            result = await asyncio.wait_for(entry.run(texts), timeout_s)
        except TimeoutError:
            breaker.record_failure(permit, f"no answer within {timeout_s:g} s")
        except asyncio.CancelledError:
            breaker.release(permit)
            raise
        except Exception as error:  # a model failure must never fail the request: VADER answers
            reason = f"{type(error).__name__}: {error}"
            log.warning("model_call_failed", model=entry.key, error=reason)
            breaker.record_failure(permit, reason)
        else:
            breaker.record_success(permit)
            return result, entry.key, False
        return await self._fallback(entry, texts)

    async def _fallback(self, entry: ModelEntry, texts: Sequence[str]) -> tuple[TimedResult, str, bool]:
        FALLBACKS.labels(model=entry.key).inc(len(texts))
        return await self._registry.vader.run(texts), VADER_KEY, True

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


async def load_model(registry: ModelRegistry, alerts: AlertService, failsafe: Failsafe, key: str) -> ModelEntry:
    """Load a model, then give it a fresh breaker and keep its load-failure alert in step with the outcome."""
    entry = await registry.load(key)
    alert_key = f"model_load_failed:{key}"
    if entry.error is not None:
        alerts.post_raise(alert_key, "model_load_failed", "critical", f"model {key} failed to load: {entry.error}")
    elif entry.backend is not None:
        # Failures counted while it was loading say nothing about the loaded model.
        failsafe.reset(key, reason="model loaded")
        alerts.post_resolve(alert_key)
    return entry


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
    database: DatabaseHealth


class SystemService:
    """What /ready, /status and /db/health report, gathered from the registry, the writer and the database."""

    PING_TIMEOUT_S = 2.0

    def __init__(self, registry: ModelRegistry, writer: PredictionWriter, engine: AsyncEngine, version: str) -> None:
        self._registry = registry
        self._writer = writer
        self._engine = engine
        self._version = version
        self._started = time.monotonic()

    async def database_health(self) -> DatabaseHealth:
        latency_ms: float | None = None
        error: str | None = None
        try:
            latency_ms = await asyncio.wait_for(ping(self._engine), self.PING_TIMEOUT_S)
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

    async def readiness(self) -> Readiness:
        default = self._registry.entry(self._registry.default_key)
        database = await self.database_health()
        reasons = []
        if default.backend is None:
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
        if default.backend is None:
            fallback_reason = f"default model {default.key} is {default.status}" + (
                f": {default.error}" if default.error else "; VADER answers until it is loaded"
            )
        return Status(
            version=self._version,
            uptime_s=round(time.monotonic() - self._started, 3),
            default_model=default.key,
            serving=default.key if default.backend is not None else VADER_KEY,
            fallback_reason=fallback_reason,
            models=self.models(),
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
    system: SystemService
