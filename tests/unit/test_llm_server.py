"""The test LLM server: the answers, scores and failures the LLM backend's tests will rely on."""

import json
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.llm_server import LlmServer

JSON_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "sentiment",
        "schema": {"type": "object", "properties": {"label": {"enum": ["negative", "neutral", "positive"]}}},
        "strict": True,
    },
}


@pytest.fixture
def llm() -> Iterator[LlmServer]:
    with LlmServer() as server:
        yield server


@pytest.fixture
def http(llm: LlmServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=llm.url, timeout=2.0) as client:
        yield client


def ask(http: httpx.Client, text: str, **options: Any) -> httpx.Response:
    """A request shaped as the backend sends it: instructions, then the text on a `Text:` line."""
    messages = [
        {"role": "system", "content": "Answer with one word: negative, neutral or positive."},
        {"role": "user", "content": f"Classify the sentiment.\nText: {text}"},
    ]
    body = {"model": "test-llm", "messages": messages, "temperature": 0, "max_tokens": 5, **options}
    return http.post("/chat/completions", json=body)


def content_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


def test_models_lists_the_configured_models() -> None:
    with LlmServer(models=("a", "b")) as server:
        answer = httpx.get(f"{server.url}/models").json()
    assert answer == {
        "object": "list",
        "data": [
            {"id": "a", "object": "model", "owned_by": "test"},
            {"id": "b", "object": "model", "owned_by": "test"},
        ],
    }


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("I LOVE this phone", "positive"),
        ("the worst service ever", "negative"),
        ("it is a table", "neutral"),
        ("good and bad", "positive"),
    ],
)
def test_label_comes_from_keywords_in_the_text(http: httpx.Client, text: str, label: str) -> None:
    assert content_of(ask(http, text)) == label


def test_only_the_last_user_message_after_its_last_text_line_counts(http: httpx.Client) -> None:
    messages = [
        {"role": "user", "content": "Text: I love it"},
        {"role": "assistant", "content": "positive"},
        {"role": "user", "content": "Be good and happy.\nText: not this one: great\nText: awful\nLabel:"},
    ]
    response = http.post("/chat/completions", json={"model": "test-llm", "messages": messages})
    assert content_of(response) == "negative"


def test_answer_is_an_openai_chat_completion_with_usage(llm: LlmServer, http: httpx.Client) -> None:
    answer = ask(http, "a happy day").json()
    assert answer["object"] == "chat.completion"
    assert answer["id"].startswith("chatcmpl-")
    assert isinstance(answer["created"], int)
    assert answer["model"] == "test-llm"
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["choices"][0]["message"]["role"] == "assistant"
    assert "logprobs" not in answer["choices"][0]
    # 8 words of instructions + 7 of prompt; "positive" is two tokens: pos|itive.
    assert answer["usage"] == {"prompt_tokens": 15, "completion_tokens": 2, "total_tokens": 17}
    assert llm.completions == 1


@pytest.mark.parametrize("response_format", [JSON_SCHEMA, {"type": "json_object"}])
def test_json_response_format_answers_a_label_object(http: httpx.Client, response_format: object) -> None:
    content = content_of(ask(http, "terrible", response_format=response_format))
    assert content == '{"label": "negative"}'
    assert json.loads(content) == {"label": "negative"}


def test_logprobs_give_the_label_first_token_its_confidence(http: httpx.Client) -> None:
    choice = ask(http, "great", logprobs=True, top_logprobs=5).json()["choices"][0]
    first, second = choice["logprobs"]["content"]
    assert (first["token"], second["token"]) == ("pos", "itive")
    assert math.exp(first["logprob"]) == pytest.approx(0.8)
    assert first["bytes"] == list(b"pos")
    alternatives = {entry["token"]: math.exp(entry["logprob"]) for entry in first["top_logprobs"]}
    assert alternatives == pytest.approx({"pos": 0.8, "neg": 0.1, "neut": 0.1})
    assert sum(alternatives.values()) == pytest.approx(1.0)
    assert first["top_logprobs"][0]["token"] == "pos"
    assert second["logprob"] == 0.0
    assert second["top_logprobs"] == [{"token": "itive", "logprob": 0.0, "bytes": list(b"itive")}]


