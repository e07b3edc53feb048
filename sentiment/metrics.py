"""Prometheus metrics, named like the log events they count."""

from prometheus_client import Counter

BREAKER_TRANSITIONS = Counter(
    "sentiment_breaker_transitions_total", "Circuit-breaker state changes, by model and new state", ["model", "state"]
)
FALLBACKS = Counter("sentiment_fallbacks_total", "Texts answered by VADER in place of the model asked for", ["model"])
