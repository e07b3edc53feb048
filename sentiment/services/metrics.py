"""Prometheus metrics, named like the log events they count. HTTP metrics come from Litestar's middleware
(`sentiment_requests_total`, `sentiment_request_duration_seconds`, by route template)."""

from prometheus_client import Counter, Gauge, Histogram

from sentiment.inference.queue import CallOutcome

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

PREDICTIONS = Counter(
    "sentiment_predictions", "Answered predictions, by model used and label", ["model", "label"]
)
FALLBACKS = Counter(
    "sentiment_fallbacks", "Texts answered by VADER in place of the model asked for", ["model"]
)
BREAKER_TRANSITIONS = Counter(
    "sentiment_breaker_transitions",
    "Circuit-breaker state changes, by model and new state",
    ["model", "state"],
)
QUEUE_TIME = Histogram(
    "sentiment_queue_time_seconds",
    "Time a request waited in its model's queue",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
INFERENCE_TIME = Histogram(
    "sentiment_inference_time_seconds",
    "Duration of one model call (one batch)",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
BATCH_SIZE = Histogram(
    "sentiment_batch_size", "Texts per model call", ["model"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256)
)
MODEL_LOAD_TIME = Gauge("sentiment_model_load_seconds", "How long the model's last load took", ["model"])
# Labelled by the key's name and display prefix: never the key.
API_KEY_REQUESTS = Counter(
    "sentiment_api_key_requests", "Requests made with an API key", ["key_name", "key_prefix"]
)
API_KEY_TEXTS = Counter(
    "sentiment_api_key_texts", "Texts scored for requests made with an API key", ["key_name", "key_prefix"]
)
API_KEY_RATE_LIMITED = Counter(
    "sentiment_api_key_rate_limited",
    "Requests refused because their API key was over its own rate limit",
    ["key_name", "key_prefix"],
)


def observe_call(model: str, outcome: CallOutcome) -> None:
    if outcome.ok:
        INFERENCE_TIME.labels(model=model).observe(outcome.seconds)
        BATCH_SIZE.labels(model=model).observe(outcome.size)
