"""Per-model batching queue: concurrent requests wait
together and run as batches on the model's worker thread.

The event loop only queues and awaits; the forward pass runs on one dedicated thread per model. The moment the
model is free the worker forms the next batch from the head of the queue (size and token budget from the
`BatchPolicy`), so requests that arrived during a forward pass share the next one.

Two lanes: live requests (/predict) go ahead of bulk work (data sets, evaluations). A bulk call gives way
between its micro-batches as soon as a live request waits, its unscored texts back at the head of the bulk
lane; bulk work fills the idle time and gets a call after every few live ones, so it is never starved.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress

import msgspec
import structlog

from sentiment.core.domain import QueueFull, Scored
from sentiment.core.tasks import cancel_and_wait, poll_until
from sentiment.inference.backend import Backend, BaseBackend
from sentiment.inference.batching import (
    BatchPolicy,
    batch_length,
    bulk_goes_next,
    bulk_pass_policy,
    estimate_tokens,
    plan_micro_batches,
    should_wait,
)

log = structlog.get_logger(__name__)


class TimedResult(msgspec.Struct, frozen=True):
    """Scored texts in input order, and where the time went: waiting in the queue, and running the model."""

    scored: list[Scored]
    queue_ms: float
    inference_ms: float


class CallOutcome(msgspec.Struct, frozen=True):
    """One model call (one batch): what the breaker counts."""

    ok: bool
    trial: bool
    size: int
    seconds: float
    reason: str | None = None


class ModelCallFailed(RuntimeError):
    """The batch holding the caller's texts raised or ran past the call timeout."""


class QueueTimeout(TimeoutError):
    """The caller's deadline passed; `started` says whether the model had begun its texts."""

    def __init__(self, started: bool) -> None:
        super().__init__("no answer before the deadline")
        self.started = started


class _Request:
    __slots__ = (
        "first_start",
        "future",
        "inference_s",
        "remaining",
        "results",
        "submitted",
        "texts",
        "trial",
    )

    def __init__(self, texts: Sequence[str], trial: bool, future: asyncio.Future[TimedResult]) -> None:
        self.texts = texts
        self.results: list[Scored | None] = [None] * len(texts)
        self.remaining = len(texts)
        self.future = future
        self.trial = trial
        self.submitted = time.perf_counter()
        self.first_start: float | None = None
        self.inference_s = 0.0


class _Progress:
    """When the model last finished a forward pass (written on the model's thread, read on the loop)."""

    __slots__ = ("last",)

    def __init__(self, started: float) -> None:
        self.last = started

    def mark(self) -> None:
        self.last = time.perf_counter()


class _ClosedBackend(BaseBackend):
    def predict(self, texts: Sequence[str]) -> list[Scored]:
        raise RuntimeError("the model's queue is closed")


_CLOSED = _ClosedBackend()


class _Item(msgspec.Struct, array_like=True):
    request: _Request
    index: int
    tokens: int


def micro_passes(
    backend: Backend, texts: Sequence[str], tokens: Sequence[int], policy: BatchPolicy
) -> Iterator[tuple[list[int], list[Scored]]]:
    """One model call's texts run in micro-batches (similar lengths together): each pass's text indices and
    answers, as the pass finishes, so a caller can stop between passes."""
    for indices in plan_micro_batches(tokens, policy):
        yield indices, backend.predict([texts[i] for i in indices])


def forward_passes(
    backend: Backend, texts: Sequence[str], tokens: Sequence[int], policy: BatchPolicy
) -> list[Scored]:
    """Every pass of one call, answers in input order. Offline scoring on a cluster runs its batches through
    this too: an int8 path quantizes activations per pass, so the same passes give the same scores."""
    scored: list[Scored | None] = [None] * len(texts)
    for indices, results in micro_passes(backend, texts, tokens, policy):
        for index, result in zip(indices, results, strict=True):
            scored[index] = result
    return scored  # type: ignore[return-value]  # the passes cover every index once


