"""Alert rules over what this process sees: a high fallback rate, slow answers, and storage (a database that
does not answer, writes that fail though it answers, a schema behind the code, a growing backlog, a journal
that cannot write). Each rule
raises its keyed alert when its condition holds and resolves it when the condition clears."""

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


# Share of the writer's room in use past which the backlog is worth an operator's look (at 100% predictions
# are refused with 503).
BACKLOG_WARNING_SHARE = 0.5


class StorageState(msgspec.Struct, frozen=True):
    """What the storage rules read: why the database does not answer, why writes fail although it answers (a
    full disk, a value it refuses), what is wrong with its schema, how full the room for waiting predictions
    is, and why the local journal cannot write (then no prediction can be answered)."""

    unreachable: str | None = None
    write_error: str | None = None
    schema: str | None = None
    pending: int = 0
    backlog_share: float = 0.0
    journal_error: str | None = None


def evaluate(totals: WindowTotals, storage: StorageState, rules: AlertRules) -> dict[str, Condition | None]:
    """For every rule's alert key, the condition that holds now, or None when it is clear."""
    window = f"the last {rules.window_s:g} s"
    enough = totals.requests >= rules.min_requests
    fallback = None
    if enough and totals.fallback_rate > rules.fallback_rate:
        models = sorted(
            ((m, w) for m, w in totals.by_model.items() if w.fallback_texts),
            key=lambda item: -item[1].fallback_texts,
        )
        named = "; ".join(
            f"{m}: {w.fallback_rate:.0%} ({w.fallback_texts:,} of {w.texts:,} texts)" for m, w in models
        )
        fallback = Condition(
            "fallback_rate_high",
            "warning",
            f"{totals.fallback_rate:.0%} of texts were answered by VADER in {window} "
            f"(threshold {rules.fallback_rate:.0%})" + (f"; asked for {named}" if named else ""),
        )
    slow = None
    if enough and totals.latency_p95_ms is not None and totals.latency_p95_ms > rules.latency_p95_ms:
        models = sorted(
            (
                (m, w)
                for m, w in totals.by_model.items()
                if w.latency_p95_ms is not None and w.latency_p95_ms > rules.latency_p95_ms
            ),
            key=lambda item: -(item[1].latency_p95_ms or 0.0),
        )
        named = "; ".join(f"{m}: p95 {w.latency_p95_ms:.0f} ms" for m, w in models)
        slow = Condition(
            "slow_inference",
            "warning",
            f"p95 latency per text {totals.latency_p95_ms:.0f} ms in {window} "
            f"(threshold {rules.latency_p95_ms:.0f} ms)" + (f"; slowest {named}" if named else ""),
        )
    return {
        "fallback_rate_high": fallback,
        "slow_inference": slow,
        **storage_conditions(storage),
    }


def storage_conditions(storage: StorageState) -> dict[str, Condition | None]:
    waiting = f"{storage.pending:,} predictions wait in the journal"
    database = schema = failing = backlog = journal = None
    if storage.journal_error is not None:
        journal = Condition(
            "journal_failing",
            "critical",
            f"the prediction journal cannot write ({storage.journal_error}): predictions are refused with "
            "503 until it can (SENTIMENT_JOURNAL_DIR)",
        )
    if storage.unreachable is not None:
        database = Condition(
            "database_down", "critical", f"the database does not answer ({storage.unreachable}); {waiting}"
        )
    elif storage.schema is not None:
        schema = Condition("schema_behind", "critical", f"the database's {storage.schema}; {waiting}")
    elif storage.write_error is not None:
        failing = Condition(
            "storage_failing",
            "critical",
            f"the database answers but writes fail ({storage.write_error}); {waiting}",
        )
    if storage.backlog_share >= BACKLOG_WARNING_SHARE:
        backlog = Condition(
            "storage_backlog",
            "warning",
            f"{waiting}: {storage.backlog_share:.0%} of the room for them is used; at 100% predictions are "
            "refused with 503 (SENTIMENT_MAX_PENDING_WRITES, SENTIMENT_JOURNAL_MB)",
        )
    return {
        "database_down": database,
        "schema_behind": schema,
        "storage_failing": failing,
        "storage_backlog": backlog,
        "journal_failing": journal,
    }


class AlertMonitor:
    def __init__(self, rules: AlertRules, window: RecentWindow, alerts: AlertService) -> None:
        self.rules = rules
        self._window = window
        self._alerts = alerts
        self._raised: set[str] = set()

    def check(self, storage: StorageState) -> None:
        for key, condition in evaluate(self._window.totals(), storage, self.rules).items():
            if condition is not None and key not in self._raised:
                self._raised.add(key)
                self._alerts.post_raise(key, condition.kind, condition.severity, condition.message)
            elif condition is None and key in self._raised:
                self._raised.discard(key)
                self._alerts.post_resolve(key)

    async def run(self, storage: Callable[[], Awaitable[StorageState]]) -> None:
        while True:
            self.check(await storage())
            await asyncio.sleep(self.rules.check_interval_s)
