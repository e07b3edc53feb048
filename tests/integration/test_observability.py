"""Metrics, request ids and security headers on the in-process app."""

from collections.abc import Callable

import pytest
import structlog
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from sentiment.app import create_app
from sentiment.inference.backend import Backend
from sentiment.inference.catalogue import ModelSpec
from sentiment.services.system import SystemService
from tests.conftest import make_settings, wait_until_settled


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scrape: dict, name: str, **labels: str) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_show_inference_histograms_and_http_routes_after_predictions(
    sqlite_url: str, loader: Callable[[ModelSpec], Backend]
) -> None:
    app = create_app(make_settings(sqlite_url, default_model="minilm-sst2", cache_size=0), loader=loader)
    async with AsyncTestClient(app=app) as client:
        await wait_until_settled(app)
        before = samples((await client.get("/metrics")).text)
        for text in ("a great film", "a dull film", "fine"):
            await client.post("/predict", json={"text": text})
        await client.post("/predict/batch", json={"texts": ["good", "bad", "ok", "meh"]})
        await client.post("/alerts/7/acknowledge")
        response = await client.get("/metrics")
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    after = samples(response.text)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    model = {"model": "minilm-sst2"}
    assert grew("sentiment_queue_time_seconds_count", **model) == 4
    assert grew("sentiment_batch_size_sum", **model) == 7
    assert grew("sentiment_inference_time_seconds_count", **model) >= 1
    assert grew("sentiment_inference_time_seconds_sum", **model) > 0
    assert grew("sentiment_predictions_total", model="minilm-sst2", label="positive") >= 2
    assert value(after, "sentiment_breaker_state", **model) == 0
    assert value(after, "sentiment_pending_writes") >= 0
    # HTTP metrics are grouped by route template, never by raw path.
    assert (
        grew(
            "sentiment_requests_total",
            app_name="sentiment",
            method="POST",
            path="/predict",
            status_code="200",
        )
        == 3
    )
    routes = {dict(labels).get("path") for name, labels in after if name == "sentiment_requests_total"}
    assert "/alerts/{alert_id}/acknowledge" in routes
    assert "/alerts/7/acknowledge" not in routes


async def test_every_response_carries_a_request_id_and_the_security_headers(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url))
    async with AsyncTestClient(app=app) as client:
        mine = await client.get("/health", headers={"x-request-id": "trace-42"})
        fresh = await client.post("/predict", json={"text": "hello"})
        next_one = await client.get("/health")
        refused = await client.post("/predict", json={"text": ""})
        bogus = await client.get("/health", headers={"x-request-id": "<script>"})
    assert mine.headers["x-request-id"] == "trace-42"
    assert len(fresh.headers["x-request-id"]) == 32
    assert next_one.headers["x-request-id"] != fresh.headers["x-request-id"]
    assert all(len(r.headers.get_list("x-request-id")) == 1 for r in (mine, fresh, refused))
    assert bogus.headers["x-request-id"] != "<script>"
    for response in (mine, fresh, refused):
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


async def test_openapi_document_gives_every_operation_a_summary_and_its_errors(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url))
    async with AsyncTestClient(app=app) as client:
        spec = (await client.get("/schema/openapi.json")).json()
        cdn_ui = await client.get("/schema/swagger")
    assert cdn_ui.status_code == 404  # Litestar's CDN-backed UIs are off; /docs serves local files
    operations = [
        (path, op) for path, item in spec["paths"].items() for op in item.values() if "responses" in op
    ]
    assert all(op.get("summary") for _, op in operations)
    predict = spec["paths"]["/predict"]["post"]
    assert {"400", "404", "409", "503"} <= set(predict["responses"])
    acknowledge = next(op for path, op in operations if path.endswith("/acknowledge"))
    assert {"401", "403", "404"} <= set(acknowledge["responses"])


async def test_an_unhandled_error_is_logged_once_with_its_traceback_and_request_id(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: SystemService) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(SystemService, "status", broken)
    app = create_app(make_settings(sqlite_url))
    async with AsyncTestClient(app=app) as client:
        before = samples((await client.get("/metrics")).text)
        with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logged:
            response = await client.get("/status", headers={"x-request-id": "trace-me-1"})
        after = samples((await client.get("/metrics")).text)
    assert response.status_code == 500
    failed = {"app_name": "sentiment", "method": "GET", "path": "/status", "status_code": "500"}
    for name in ("sentiment_requests_error_total", "sentiment_requests_total"):
        assert value(after, name, **failed) - value(before, name, **failed) == 1
    idle = {"app_name": "sentiment", "method": "GET", "path": "/status", "status_code": "200"}
    assert value(after, "sentiment_requests_in_progress", **idle) == 0
    assert response.json() == {"status_code": 500, "detail": "Internal Server Error"}
    errors = [line for line in logged if line["event"] == "unhandled_error"]
    assert len(errors) == 1
    assert (errors[0]["path"], errors[0]["request_id"]) == ("/status", "trace-me-1")
    assert isinstance(errors[0]["exc_info"], RuntimeError)


async def test_a_rate_limited_request_is_counted_as_its_429_not_as_a_server_error(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url, rate_limit=("minute", 1)))
    async with AsyncTestClient(app=app) as client:
        before = samples((await client.get("/metrics")).text)
        with structlog.testing.capture_logs() as logged:
            answers = [(await client.post("/predict", json={"text": "hello"})).status_code for _ in range(2)]
        after = samples((await client.get("/metrics")).text)
    assert answers == [200, 429]
    refused = {"app_name": "sentiment", "method": "POST", "path": "/predict", "status_code": "429"}
    assert (
        value(after, "sentiment_requests_total", **refused)
        - value(before, "sentiment_requests_total", **refused)
        == 1
    )
    assert value(after, "sentiment_requests_error_total", **refused) == 0
    assert [line["status"] for line in logged if line["event"] == "http_request"] == [200, 429]
