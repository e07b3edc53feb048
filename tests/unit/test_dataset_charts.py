"""Stacked 100% bars per group: each label's share, left to right, in percent of the width."""

import pytest

from sentiment.web.dataset_charts import stacked_bars


def test_each_group_bar_splits_the_plot_width_by_label_share() -> None:
    chart = stacked_bars(
        [("United", {"negative": 3, "neutral": 1, "positive": 0}), ("Delta", {"positive": 2})], row_height=40
    )
    assert chart.height == 2 * 40
    united, delta = chart.bars
    assert [(s.label, s.x, s.width, s.percent) for s in united.segments] == [
        ("negative", 0.0, 75.0, 75.0),
        ("neutral", 75.0, 25.0, 25.0),
        ("positive", 100.0, 0.0, 0.0),
    ]
    assert united.total == 4 and delta.y == 40
    assert sum(s.width for s in delta.segments) == pytest.approx(100)
    assert delta.segments[2].css == "bar-positive"


def test_an_empty_group_draws_nothing_rather_than_dividing_by_zero() -> None:
    (bar,) = stacked_bars([("none", {})]).bars
    assert bar.total == 0 and all(s.width == 0 for s in bar.segments)
