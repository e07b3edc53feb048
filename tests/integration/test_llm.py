"""A language model annotator behind an OpenAI-compatible server (tests/llm_server.py), in-process: answers in
the service's shape, the breaker and VADER on hangs, errors and unreadable replies, 429s waited out."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest
from litestar.testing import AsyncTestClient

from sentiment.app import create_app
from sentiment.breaker import BreakerSettings
from sentiment.core.domain import ModelLoadError
from sentiment.core.secret import Secret
from sentiment.inference.catalogue import LlmOptions, ModelSpec
from sentiment.inference.llm import LlmBackend
from tests.conftest import make_settings, wait_until_settled
from tests.llm_server import LlmServer

API_KEY = "sk-test-7f3a9c-do-not-leak"
ADMIN = {"authorization": "Bearer adm"}


def annotator(url: str, **options: object) -> ModelSpec:
    llm = LlmOptions(api_key=Secret(API_KEY), timeout_s=2.0, **options)  # type: ignore[arg-type]
    return ModelSpec("annotator", url, kind="openai", known_labels=llm.labels, llm=llm)


@pytest.fixture
def server() -> Iterator[LlmServer]:
    with LlmServer(api_key=API_KEY, hang_s=10.0) as server:
        yield server


async def client_for(sqlite_url: str, spec: ModelSpec) -> AsyncIterator[AsyncTestClient]:
    settings = make_settings(
        sqlite_url,
        default_model=spec.key,
        admin_token="adm",
        models=(*make_settings(sqlite_url).models, spec),
        breaker=BreakerSettings(max_failures=3, open_s=60.0, call_timeout_s=10.0),
    )
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        await wait_until_settled(app)
        yield client


@pytest.fixture
async def client(sqlite_url: str, server: LlmServer) -> AsyncIterator[AsyncTestClient]:
    async for client in client_for(sqlite_url, annotator(server.url)):
        yield client


async def test_predict_and_batch_answer_through_the_language_model(
    client: AsyncTestClient, server: LlmServer
) -> None:
    answer = (await client.post("/predict", json={"text": "I love this airline"})).json()
    assert (answer["sentiment"], answer["model_used"], answer["fallback_used"]) == (
        "positive",
        "annotator",
        False,
    )
    # The server gives 0.8 to the label it chose and shares the rest: the scores are its log-probabilities.
    assert answer["scores_source"] == "logprobs"
    assert answer["confidence"] == pytest.approx(0.8)
    assert answer["scores"] == pytest.approx({"negative": 0.1, "neutral": 0.1, "positive": 0.8})

    texts = ["the worst delay ever", "gate B12 at noon", "great crew, happy landing", "bad food"]
    batch = (await client.post("/predict/batch", json={"texts": texts})).json()
    assert [r["sentiment"] for r in batch["results"]] == ["negative", "neutral", "positive", "negative"]
    assert {r["model_used"] for r in batch["results"]} == {"annotator"}

    # The API key went to the server on every request; the answer asked for the labels as JSON.
    completions = [r for r in server.requests if r.path.endswith("/chat/completions")]
    assert completions and all(r.headers["authorization"] == f"Bearer {API_KEY}" for r in completions)
    assert completions[-1].body["response_format"]["json_schema"]["schema"]["properties"]["label"][
        "enum"
    ] == [
        "negative",
        "neutral",
        "positive",
    ]
    detail = (await client.get("/models/annotator")).json()
    assert detail["details"]["answer_format"] == "json_schema"
    assert detail["details"]["served_model"] == "test-llm"
    assert detail["usage"]["requests"] == server.completions
    assert detail["usage"]["prompt_tokens"] > 0 and detail["usage"]["completion_tokens"] > 0


async def test_without_log_probabilities_the_label_scores_one_and_says_so(
    client: AsyncTestClient, server: LlmServer
) -> None:
    server.logprobs = False
    answer = (await client.post("/predict", json={"text": "an awful seat"})).json()
    assert (answer["sentiment"], answer["confidence"], answer["scores_source"]) == ("negative", 1.0, "none")
    assert answer["scores"] == {"negative": 1.0, "neutral": 0.0, "positive": 0.0}


async def test_a_server_without_json_schema_is_asked_for_the_label_word(sqlite_url: str) -> None:
    with LlmServer(json_schema_supported=False) as plain:
        async for client in client_for(sqlite_url, annotator(plain.url)):
            answer = (await client.post("/predict", json={"text": "good flight"})).json()
            assert (answer["sentiment"], answer["model_used"]) == ("positive", "annotator")
            assert (await client.get("/models/annotator")).json()["details"]["answer_format"] == "label word"
            assert "response_format" not in plain.requests[-1].body


@pytest.mark.parametrize("mode", ["hang", "error", "garbage"])
async def test_a_failing_server_opens_the_breaker_and_vader_answers_by_the_deadline(
    client: AsyncTestClient, server: LlmServer, mode: str
) -> None:
    server.mode = mode  # type: ignore[assignment]
    for n in range(3):
        started = time.monotonic()
        answer = (await client.post("/predict", json={"text": f"the service was fine {n}"})).json()
        took_s = time.monotonic() - started
        assert (answer["model_used"], answer["fallback_used"]) == ("vader", True), answer
        assert took_s < 2.0 + 1.0  # the model's 2 s deadline, and VADER
    breaker = next(
        b for b in (await client.get("/failsafe/status")).json()["breakers"] if b["model"] == "annotator"
    )
    assert breaker["state"] == "open"
    asked = server.completions
    answer = (await client.post("/predict", json={"text": "an open breaker asks nobody"})).json()
    assert answer["model_used"] == "vader" and server.completions == asked


async def test_a_429_with_retry_after_is_waited_out_and_leaves_the_breaker_closed(
    client: AsyncTestClient, server: LlmServer
) -> None:
    server.retry_after_s = "0.5"
    server.rate_limited_requests = 2
    server.mode = "rate_limited"
    started = time.monotonic()
    answer = (await client.post("/predict", json={"text": "a great view"})).json()
    took_s = time.monotonic() - started
    assert (answer["sentiment"], answer["model_used"], answer["fallback_used"]) == (
        "positive",
        "annotator",
        False,
    )
    assert took_s >= 1.0  # two waits of 0.5 s
    breaker = next(
        b for b in (await client.get("/failsafe/status")).json()["breakers"] if b["model"] == "annotator"
    )
    assert breaker["state"] == "closed" and breaker["failures_in_window"] == 0
    assert (await client.get("/models/annotator")).json()["usage"]["rate_limited"] == 2


async def test_a_429_that_asks_for_longer_than_the_deadline_is_a_failure_at_once(
    client: AsyncTestClient, server: LlmServer
) -> None:
    server.retry_after_s = "30"
    server.mode = "rate_limited"
    started = time.monotonic()
    answer = (await client.post("/predict", json={"text": "a great view again"})).json()
    assert answer["fallback_used"] is True
    assert time.monotonic() - started < 2.0


def test_the_backend_keeps_to_its_concurrency_and_answers_in_order() -> None:
    with LlmServer(latency_s=0.2) as server:
        backend = LlmBackend(server.url, LlmOptions(max_concurrent=2, json_schema=False, logprobs=False))
        server.reset()
        started = time.monotonic()
        scored = backend.predict(["good", "bad", "so so", "great", "awful", "fine"])
        took_s = time.monotonic() - started
        backend.close()
    assert [s.label for s in scored] == ["positive", "negative", "neutral", "positive", "negative", "neutral"]
    assert server.completions == 6
    assert took_s >= 3 * 0.2  # six requests, two at a time


def test_a_server_that_cannot_be_reached_or_lists_no_model_fails_the_load_with_the_reason() -> None:
    with pytest.raises(ModelLoadError, match="127.0.0.1:9/v1 does not answer"):
        LlmBackend("http://127.0.0.1:9/v1", LlmOptions(timeout_s=1.0))
    with LlmServer(models=()) as server, pytest.raises(ModelLoadError, match="lists no model"):
        LlmBackend(server.url, LlmOptions())
