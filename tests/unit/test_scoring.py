"""Offline scoring: chunks sorted by length into batch-sized slices, answers back in input order, retries."""

import asyncio
from collections.abc import Sequence

import pytest

from sentiment.core.domain import ModelNotLoaded, QueueFull, Scored
from sentiment.inference.batching import BatchPolicy
from sentiment.inference.queue import ModelCallFailed, TimedResult
from sentiment.services.scoring import ChunkScorer, ScoringFailed, length_order, restore_order, slices


def test_length_order_goes_shortest_first_and_keeps_ties_in_input_order() -> None:
    texts = ["ccc", "a", "bb", "d", "eeee"]
    assert length_order(texts) == [1, 3, 2, 0, 4]


def test_results_in_sorted_order_go_back_to_input_order() -> None:
    texts = ["ccc", "a", "bb", "d", "eeee"]
    order = length_order(texts)
    answers = [texts[i].upper() for i in order]
    assert restore_order(order, answers) == ["CCC", "A", "BB", "D", "EEEE"]


def test_slices_cut_in_order_with_a_short_last_one() -> None:
    assert [list(part) for part in slices(range(7), 3)] == [[0, 1, 2], [3, 4, 5], [6]]


class FakeQueue:
    def __init__(self, size: int) -> None:
        self.policy = BatchPolicy(max_batch_size=size)


class FakeEntry:
    """Answers each text with a label taken from its length, and records what each call was given."""

    key = "fake"

    def __init__(self, size: int = 4, failures: list[BaseException] | None = None) -> None:
        self.queue = FakeQueue(size)
        self.calls: list[list[str]] = []
        self.failures = list(failures or [])
        self.in_flight = 0
        self.most_in_flight = 0

    async def run(self, texts: Sequence[str], bulk: bool = False) -> TimedResult:
        if self.failures:
            raise self.failures.pop(0)
        assert bulk, "offline scoring goes in the bulk lane"
        self.calls.append(list(texts))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.001)
        self.in_flight -= 1
        scored = [
            Scored("positive" if len(t) % 2 else "negative", len(t) / 100, {"positive": 1.0}) for t in texts
        ]
        return TimedResult(scored, 0.0, 1.0)


async def test_a_chunk_goes_to_the_queue_sorted_by_length_in_batch_sized_slices() -> None:
    texts = ["x" * n for n in (9, 1, 7, 3, 5, 2, 8, 4, 6, 10)]
    entry = FakeEntry(size=4)
    scored = await ChunkScorer(entry).score(texts)  # type: ignore[arg-type]
    assert [[len(t) for t in call] for call in entry.calls] == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    assert [s.confidence for s in scored] == [len(t) / 100 for t in texts]  # input order
    assert entry.most_in_flight <= 2


async def test_a_full_queue_is_waited_out_and_a_failed_call_retried() -> None:
    entry = FakeEntry(size=8, failures=[QueueFull("fake"), ModelCallFailed("boom")])
    scored = await ChunkScorer(entry, retry_delay_s=0).score(["a", "bb"])  # type: ignore[arg-type]
    assert [s.label for s in scored] == ["positive", "negative"]


async def test_a_model_that_keeps_failing_fails_the_chunk_with_the_reason() -> None:
    entry = FakeEntry(failures=[ModelCallFailed("boom")] * 3)
    with pytest.raises(ScoringFailed, match="failed 3 times in a row: boom"):
        await ChunkScorer(entry, attempts=3, retry_delay_s=0).score(["a"])  # type: ignore[arg-type]


async def test_an_unloaded_model_fails_the_chunk() -> None:
    entry = FakeEntry(failures=[ModelNotLoaded("fake")])
    with pytest.raises(ScoringFailed, match="unloaded"):
        await ChunkScorer(entry).score(["a"])  # type: ignore[arg-type]
