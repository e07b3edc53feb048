"""Batching policy as plain logic: which queued texts form
the next model call, and whether to wait for more."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from sentiment.core.bounds import AtLeastOne, NonNegative

CHARS_PER_TOKEN = 4


class BatchPolicy(msgspec.Struct, frozen=True):
    """`max_batch_*` bound what one model call takes from the queue; `micro_batch_*` bound each forward pass
    inside it (texts of similar length together, so little compute goes on padding)."""

    max_batch_size: AtLeastOne = 64
    max_batch_tokens: AtLeastOne = 16384
    micro_batch_size: AtLeastOne = 16
    micro_batch_tokens: AtLeastOne = 384
    max_wait_s: NonNegative = 0.01
    max_queue: AtLeastOne = 2048
    # Bulk work (data sets, evaluations) waits while live requests do, but gets one call after this many live
    # calls in a row: it fills the model's idle time and is never starved.
    live_calls_per_bulk_call: AtLeastOne = 4
    # While live requests came within `live_recent_s`, a bulk call's passes hold at most this many texts: a
    # live request arriving mid-call waits for one short pass, not a full one.
    bulk_pass_size_near_live: AtLeastOne = 1
    live_recent_s: NonNegative = 1.0
    # What one text costs at most: the model's window, as texts are cut to it; None when every window of a
    # long text is scored.
    max_tokens_per_text: int | None = 512


def estimate_tokens(text: str, policy: BatchPolicy) -> int:
    """A cheap upper-bound-ish token count (no tokenizer on
    the event loop), capped at the model's truncation."""
    tokens = len(text) // CHARS_PER_TOKEN + 2
    return tokens if policy.max_tokens_per_text is None else min(tokens, policy.max_tokens_per_text)


def batch_length(queued_tokens: Iterable[int], policy: BatchPolicy) -> int:
    """How many texts from the head of the queue form the next batch.

    A batch pads every text to its longest, so its cost is `count x longest`; the batch grows while that stays
    within the token budget and the size limit. The head text always goes, however long, so nothing starves.
    """
    count, longest = 0, 0
    for tokens in queued_tokens:
        widest = max(longest, tokens)
        if count and (count + 1 > policy.max_batch_size or (count + 1) * widest > policy.max_batch_tokens):
            break
        count, longest = count + 1, widest
    return count


def plan_micro_batches(tokens: Sequence[int], policy: BatchPolicy) -> list[list[int]]:
    """Split one call's texts (by index) into forward passes: sorted by length,
    each pass padded to its longest and kept within the micro-batch size and
    padded-token budget. A text too long for the budget runs alone."""
    order = sorted(range(len(tokens)), key=tokens.__getitem__)
    passes: list[list[int]] = []
    current: list[int] = []
    for index in order:
        # Sorted ascending, so this text is the longest of the pass it would join.
        if current and (
            len(current) + 1 > policy.micro_batch_size
            or (len(current) + 1) * tokens[index] > policy.micro_batch_tokens
        ):
            passes.append(current)
            current = []
        current.append(index)
    if current:
        passes.append(current)
    return passes


def should_wait(queued: int, last_batch_size: int, waited_s: float, policy: BatchPolicy) -> bool:
    """Hold a small batch back briefly only when recent traffic filled bigger ones.

    A lone sequential caller (last batch of one) is never delayed; under concurrent load, the clients answered
    by the previous batch are about to send again, and a few milliseconds gathers them into one forward pass.
    """
    target = min(last_batch_size, policy.max_batch_size)
    return queued < target and waited_s < policy.max_wait_s


def bulk_goes_next(
    live_waiting: bool, bulk_waiting: bool, live_calls_in_a_row: int, policy: BatchPolicy
) -> bool:
    """Whether the next model call takes bulk work: when no live request waits, or when live ones have had
    `live_calls_per_bulk_call` calls in a row while bulk work waited."""
    if not bulk_waiting:
        return False
    return not live_waiting or live_calls_in_a_row >= policy.live_calls_per_bulk_call


def bulk_pass_policy(policy: BatchPolicy, since_live_s: float) -> BatchPolicy:
    """The micro-batching of a bulk call: short passes while live traffic is recent, else the usual ones."""
    if since_live_s >= policy.live_recent_s or policy.micro_batch_size <= policy.bulk_pass_size_near_live:
        return policy
    return msgspec.structs.replace(policy, micro_batch_size=policy.bulk_pass_size_near_live)
