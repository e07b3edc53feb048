"""The JSON API against the real minilm-sst2 model (loaded once per test session)."""

from collections.abc import Callable
from uuid import UUID

import pytest
from litestar.testing import AsyncTestClient

from sentiment.app import create_app
from sentiment.core.domain import ModelLoadError
from sentiment.inference.backend import Backend
from sentiment.inference.catalogue import ModelSpec
from tests.conftest import in_app, make_settings, wait_until_settled

PREDICTION_FIELDS = {
    "id",
    "sentiment",
    "confidence",
    "scores",
    "model_used",
    "processing_time_ms",
    "fallback_used",
    "timestamp",
    "truncated",
    "scores_source",
}


async def test_predict_answers_with_every_field_from_the_default_model(sst2_client: AsyncTestClient) -> None:
    response = await sst2_client.post("/predict", json={"text": "UCLA is amazing for AI research!"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == PREDICTION_FIELDS
    assert body["sentiment"] == "positive"
    assert body["model_used"] == "minilm-sst2"
    assert body["fallback_used"] is False
    assert body["confidence"] == max(body["scores"].values())
    assert set(body["scores"]) == {"negative", "positive"}
    assert body["scores_source"] == "model"
    assert UUID(body["id"]).version == 7
    assert float(response.headers["x-inference-time"]) > 0
    assert float(response.headers["x-queue-time"]) >= 0


async def test_batch_answers_in_input_order_with_the_same_labels_as_singles(
    sst2_client: AsyncTestClient,
) -> None:
    texts = ["a wonderful, moving film", "dull and lifeless", "I loved every minute", "a waste of time"]
    response = await sst2_client.post("/predict/batch", json={"texts": texts})
    assert response.status_code == 200
    body = response.json()
    assert body["batch_size"] == 4 and body["model_used"] == "minilm-sst2"
    assert [r["sentiment"] for r in body["results"]] == ["positive", "negative", "positive", "negative"]
    assert all(set(r) == PREDICTION_FIELDS for r in body["results"])
    single = await sst2_client.post("/predict", json={"text": texts[1]})
    assert single.json()["confidence"] == pytest.approx(body["results"][1]["confidence"], abs=1e-4)


async def test_vader_can_be_asked_for_by_key(sst2_client: AsyncTestClient) -> None:
    body = (await sst2_client.post("/predict", json={"text": "I love it", "model": "vader"})).json()
    assert (body["model_used"], body["fallback_used"], body["sentiment"]) == ("vader", False, "positive")
    assert set(body["scores"]) == {"negative", "neutral", "positive"}


async def test_unknown_model_is_404_listing_the_known_keys(sst2_client: AsyncTestClient) -> None:
    response = await sst2_client.post("/predict", json={"text": "hi", "model": "gpt-5"})
    assert response.status_code == 404
    assert "minilm-sst2" in response.json()["detail"]
    assert "minilm-sst2" in response.json()["extra"]["known_models"]


async def test_catalogued_model_that_is_not_loaded_is_409_saying_how_to_load_it(
    sst2_client: AsyncTestClient,
) -> None:
    response = await sst2_client.post("/predict", json={"text": "hi", "model": "minilm-tweets3"})
    assert response.status_code == 409
    assert "POST /models/minilm-tweets3/load" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "payload", "detail"),
    [
        ("/predict", {"text": "   "}, "empty or whitespace only"),
        ("/predict", {"text": "x" * 10_001}, "the limit is 10000"),
        ("/predict", {"text": 42}, "Validation failed"),
        ("/predict", {"text": "hi", "colour": "red"}, "Validation failed"),
        ("/predict", {}, "Validation failed"),
        ("/predict/batch", {"texts": []}, "at least one text"),
        ("/predict/batch", {"texts": ["ok"] * 257}, "at most 256 texts"),
        ("/predict/batch", {"texts": ["ok", ""]}, "texts[1] is empty"),
    ],
)
async def test_bad_input_is_a_clear_400(
    sst2_client: AsyncTestClient, path: str, payload: dict, detail: str
) -> None:
    response = await sst2_client.post(path, json=payload)
    assert response.status_code == 400
    assert response.json()["status_code"] == 400
    assert detail in response.json()["detail"]


