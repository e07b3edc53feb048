"""What every HTTP exchange gets: a request id bound to its log lines, one access-log event, security headers,
HTTP metrics; and the Prometheus scrape (those metrics, the models' and the service's own state)."""

from __future__ import annotations

import itertools
import os
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from functools import cache
from typing import NamedTuple

import structlog
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sentiment.services.system import SystemService
from sentiment.web.errors import status_of

log = structlog.get_logger("sentiment.http")

REQUEST_ID = b"x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class _RequestIds:
    """New request ids: a random half drawn per process (again in a forked child), then a count; unique
    without a system call per request."""

    def __init__(self) -> None:
        self._draw()
        os.register_at_fork(after_in_child=self._draw)

    def _draw(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._count = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._count):016x}"


_REQUEST_IDS = _RequestIds()

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
_ENCODED_SECURITY_HEADERS = [(name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]

APP_NAME = "sentiment"
_HTTP_LABELS = ["method", "path", "status_code", "app_name"]
REQUESTS = Counter("sentiment_requests_total", "Total requests", _HTTP_LABELS)
ERRORS = Counter("sentiment_requests_error_total", "Total errors in requests", _HTTP_LABELS)
DURATION = Histogram("sentiment_request_duration_seconds", "Request duration, in seconds", _HTTP_LABELS)
IN_PROGRESS = Gauge(
    "sentiment_requests_in_progress",
    "Total requests currently in progress",
    _HTTP_LABELS,
    multiprocess_mode="livesum",
)
UNMEASURED_PATHS = frozenset({"/metrics"})


class _RouteMetrics(NamedTuple):
    requests: Counter
    errors: Counter | None
    duration: Histogram


@cache
def _in_progress(method: str, route: str) -> Gauge:
    return IN_PROGRESS.labels(method, route, "200", APP_NAME)


@cache
def _route_metrics(method: str, route: str, status: int) -> _RouteMetrics:
    """One route's metric children, looked up once: `labels()` on every request costs more than the count."""
    values = (method, route, str(status), APP_NAME)
    errors = ERRORS.labels(*values) if status >= 500 else None
    return _RouteMetrics(REQUESTS.labels(*values), errors, DURATION.labels(*values))


class RequestContextMiddleware:
    """For every routed HTTP exchange: a request id (the caller's `x-request-id` when it is sane, else a new
    one) bound to its log lines and echoed in the response, the security headers, one `http_request` event,
    and the HTTP metrics by route template (requests, errors, durations, in progress). One plain ASGI layer
    with one send wrapper: this runs on every request, so it costs a few microseconds, not a Litestar
    middleware stack of its own."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request_id = _request_id(scope["headers"])
        method = str(scope.get("method", "GET"))
        template: str | None = scope.get("path_template")  # routed requests only: a bounded set of labels
        route = template or scope["path"]
        measured = template is not None and template not in UNMEASURED_PATHS
        started = time.perf_counter()
        status: int | None = None
        failed_with: int | None = None  # the status an error escaping this layer is answered with, outside it

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [pair for pair in message.get("headers") or () if pair[0].lower() != REQUEST_ID]
                present = {name.lower() for name, _ in headers}
                headers.append((REQUEST_ID, request_id.encode()))
                headers.extend(pair for pair in _ENCODED_SECURITY_HEADERS if pair[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        in_progress = _in_progress(method, route) if measured else None
        if in_progress is not None:
            in_progress.inc()
        try:
            await self._app(scope, receive, send_with_headers)
        except BaseException as error:
            failed_with = status_of(error)  # a rate limit's 429 is raised by a layer inside this one
            raise
        finally:
            seconds = time.perf_counter() - started
            # No answer and no error: the client left first (nginx's 499, "client closed request").
            status = status if status is not None else failed_with if failed_with is not None else 499
            if in_progress is not None:
                in_progress.dec()
                metrics = _route_metrics(method, route, status)
                metrics.requests.inc()
                metrics.duration.observe(seconds)
                if metrics.errors is not None:
                    metrics.errors.inc()
            duration_ms = round(seconds * 1000, 3)
            log.info("http_request", method=method, route=route, status=status, duration_ms=duration_ms)
            structlog.contextvars.reset_contextvars(**tokens)


def _request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == REQUEST_ID:
            supplied = value.decode("latin-1")
            if _SAFE_REQUEST_ID.match(supplied):
                return supplied
            break
    return _REQUEST_IDS.next()


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
