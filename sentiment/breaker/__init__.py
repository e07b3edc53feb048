"""Circuit breaker: pure state-machine logic with an injected clock."""

from sentiment.breaker.breaker import BreakerSnapshot, BreakerState, CircuitBreaker, Permit, Transition

__all__ = ["BreakerSnapshot", "BreakerState", "CircuitBreaker", "Permit", "Transition"]
