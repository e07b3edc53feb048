"""A local stand-in for an OpenAI-compatible chat-completions server (vLLM, llama.cpp, OpenAI), to test the
LLM backend without a model. Its answers are deterministic, so tests can assert exact labels and scores:

    with LlmServer(confidence=0.9) as server:
        messages = [{"role": "user", "content": "Classify.\nText: a great day"}]
        httpx.post(f"{server.url}/chat/completions", json={"messages": messages})  # content "positive"
        server.mode = "rate_limited"  # the next two completions answer 429 with Retry-After, then it recovers

A keyword rule reads the last user message (after its last `Text:` line) and picks the label; each label word
is two tokens, and the first carries the decision in the log-probabilities: `confidence` for the chosen label,
the rest shared by the other two. Modes (hang, error, garbage, rate_limited) apply to chat completions; the
api key and the latency apply to every request. By hand: `python -m tests.llm_server --port 8089 --mode ok`.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self, get_args

Mode = Literal["ok", "hang", "error", "garbage", "rate_limited"]
Label = Literal["negative", "neutral", "positive"]

POSITIVE_WORDS = ("love", "great", "good", "happy", "excellent")
NEGATIVE_WORDS = ("hate", "awful", "bad", "terrible", "worst")
# Two tokens a label, as real tokenizers split them: a client must score the label by its first token.
LABEL_TOKENS: dict[Label, tuple[str, str]] = {
    "negative": ("neg", "ative"),
    "neutral": ("neut", "ral"),
    "positive": ("pos", "itive"),
}
GARBAGE_TEXT = "I am not able to decide about that."
JSON_FORMATS = ("json_schema", "json_object")
INVALID_REQUEST = "invalid_request_error"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case, as HTTP compares them
    body: Any  # the parsed JSON body; None when there was none or it was malformed


def label_for(messages: Sequence[dict[str, Any]]) -> Label:
    """The keyword rule tests rely on; only the text after `Text:` counts, so instructions cannot sway it."""
    user_contents = [str(m.get("content") or "") for m in messages if m.get("role") == "user"]
    content = user_contents[-1] if user_contents else ""
    _, marker, after = ("\n" + content).rpartition("\nText:")
    text = (after if marker else content).lower()
    if any(word in text for word in POSITIVE_WORDS):
        return "positive"
    if any(word in text for word in NEGATIVE_WORDS):
        return "negative"
    return "neutral"


def reply_tokens(label: Label | None, as_json: bool) -> tuple[list[str], int | None]:
    """The reply as tokens (joined, they are the content), and where the label's first token is, if any."""
    if as_json:
        key, value = ("label", list(LABEL_TOKENS[label])) if label else ("answer", ["unsure"])
        return ['{"', key, '":', ' "', *value, '"}'], 4 if label else None
    if label:
        return list(LABEL_TOKENS[label]), 0
    return re.findall(r"\s*\S+", GARBAGE_TEXT), None


def logprobs_content(
    tokens: list[str], label_at: int | None, label: Label | None, confidence: float, top_n: int
) -> list[dict[str, Any]]:
    """OpenAI's `choices[0].logprobs.content`: every token is certain except the label's first one."""
    others = (1 - confidence) / 2
    chances = {LABEL_TOKENS[name][0]: confidence if name == label else others for name in LABEL_TOKENS}
    label_choices = sorted(((first, math.log(p)) for first, p in chances.items()), key=lambda c: -c[1])
    entries = []
    for index, token in enumerate(tokens):
        alternatives = label_choices if index == label_at else [(token, 0.0)]
        top = [_token_logprob(text, logprob) for text, logprob in alternatives[:top_n]]
        entries.append({**_token_logprob(token, dict(alternatives)[token]), "top_logprobs": top})
    return entries


