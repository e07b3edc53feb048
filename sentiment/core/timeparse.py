"""Times in data-set columns: the common formats, one detected per column from a sample, read as UTC.

A column holds one format (a spreadsheet export, an API dump), so the format is chosen
once from a sample and every value is then read with it: that settles day-first
against month-first once for the whole column (`05-02-2015` means the same thing on
every row) and keeps reading fast. Values without an offset are taken as UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal

import msgspec

from sentiment.core.buckets import bucket_count, bucket_key, bucket_starts, choose_width, key_start
from sentiment.core.clock import as_utc

Parse = Callable[[str], datetime]


class TimeFormat(msgspec.Struct, frozen=True):
    """A format a column can be in: `name` is what people call it (shown in messages and on the page)."""

    name: str
    strptime: str | None = None  # None: a format read by a function of its own (ISO 8601, epoch, RFC 2822)

    def parse(self, value: str) -> datetime:
        """The value as an aware UTC datetime; ValueError when it is not in this format."""
        text = value.strip()
        if self.strptime is not None:
            moment = datetime.strptime(text, self.strptime)
        else:
            moment = _SPECIAL[self.name](text)
        return as_utc(moment)


def _iso(text: str) -> datetime:
    # fromisoformat takes dates, "T" or " " separators, fractions and offsets, including "Z" (Python 3.11).
    if len(text) < 10 or text[4] != "-":
        raise ValueError("not ISO 8601")
    return datetime.fromisoformat(text)


def _epoch(text: str) -> datetime:
    """Unix time in seconds (10 digits, maybe a fraction) or milliseconds (13 digits)."""
    whole = text.split(".", 1)[0]
    if not whole.isdigit() or len(whole) not in (10, 13):
        raise ValueError("not a Unix time")
    seconds = float(text) / (1000 if len(whole) == 13 else 1)
    return datetime.fromtimestamp(seconds, UTC)


def _rfc2822(text: str) -> datetime:
    try:
        return parsedate_to_datetime(text)
    except (TypeError, IndexError) as error:
        raise ValueError(str(error)) from None


_SPECIAL: dict[str, Parse] = {
    "ISO 8601": _iso,
    "Unix time": _epoch,
    "RFC 2822": _rfc2822,
}

# In order of preference: where a sample fits two formats equally well (every day <= 12), the earlier one
# wins. Dashes and dots are day-first (European exports, and airline_tweets.csv's `24-02-2015 11:35`); slashes
# are month-first, as US spreadsheets write them, unless a day over 12 shows otherwise.
FORMATS: tuple[TimeFormat, ...] = (
    TimeFormat("ISO 8601"),
    TimeFormat("DD-MM-YYYY HH:MM", "%d-%m-%Y %H:%M"),
    TimeFormat("DD-MM-YYYY HH:MM:SS", "%d-%m-%Y %H:%M:%S"),
    TimeFormat("DD-MM-YYYY", "%d-%m-%Y"),
    TimeFormat("MM-DD-YYYY HH:MM", "%m-%d-%Y %H:%M"),
    TimeFormat("MM-DD-YYYY HH:MM:SS", "%m-%d-%Y %H:%M:%S"),
    TimeFormat("MM-DD-YYYY", "%m-%d-%Y"),
    TimeFormat("MM/DD/YYYY HH:MM", "%m/%d/%Y %H:%M"),
    TimeFormat("MM/DD/YYYY HH:MM:SS", "%m/%d/%Y %H:%M:%S"),
    TimeFormat("MM/DD/YYYY hh:MM AM/PM", "%m/%d/%Y %I:%M %p"),
    TimeFormat("MM/DD/YYYY hh:MM:SS AM/PM", "%m/%d/%Y %I:%M:%S %p"),
    TimeFormat("MM/DD/YYYY", "%m/%d/%Y"),
    TimeFormat("DD/MM/YYYY HH:MM", "%d/%m/%Y %H:%M"),
    TimeFormat("DD/MM/YYYY HH:MM:SS", "%d/%m/%Y %H:%M:%S"),
    TimeFormat("DD/MM/YYYY", "%d/%m/%Y"),
    TimeFormat("DD.MM.YYYY HH:MM", "%d.%m.%Y %H:%M"),
    TimeFormat("DD.MM.YYYY HH:MM:SS", "%d.%m.%Y %H:%M:%S"),
    TimeFormat("DD.MM.YYYY", "%d.%m.%Y"),
    TimeFormat("YYYY/MM/DD HH:MM:SS", "%Y/%m/%d %H:%M:%S"),
    TimeFormat("YYYY/MM/DD HH:MM", "%Y/%m/%d %H:%M"),
    TimeFormat("YYYY/MM/DD", "%Y/%m/%d"),
    # Twitter's API: "Wed Feb 24 11:35:52 +0000 2015".
    TimeFormat("Twitter (Wed Feb 24 11:35:52 +0000 2015)", "%a %b %d %H:%M:%S %z %Y"),
    TimeFormat("RFC 2822"),
    TimeFormat("Unix time"),
)


def format_named(name: str) -> TimeFormat | None:
    """A known format by its name, or a strptime pattern (containing %) given by the caller."""
    known = next((fmt for fmt in FORMATS if fmt.name == name), None)
    if known is not None:
        return known
    return TimeFormat(name, name) if "%" in name else None


class NoTimeFormat(ValueError):
    """No known format reads the sample."""


def detect_format(sample: Iterable[str]) -> TimeFormat:
    """The format that reads the most of the sample's non-empty values (the earliest in FORMATS on a tie)."""
    values = [value.strip() for value in sample if value.strip()]
    if not values:
        raise NoTimeFormat("the column is empty in the rows looked at")
    best, best_count = None, 0
    for fmt in FORMATS:
        count = 0
        for value in values:
            try:
                fmt.parse(value)
            except (ValueError, OverflowError):
                continue
            count += 1
        if count > best_count:
            best, best_count = fmt, count
            if count == len(values):
                break
    if best is None:
        examples = ", ".join(repr(value) for value in values[:3])
        raise NoTimeFormat(
            f"values such as {examples} are in no known time format (ISO 8601, DD-MM-YYYY HH:MM, MM/DD/YYYY, "
            "Unix time, ...)"
        )
    return best


