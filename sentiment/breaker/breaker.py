"""A per-model circuit breaker: CLOSED -> OPEN after N failures inside a window, OPEN -> HALF-OPEN after a
timeout, and exactly one trial call in HALF-OPEN decides between CLOSED and OPEN again.

No I/O and no clock of its own: time comes from the injected `clock` (seconds), so tests move time exactly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

Clock = Callable[[], float]


class InvalidBreakerSetting(ValueError):
    """A breaker setting out of its range: `field` names it, `rule` says what it must be."""

    def __init__(self, field: str, value: object, rule: str) -> None:
        super().__init__(f"{field}={value!r} {rule}")
        self.field = field
        self.value = value
        self.rule = rule


# A stdlib dataclass, not a msgspec Struct: the breaker depends on nothing outside the standard library.
# msgspec still encodes it in the failsafe report.
@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """Open after `max_failures` failures within `window_s`; stay open `open_s`; a call that makes no progress
    for `call_timeout_s` (no forward pass finished) counts as a failure; callers wait that long at most."""

    max_failures: int = 3
    window_s: float = 300.0
    open_s: float = 60.0
    call_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.max_failures < 1:
            raise InvalidBreakerSetting("max_failures", self.max_failures, "is out of range (1..)")
        for name in ("window_s", "open_s", "call_timeout_s"):
            value = getattr(self, name)
            if not value > 0:  # NaN too
                raise InvalidBreakerSetting(name, value, "must be greater than 0")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to call the model once; `trial` marks the single probe call of HALF-OPEN."""

    trial: bool


@dataclass(frozen=True, slots=True)
class Transition:
    name: str
    previous: BreakerState
    current: BreakerState
    at: float
    reason: str


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    name: str
    state: BreakerState
    failures_in_window: int
    opened_at: float | None
    next_trial_at: float | None
    times_opened: int
    trial_in_flight: bool


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        settings: BreakerSettings,
        clock: Clock,
        on_transition: Callable[[Transition], None] = lambda _: None,
    ) -> None:
        self.name = name
        self.settings = settings
        self._clock = clock
        self._on_transition = on_transition
        self._state = BreakerState.CLOSED
        self._failures: deque[float] = deque()
        self._opened_at: float | None = None
        self._trial_in_flight = False
        self.times_opened = 0

    @property
    def state(self) -> BreakerState:
        self._advance()
        return self._state

    def acquire(self) -> Permit | None:
        """A permit to call the model, or None when the caller must use the fallback."""
        self._advance()
        if self._state is BreakerState.CLOSED:
            return Permit(trial=False)
        if self._state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return Permit(trial=True)
        return None

    def record_success(self, permit: Permit) -> None:
        if permit.trial:
            self._trial_in_flight = False
            self._failures.clear()
            self._move(BreakerState.CLOSED, "trial call succeeded")

    def record_failure(self, permit: Permit, reason: str) -> None:
        now = self._clock()
        if permit.trial:
            self._trial_in_flight = False
            self._open(now, f"trial call failed: {reason}")
            return
        if self._state is not BreakerState.CLOSED:
            return  # a call let through before the breaker opened; the opening already counted it
        self._failures.append(now)
        self._forget_failures_before(now - self.settings.window_s)
        if len(self._failures) >= self.settings.max_failures:
            self._open(
                now, f"{len(self._failures)} failures within {self.settings.window_s:g} s; last: {reason}"
            )

    def release(self, permit: Permit) -> None:
        """The call ended with no verdict (the caller went away): let the next call be the trial."""
        if permit.trial:
            self._trial_in_flight = False

    def record_unavailable(self, reason: str) -> None:
        """The model could not even be called (not loaded): a failure when a call would have been allowed."""
        permit = self.acquire()
        if permit is not None:
            self.record_failure(permit, reason)

    def reset(self, reason: str = "reset by hand") -> None:
        self._failures.clear()
        self._trial_in_flight = False
        self._move(BreakerState.CLOSED, reason)

    def snapshot(self) -> BreakerSnapshot:
        self._advance()
        self._forget_failures_before(self._clock() - self.settings.window_s)
        return BreakerSnapshot(
            name=self.name,
            state=self._state,
            failures_in_window=len(self._failures),
            opened_at=self._opened_at if self._state is not BreakerState.CLOSED else None,
            next_trial_at=(
                self._opened_at + self.settings.open_s
                if self._state is BreakerState.OPEN and self._opened_at is not None
                else None
            ),
            times_opened=self.times_opened,
            trial_in_flight=self._trial_in_flight,
        )

    def _advance(self) -> None:
        if (
            self._state is BreakerState.OPEN
            and self._opened_at is not None
            and self._clock() >= self._opened_at + self.settings.open_s
        ):
            self._move(BreakerState.HALF_OPEN, f"open for {self.settings.open_s:g} s; next call is a trial")

    def _open(self, now: float, reason: str) -> None:
        self._opened_at = now
        self._failures.clear()
        self.times_opened += 1
        self._move(BreakerState.OPEN, reason)

    def _forget_failures_before(self, cutoff: float) -> None:
        while self._failures and self._failures[0] <= cutoff:
            self._failures.popleft()

    def _move(self, state: BreakerState, reason: str) -> None:
        previous = self._state
        self._state = state
        if state is BreakerState.CLOSED:
            self._opened_at = None
        if previous is not state:
            self._on_transition(Transition(self.name, previous, state, self._clock(), reason))
