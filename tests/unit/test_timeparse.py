"""Times in data-set columns: one format detected per column, values read as UTC, trend buckets."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sentiment.core.timeparse import (
    NoTimeFormat,
    detect_format,
    format_named,
    hour_key,
    key_start,
    trend_starts,
    trend_width,
)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_airline_tweets_times_are_day_first_with_dashes() -> None:
    fmt = detect_format(["24-02-2015 11:35", "16-02-2015 23:36", "01-02-2015 00:00"])
    assert fmt.name == "DD-MM-YYYY HH:MM"
    assert fmt.parse("24-02-2015 11:35") == utc(2015, 2, 24, 11, 35)


def test_slashes_are_month_first_unless_a_day_over_twelve_says_otherwise() -> None:
    assert detect_format(["03/04/2015 10:00"]).parse("03/04/2015 10:00") == utc(2015, 3, 4, 10)
    day_first = detect_format(["03/04/2015 10:00", "25/04/2015 10:00"])
    assert day_first.name == "DD/MM/YYYY HH:MM"
    assert day_first.parse("03/04/2015 10:00") == utc(2015, 4, 3, 10)


def test_the_format_reading_most_of_the_sample_wins_over_a_stray_value() -> None:
    fmt = detect_format(["2015-02-24 11:35:00", "2015-02-25 08:00:00", "yesterday"])
    assert fmt.name == "ISO 8601"


@pytest.mark.parametrize(
    ("value", "name", "expected"),
    [
        ("2015-02-24T11:35:52+02:00", "ISO 8601", utc(2015, 2, 24, 9, 35, 52)),
        ("2015-02-24T11:35:52Z", "ISO 8601", utc(2015, 2, 24, 11, 35, 52)),
        ("2015-02-24", "ISO 8601", utc(2015, 2, 24)),
        (
            "Tue Feb 24 11:35:52 +0000 2015",
            "Twitter (Wed Feb 24 11:35:52 +0000 2015)",
            utc(2015, 2, 24, 11, 35, 52),
        ),
        ("Tue, 24 Feb 2015 11:35:52 -0500", "RFC 2822", utc(2015, 2, 24, 16, 35, 52)),
        ("1424777752", "Unix time", utc(2015, 2, 24, 11, 35, 52)),
        ("1424777752000", "Unix time", utc(2015, 2, 24, 11, 35, 52)),
        ("24.02.2015 11:35", "DD.MM.YYYY HH:MM", utc(2015, 2, 24, 11, 35)),
        ("2/24/2015 11:35 PM", "MM/DD/YYYY hh:MM AM/PM", utc(2015, 2, 24, 23, 35)),
    ],
)
def test_common_formats_are_detected_and_read_as_utc(value: str, name: str, expected: datetime) -> None:
    fmt = detect_format([value])
    assert fmt.name == name
    assert fmt.parse(value) == expected


def test_a_value_in_another_format_raises_value_error() -> None:
    fmt = detect_format(["24-02-2015 11:35"])
    with pytest.raises(ValueError):
        fmt.parse("2015-02-24 11:35")


def test_no_known_format_names_the_values_it_could_not_read() -> None:
    with pytest.raises(NoTimeFormat, match="'soon', 'later'"):
        detect_format(["soon", "later", ""])
    with pytest.raises(NoTimeFormat, match="empty"):
        detect_format(["", "  "])


def test_a_format_can_be_named_or_given_as_a_strptime_pattern() -> None:
    assert format_named("DD-MM-YYYY HH:MM") == detect_format(["24-02-2015 11:35"])
    pattern = format_named("%Y%m%d-%H%M")
    assert pattern is not None and pattern.parse("20150224-1135") == utc(2015, 2, 24, 11, 35)
    assert format_named("day first") is None


def test_hour_keys_sort_in_time_order_and_name_their_bucket_start() -> None:
    moment = datetime(2015, 2, 24, 23, 35, tzinfo=timezone(timedelta(hours=-5)))
    assert hour_key(moment) == "2015-02-25T04"
    assert key_start("2015-02-25T04") == utc(2015, 2, 25, 4)
    assert key_start("2015-02-25") == utc(2015, 2, 25)
    assert key_start("2015-02") == utc(2015, 2, 1)


def test_trend_is_hourly_up_to_ten_days_then_daily_then_monthly() -> None:
    assert trend_width("2015-02-16T23", "2015-02-24T11") == "hour"
    assert trend_width("2015-02-01T00", "2015-02-11T01") == "day"
    assert trend_width("2012-01-01T00", "2015-02-11T01") == "month"


def test_trend_starts_cover_both_ends_with_no_gap() -> None:
    assert trend_starts(utc(2015, 2, 24, 22), utc(2015, 2, 25, 1), "hour", ())[0] == [
        utc(2015, 2, 24, 22),
        utc(2015, 2, 24, 23),
        utc(2015, 2, 25, 0),
        utc(2015, 2, 25, 1),
    ]
    assert trend_starts(utc(2015, 2, 27, 5), utc(2015, 3, 1, 2), "day", ())[0] == [
        utc(2015, 2, 27),
        utc(2015, 2, 28),
        utc(2015, 3, 1),
    ]
    assert trend_starts(utc(2014, 11, 1), utc(2015, 2, 1), "month", ())[0] == [
        utc(2014, 11, 1),
        utc(2014, 12, 1),
        utc(2015, 1, 1),
        utc(2015, 2, 1),
    ]


def test_a_trend_over_centuries_lists_only_the_buckets_holding_rows() -> None:
    filled = [utc(9999, 12, 1), utc(1, 1, 1), utc(2015, 2, 1)]
    assert trend_starts(utc(1, 1, 1), utc(9999, 12, 1), "month", filled) == (sorted(filled), False)
    starts, complete = trend_starts(utc(1915, 3, 1), utc(2015, 2, 1), "month", filled)
    assert (len(starts), complete) == (1200, True)  # a century of months is still drawn whole
    starts, complete = trend_starts(utc(1915, 2, 1), utc(2015, 2, 1), "month", filled)
    assert (starts, complete) == (sorted(filled), False)