# -- the time trend of a data set ----------------------------------------------------------------------------
# Rows are counted per UTC hour; the trend sums the hours into buckets of one of these widths.

TrendWidth = Literal["hour", "day", "month"]
# A trend of up to 10 days is drawn per hour (240 points), up to 1000 days (~3 years) per day, else per month.
TREND_WIDTHS: tuple[tuple[TrendWidth, timedelta], ...] = (
    ("hour", timedelta(days=10)),
    ("day", timedelta(days=1000)),
)


def hour_key(moment: datetime) -> str:
    """The key a row's time is counted under: its UTC hour, 'YYYY-MM-DDTHH'."""
    return bucket_key(moment, "hour")


def trend_width(first_key: str, last_key: str) -> TrendWidth:
    return choose_width(key_start(last_key) - key_start(first_key), TREND_WIDTHS, "month")


# A panel among several (one per group) stays readable with at most this many buckets: shares per hour over a
# week of tweets are mostly noise from a handful of rows each.
PANEL_POINTS = 40


def panel_width(first_key: str, last_key: str, finest: TrendWidth) -> TrendWidth:
    """The finest width, no finer than `finest`, that draws the span in at most PANEL_POINTS buckets."""
    first, last = key_start(first_key), key_start(last_key)
    widths: tuple[TrendWidth, ...] = ("hour", "day", "month")
    return next(
        (w for w in widths[widths.index(finest) :] if bucket_count(first, last, w) < PANEL_POINTS), "month"
    )


# A hundred years of months. Past it (rows dated centuries apart, year 1 and 9999: typos, placeholders) a
# trend that listed every bucket would be megabytes for a handful of rows.
MAX_TREND_POINTS = 1200


def trend_starts(
    first: datetime, last: datetime, width: TrendWidth, filled: Iterable[datetime]
) -> tuple[list[datetime], bool]:
    """The buckets a trend draws, and whether they are all of them: every bucket from that of `first` to that
    of `last`, or, when they would be more than MAX_TREND_POINTS, only the `filled` ones (holding rows)."""
    if bucket_count(first, last, width) < MAX_TREND_POINTS:
        return bucket_starts(first, last, width, until_included=True), True
    return sorted(filled), False
