"""What a model is shown of a text longer than its window: the cuts and the pooling of windows, exactly."""

import numpy as np
import pytest

from sentiment.inference.long_texts import first_rows, pool, split_head_tail


def test_first_rows_are_where_each_text_starts() -> None:
    assert first_rows(np.array([0, 1, 1, 1, 2, 3, 3])).tolist() == [0, 1, 4, 5]


def test_a_text_that_fits_is_not_cut() -> None:
    assert split_head_tail([(0, 1)] * 8, room=8) is None


def test_head_and_tail_keep_a_quarter_from_the_start_and_the_rest_from_the_end() -> None:
    offsets = [(2 * i, 2 * i + 1) for i in range(20)]  # token i spans characters 2i..2i+1
    head_end, tail_start = split_head_tail(offsets, room=8)  # type: ignore[misc]
    assert head_end == offsets[1][1]  # 2 tokens of head (a quarter of 8)
    assert tail_start == offsets[20 - 6][0]  # 6 tokens of tail


def test_pool_weights_each_window_by_the_tokens_it_holds() -> None:
    probabilities = np.array([[0.9, 0.1], [0.1, 0.9], [0.3, 0.7], [0.5, 0.5]])
    owners = np.array([0, 0, 0, 1])
    weights = np.array([3.0, 1.0, 0.0, 7.0])
    pooled = pool(probabilities, owners, weights, count=2)
    assert pooled[0] == pytest.approx([(0.9 * 3 + 0.1) / 4, (0.1 * 3 + 0.9) / 4])
    assert pooled[1] == pytest.approx([0.5, 0.5])
