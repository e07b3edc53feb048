"""Alert rules over what this process sees: a high fallback rate, slow answers, an unreachable database.
Each rule raises its keyed alert when its condition holds and resolves it when the condition clears."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import msgspec
import structlog

from sentiment.core.domain import AlertSeverity
from sentiment.inference.stats import RecentWindow, WindowTotals
from sentiment.services.alerts import AlertService
from sentiment.services.settings import AlertRules

log = structlog.get_logger(__name__)


class Condition(msgspec.Struct, frozen=True):
    kind: str
    severity: AlertSeverity
    message: str


def evaluate(
    totals: WindowTotals, database_error: str | None, rules: AlertRules
) -> dict[str, Condition | None]:
    """For every rule's alert key, the condition that holds now, or None when it is clear."""
    window = f"the last {rules.window_s:g} s"
    enough = totals.requests >= rules.min_requests
    fallback = None
    if enough and totals.fallback_rate > rules.fallback_rate:
        fallback = Condition(
            "fallback_rate_high",
            "warning",
            f"{totals.fallback_rate:.0%} of texts were answered by VADER in {window} "
            f"(threshold {rules.fallback_rate:.0%})",
        )
    slow = None
    if enough and totals.latency_p95_ms is not None and totals.latency_p95_ms > rules.latency_p95_ms:
        slow = Condition(
            "slow_inference",
            "warning",
            f"p95 latency {totals.latency_p95_ms:.0f} ms in {window} "
            f"(threshold {rules.latency_p95_ms:.0f} ms)",
        )
    database = None
    if database_error is not None:
        database = Condition(
            "database_down",
            "critical",
            f"the database does not answer ({database_error}); predictions wait in memory",
        )
    return {"fallback_rate_high": fallback, "slow_inference": slow, "database_down": database}


class AlertMonitor:
    def __init__(self, rules: AlertRules, window: RecentWindow, alerts: AlertService) -> None:
        self.rules = rules
        self._window = window
        self._alerts = alerts
        self._raised: set[str] = set()

    def check(self, database_error: str | None) -> None:
        for key, condition in evaluate(self._window.totals(), database_error, self.rules).items():
            if condition is not None and key not in self._raised:
                self._raised.add(key)
                self._alerts.post_raise(key, condition.kind, condition.severity, condition.message)
            elif condition is None and key in self._raised:
                self._raised.discard(key)
                self._alerts.post_resolve(key)

    async def run(self, database_error: Callable[[], Awaitable[str | None]]) -> None:
        """`database_error` answers None when the database answers, else why not."""
        while True:
            self.check(await database_error())
            await asyncio.sleep(self.rules.check_interval_s)