async def test_invalid_utf8_body_is_a_400(sst2_client: AsyncTestClient) -> None:
    response = await sst2_client.post(
        "/predict", content=b'{"text": "caf\xe9"}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400


async def test_with_no_model_configured_vader_answers_and_status_says_so(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url))
    async with AsyncTestClient(app=app) as client:
        body = (await client.post("/predict", json={"text": "UCLA is amazing for AI research!"})).json()
        assert (body["model_used"], body["fallback_used"]) == ("vader", False)
        status = (await client.get("/status")).json()
        assert (status["default_model"], status["serving"], status["fallback_reason"]) == (
            "vader",
            "vader",
            None,
        )
        assert (await client.get("/ready")).status_code == 200


async def test_default_model_that_fails_to_load_leaves_vader_answering_and_status_explains(
    sqlite_url: str, loader: Callable[[ModelSpec], Backend]
) -> None:
    def broken(spec: ModelSpec) -> Backend:
        if spec.key == "minilm-sst2":
            raise ModelLoadError("weights are corrupt")
        return loader(spec)

    app = create_app(make_settings(sqlite_url, default_model="minilm-sst2"), loader=broken)
    async with AsyncTestClient(app=app) as client:
        await wait_until_settled(app)
        body = (await client.post("/predict", json={"text": "what a great day"})).json()
        assert (body["model_used"], body["fallback_used"], body["sentiment"]) == ("vader", True, "positive")
        batch = (await client.post("/predict/batch", json={"texts": ["good", "bad"]})).json()
        assert batch["model_used"] == "minilm-sst2"
        assert [(r["model_used"], r["fallback_used"]) for r in batch["results"]] == [("vader", True)] * 2
        status = (await client.get("/status")).json()
        assert status["serving"] == "vader"
        assert "weights are corrupt" in status["fallback_reason"]
        ready = await client.get("/ready")
        assert ready.status_code == 503 and "failed" in ready.json()["detail"]
        in_app(client, app.state.services.alerts.settle)
        alerts = (await client.get("/alerts", params={"state": "active"})).json()
        assert [a["key"] for a in alerts] == ["model_load_failed:minilm-sst2"]


async def test_health_answers_and_db_health_reports_the_writer(sst2_client: AsyncTestClient) -> None:
    assert (await sst2_client.get("/health")).json() == {"status": "ok"}
    report = (await sst2_client.get("/db/health")).json()
    assert report["reachable"] is True and report["dialect"] == "sqlite"
    assert {"latency_ms", "pending_writes", "written", "dropped"} <= set(report)


async def test_repeated_text_is_answered_from_the_cache_and_still_stored(
    sqlite_url: str, loader: Callable[[ModelSpec], Backend]
) -> None:
    app = create_app(make_settings(sqlite_url, default_model="minilm-sst2"), loader=loader)
    async with AsyncTestClient(app=app) as client:
        await wait_until_settled(app)
        first = (await client.post("/predict", json={"text": "RT @user: what a great game"})).json()
        again = await client.post(
            "/predict/batch", json={"texts": ["RT @user: what a great game", "new text"]}
        )
        cache = (await client.get("/status")).json()["cache"]
        assert in_app(client, app.state.resources.writer.flush, 10)
        written = app.state.resources.writer.written
    hit = again.json()["results"][0]
    assert (hit["model_used"], hit["fallback_used"], hit["confidence"]) == (
        "minilm-sst2",
        False,
        first["confidence"],
    )
    assert hit["id"] != first["id"]
    assert (cache["hits"], cache["misses"], cache["size"]) == (1, 2, 2)
    assert written == 3


async def test_cache_size_zero_turns_it_off(sqlite_url: str, loader: Callable[[ModelSpec], Backend]) -> None:
    app = create_app(make_settings(sqlite_url, default_model="minilm-sst2", cache_size=0), loader=loader)
    async with AsyncTestClient(app=app) as client:
        await wait_until_settled(app)
        for _ in range(2):
            await client.post("/predict", json={"text": "same text"})
        cache = (await client.get("/status")).json()["cache"]
    assert cache == {"size": 0, "hits": 0, "misses": 0}


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x"]
)
async def test_a_prediction_body_labelled_as_a_form_is_refused_so_other_sites_cannot_post_one(
    sqlite_url: str, content_type: str
) -> None:
    app = create_app(make_settings(sqlite_url))
    async with AsyncTestClient(app=app) as client:
        body = '{"text": "posted by a form on another site"}'
        single = await client.post("/predict", content=body, headers={"content-type": content_type})
        batch = await client.post(
            "/predict/batch", content='{"texts": ["a"]}', headers={"content-type": content_type}
        )
        plain_json = await client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert (single.status_code, batch.status_code, plain_json.status_code) == (415, 415, 200)
    assert single.json()["detail"] == f"send the body as application/json, not {content_type.split(';')[0]}"
