"""Offline scoring through a model's batching queue: texts sorted by length, answers back in input order.

A data set is not bound by arrival order, so each chunk of rows is sorted by text length before it goes to the
queue: every batch the queue forms then holds texts of similar length and little compute goes on padding. The
chunk is handed over one batch-sized slice at a time, two in flight, so the model never idles between slices.
Slices go in the queue's bulk lane: live requests are served ahead of them, and a slice being scored gives way
between its micro-batches when one arrives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TypeVar

import structlog

from sentiment.core.domain import ModelNotLoaded, QueueFull, Scored, SentimentError
from sentiment.core.retry import Backoff, retry
from sentiment.inference.queue import ModelCallFailed, QueueTimeout
from sentiment.inference.registry import ModelEntry

log = structlog.get_logger(__name__)

T = TypeVar("T")

SLICES_IN_FLIGHT = 2
CALL_ATTEMPTS = 3
QUEUE_FULL_WAIT_S = 0.05


def length_order(texts: Sequence[str]) -> list[int]:
    """Indices of `texts` from the shortest text to the longest (ties keep input order)."""
    return sorted(range(len(texts)), key=lambda index: len(texts[index]))


def restore_order(order: Sequence[int], results: Sequence[T]) -> list[T]:
    """Put results computed in `order` (result k belongs to input `order[k]`) back into input order."""
    restored: list[T | None] = [None] * len(order)
    for result, index in zip(results, order, strict=True):
        restored[index] = result
    return restored  # type: ignore[return-value]  # every slot was filled: order is a permutation


def slices(indices: Sequence[int], size: int) -> list[Sequence[int]]:
    return [indices[start : start + size] for start in range(0, len(indices), size)]


class ScoringFailed(SentimentError):
    """The model could not score a chunk, even after retries (it failed, or it was unloaded)."""


class ChunkScorer:
    """Scores chunks of texts with one model's queue, in input order; retries a failed call before giving
    up."""

    def __init__(self, entry: ModelEntry, attempts: int = CALL_ATTEMPTS, retry_delay_s: float = 0.5) -> None:
        self.entry = entry
        self._attempts = attempts
        self._retry_delay_s = retry_delay_s

    @property
    def slice_size(self) -> int:
        queue = self.entry.queue
        return queue.policy.max_batch_size if queue is not None else 64

    async def score(self, texts: Sequence[str]) -> list[Scored]:
        order = length_order(texts)
        ordered = [texts[index] for index in order]
        gate = asyncio.Semaphore(SLICES_IN_FLIGHT)

        async def run(part: Sequence[int]) -> list[Scored]:
            async with gate:
                return await self._call([ordered[k] for k in part])

        parts = slices(range(len(ordered)), self.slice_size)
        results = await asyncio.gather(*(run(part) for part in parts))
        return restore_order(order, [scored for part in results for scored in part])

    async def _call(self, texts: Sequence[str]) -> list[Scored]:
        def failed(error: BaseException, failures: int) -> None:
            log.warning(
                "offline_scoring_call_failed", model=self.entry.key, attempt=failures, error=str(error)
            )

        try:
            return await retry(
                lambda: self._run_when_room(texts),
                retry_on=(ModelCallFailed, QueueTimeout),
                backoff=Backoff(first_s=self._retry_delay_s),
                attempts=self._attempts,
                on_failure=failed,
            )
        except ModelNotLoaded:
            raise ScoringFailed(f"model {self.entry.key} was unloaded while scoring") from None
        except (ModelCallFailed, QueueTimeout) as error:
            raise ScoringFailed(
                f"model {self.entry.key} failed {self._attempts} times in a row: {error}"
            ) from None

    async def _run_when_room(self, texts: Sequence[str]) -> list[Scored]:
        while True:
            try:
                return (await self.entry.run(texts, bulk=True)).scored
            except QueueFull:
                # Live traffic fills the queue: leave it the room and come back (not a failure of the model).
                await asyncio.sleep(min(QUEUE_FULL_WAIT_S, self._retry_delay_s))