def _token_logprob(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


class LlmServer:
    """The server, on a free port of 127.0.0.1 unless told one; every option may be changed while it runs."""

    def __init__(
        self,
        *,
        port: int = 0,
        models: Sequence[str] = ("test-llm",),
        mode: Mode = "ok",
        confidence: float = 0.8,
        logprobs: bool = True,
        json_schema_supported: bool = True,
        api_key: str | None = None,
        latency_s: float = 0.0,
        hang_s: float = 30.0,
        rate_limited_requests: int = 2,
        retry_after_s: str = "1",
    ) -> None:
        if not 0 < confidence < 1:
            raise ValueError("confidence must lie strictly between 0 and 1: log(0) is no JSON number")
        self.port = port
        self.models = tuple(models)
        self.confidence = confidence
        self.logprobs = logprobs
        self.json_schema_supported = json_schema_supported
        self.api_key = api_key
        self.latency_s = latency_s
        self.hang_s = hang_s
        self.rate_limited_requests = rate_limited_requests
        self.retry_after_s = retry_after_s
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._completions = 0
        self._rate_limits_left = 0
        self._http: _HttpServer | None = None
        self.mode = mode

    @property
    def url(self) -> str:
        """The OpenAI base URL, as clients take it."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def mode(self) -> Mode:
        return self._mode

    @mode.setter
    def mode(self, mode: Mode) -> None:
        """Setting a mode (again) arms `rate_limited_requests` answers of 429 for rate_limited."""
        if mode not in get_args(Mode):
            raise ValueError(f"unknown mode {mode!r}, expected one of {get_args(Mode)}")
        with self._lock:
            self._mode = mode
            self._rate_limits_left = self.rate_limited_requests

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def completions(self) -> int:
        """Chat completions answered 200."""
        with self._lock:
            return self._completions

    def reset(self) -> None:
        """Forgets the requests and completions, and re-arms the 429s of rate_limited."""
        with self._lock:
            self._requests.clear()
            self._completions = 0
            self._rate_limits_left = self.rate_limited_requests

    def start(self) -> Self:
        self._closed.clear()
        self._http = _HttpServer(self.port, self)
        self.port = self._http.server_address[1]
        # A short poll so that closing takes milliseconds, not the default half second.
        threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def close(self) -> None:
        """Wakes hanging requests first: closing waits for every handler thread."""
        self._closed.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    def _pause(self, seconds: float) -> bool:
        """Sleeps, waking early when the server closes; True when it closed."""
        return self._closed.wait(seconds)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _take_rate_limit(self) -> bool:
        with self._lock:
            if self._rate_limits_left <= 0:
                return False
            self._rate_limits_left -= 1
            return True

    def _count_completion(self) -> None:
        with self._lock:
            self._completions += 1


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: object) -> None:
        """Silent: test output is for failures, not a line per request."""

    def _handle(self) -> None:
        llm = self.server.llm
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None  # recorded as no body; a completion without one answers 400
        path = self.path.split("?")[0]
        headers = {name.lower(): value for name, value in self.headers.items()}
        llm._record(RecordedRequest(self.command, path, headers, body))
        if llm._pause(llm.latency_s):
            return
        if llm.api_key is not None and headers.get("authorization") != f"Bearer {llm.api_key}":
            return self._error(401, "invalid api key", INVALID_REQUEST)
        if (self.command, path) == ("GET", "/v1/models"):
            models = [{"id": model, "object": "model", "owned_by": "test"} for model in llm.models]
            return self._json(200, {"object": "list", "data": models})
        if (self.command, path) != ("POST", "/v1/chat/completions"):
            return self._error(404, f"no route {self.command} {path}", INVALID_REQUEST)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self._error(400, "the body must be a JSON object with a list of messages", INVALID_REQUEST)
        if not all(isinstance(message, dict) for message in body["messages"]):
            return self._error(400, "every message must be a JSON object", INVALID_REQUEST)
        self._complete(llm, body)

    def _complete(self, llm: LlmServer, body: dict[str, Any]) -> None:
        mode = llm.mode
        if mode == "hang" and llm._pause(llm.hang_s):
            return
        if mode == "error":
            return self._error(500, "internal error", "server_error")
        if mode == "rate_limited" and llm._take_rate_limit():
            retry_after = {"Retry-After": llm.retry_after_s}
            return self._error(429, "rate limit reached", "rate_limit_error", retry_after)
        response_format = body.get("response_format")
        if response_format is not None and not llm.json_schema_supported:
            return self._error(400, "response_format is not supported", INVALID_REQUEST)
        as_json = isinstance(response_format, dict) and response_format.get("type") in JSON_FORMATS
        label = None if mode == "garbage" else label_for(body["messages"])
        tokens, label_at = reply_tokens(label, as_json)
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": "".join(tokens)},
            "finish_reason": "stop",
        }
        if body.get("logprobs") and llm.logprobs:
            top_n = 3 if body.get("top_logprobs") is None else int(body["top_logprobs"])
            choice["logprobs"] = {"content": logprobs_content(tokens, label_at, label, llm.confidence, top_n)}
        prompt = sum(len(str(message.get("content") or "").split()) for message in body["messages"])
        completion = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or llm.models[0],
            "choices": [choice],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": len(tokens),
                "total_tokens": prompt + len(tokens),
            },
        }
        # Counted before the answer is written: a client reading it may look at the count at once.
        llm._count_completion()
        self._json(200, completion)

    def _error(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> None:
        self._json(status, {"error": {"message": message, "type": kind}}, headers)

    def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _HttpServer(ThreadingHTTPServer):
    def __init__(self, port: int, llm: LlmServer) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.llm = llm

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a test's timeout) is expected; anything else is a bug to show."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the test LLM (OpenAI chat completions) until Ctrl-C.")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--mode", choices=get_args(Mode), default="ok")
    args = parser.parse_args()
    with LlmServer(port=args.port, mode=args.mode) as server:
        print(f"OpenAI base URL {server.url}, mode {server.mode}; Ctrl-C to stop", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
