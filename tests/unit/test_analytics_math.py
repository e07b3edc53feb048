"""Analytics maths: ranges, buckets, edges cut at whole hours, latency histograms, figures from slices."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sentiment.core.analytics_math import (
    LATENCY_BOUNDS_MS,
    LATENCY_COLUMNS,
    MAX_BUCKETS,
    RangeSplit,
    SeriesCount,
    Slice,
    Window,
    choose_bucket,
    estimate_percentile,
    fill_series,
    latency_le_counts,
    parse_moment,
    resolve_window,
    split_at_hours,
    summarise,
)
from sentiment.core.buckets import bucket_starts, ceil_to, floor_to
from sentiment.core.domain import InvalidInput
from sentiment.storage.tables import PredictionRollupRow


def at(hour: int, minute: int = 0, second: int = 0, day: int = 1) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


def test_moments_are_read_as_utc_whatever_offset_or_precision_was_written() -> None:
    assert parse_moment("2026-03-01T10:30:00Z", "since") == at(10, 30)
    assert parse_moment("2026-03-01T12:30:00+02:00", "since") == at(10, 30)
    assert parse_moment("2026-03-01T10:30:00", "since") == at(10, 30)
    assert parse_moment("2026-03-01", "since") == at(0)
    assert parse_moment("2026-03-01 10:30", "since") == at(10, 30)


def test_a_moment_that_is_not_iso_8601_is_refused_with_the_parameter_name_and_a_hint() -> None:
    with pytest.raises(InvalidInput, match=r"since must be an ISO 8601 .* %2B.*'yesterday'"):
        parse_moment("yesterday", "since")
    # A + sent unencoded arrives as a space.
    with pytest.raises(InvalidInput, match="until"):
        parse_moment("2026-03-01T12:30:00 02:00", "until")


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:10:31+01:00",  # the offset moves it before year 1: found by the API fuzz
        "0001-01-01T12:00:00Z",
        "9999-12-31T12:00:00Z",
        "9999-12-31T23:59:59-05:00",
    ],
)
def test_a_moment_at_the_edge_of_datetimes_range_is_refused_not_overflowed(value: str) -> None:
    with pytest.raises(InvalidInput, match=r"since must lie between 0001-01-02 and 9999-12-30 \(UTC\)"):
        parse_moment(value, "since")


def test_the_extreme_accepted_moments_still_make_buckets() -> None:
    earliest, latest = parse_moment("0001-01-02", "since"), parse_moment("9999-12-30T00:00:00Z", "until")
    assert floor_to(earliest, "day") == earliest
    assert ceil_to(latest + timedelta(seconds=1), "day") == datetime(9999, 12, 31, tzinfo=UTC)
    assert (
        split_at_hours(latest - timedelta(minutes=90), latest + timedelta(minutes=30)).whole_hours is not None
    )


def test_floor_and_ceil_to_each_bucket() -> None:
    moment = datetime(2026, 3, 1, 10, 30, 15, 500, tzinfo=timezone(timedelta(hours=2)))  # 08:30:15 UTC
    assert floor_to(moment, "minute") == at(8, 30)
    assert floor_to(moment, "hour") == at(8)
    assert floor_to(moment, "day") == at(0)
    assert ceil_to(moment, "hour") == at(9)
    assert ceil_to(at(9), "hour") == at(9)
    assert ceil_to(at(9, 0, 1), "day") == at(0, day=2)


def test_bucket_is_minutes_up_to_three_hours_hours_up_to_seven_days_then_days() -> None:
    assert choose_bucket(at(0), at(3)) == "minute"
    assert choose_bucket(at(0), at(3, 0, 1)) == "hour"
    assert choose_bucket(at(0), at(0, day=8)) == "hour"
    assert choose_bucket(at(0), at(0, 0, 1, day=8)) == "day"


def test_bucket_starts_cover_every_bucket_the_range_touches() -> None:
    assert bucket_starts(at(10, 17), at(13, 5), "hour") == [at(10), at(11), at(12), at(13)]
    assert bucket_starts(at(10), at(12), "hour") == [at(10), at(11)]
    assert bucket_starts(at(10, 59, 30), at(11, 1), "minute") == [at(10, 59), at(11, 0)]
    assert bucket_starts(at(23), at(1, day=3), "day") == [at(0), at(0, day=2), at(0, day=3)]
    assert bucket_starts(at(10), at(10), "hour") == []


def test_window_defaults_to_now_and_the_earliest_prediction_hour() -> None:
    now = at(14, 20)
    assert resolve_window(None, None, None, now, earliest=at(10)) == Window(at(10), now, "hour")
    assert resolve_window(at(14), None, None, now, earliest=None) == Window(at(14), now, "minute")
    assert resolve_window(None, at(12), "day", now, earliest=at(10)) == Window(at(10), at(12), "day")


def test_window_with_nothing_stored_or_everything_later_is_empty() -> None:
    assert resolve_window(None, None, None, at(14), earliest=None) == Window(at(14), at(14), "minute")
    assert resolve_window(None, at(9), None, at(14), earliest=at(10)) == Window(at(9), at(9), "minute")


def test_until_not_after_since_is_refused() -> None:
    with pytest.raises(InvalidInput, match="until .* must be later than since"):
        resolve_window(at(12), at(11), None, at(14), earliest=None)
    with pytest.raises(InvalidInput, match="must be later"):
        resolve_window(at(12), at(12), None, at(14), earliest=None)


def test_a_series_with_too_many_buckets_is_refused() -> None:
    since = at(0)
    resolve_window(since, since + timedelta(minutes=MAX_BUCKETS), "minute", at(0, day=20), None)
    with pytest.raises(InvalidInput, match=f"{MAX_BUCKETS + 1} minute buckets .* wider bucket"):
        resolve_window(since, since + timedelta(minutes=MAX_BUCKETS + 1), "minute", at(0, day=20), None)


def test_ranges_are_cut_into_whole_hours_and_raw_edges() -> None:
    assert split_at_hours(at(10, 30), at(14, 15)) == RangeSplit(
        (at(11), at(14)), ((at(10, 30), at(11)), (at(14), at(14, 15)))
    )
    assert split_at_hours(at(10), at(14)) == RangeSplit((at(10), at(14)), ())
    assert split_at_hours(at(10, 30), at(11)) == RangeSplit(None, ((at(10, 30), at(11)),))
    assert split_at_hours(at(10, 30), at(11, 15)) == RangeSplit(None, ((at(10, 30), at(11, 15)),))
    assert split_at_hours(at(10), at(11, 15)) == RangeSplit((at(10), at(11)), ((at(11), at(11, 15)),))
    assert split_at_hours(at(10), at(10)) == RangeSplit(None, ())


def test_histogram_columns_match_the_rollup_table() -> None:
    assert LATENCY_COLUMNS[:3] == ("latency_le_1ms", "latency_le_2_5ms", "latency_le_5ms")
    assert set(LATENCY_COLUMNS) <= set(PredictionRollupRow.__table__.columns.keys())


def test_a_latency_counts_in_every_bucket_whose_bound_it_does_not_exceed() -> None:
    assert latency_le_counts(1.0) == (1,) * len(LATENCY_BOUNDS_MS)
    assert latency_le_counts(1.25) == (0,) + (1,) * (len(LATENCY_BOUNDS_MS) - 1)
    assert latency_le_counts(10.0)[:5] == (0, 0, 0, 1, 1)
    assert latency_le_counts(20000.0) == (0,) * len(LATENCY_BOUNDS_MS)


def test_percentiles_are_interpolated_inside_their_bucket() -> None:
    le = [0, 1, 1, 1, 2, 4, 4, 4, 4, 4, 4, 4, 4]  # latencies 2, 20, 30, 40 ms
    assert estimate_percentile(le, 4, 0.50) == 25.0  # rank 2: the top of (10, 25]
    assert estimate_percentile(le, 4, 0.95) == 47.5  # rank 3.8: 25 + 25 * (3.8 - 2) / 2
    assert estimate_percentile(le, 4, 0.25) == 2.5  # rank 1: the top of (1, 2.5]
    assert estimate_percentile([0] * 13, 0, 0.5) is None
    assert estimate_percentile([0] * 13, 3, 0.5) == 10000.0  # all above the last bound


def _slice(model: str, label: str, n: int, latencies: list[float], fallback: bool = False) -> Slice:
    le = tuple(sum(column) for column in zip(*(latency_le_counts(ms) for ms in latencies), strict=True))
    return Slice(model, label, fallback, n, sum(latencies), le)


def test_figures_are_percentages_of_the_total_with_every_label_present() -> None:
    figures = summarise(
        [
            _slice("b", "positive", 1, [30.0]),
            _slice("a", "negative", 1, [20.0]),
            _slice("vader", "neutral", 1, [2.0], fallback=True),
            _slice("b", "positive", 1, [40.0]),  # a second part of the same slice (rollups plus an edge)
        ]
    )
    assert figures.total == 4
    assert figures.distribution == {"negative": 25.0, "neutral": 25.0, "positive": 50.0}
    assert list(figures.model_usage.items()) == [("b", 50.0), ("a", 25.0), ("vader", 25.0)]
    assert (figures.average_ms, figures.p50_ms, figures.p95_ms, figures.fallback_rate) == (
        23.0,
        25.0,
        47.5,
        25.0,
    )


def test_no_predictions_give_zeros_and_no_percentiles() -> None:
    figures = summarise([])
    assert figures.total == 0
    assert figures.distribution == {"negative": 0.0, "neutral": 0.0, "positive": 0.0}
    assert figures.model_usage == {}
    assert (figures.average_ms, figures.p50_ms, figures.p95_ms, figures.fallback_rate) == (
        0.0,
        None,
        None,
        0.0,
    )


def test_percentages_are_rounded_to_two_decimals() -> None:
    figures = summarise([_slice("a", "positive", 2, [1.0, 1.0]), _slice("a", "negative", 1, [1.0])])
    assert figures.distribution == {"negative": 33.33, "neutral": 0.0, "positive": 66.67}


def test_series_fill_empty_buckets_with_zeros_and_add_parts_of_one_bucket() -> None:
    starts = [at(10), at(11), at(12)]
    counts = [
        SeriesCount(at(10), "positive", 2),
        SeriesCount(at(10), "positive", 1),  # the raw edge of the same hour
        SeriesCount(datetime(2026, 3, 1, 12), "negative", 4),  # naive: UTC
    ]
    assert fill_series(counts, starts) == [
        (at(10), {"negative": 0, "neutral": 0, "positive": 3}),
        (at(11), {"negative": 0, "neutral": 0, "positive": 0}),
        (at(12), {"negative": 4, "neutral": 0, "positive": 0}),
    ]


def test_a_range_of_millennia_in_minutes_is_refused_without_listing_its_buckets() -> None:
    from sentiment.core.buckets import bucket_count

    since, until = datetime(74, 6, 26, tzinfo=UTC), datetime(5948, 4, 27, tzinfo=UTC)
    assert bucket_count(since, until, "minute") > 3_000_000_000
    with pytest.raises(InvalidInput, match="more than the 5000"):
        resolve_window(since, until, "minute", now=until, earliest=None)
