"""The failsafe: one circuit breaker per model, and what
each breaker transition sets off (log, counter, alert)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime

import msgspec
import structlog

from sentiment.breaker import BreakerSettings, BreakerState, CircuitBreaker, Permit, Transition
from sentiment.breaker.breaker import Clock
from sentiment.core.domain import VADER_KEY, model_alert_key
from sentiment.inference.faults import Fault, FaultMode
from sentiment.inference.queue import CallOutcome
from sentiment.inference.registry import ModelRegistry
from sentiment.services.alerts import AlertService
from sentiment.services.metrics import BREAKER_TRANSITIONS

log = structlog.get_logger(__name__)


class BreakerReport(msgspec.Struct):
    model: str
    state: BreakerState
    failures_in_window: int
    opened_at: datetime | None
    next_trial_at: datetime | None
    times_opened: int
    trial_in_flight: bool
    fault: FaultMode | None


class FailsafeReport(msgspec.Struct):
    settings: BreakerSettings
    breakers: list[BreakerReport]


def _wall(seconds: float | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None


class Failsafe:
    """Breakers are made on first use, one per model key, all with the same settings and clock."""

    def __init__(self, settings: BreakerSettings, alerts: AlertService, clock: Clock = time.time) -> None:
        self.settings = settings
        self._alerts = alerts
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}

    def breaker(self, model: str) -> CircuitBreaker:
        if model not in self._breakers:
            self._breakers[model] = CircuitBreaker(model, self.settings, self._clock, self._on_transition)
        return self._breakers[model]

    def record(self, model: str, outcome: CallOutcome) -> None:
        """The verdict of one model call (one batch), as the model's batching queue reports it."""
        breaker, permit = self.breaker(model), Permit(trial=outcome.trial)
        if outcome.ok:
            breaker.record_success(permit)
        else:
            breaker.record_failure(permit, outcome.reason or "model call failed")

    def reset(self, model: str | None = None, reason: str = "reset by hand") -> None:
        for breaker in [self.breaker(model)] if model is not None else list(self._breakers.values()):
            breaker.reset(reason)

    def report(self, models: list[str], faults: Mapping[str, FaultMode]) -> FailsafeReport:
        reports = []
        for model in models:
            snapshot = self.breaker(model).snapshot()
            reports.append(
                BreakerReport(
                    model=model,
                    state=snapshot.state,
                    failures_in_window=snapshot.failures_in_window,
                    opened_at=_wall(snapshot.opened_at),
                    next_trial_at=_wall(snapshot.next_trial_at),
                    times_opened=snapshot.times_opened,
                    trial_in_flight=snapshot.trial_in_flight,
                    fault=faults.get(model),
                )
            )
        return FailsafeReport(self.settings, reports)

    def _on_transition(self, transition: Transition) -> None:
        log.warning(
            "breaker_transition",
            model=transition.name,
            previous=transition.previous.value,
            state=transition.current.value,
            reason=transition.reason,
        )
        BREAKER_TRANSITIONS.labels(model=transition.name, state=transition.current.value).inc()
        key = model_alert_key("breaker_open", transition.name)
        if transition.current is BreakerState.OPEN:
            message = (
                f"circuit breaker for {transition.name} opened; "
                f"VADER answers its requests ({transition.reason})"
            )
            self._alerts.post_raise(key, "breaker_open", "critical", message)
        elif transition.current is BreakerState.CLOSED:
            self._alerts.post_resolve(key)


class FailsafeService:
    """What operators do with the breakers: read them, close them by hand, make a model fail on purpose."""

    def __init__(self, failsafe: Failsafe, registry: ModelRegistry) -> None:
        self._failsafe = failsafe
        self._registry = registry

    def report(self) -> FailsafeReport:
        models = [key for key in self._registry.keys if key != VADER_KEY]
        faults = {key: fault.mode for key in models if (fault := self._registry.entry(key).fault) is not None}
        return self._failsafe.report(models, faults)

    def reset(self, model: str | None) -> FailsafeReport:
        if model is not None:
            self._registry.entry(model)  # an unknown key is refused before anything changes
        self._failsafe.reset(model)
        return self.report()

    def inject_fault(self, model: str, mode: FaultMode | None, hang_seconds: float) -> FailsafeReport:
        """`mode` None clears the model's fault."""
        self._registry.set_fault(model, Fault(mode, hang_seconds) if mode is not None else None)
        return self.report()
