"""What every HTTP exchange gets: a request id bound to its log lines, one access-log event, security headers,
and the Prometheus scrape (HTTP metrics from Litestar's middleware plus the service's own state)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import structlog
from litestar import Response, get
from litestar.datastructures import MutableScopeHeaders
from litestar.di import NamedDependency
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.plugins.prometheus import PrometheusConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sentiment.services.system import SystemService

log = structlog.get_logger("sentiment.http")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

# No inline script or style anywhere: pages, htmx and /docs load theirs from /static.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}

PROMETHEUS = PrometheusConfig(
    app_name="sentiment",
    prefix="sentiment",
    group_path=True,
    exclude_unhandled_paths=True,
    exclude=["^/metrics$"],
)


class RequestContextMiddleware(ASGIMiddleware):
    """Binds a request id (the caller's `x-request-id` when it is sane, else a new one) to every log line of
    the request, echoes it in the response, adds the security headers, and logs one `http_request` event."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        supplied = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = supplied if _SAFE_REQUEST_ID.match(supplied) else uuid.uuid4().hex
        started = time.perf_counter()
        status: int | None = None
        failed = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableScopeHeaders.from_message(message)
                headers["x-request-id"] = request_id
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await next_app(scope, receive, send_with_headers)
            except BaseException:
                failed = True
                raise
            finally:
                # No answer and no error: the client left first (nginx's 499, "client closed request").
                status = status if status is not None else 500 if failed else 499
                log.info(
                    "http_request",
                    method=scope.get("method"),
                    route=scope.get("path_template", scope["path"]),
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                )


class ServiceCollector(Collector):
    """Figures owned by this app's objects, read at scrape time."""

    def __init__(self, system: SystemService) -> None:
        self._system = system

    def collect(self) -> Iterator[Metric]:
        gauges = self._system.gauges()
        pending = GaugeMetricFamily(
            "sentiment_pending_writes", "Answered predictions in the journal, not yet in the database"
        )
        pending.add_metric([], gauges.pending_writes)
        yield pending
        journal = GaugeMetricFamily(
            "sentiment_journal_bytes",
            "Bytes of the journal waiting for the database (SENTIMENT_JOURNAL_MB bounds)",
        )
        journal.add_metric([], gauges.journal_bytes)
        yield journal
        dropped = CounterMetricFamily(
            "sentiment_dropped_writes", "Answered predictions the database refused for their own content"
        )
        dropped.add_metric([], gauges.dropped_writes)
        yield dropped
        breaker = GaugeMetricFamily(
            "sentiment_breaker_state", "0 closed, 1 half-open, 2 open", labels=["model"]
        )
        for model, code in gauges.breaker_states.items():
            breaker.add_metric([model], code)
        yield breaker
        depth = GaugeMetricFamily(
            "sentiment_queue_depth", "Texts waiting in the model's queue", labels=["model"]
        )
        for model, queued in gauges.queue_depths.items():
            depth.add_metric([model], queued)
        yield depth
        hits = CounterMetricFamily("sentiment_cache_hits", "Texts answered from the result cache")
        hits.add_metric([], gauges.cache_hits)
        yield hits
        misses = CounterMetricFamily("sentiment_cache_misses", "Texts the result cache did not hold")
        misses.add_metric([], gauges.cache_misses)
        yield misses


@get("/metrics", summary="Prometheus metrics (text format)", tags=["system"], media_type="text/plain")
async def metrics(system: NamedDependency[SystemService]) -> Response[bytes]:
    own = CollectorRegistry()
    own.register(ServiceCollector(system))
    return Response(
        generate_latest(REGISTRY) + generate_latest(own),
        media_type="text/plain; version=0.0.4",  # Litestar adds the charset
    )