class BatchQueue:
    def __init__(
        self,
        name: str,
        backend: Backend,
        policy: BatchPolicy,
        call_timeout_s: float | None,
        on_outcome: Callable[[CallOutcome], None] = lambda _: None,
        before_call: Callable[[], None] = lambda: None,
        inline_chars: int = 0,
        may_run_inline: Callable[[], bool] = lambda: True,
    ) -> None:
        """`inline_chars`: live work of at most this many characters runs on the event loop when the queue is
        idle, for a model whose call on that much text costs less than handing it to a thread (VADER: tens of
        microseconds a short text, against a thread wake-up, a GIL hand-off and a loop wake-up)."""
        self.name = name
        self.policy = policy
        self._backend: Backend = backend
        self._call_timeout_s = call_timeout_s
        self._on_outcome = on_outcome
        self._before_call = before_call
        self._inline_chars = inline_chars
        self._may_run_inline = may_run_inline
        self._items: deque[_Item] = deque()
        self._bulk: deque[_Item] = deque()
        self._live_calls_in_a_row = 0
        self._live_seen = -float("inf")
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"model-{name}")
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"queue-{name}")
        self.last_batch_size = 1
        self._calling = False

    @property
    def depth(self) -> int:
        return len(self._items) + len(self._bulk)

    async def submit(
        self,
        texts: Sequence[str],
        trial: bool = False,
        timeout_s: float | None = None,
        bulk: bool = False,
    ) -> TimedResult:
        """Queue the texts (in the bulk lane when `bulk`), wait for all their results (raises QueueFull at
        once when there is no room). Small live work on an idle queue is answered at once, on the loop (see
        `inline_chars`), while `may_run_inline` says so (an injected fault must hang the worker, never the
        loop)."""
        if not bulk and self._fits_inline(texts) and self._may_run_inline():
            return self._answer_inline(texts, trial)
        if self.depth + len(texts) > self.policy.max_queue:
            raise QueueFull(self.name)
        request = _Request(texts, trial, asyncio.get_running_loop().create_future())
        if not bulk:
            self._live_seen = request.submitted
        (self._bulk if bulk else self._items).extend(
            _Item(request, i, estimate_tokens(text, self.policy)) for i, text in enumerate(texts)
        )
        self._wakeup.set()
        try:
            async with asyncio.timeout(timeout_s):
                return await asyncio.shield(request.future)
        except TimeoutError:
            request.future.cancel()  # texts still queued are skipped
            raise QueueTimeout(started=request.first_start is not None) from None
        except asyncio.CancelledError:
            request.future.cancel()
            raise

    def _fits_inline(self, texts: Sequence[str]) -> bool:
        if not texts or self.depth or self._calling or len(texts) > self._inline_chars:
            return False
        return sum(map(len, texts)) <= self._inline_chars

    def _answer_inline(self, texts: Sequence[str], trial: bool) -> TimedResult:
        started = time.perf_counter()
        try:
            scored = self._backend.predict(texts)
        except Exception as error:
            reason = self._failed(error, len(texts), time.perf_counter() - started, trial)
            raise ModelCallFailed(reason) from error
        seconds = time.perf_counter() - started
        self._on_outcome(CallOutcome(True, trial, len(texts), seconds))
        return TimedResult(scored, 0.0, seconds * 1000)

    def _failed(self, error: Exception, size: int, seconds: float, trial: bool) -> str:
        """Log and report a failed call; its reason, for its callers."""
        reason = (
            f"no forward pass finished within {self._call_timeout_s:g} s"
            if isinstance(error, TimeoutError)
            else f"{type(error).__name__}: {error}"
        )
        log.warning("model_call_failed", model=self.name, batch_size=size, error=reason)
        self._on_outcome(CallOutcome(False, trial, size, seconds, reason))
        return reason

    async def drain(self, timeout_s: float) -> bool:
        """Wait until every queued text has been answered (True) or the timeout passed (False)."""
        return await poll_until(lambda: not self.depth and not self._calling, timeout_s, every_s=0.01)

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        for item in (*self._items, *self._bulk):
            item.request.future.cancel()
        self._items.clear()
        self._bulk.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._backend.close()
        # The cancelled worker task keeps its traceback, and with it this queue: drop the model explicitly so
        # its memory goes back at once, whoever still holds the queue.
        self._backend = _CLOSED

    async def _run(self) -> None:
        while True:
            if not self.depth:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            bulk = bulk_goes_next(bool(self._items), bool(self._bulk), self._live_calls_in_a_row, self.policy)
            if not bulk:
                await self._gather_live()
            self._live_calls_in_a_row = 0 if bulk or not self._bulk else self._live_calls_in_a_row + 1
            batch = self._take_batch(self._bulk if bulk else self._items)
            if batch:
                if not bulk:
                    self.last_batch_size = len(batch)
                self._calling = True
                try:
                    await self._call(batch, bulk)
                finally:
                    self._calling = False

    async def _gather_live(self) -> None:
        """Hold a small live batch back briefly while recent traffic filled bigger ones (`should_wait`)."""
        waiting_since = time.perf_counter()
        while should_wait(
            len(self._items), self.last_batch_size, time.perf_counter() - waiting_since, self.policy
        ):
            self._wakeup.clear()
            remaining = self.policy.max_wait_s - (time.perf_counter() - waiting_since)
            with suppress(TimeoutError):
                async with asyncio.timeout(max(remaining, 0)):
                    await self._wakeup.wait()

    def _take_batch(self, lane: deque[_Item]) -> list[_Item]:
        """Pop the next batch from the head of a lane, dropping texts whose callers have given up."""
        while lane and lane[0].request.future.done():
            lane.popleft()
        live = (item.tokens for item in lane if not item.request.future.done())
        wanted = batch_length(live, self.policy)
        batch: list[_Item] = []
        while lane and len(batch) < wanted:
            item = lane.popleft()
            if not item.request.future.done():
                batch.append(item)
        return batch

    async def _call(self, batch: list[_Item], bulk: bool) -> None:
        texts = [item.request.texts[item.index] for item in batch]
        requests = {id(item.request): item.request for item in batch}.values()
        trial = any(request.trial for request in requests)
        started = time.perf_counter()
        for request in requests:
            if request.first_start is None:
                request.first_start = started

        tokens = [item.tokens for item in batch]
        progress = _Progress(started)
        policy = bulk_pass_policy(self.policy, started - self._live_seen) if bulk else self.policy

        def forward() -> list[Scored | None]:
            """The call's answers; a bulk call stops after the pass during which a live request arrived
            (None for the texts it leaves)."""
            self._before_call()
            scored: list[Scored | None] = [None] * len(texts)
            for indices, results in micro_passes(self._backend, texts, tokens, policy):
                for index, result in zip(indices, results, strict=True):
                    scored[index] = result
                progress.mark()
                if bulk and self._items:
                    break
            return scored

        try:
            work = asyncio.get_running_loop().run_in_executor(self._executor, forward)
            scored = await self._while_alive(work, progress)
        except Exception as error:  # noqa: BLE001 - any model failure is a verdict for the breaker, not a crash
            reason = self._failed(error, len(batch), time.perf_counter() - started, trial)
            for request in requests:
                if not request.future.done():
                    request.future.set_exception(ModelCallFailed(reason))
            return
        seconds = time.perf_counter() - started
        for request in requests:
            request.inference_s += seconds
        left = [item for item, result in zip(batch, scored, strict=True) if result is None]
        self._bulk.extendleft(reversed(left))
        for item, result in zip(batch, scored, strict=True):
            if result is None:
                continue
            request = item.request
            request.results[item.index] = result
            request.remaining -= 1
            if request.remaining == 0 and not request.future.done():
                queue_s = (request.first_start or started) - request.submitted
                request.future.set_result(
                    # remaining == 0: every slot of results holds a Scored now
                    TimedResult(request.results, queue_s * 1000, request.inference_s * 1000)  # type: ignore[arg-type]
                )
        self._on_outcome(CallOutcome(True, trial, len(batch) - len(left), seconds))

    async def _while_alive(
        self, work: asyncio.Future[list[Scored | None]], progress: _Progress
    ) -> list[Scored | None]:
        """The call's answers, however long it takes while its forward passes keep finishing: a long call is
        slow, not failed (its callers have their own deadline). TimeoutError when no pass finished within the
        call timeout: the model is stuck."""
        if self._call_timeout_s is None:
            return await work
        while not work.done():
            stalled_for = time.perf_counter() - progress.last
            if stalled_for >= self._call_timeout_s:
                raise TimeoutError
            await asyncio.wait([work], timeout=self._call_timeout_s - stalled_for)
        return work.result()
