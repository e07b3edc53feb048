"""Shares per bucket with 95% Wilson intervals: checked against the interval's own definition (the shares p
whose normal test would not reject p-hat), its closed forms at the ends, and exact counts."""

from datetime import UTC, datetime

import pytest

from sentiment.core.shares import Z_95, Interval, share_buckets, wilson


@pytest.mark.parametrize(("successes", "trials"), [(1, 4), (5, 10), (81, 263), (999, 1000), (3, 3000)])
def test_the_bounds_are_where_the_score_test_stops_rejecting(successes: int, trials: int) -> None:
    p_hat = successes / trials
    interval = wilson(successes, trials)
    for bound in (interval.low, interval.high):
        # (p_hat - p)^2 = z^2 p (1 - p) / n at both bounds: the defining quadratic of the Wilson interval.
        assert (p_hat - bound) ** 2 == pytest.approx(Z_95**2 * bound * (1 - bound) / trials, rel=1e-9)
    assert interval.low < p_hat < interval.high


def test_at_zero_and_all_the_interval_ends_at_the_edge_with_the_closed_form_width() -> None:
    n = 10
    assert wilson(0, n) == Interval(0.0, pytest.approx(Z_95**2 / (n + Z_95**2)))  # type: ignore[arg-type]
    assert wilson(n, n) == Interval(pytest.approx(n / (n + Z_95**2)), 1.0)  # type: ignore[arg-type]
    assert wilson(5, 10).low == pytest.approx(0.2366, abs=1e-4)


def test_fewer_rows_give_a_wider_interval() -> None:
    widths = [(i := wilson(n // 4, n)).high - i.low for n in (4, 40, 400, 4000)]
    assert widths == sorted(widths, reverse=True)


def test_no_trials_or_impossible_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one trial"):
        wilson(0, 0)
    with pytest.raises(ValueError, match="0..3"):
        wilson(4, 3)


def test_each_bucket_has_its_shares_n_and_net_sentiment() -> None:
    start = datetime(2015, 2, 20, tzinfo=UTC)
    filled, empty = share_buckets(
        [(start, {"negative": 3, "neutral": 1, "positive": 4, "ignored": 9}), (start, {})]
    )
    assert filled.n == 8 and filled.net == 12.5
    negative = filled.shares["negative"]
    assert negative is not None and negative.percent == 37.5
    assert negative.interval == Interval(100 * wilson(3, 8).low, 100 * wilson(3, 8).high)
    assert (empty.n, empty.net, set(empty.shares.values())) == (0, None, {None})
