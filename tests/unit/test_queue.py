"""The batching queue with a recording backend: grouping,
order, splitting, a full queue, abandoned callers."""

import asyncio
import threading
from collections.abc import Sequence

import pytest

from sentiment.core.domain import QueueFull, Scored
from sentiment.inference.backend import BaseBackend
from sentiment.inference.batching import BatchPolicy
from sentiment.inference.queue import BatchQueue, CallOutcome, ModelCallFailed, QueueTimeout


class RecordingBackend(BaseBackend):
    """Scores each text by its length and remembers every batch; `gate` holds calls until it is set."""

    labels = ("negative", "positive")

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False

    def predict(self, texts: Sequence[str]) -> list[Scored]:
        self.gate.wait(5)
        self.batches.append(list(texts))
        if self.fail:
            raise RuntimeError("boom")
        return [Scored("positive", float(len(t)), {"positive": float(len(t))}) for t in texts]


POLICY = BatchPolicy(max_batch_size=4, max_batch_tokens=1000, max_wait_s=0.0, max_queue=10)


@pytest.fixture
def backend() -> RecordingBackend:
    return RecordingBackend()


async def test_requests_waiting_while_the_model_is_busy_share_the_next_batch(
    backend: RecordingBackend,
) -> None:
    queue = BatchQueue("m", backend, POLICY, call_timeout_s=None)
    backend.gate.clear()
    first = asyncio.create_task(queue.submit(["busy"]))
    await asyncio.sleep(0.05)  # the first call is now running and holding the model
    others = [asyncio.create_task(queue.submit([f"text {i}"])) for i in range(3)]
    await asyncio.sleep(0.01)
    backend.gate.set()
    await asyncio.gather(first, *others)
    await queue.close()
    assert backend.batches == [["busy"], ["text 0", "text 1", "text 2"]]


async def test_live_requests_go_ahead_of_bulk_work_and_a_bulk_call_gives_way_between_passes(
    backend: RecordingBackend,
) -> None:
    one_per_pass = BatchPolicy(max_batch_size=4, micro_batch_size=1, max_wait_s=0.0, max_queue=20)
    queue = BatchQueue("m", backend, one_per_pass, call_timeout_s=None)
    backend.gate.clear()
    bulk = asyncio.create_task(queue.submit(["b1", "b2", "b3", "b4"], bulk=True))
    await asyncio.sleep(0.05)  # the bulk call runs its first pass, held by the gate
    more_bulk = asyncio.create_task(queue.submit(["c1"], bulk=True))
    live = asyncio.create_task(queue.submit(["live"]))
    await asyncio.sleep(0.01)
    backend.gate.set()
    bulk_result, _, live_result = await asyncio.gather(bulk, more_bulk, live)
    await queue.close()
    # The bulk call stopped after its running pass; the live text went next, then the rest of the bulk lane.
    assert backend.batches == [["b1"], ["live"], ["b2"], ["b3"], ["b4"], ["c1"]]
    assert [s.confidence for s in bulk_result.scored] == [2.0] * 4
    assert live_result.scored[0].confidence == 4.0


async def test_bulk_work_gets_a_call_after_every_few_live_ones(backend: RecordingBackend) -> None:
    policy = BatchPolicy(max_batch_size=1, max_wait_s=0.0, max_queue=20, live_calls_per_bulk_call=2)
    queue = BatchQueue("m", backend, policy, call_timeout_s=None)
    backend.gate.clear()
    first = asyncio.create_task(queue.submit(["l0"]))
    await asyncio.sleep(0.05)
    waiting = [asyncio.create_task(queue.submit(["bulk"], bulk=True))]
    waiting += [asyncio.create_task(queue.submit([f"l{i}"])) for i in range(1, 5)]
    await asyncio.sleep(0.01)
    backend.gate.set()
    await asyncio.gather(first, *waiting)
    await queue.close()
    assert backend.batches == [["l0"], ["l1"], ["l2"], ["bulk"], ["l3"], ["l4"]]


async def test_results_come_back_to_each_caller_in_its_own_order(backend: RecordingBackend) -> None:
    queue = BatchQueue("m", backend, POLICY, call_timeout_s=None)
    texts_a, texts_b = ["a", "aaa", "aa"], ["bbbbb", "b"]
    result_a, result_b = await asyncio.gather(queue.submit(texts_a), queue.submit(texts_b))
    await queue.close()
    assert [s.confidence for s in result_a.scored] == [1.0, 3.0, 2.0]
    assert [s.confidence for s in result_b.scored] == [5.0, 1.0]


async def test_a_large_request_is_split_into_several_model_calls(backend: RecordingBackend) -> None:
    queue = BatchQueue("m", backend, POLICY, call_timeout_s=None)
    texts = [f"t{i}" for i in range(10)]
    result = await queue.submit(texts)
    await queue.close()
    assert [len(b) for b in backend.batches] == [4, 4, 2]
    assert [s.confidence for s in result.scored] == [float(len(t)) for t in texts]


async def test_a_full_queue_refuses_at_once(backend: RecordingBackend) -> None:
    queue = BatchQueue("m", backend, POLICY, call_timeout_s=None)
    backend.gate.clear()
    running = asyncio.create_task(queue.submit(["x"]))
    await asyncio.sleep(0.05)
    waiting = asyncio.create_task(queue.submit(["y"] * 10))
    await asyncio.sleep(0)
    with pytest.raises(QueueFull):
        await queue.submit(["one too many"])
    backend.gate.set()
    await asyncio.gather(running, waiting)
    await queue.close()


