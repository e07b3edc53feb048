"""A large language model prompted as a sentiment annotator, behind an OpenAI-compatible chat-completions API
(LocalAI, vLLM, Ollama, a llama.cpp server, OpenAI itself).

One request per text, at most `max_concurrent` at once and `requests_per_minute` in all; a 429 or a
Retry-After slows every request of the model down and is waited out while the call's deadline allows. Whatever
else goes wrong (a timeout, a 5xx, a reply that names no label) raises, so the breaker counts it and VADER
answers."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from sentiment.core.domain import ModelLoadError, Scored
from sentiment.inference.backend import BaseBackend
from sentiment.inference.catalogue import LlmOptions
from sentiment.inference.llm_reply import UnreadableReply, chat_messages, label_schema, scored_reply
from sentiment.inference.stats import TokenUsage

# Waits after a 429 that gives no Retry-After: 0.5 s, doubling, at most 8 s.
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0
TOP_LOGPROBS = 5
MAX_REPLY_TOKENS = 32
PROBE_TEXT = "I love this!"


class RateLimited(RuntimeError):
    """The server asked to wait longer than the call's deadline allows."""


class Pace:
    """Requests spaced `60 / per_minute` s apart, and held back as a whole while the server asks to wait."""

    def __init__(self, per_minute: int | None, clock: Callable[[], float]) -> None:
        self._gap_s = 60.0 / per_minute if per_minute else 0.0
        self._clock = clock
        self._lock = threading.Lock()
        self._next_s = 0.0

    def slot(self) -> float:
        """The time the caller may send its request (now or later); takes that slot."""
        with self._lock:
            at = max(self._clock(), self._next_s)
            self._next_s = at + self._gap_s
            return at

    def hold(self, until_s: float) -> None:
        with self._lock:
            self._next_s = max(self._next_s, until_s)


def retry_after_s(response: httpx.Response, failures: int, now: Callable[[], float] = time.time) -> float:
    """The wait a 429 (or a 503 with Retry-After) asks for: its header in seconds or as a date, else a
    backoff that doubles with each refusal in a row."""
    header = response.headers.get("retry-after", "").strip()
    if header:
        try:
            return max(float(header), 0.0)
        except ValueError:
            try:
                return max(parsedate_to_datetime(header).timestamp() - now(), 0.0)
            except (TypeError, ValueError):
                pass
    return min(FIRST_BACKOFF_S * 2 ** (failures - 1), MAX_BACKOFF_S)


class LlmBackend(BaseBackend):
    execution_path = "llm"

    def __init__(
        self,
        base_url: str,
        options: LlmOptions,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._options = options
        self._clock, self._sleep = clock, sleep
        headers = {"Authorization": f"Bearer {options.api_key.reveal()}"} if options.api_key else {}
        self._client = httpx.Client(base_url=base_url, timeout=options.timeout_s, headers=headers)
        self._url = base_url
        self._pace = Pace(options.requests_per_minute, clock)
        self._pool = ThreadPoolExecutor(options.max_concurrent, thread_name_prefix="llm")
        self.labels = options.labels
        self.batch_limit = options.max_concurrent
        self.call_timeout_s = options.timeout_s
        self._usage = TokenUsage()
        self.usage = self._usage
        try:
            self.model_name = options.model or self._first_listed_model()
            self._json = self._probe_json() if options.json_schema is None else options.json_schema
        except (httpx.HTTPError, ValueError, RateLimited) as error:
            self.close()
            raise ModelLoadError(
                f"language model server {base_url} does not answer as expected: {error}"
            ) from error

    @property
    def details(self) -> dict[str, str]:
        options = self._options
        examples = "".join(f"{example.label}\t{example.text}\n" for example in options.examples)
        examples_hash = hashlib.sha256(examples.encode()).hexdigest()[:16]
        return {
            "execution_path": self.execution_path,
            "server": self._url,
            "served_model": self.model_name,
            "labels": ", ".join(options.labels),
            "system_prompt": options.system_prompt,
            "prompt": options.prompt,
            "examples": f"{len(options.examples)} (sha256 {examples_hash})",
            "temperature": f"{options.temperature:g}",
            "answer_format": "json_schema" if self._json else "label word",
        }

    def predict(self, texts: Sequence[str]) -> list[Scored]:
        deadline_s = self._clock() + self._options.timeout_s
        return list(self._pool.map(lambda text: self._classify(text, deadline_s), texts))

    def _classify(self, text: str, deadline_s: float) -> Scored:
        reply = self._complete(chat_messages(text, self._options), self._json, deadline_s)
        return scored_reply(reply, self._options.labels, self._json)

    def _complete(self, messages: list[dict[str, str]], as_json: bool, deadline_s: float) -> dict[str, Any]:
        """One chat completion, waiting out the server's 429s while the deadline allows."""
        body: dict[str, Any] = {
            "model": self.model_name,
            "messages": messages,
            "temperature": self._options.temperature,
            "max_tokens": MAX_REPLY_TOKENS,
        }
        if self._options.logprobs:
            body |= {"logprobs": True, "top_logprobs": TOP_LOGPROBS}
        if as_json:
            body["response_format"] = label_schema(self._options.labels)
        refusals = 0
        while True:
            self._wait_until(self._pace.slot(), deadline_s)
            timeout_s = max(deadline_s - self._clock(), 0.001)
            response = self._client.post("/chat/completions", json=body, timeout=timeout_s)
            if response.status_code == 429 or (
                response.status_code == 503 and "retry-after" in response.headers
            ):
                refusals += 1
                self._usage.slowed()
                self._pace.hold(self._clock() + retry_after_s(response, refusals))
                continue
            response.raise_for_status()
            reply: dict[str, Any] = response.json()
            self._usage.add(reply.get("usage"))
            return reply

    def _wait_until(self, at_s: float, deadline_s: float) -> None:
        if at_s > deadline_s:
            raise RateLimited(
                f"the server's rate limit (or requests_per_minute) leaves no room before the "
                f"{self._options.timeout_s:g} s deadline"
            )
        if (wait_s := at_s - self._clock()) > 0:
            self._sleep(wait_s)

    def _first_listed_model(self) -> str:
        response = self._client.get("/models")
        response.raise_for_status()
        listed = [str(item["id"]) for item in response.json().get("data", [])]
        if not listed:
            raise ValueError("its /models lists no model; name one (model = ...)")
        return listed[0]

    def _probe_json(self) -> bool:
        """Whether the server takes a JSON schema for the answer: a server that does not answers 400 (or 422,
        or 501) to a request that carries one."""
        deadline_s = self._clock() + self._options.timeout_s
        messages = chat_messages(PROBE_TEXT, self._options)
        try:
            scored_reply(self._complete(messages, True, deadline_s), self._options.labels, True)
        except httpx.HTTPStatusError as error:
            if error.response.status_code not in {400, 422, 501}:
                raise
            return False
        except UnreadableReply:
            return False  # took the request but not the schema: the plain label word it is
        return True

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()
