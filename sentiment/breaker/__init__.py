"""Circuit breaker: pure state-machine logic with an injected clock."""

from sentiment.breaker.breaker import (
    BreakerSettings,
    BreakerSnapshot,
    BreakerState,
    CircuitBreaker,
    InvalidBreakerSetting,
    Permit,
    Transition,
)

__all__ = [
    "BreakerSettings",
    "BreakerSnapshot",
    "BreakerState",
    "CircuitBreaker",
    "InvalidBreakerSetting",
    "Permit",
    "Transition",
]