async def test_texts_of_callers_that_gave_up_are_never_run(backend: RecordingBackend) -> None:
    queue = BatchQueue("m", backend, POLICY, call_timeout_s=None)
    backend.gate.clear()
    running = asyncio.create_task(queue.submit(["first"]))
    await asyncio.sleep(0.05)
    with pytest.raises(QueueTimeout) as gave_up:
        await queue.submit(["abandoned"], timeout_s=0.01)
    assert gave_up.value.started is False
    backend.gate.set()
    await running
    assert (await queue.submit(["later"])).scored[0].confidence == 5.0
    await queue.close()
    assert backend.batches == [["first"], ["later"]]


async def test_each_model_call_reports_one_outcome_and_failures_reach_every_caller(
    backend: RecordingBackend,
) -> None:
    outcomes: list[CallOutcome] = []
    queue = BatchQueue("m", backend, POLICY, call_timeout_s=None, on_outcome=outcomes.append)
    await queue.submit(["ok"], trial=True)
    backend.fail = True
    results = await asyncio.gather(queue.submit(["a", "b"]), queue.submit(["c"]), return_exceptions=True)
    await queue.close()
    assert all(isinstance(r, ModelCallFailed) for r in results)
    assert (outcomes[0].ok, outcomes[0].trial) == (True, True)
    assert [o.ok for o in outcomes[1:]] == [False] * (len(outcomes) - 1)
    assert sum(o.size for o in outcomes[1:]) == 3
    assert "RuntimeError: boom" in (outcomes[1].reason or "")


async def test_a_call_past_the_timeout_fails_its_callers_and_counts_once(backend: RecordingBackend) -> None:
    outcomes: list[CallOutcome] = []
    queue = BatchQueue("m", backend, POLICY, call_timeout_s=0.05, on_outcome=outcomes.append)
    backend.gate.clear()
    with pytest.raises(ModelCallFailed, match="no forward pass finished within 0.05 s"):
        await asyncio.gather(queue.submit(["slow", "also slow"]))
    backend.gate.set()
    await queue.close()
    assert [(o.ok, o.size) for o in outcomes] == [(False, 2)]


async def test_a_long_call_whose_passes_keep_finishing_is_slow_not_failed() -> None:
    """Four passes of 40 ms under a 60 ms call timeout: 160 ms in all, yet the model never stalled."""

    class SteadyBackend(RecordingBackend):
        def predict(self, texts: Sequence[str]) -> list[Scored]:
            threading.Event().wait(0.04)
            return super().predict(texts)

    outcomes: list[CallOutcome] = []
    one_per_pass = BatchPolicy(max_batch_size=4, micro_batch_size=1, max_wait_s=0.0, max_queue=10)
    queue = BatchQueue("m", SteadyBackend(), one_per_pass, call_timeout_s=0.06, on_outcome=outcomes.append)
    result = await queue.submit(["a", "bb", "ccc", "dddd"])
    await queue.close()
    assert [scored.confidence for scored in result.scored] == [1.0, 2.0, 3.0, 4.0]
    assert [(o.ok, o.size) for o in outcomes] == [(True, 4)]
    assert outcomes[0].seconds >= 0.16


async def test_timing_splits_queue_wait_from_inference(backend: RecordingBackend) -> None:
    queue = BatchQueue("m", backend, POLICY, call_timeout_s=None)
    backend.gate.clear()
    first = asyncio.create_task(queue.submit(["first"]))
    await asyncio.sleep(0.05)  # "first" holds the model
    second = asyncio.create_task(queue.submit(["second"]))
    await asyncio.sleep(0.1)
    backend.gate.set()
    ran, waited = await asyncio.gather(first, second)
    await queue.close()
    assert ran.inference_ms >= 140 and ran.queue_ms < 50
    assert waited.queue_ms >= 90 and waited.inference_ms < 50


class ThreadRecordingBackend(RecordingBackend):
    def __init__(self) -> None:
        super().__init__()
        self.threads: list[str] = []

    def predict(self, texts: Sequence[str]) -> list[Scored]:
        self.threads.append(threading.current_thread().name)
        return super().predict(texts)


async def test_small_live_work_on_an_idle_queue_is_answered_on_the_loop_and_the_rest_on_the_worker() -> None:
    backend = ThreadRecordingBackend()
    outcomes: list[CallOutcome] = []
    fault = [False]
    queue = BatchQueue(
        "m",
        backend,
        POLICY,
        None,
        on_outcome=outcomes.append,
        inline_chars=10,
        may_run_inline=lambda: not fault[0],
    )
    loop_thread = threading.current_thread().name
    small = await queue.submit(["tiny", "text"])
    assert [s.confidence for s in small.scored] == [4.0, 4.0] and small.queue_ms == 0.0
    await queue.submit(["longer than ten"])  # too much text
    await queue.submit(["tiny"], bulk=True)  # bulk work always queues
    fault[0] = True
    await queue.submit(["tiny"])  # an injected fault must hang the worker, not the loop
    backend.gate.clear()
    busy = asyncio.create_task(queue.submit(["busy"]))
    await asyncio.sleep(0.05)
    fault[0] = False
    behind = asyncio.create_task(queue.submit(["tiny"]))  # never ahead of work already queued or running
    await asyncio.sleep(0.01)
    backend.gate.set()
    await asyncio.gather(busy, behind)
    backend.fail = True
    with pytest.raises(ModelCallFailed, match="boom"):
        await queue.submit(["tiny"])
    await queue.close()
    assert backend.threads[0] == loop_thread and backend.threads[-1] == loop_thread
    assert all(name.startswith("model-m") for name in backend.threads[1:-1]) and len(backend.threads) == 7
    assert [(o.ok, o.size) for o in outcomes] == [
        (True, 2),
        (True, 1),
        (True, 1),
        (True, 1),
        (True, 1),
        (True, 1),
        (False, 1),
    ]