def test_logprobs_in_json_mode_score_the_token_after_the_quote(http: httpx.Client) -> None:
    with LlmServer(confidence=0.6) as server:
        body = {"messages": [{"role": "user", "content": "meh"}], "logprobs": True, "top_logprobs": 2}
        answer = httpx.post(f"{server.url}/chat/completions", json={**body, "response_format": JSON_SCHEMA})
    entries = answer.json()["choices"][0]["logprobs"]["content"]
    assert [entry["token"] for entry in entries] == ['{"', "label", '":', ' "', "neut", "ral", '"}']
    assert "".join(entry["token"] for entry in entries) == '{"label": "neutral"}'
    assert answer.json()["usage"]["completion_tokens"] == 7
    label_entry = entries[4]
    assert math.exp(label_entry["logprob"]) == pytest.approx(0.6)
    assert [math.exp(entry["logprob"]) for entry in label_entry["top_logprobs"]] == pytest.approx([0.6, 0.2])
    assert all(entry["logprob"] == 0.0 for index, entry in enumerate(entries) if index != 4)


def test_logprobs_are_absent_when_the_server_lacks_them(llm: LlmServer, http: httpx.Client) -> None:
    llm.logprobs = False
    assert "logprobs" not in ask(http, "great", logprobs=True).json()["choices"][0]


def test_error_mode_answers_500(llm: LlmServer, http: httpx.Client) -> None:
    llm.mode = "error"
    response = ask(http, "great")
    assert response.status_code == 500
    assert response.json() == {"error": {"message": "internal error", "type": "server_error"}}
    assert llm.completions == 0


def test_garbage_mode_names_no_label(llm: LlmServer, http: httpx.Client) -> None:
    llm.mode = "garbage"
    assert content_of(ask(http, "great")) == "I am not able to decide about that."
    assert content_of(ask(http, "great", response_format=JSON_SCHEMA)) == '{"answer": "unsure"}'
    entries = ask(http, "great", logprobs=True).json()["choices"][0]["logprobs"]["content"]
    assert all(entry["logprob"] == 0.0 for entry in entries)


def test_rate_limited_answers_429_with_retry_after_then_recovers(llm: LlmServer, http: httpx.Client) -> None:
    llm.retry_after_s = "3"
    llm.mode = "rate_limited"
    statuses = [ask(http, "great") for _ in range(3)]
    assert [response.status_code for response in statuses] == [429, 429, 200]
    assert statuses[0].headers["Retry-After"] == "3"
    assert statuses[0].json()["error"]["type"] == "rate_limit_error"
    assert content_of(statuses[2]) == "positive"
    assert llm.completions == 1


def test_response_format_answers_400_where_unsupported(llm: LlmServer, http: httpx.Client) -> None:
    llm.json_schema_supported = False
    response = ask(http, "great", response_format=JSON_SCHEMA)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "response_format is not supported"
    assert content_of(ask(http, "great")) == "positive"


def test_api_key_is_required_when_set(llm: LlmServer, http: httpx.Client) -> None:
    llm.api_key = "secret"
    assert ask(http, "great").status_code == 401
    assert http.get("/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    http.headers["Authorization"] = "Bearer secret"
    assert content_of(ask(http, "great")) == "positive"


def test_latency_delays_every_answer(llm: LlmServer, http: httpx.Client) -> None:
    llm.latency_s = 0.2
    began = time.monotonic()
    assert http.get("/models").status_code == 200
    assert time.monotonic() - began >= 0.2


def test_hang_outlasts_the_client_and_ends_when_the_server_closes() -> None:
    with LlmServer(mode="hang", hang_s=10.0) as server:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{server.url}/chat/completions", json={"messages": []}, timeout=0.2)
        began = time.monotonic()
    assert time.monotonic() - began < 1.0


def test_malformed_bodies_answer_400_and_unknown_paths_404(http: httpx.Client) -> None:
    assert http.post("/chat/completions", content=b"{not json").status_code == 400
    assert http.post("/chat/completions", json={"model": "test-llm"}).status_code == 400
    assert http.post("/chat/completions", json={"messages": ["hello"]}).status_code == 400
    assert http.get("/completions").status_code == 404
    assert http.get("/chat/completions").status_code == 404


def test_requests_are_recorded_until_reset(llm: LlmServer, http: httpx.Client) -> None:
    ask(http, "great")
    http.get("/models")
    first, second = llm.requests
    assert (first.method, first.path, second.method, second.path) == (
        "POST",
        "/v1/chat/completions",
        "GET",
        "/v1/models",
    )
    assert first.body["messages"][1]["content"].endswith("Text: great")
    assert first.headers["content-type"] == "application/json"
    assert second.body is None
    llm.reset()
    assert (llm.requests, llm.completions) == ([], 0)
