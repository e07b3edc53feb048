"""Predicting: pick the model -> cache -> its breaker -> its
batching queue (or VADER) -> predictions -> the writer."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

import msgspec

from sentiment.breaker import BreakerState
from sentiment.core.clock import WallClock, utc_now
from sentiment.core.domain import VADER_KEY, InvalidInput, ModelNotLoaded, Prediction, Scored, is_blank
from sentiment.core.ids import new_id
from sentiment.inference.cache import ResultCache
from sentiment.inference.queue import ModelCallFailed, QueueTimeout
from sentiment.inference.registry import ModelEntry, ModelRegistry
from sentiment.inference.stats import RecentWindow
from sentiment.services.failsafe import Failsafe
from sentiment.services.metrics import FALLBACKS, PREDICTIONS, QUEUE_TIME
from sentiment.services.models import OfferedModels, offered_models
from sentiment.storage.writer import PredictionWriter


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
    """pick the model -> cache -> its breaker -> its batching
    queue (or VADER) -> predictions -> the writer."""

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

    @property
    def max_text_length(self) -> int:
        return self._max_text_length

    def offered(self) -> OfferedModels:
        """The models a form offers, each with why it would not answer itself now, if it would not."""
        offered = offered_models(self._registry)
        notes = {key: note for key in offered.keys if (note := self._standing_in(key)) is not None}
        return msgspec.structs.replace(offered, notes=notes)

    def _standing_in(self, key: str) -> str | None:
        if key == VADER_KEY:
            return None
        if (status := self._registry.entry(key).status) != "loaded":
            return f"{status}, not loaded yet"
        state = self._failsafe.breaker(key).state
        if state is BreakerState.OPEN:
            return "its breaker is open: VADER answers until a trial call succeeds"
        if state is BreakerState.HALF_OPEN:
            return "its breaker is half-open: one trial call goes to it, VADER answers the rest"
        return None

    async def predict(self, texts: Sequence[str], model: str | None = None) -> PredictionBatch:
        """Answer and store: the rows' room is taken first and they are durable in the journal before they are
        returned, so that a prediction answered 200 is never lost (StorageBehind, a 503, instead)."""
        self._validate(texts)
        started = time.perf_counter()
        entry = self._registry.select(model)
        reservation = self._writer.reserve(texts)
        try:
            answers = await self._answer(entry, texts)
        except BaseException:
            self._writer.release(reservation)
            raise
        total_ms = (time.perf_counter() - started) * 1000
        now = self._clock()
        predictions = [
            Prediction(
                id=new_id(),
                text=text,
                sentiment=scored.label,
                confidence=scored.confidence,
                scores=scored.scores,
                model_requested=entry.key,
                model_used=answer.model_used,
                fallback_used=answer.fallback_used,
                processing_time_ms=total_ms,
                timestamp=now,
                truncated=scored.truncated,
                scores_source=scored.scores_source,
            )
            for text, (answer, scored) in zip(texts, answers, strict=True)
        ]
        await self._writer.store(predictions, reservation)
        fallback_texts = sum(prediction.fallback_used for prediction in predictions)
        entry.stats.record_request(len(predictions), total_ms, fallback_texts)
        self._recent.record(entry.key, len(predictions), fallback_texts, total_ms)
        # Counted per model and label, then added: one metric update each, not one per text.
        for (model_used, label), count in Counter((p.model_used, p.sentiment) for p in predictions).items():
            PREDICTIONS.labels(model=model_used, label=label).inc(count)
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
            timeout_s = entry.call_timeout_s or self._failsafe.settings.call_timeout_s
            result = await entry.run(texts, permit.trial, timeout_s)
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
            if is_blank(text):
                raise InvalidInput(
                    f"{where} is empty or whitespace only (zero-width characters count as whitespace)"
                )
            if len(text) > self._max_text_length:
                raise InvalidInput(f"{where} is {len(text)} characters; the limit is {self._max_text_length}")
