"""What the overview page shows: the analytics of a range
beside the live state of models, breakers and alerts."""

from __future__ import annotations

import msgspec

from sentiment.core.domain import VADER_KEY, Alert
from sentiment.inference.registry import ModelRegistry
from sentiment.services.alerts import AlertService
from sentiment.services.analytics import Analytics, AnalyticsFilters, AnalyticsService
from sentiment.services.failsafe import Failsafe


class ModelLatency(msgspec.Struct):
    model: str
    requests: int
    p50_ms: float | None
    p95_ms: float | None


class BreakerLine(msgspec.Struct):
    model: str
    state: str


class Overview(msgspec.Struct):
    summary: Analytics
    latency: list[ModelLatency]
    breakers: list[BreakerLine]
    active_alerts: list[Alert]


class OverviewService:
    ACTIVE_ALERTS_SHOWN = 20

    def __init__(
        self, analytics: AnalyticsService, registry: ModelRegistry, failsafe: Failsafe, alerts: AlertService
    ) -> None:
        self._analytics = analytics
        self._registry = registry
        self._failsafe = failsafe
        self._alerts = alerts

    @property
    def model_keys(self) -> list[str]:
        return [entry.key for entry in self._registry.entries()]

    async def snapshot(self, filters: AnalyticsFilters) -> Overview:
        summary = await self._analytics.summary(filters)
        latency = [
            ModelLatency(entry.key, figures.requests, figures.latency_p50_ms, figures.latency_p95_ms)
            for entry in self._registry.entries()
            if (figures := entry.stats.figures()).requests
        ]
        breakers = [
            BreakerLine(entry.key, self._failsafe.breaker(entry.key).state.value)
            for entry in self._registry.serving()
            if entry.key != VADER_KEY
        ]
        alerts = await self._alerts.list("active", limit=self.ACTIVE_ALERTS_SHOWN)
        return Overview(summary, latency, breakers, alerts)
