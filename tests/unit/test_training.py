"""Fine-tuning's plain parts, exactly: the checks on labelled rows and names, the split, the batch order,
the learning-rate schedule and early stopping."""

from collections import Counter
from itertools import pairwise

import pytest

from sentiment.core.domain import InvalidInput, Label
from sentiment.core.training import (
    EarlyStopping,
    Hyperparameters,
    check_counts,
    check_name,
    learning_rate_factor,
    length_grouped_batches,
    seconds_left,
    stratified_split,
    warmup_steps,
)

LABELS: list[Label] = ["negative"] * 600 + ["neutral"] * 250 + ["positive"] * 150


def test_the_split_keeps_each_labels_share_in_every_part_and_uses_every_row_once() -> None:
    split = stratified_split(LABELS, 0.1, 0.1, seed=7)
    assert sorted(split.train + split.validation + split.test) == list(range(len(LABELS)))
    assert split.sizes == {"train": 800, "validation": 100, "test": 100}
    for part in (split.validation, split.test):
        assert Counter(LABELS[i] for i in part) == {"negative": 60, "neutral": 25, "positive": 15}


def test_the_split_is_fixed_by_the_seed() -> None:
    first, again = stratified_split(LABELS, 0.1, 0.1, seed=7), stratified_split(LABELS, 0.1, 0.1, seed=7)
    other = stratified_split(LABELS, 0.1, 0.1, seed=8)
    assert first == again and first.fingerprint() == again.fingerprint()
    assert first.test != other.test and first.fingerprint() != other.fingerprint()


def test_a_rare_label_still_has_a_row_in_each_held_out_part() -> None:
    split = stratified_split(["negative"] * 50 + ["positive"] * 3, 0.1, 0.1, seed=1)
    labels = ["negative"] * 50 + ["positive"] * 3
    assert [labels[i] for i in split.test].count("positive") == 1
    assert [labels[i] for i in split.validation].count("positive") == 1


def test_length_grouped_batches_hold_every_row_once_with_similar_lengths() -> None:
    lengths = [(i * 37) % 101 for i in range(1000)]
    batches = length_grouped_batches(lengths, 16, seed=3)
    assert sorted(i for batch in batches for i in batch) == list(range(1000))
    assert all(len(batch) <= 16 for batch in batches)
    # Sorted within windows: a batch spans far less than the whole range of lengths (0..100).
    spans = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches if len(b) == 16]
    assert sum(spans) / len(spans) < 10
    assert batches == length_grouped_batches(lengths, 16, seed=3)
    assert batches != length_grouped_batches(lengths, 16, seed=4)


def test_the_learning_rate_warms_up_then_decays_to_zero() -> None:
    total, warmup = 100, warmup_steps(100, 0.06)
    assert warmup == 6
    factors = [learning_rate_factor(step, total, warmup) for step in range(total + 1)]
    assert factors[0] == pytest.approx(1 / 6) and factors[5] == pytest.approx(1.0)
    assert factors[6] == pytest.approx(1.0) and factors[53] == pytest.approx(0.5)
    assert factors[100] == 0.0
    assert all(a >= b for a, b in pairwise(factors[6:]))


def test_early_stopping_keeps_the_best_epoch_and_stops_after_patience() -> None:
    stopping = EarlyStopping(patience=2)
    assert stopping.improved(0.70, 1) and not stopping.should_stop
    assert stopping.improved(0.74, 2)
    assert not stopping.improved(0.74, 3) and not stopping.should_stop  # equal is not better
    assert not stopping.improved(0.72, 4) and stopping.should_stop
    assert (stopping.best, stopping.best_epoch) == (0.74, 2)


def test_too_few_rows_of_a_label_or_a_single_label_are_refused_before_training() -> None:
    assert check_counts(["positive"] * 20 + ["negative"] * 25) == ["negative", "positive"]
    with pytest.raises(InvalidInput, match=r"\(neutral has 19\): each label needs at least 20"):
        check_counts(["positive"] * 20 + ["neutral"] * 19 + ["negative"] * 30)
    with pytest.raises(InvalidInput, match="one class only"):
        check_counts(["positive"] * 100)


def test_a_new_models_name_is_a_safe_new_key() -> None:
    assert check_name("airline-minilm.v2", ["vader"]) == "airline-minilm.v2"
    for bad in ("", "../etc", "Upper", "a b", "-dash", "x" * 65):
        with pytest.raises(InvalidInput, match="model name"):
            check_name(bad, [])
    with pytest.raises(InvalidInput, match="is taken"):
        check_name("vader", ["vader"])


def test_hyperparameters_that_cannot_work_are_refused_together() -> None:
    assert Hyperparameters().checked() == Hyperparameters()
    with pytest.raises(InvalidInput) as refused:
        Hyperparameters(epochs=0, test_share=0.6, batch_size=10, accumulation=3).checked()
    message = refused.value.detail
    assert "epochs must be at least 1" in message and "test share" in message and "accumulation" in message


def test_time_left_is_the_mean_step_times_the_steps_to_go() -> None:
    assert seconds_left(30.0, 10, 40) == 90.0
    assert seconds_left(0.0, 0, 40) is None
