"""Time buckets: the minutes, hours, days and months that times are counted in, always on UTC boundaries.

One definition for the analytics series (minute, hour, day) and the data-set trend (hour,
day, month): flooring a moment to its bucket, the bucket starts in a range, choosing a
width from a span, and the text key naming a bucket. A key is a prefix of the ISO 8601 text
of any time in the bucket ('2015-02-24T11' is that hour, '2015-02' that month), so keys
sort in time order and SQL buckets times that SQLite stores as ISO text by cutting them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from sentiment.core.clock import as_utc

Width = Literal["minute", "hour", "day", "month"]
W = TypeVar("W", bound=str)

# How many characters of 'YYYY-MM-DDTHH:MM:SS' name the bucket of each width.
KEY_LENGTH: dict[Width, int] = {"minute": 16, "hour": 13, "day": 10, "month": 7}
# What a key is completed with to read as a time: its bucket's start.
_KEY_START = "0001-01-01T00:00"
# The fields below each width, set to their first value to floor a moment to its bucket.
_FLOOR: dict[Width, dict[str, Any]] = {  # keyword arguments of datetime.replace
    "minute": {"second": 0, "microsecond": 0},
    "hour": {"minute": 0, "second": 0, "microsecond": 0},
    "day": {"hour": 0, "minute": 0, "second": 0, "microsecond": 0},
    "month": {"day": 1, "hour": 0, "minute": 0, "second": 0, "microsecond": 0},
}
_STEP: dict[Width, timedelta] = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}  # months have no fixed length: they are stepped by the calendar


def floor_to(moment: datetime, width: Width) -> datetime:
    """The start of the bucket the moment falls in (a naive moment is UTC)."""
    return as_utc(moment).replace(**_FLOOR[width])


def ceil_to(moment: datetime, width: Width) -> datetime:
    """The moment itself when it starts a bucket, else the start of the next bucket."""
    floor = floor_to(moment, width)
    return floor if floor == as_utc(moment) else shifted(floor, 1, width)


def shifted(start: datetime, buckets: int, width: Width) -> datetime:
    """The start of the bucket `buckets` after the one beginning at `start`."""
    if width == "month":
        months = start.year * 12 + start.month - 1 + buckets
        return start.replace(year=months // 12, month=months % 12 + 1)
    return start + buckets * _STEP[width]


def bucket_count(since: datetime, until: datetime, width: Width) -> int:
    """How many buckets overlap [since, until), counted without listing them (a range may span millennia)."""
    start, until = floor_to(since, width), as_utc(until)
    if width == "month":
        months = (until.year - start.year) * 12 + until.month - start.month
        return max(0, months + int(floor_to(until, width) != until))
    return max(0, -((start - until) // _STEP[width]))  # ceil((until - start) / step)


def bucket_starts(
    since: datetime, until: datetime, width: Width, *, until_included: bool = False
) -> list[datetime]:
    """Starts of the buckets that overlap [since, until), or [since, until]
    when `until_included`: the first may begin before `since`. The end is never
    stepped past, so a range may end at the last moment a datetime holds."""
    start = floor_to(since, width)
    count = bucket_count(since, until, width)
    if until_included and floor_to(until, width) == as_utc(until) and as_utc(until) >= as_utc(since):
        count += 1  # the bucket starting at `until`
    return [shifted(start, i, width) for i in range(count)]


def choose_width(span: timedelta, finest_first: Sequence[tuple[W, timedelta]], widest: W) -> W:
    """The finest width whose limit the span stays within (limits listed finest first), else `widest`."""
    return next((width for width, up_to in finest_first if span <= up_to), widest)


def bucket_key(moment: datetime, width: Width) -> str:
    """The text naming the UTC bucket a moment falls in: '2015-02-24T11' (hour), '2015-02' (month)."""
    return as_utc(moment).isoformat()[: KEY_LENGTH[width]]


def key_start(key: str) -> datetime:
    """The start of the bucket a key names: '2015-02-24T11', '2015-02-24', '2015-02'; a space may stand for
    the 'T' (SQLite's text) and a whole time reads as itself."""
    return as_utc(datetime.fromisoformat(key + _KEY_START[len(key) :]))
