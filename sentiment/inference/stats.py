"""Per-model request figures kept in memory: counts, and latency percentiles over a bounded recent window."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

LATENCY_WINDOW = 10_000


class ModelFigures(msgspec.Struct):
    """Requests answered since start; latency percentiles over the last requests, per request and per text
    (a 256-text batch is slow as a request and quick per text)."""

    requests: int
    texts: int
    errors: int
    fallbacks: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    per_text_p50_ms: float | None = None
    per_text_p95_ms: float | None = None


class UsageFigures(msgspec.Struct):
    """A language model's requests as its server counted them: requests answered, refusals waited out (429),
    and tokens in and out when the server reports its usage."""

    requests: int
    rate_limited: int
    prompt_tokens: int
    completion_tokens: int


class TokenUsage:
    """UsageFigures counted from the threads that call the server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._figures = UsageFigures(0, 0, 0, 0)

    def add(self, usage: Mapping[str, Any] | None) -> None:
        with self._lock:
            self._figures.requests += 1
            if usage:
                self._figures.prompt_tokens += int(usage.get("prompt_tokens") or 0)
                self._figures.completion_tokens += int(usage.get("completion_tokens") or 0)

    def slowed(self) -> None:
        with self._lock:
            self._figures.rate_limited += 1

    def figures(self) -> UsageFigures:
        with self._lock:
            return msgspec.structs.replace(self._figures)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least the first value
    return ordered[int(rank) - 1]


class ModelStats:
    def __init__(self) -> None:
        self.requests = 0
        self.texts = 0
        self.errors = 0
        self.fallbacks = 0
        self._latencies_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._per_text_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)

    def record_request(self, texts: int, latency_ms: float, fallback_texts: int) -> None:
        self.requests += 1
        self.texts += texts
        self.fallbacks += fallback_texts
        self._latencies_ms.append(latency_ms)
        self._per_text_ms.append(latency_ms / max(texts, 1))

    def record_error(self) -> None:
        self.errors += 1

    def figures(self) -> ModelFigures:
        latencies, per_text = list(self._latencies_ms), list(self._per_text_ms)
        return ModelFigures(
            requests=self.requests,
            texts=self.texts,
            errors=self.errors,
            fallbacks=self.fallbacks,
            latency_p50_ms=percentile(latencies, 50) if latencies else None,
            latency_p95_ms=percentile(latencies, 95) if latencies else None,
            per_text_p50_ms=percentile(per_text, 50) if per_text else None,
            per_text_p95_ms=percentile(per_text, 95) if per_text else None,
        )


class ModelWindow(msgspec.Struct, frozen=True):
    """One model's share of the window (by the model asked for): so an alert can say which model it is."""

    texts: int
    fallback_texts: int
    latency_p95_ms: float | None

    @property
    def fallback_rate(self) -> float:
        return self.fallback_texts / self.texts if self.texts else 0.0


class WindowTotals(msgspec.Struct, frozen=True):
    requests: int
    texts: int
    fallback_texts: int
    latency_p95_ms: float | None
    by_model: dict[str, ModelWindow] = {}

    @property
    def fallback_rate(self) -> float:
        return self.fallback_texts / self.texts if self.texts else 0.0


class _Slice:
    __slots__ = ("fallback_texts", "latencies_ms", "requests", "start", "texts")

    def __init__(self, start: float) -> None:
        self.start = start
        self.requests = 0
        # Per model asked for: texts, fallback texts.
        self.texts: dict[str, int] = {}
        self.fallback_texts: dict[str, int] = {}
        self.latencies_ms: list[tuple[str, float]] = []


class RecentWindow:
    """Requests of the last `window_s` seconds, kept in fixed slices so old ones fall out as time moves.
    Time comes from the injected clock (seconds)."""

    MAX_LATENCIES_PER_SLICE = 2_000

    def __init__(self, window_s: float, clock: Callable[[], float], slices: int = 30) -> None:
        self._window_s = window_s
        self._slice_s = window_s / slices
        self._clock = clock
        self._slices: deque[_Slice] = deque()

    def record(self, model: str, texts: int, fallback_texts: int, latency_ms: float) -> None:
        """One answered request for `model`; its latency is kept per text, so that a large batch, slow as a
        whole but quick for each of its texts, does not look like a slow model."""
        now = self._clock()
        start = now - now % self._slice_s
        if not self._slices or self._slices[-1].start != start:
            self._slices.append(_Slice(start))
        current = self._slices[-1]
        current.requests += 1
        current.texts[model] = current.texts.get(model, 0) + texts
        current.fallback_texts[model] = current.fallback_texts.get(model, 0) + fallback_texts
        if len(current.latencies_ms) < self.MAX_LATENCIES_PER_SLICE:
            current.latencies_ms.append((model, latency_ms / max(texts, 1)))

    def totals(self) -> WindowTotals:
        cutoff = self._clock() - self._window_s
        while self._slices and self._slices[0].start + self._slice_s <= cutoff:
            self._slices.popleft()
        texts: dict[str, int] = {}
        fallback: dict[str, int] = {}
        latencies: dict[str, list[float]] = {}
        for piece in self._slices:
            for model, count in piece.texts.items():
                texts[model] = texts.get(model, 0) + count
                fallback[model] = fallback.get(model, 0) + piece.fallback_texts[model]
            for model, latency in piece.latencies_ms:
                latencies.setdefault(model, []).append(latency)
        every = [latency for values in latencies.values() for latency in values]
        return WindowTotals(
            requests=sum(s.requests for s in self._slices),
            texts=sum(texts.values()),
            fallback_texts=sum(fallback.values()),
            latency_p95_ms=percentile(every, 95) if every else None,
            by_model={
                model: ModelWindow(
                    count,
                    fallback[model],
                    percentile(latencies[model], 95) if latencies.get(model) else None,
                )
                for model, count in sorted(texts.items())
            },
        )
