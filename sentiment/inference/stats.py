"""Per-model request figures kept in memory: counts, and latency percentiles over a bounded recent window."""

from __future__ import annotations

from collections import deque

import msgspec

LATENCY_WINDOW = 10_000


class ModelFigures(msgspec.Struct):
    requests: int
    texts: int
    errors: int
    fallbacks: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None


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

    def record_request(self, texts: int, latency_ms: float, fallback_texts: int) -> None:
        self.requests += 1
        self.texts += texts
        self.fallbacks += fallback_texts
        self._latencies_ms.append(latency_ms)

    def record_error(self) -> None:
        self.errors += 1

    def figures(self) -> ModelFigures:
        latencies = list(self._latencies_ms)
        return ModelFigures(
            requests=self.requests,
            texts=self.texts,
            errors=self.errors,
            fallbacks=self.fallbacks,
            latency_p50_ms=percentile(latencies, 50) if latencies else None,
            latency_p95_ms=percentile(latencies, 95) if latencies else None,
        )
