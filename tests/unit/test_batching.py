from sentiment.inference.backend import BaseBackend
from sentiment.inference.batching import (
    BatchPolicy,
    batch_length,
    bulk_goes_next,
    bulk_pass_policy,
    estimate_tokens,
    plan_micro_batches,
    should_wait,
)

POLICY = BatchPolicy(max_batch_size=4, max_batch_tokens=100, max_wait_s=0.01, max_tokens_per_text=64)


def test_batch_takes_up_to_the_size_limit_in_queue_order() -> None:
    assert batch_length([5] * 10, POLICY) == 4
    assert batch_length([5] * 3, POLICY) == 3
    assert batch_length([], POLICY) == 0


def test_batch_stops_before_padding_would_break_the_token_budget() -> None:
    # 3 texts padded to 30 tokens = 90 fit; a 4th, padded to 30, would be 120.
    assert batch_length([10, 30, 20, 5], POLICY) == 3
    # A long text later in the queue widens the padding of the whole batch.
    assert batch_length([10, 10, 60], POLICY) == 2


def test_head_text_always_goes_even_when_it_alone_breaks_the_budget() -> None:
    assert batch_length([500, 1], POLICY) == 1


def test_token_estimate_grows_with_length_and_is_capped_at_truncation() -> None:
    assert estimate_tokens("", POLICY) == 2
    assert estimate_tokens("x" * 40, POLICY) == 12
    assert estimate_tokens("x" * 100_000, POLICY) == 64


def test_lone_sequential_caller_is_never_delayed() -> None:
    assert not should_wait(queued=1, last_batch_size=1, waited_s=0.0, policy=POLICY)


def test_small_batch_waits_briefly_when_recent_batches_were_bigger() -> None:
    assert should_wait(queued=1, last_batch_size=4, waited_s=0.0, policy=POLICY)
    assert should_wait(queued=3, last_batch_size=32, waited_s=0.009, policy=POLICY)
    assert not should_wait(queued=3, last_batch_size=32, waited_s=0.01, policy=POLICY)
    assert not should_wait(queued=4, last_batch_size=32, waited_s=0.0, policy=POLICY)


MICRO = BatchPolicy(micro_batch_size=3, micro_batch_tokens=60)


def test_micro_batches_group_texts_of_similar_length_and_cover_each_text_once() -> None:
    tokens = [40, 5, 12, 6, 30, 7, 11]
    passes = plan_micro_batches(tokens, MICRO)
    assert passes == [[1, 3, 5], [6, 2], [4], [0]]
    assert sorted(i for p in passes for i in p) == list(range(len(tokens)))


def test_each_micro_batch_keeps_its_padded_size_within_the_budget() -> None:
    tokens = [20, 20, 20, 21, 50, 70]
    for indices in plan_micro_batches(tokens, MICRO):
        assert len(indices) <= MICRO.micro_batch_size
        assert len(indices) == 1 or len(indices) * max(tokens[i] for i in indices) <= MICRO.micro_batch_tokens


def test_a_text_longer_than_the_budget_runs_alone() -> None:
    assert plan_micro_batches([500, 3], MICRO) == [[1], [0]]


def test_a_gpu_gets_larger_batches_and_a_cpu_keeps_its_policy() -> None:
    from sentiment.inference.registry import policy_for

    cpu = BatchPolicy()
    assert policy_for(cpu, BaseBackend()) is cpu
    gpu = policy_for(cpu, Device("cuda"))
    assert (gpu.max_batch_size, gpu.micro_batch_size) == (256, 256)
    assert gpu.max_queue == cpu.max_queue and gpu.max_wait_s == cpu.max_wait_s


def test_a_model_scoring_every_window_is_charged_a_long_text_s_whole_length() -> None:
    from sentiment.inference.registry import policy_for

    policy = policy_for(BatchPolicy(), Device("cpu", scores_every_window=True))
    assert estimate_tokens("x" * 10_000, policy) == 2502
    assert estimate_tokens("x" * 10_000, BatchPolicy()) == 512
    assert batch_length([2502] * 10, policy) == 6  # 16,384 padded tokens per call


class Device(BaseBackend):
    def __init__(self, device: str, scores_every_window: bool = False) -> None:
        self.device = device
        self.scores_every_window = scores_every_window


def test_bulk_work_goes_when_no_live_request_waits_or_after_enough_live_calls() -> None:
    policy = BatchPolicy(live_calls_per_bulk_call=3)
    assert not bulk_goes_next(live_waiting=False, bulk_waiting=False, live_calls_in_a_row=9, policy=policy)
    assert bulk_goes_next(live_waiting=False, bulk_waiting=True, live_calls_in_a_row=0, policy=policy)
    turns = [bulk_goes_next(True, True, calls, policy) for calls in range(5)]
    assert turns == [False, False, False, True, True]
    assert not bulk_goes_next(live_waiting=True, bulk_waiting=False, live_calls_in_a_row=3, policy=policy)


def test_bulk_passes_are_short_only_while_live_traffic_is_recent() -> None:
    policy = BatchPolicy(micro_batch_size=16, bulk_pass_size_near_live=2, live_recent_s=1.0)
    assert bulk_pass_policy(policy, since_live_s=0.2).micro_batch_size == 2
    assert bulk_pass_policy(policy, since_live_s=1.0) is policy
    assert bulk_pass_policy(policy, since_live_s=float("inf")) is policy
    small = BatchPolicy(micro_batch_size=1, bulk_pass_size_near_live=2)
    assert bulk_pass_policy(small, since_live_s=0.0) is small
