"""Time buckets: UTC floors for every width, starts listed by the calendar, widths chosen from spans, keys."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sentiment.core.buckets import (
    Width,
    bucket_count,
    bucket_key,
    bucket_starts,
    ceil_to,
    choose_width,
    floor_to,
    key_start,
    shifted,
)
from sentiment.core.clock import as_utc

WIDTHS: tuple[Width, ...] = ("minute", "hour", "day", "month")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]  # callers give year, month, day at least


def test_naive_times_are_utc_and_offsets_are_converted_to_it() -> None:
    assert as_utc(datetime(2026, 3, 1, 10)) == utc(2026, 3, 1, 10)
    assert as_utc(datetime(2026, 3, 1, 12, tzinfo=timezone(timedelta(hours=2)))).tzinfo is UTC
    assert as_utc(datetime(2026, 3, 1, 12, tzinfo=timezone(timedelta(hours=2)))) == utc(2026, 3, 1, 10)
    assert as_utc(None) is None


def test_a_moment_floors_to_the_utc_start_of_its_bucket_for_every_width() -> None:
    # 2026-02-28 23:30:15 UTC, written two hours ahead: its UTC day and month are the previous ones.
    moment = datetime(2026, 3, 1, 1, 30, 15, 500, tzinfo=timezone(timedelta(hours=2)))
    assert floor_to(moment, "minute") == utc(2026, 2, 28, 23, 30)
    assert floor_to(moment, "hour") == utc(2026, 2, 28, 23)
    assert floor_to(moment, "day") == utc(2026, 2, 28)
    assert floor_to(moment, "month") == utc(2026, 2, 1)


def test_a_bucket_start_ceils_to_itself_and_any_later_moment_to_the_next_start() -> None:
    assert ceil_to(utc(2026, 3, 1), "month") == utc(2026, 3, 1)
    assert ceil_to(utc(2026, 12, 1, 0, 0, 1), "month") == utc(2027, 1, 1)
    assert ceil_to(utc(2026, 3, 1, 9, 0, 0), "hour") == utc(2026, 3, 1, 9)


def test_months_step_by_the_calendar_across_a_year_end_and_back() -> None:
    assert shifted(utc(2026, 11, 1), 3, "month") == utc(2027, 2, 1)
    assert shifted(utc(2026, 1, 1), -1, "month") == utc(2025, 12, 1)
    assert shifted(utc(2026, 2, 28), 2, "day") == utc(2026, 3, 2)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(
    ("since", "until"),
    [
        (utc(2026, 1, 31, 23, 59, 30), utc(2026, 3, 1)),  # until on every width's boundary
        (utc(2026, 1, 31, 23, 59, 30), utc(2026, 3, 1, 0, 0, 1)),  # just past it
        (utc(2026, 3, 1), utc(2026, 3, 1)),  # empty
        (utc(2026, 3, 2), utc(2026, 3, 1)),  # backwards
    ],
)
def test_the_count_of_buckets_in_a_half_open_range_is_the_number_of_starts_listed(
    since: datetime, until: datetime, width: Width
) -> None:
    starts = bucket_starts(since, until, width)
    assert len(starts) == bucket_count(since, until, width)
    assert all(start < until and shifted(start, 1, width) > since for start in starts)
    assert starts == sorted(set(starts))


def test_the_month_buckets_of_a_range_begin_before_it_and_stop_short_of_its_end() -> None:
    assert bucket_starts(utc(2025, 11, 15), utc(2026, 2, 1), "month") == [
        utc(2025, 11, 1),
        utc(2025, 12, 1),
        utc(2026, 1, 1),
    ]


def test_an_included_end_adds_the_bucket_that_starts_at_it_and_no_other() -> None:
    since = utc(2026, 3, 1, 22, 30)
    assert bucket_starts(since, utc(2026, 3, 2, 1), "hour", until_included=True)[-1] == utc(2026, 3, 2, 1)
    assert bucket_starts(since, utc(2026, 3, 2, 1, 5), "hour", until_included=True)[-1] == utc(2026, 3, 2, 1)
    assert bucket_starts(since, since, "hour", until_included=True) == [utc(2026, 3, 1, 22)]


def test_a_range_through_the_last_month_a_datetime_holds_lists_it_without_overflowing() -> None:
    starts = bucket_starts(utc(9999, 11, 5), utc(9999, 12, 1), "month", until_included=True)
    assert starts == [utc(9999, 11, 1), utc(9999, 12, 1)]


def test_the_finest_width_whose_limit_holds_the_span_is_chosen_limits_included() -> None:
    limits: tuple[tuple[Width, timedelta], ...] = (
        ("minute", timedelta(hours=3)),
        ("hour", timedelta(days=7)),
    )
    assert choose_width(timedelta(hours=3), limits, "day") == "minute"
    assert choose_width(timedelta(hours=3, microseconds=1), limits, "day") == "hour"
    assert choose_width(timedelta(days=7, seconds=1), limits, "day") == "day"
    assert choose_width(timedelta(0), (), "month") == "month"


def test_bucket_keys_are_iso_prefixes_that_read_back_as_their_bucket_start() -> None:
    moment = datetime(2015, 2, 24, 12, 35, 52, tzinfo=timezone(timedelta(hours=1)))  # 11:35:52 UTC
    keys = {width: bucket_key(moment, width) for width in WIDTHS}
    assert keys == {
        "minute": "2015-02-24T11:35",
        "hour": "2015-02-24T11",
        "day": "2015-02-24",
        "month": "2015-02",
    }
    assert all(key_start(keys[width]) == floor_to(moment, width) for width in WIDTHS)


def test_sqlite_time_text_and_its_prefixes_read_as_utc_times() -> None:
    assert key_start("2026-03-01 10:30:15.250000") == utc(2026, 3, 1, 10, 30, 15, 250000)
    assert key_start("2026-03-01 10:30") == utc(2026, 3, 1, 10, 30)
    assert key_start("2026-03-01 10") == utc(2026, 3, 1, 10)


def test_keys_of_years_before_1000_are_padded_so_that_they_still_sort_and_cut() -> None:
    key = bucket_key(utc(74, 6, 26, 5), "hour")
    assert key == "0074-06-26T05"
    assert key_start(key[:7]) == utc(74, 6, 1)
