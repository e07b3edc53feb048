"""Analytics maths with no I/O: time ranges and buckets, latency histograms, figures made from aggregates.

Every time here is UTC: buckets start on UTC minutes, hours and days, whatever offset a caller wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec

from sentiment.core.buckets import bucket_count, ceil_to, choose_width, floor_to
from sentiment.core.clock import as_utc
from sentiment.core.domain import LABELS, InvalidInput

Bucket = Literal["minute", "hour", "day"]  # the widths of sentiment.core.buckets a series may use
# Automatic bucket: the finest that keeps a chart readable (at most 180 minutes or 168 hours), else days.
AUTO_BUCKETS: tuple[tuple[Bucket, timedelta], ...] = (
    ("minute", timedelta(hours=3)),
    ("hour", timedelta(days=7)),
)
# A series longer than this is refused: about 3.5 days of minutes, 208 days of hours, 13 years of days.
MAX_BUCKETS = 5000
# Bucket maths steps up to a day past either end of a range,
# so a range keeps a day clear of datetime's limits.
EARLIEST_MOMENT = datetime(1, 1, 2, tzinfo=UTC)
LATEST_MOMENT = datetime(9999, 12, 30, tzinfo=UTC)

# Upper bounds (ms) of the latency histogram kept per rollup row; percentiles are estimated from it.
LATENCY_BOUNDS_MS: tuple[float, ...] = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


def latency_column(bound_ms: float) -> str:
    """The rollup column counting predictions at or under `bound_ms`: 2.5 -> latency_le_2_5ms."""
    return f"latency_le_{bound_ms:g}ms".replace(".", "_")


LATENCY_COLUMNS: tuple[str, ...] = tuple(latency_column(bound) for bound in LATENCY_BOUNDS_MS)


def parse_moment(value: str, name: str) -> datetime:
    """An ISO 8601 date or datetime from a query string, in UTC (a date is its midnight; no offset is UTC)."""
    try:
        written = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            f"{name} must be an ISO 8601 date or datetime such as 2026-01-31 or 2026-01-31T12:00:00Z "
            f"(send a + in an offset as %2B); got {value!r}"
        ) from None
    try:
        moment: datetime | None = as_utc(written)
    except OverflowError:  # an offset that moves the moment out of datetime's range
        moment = None
    if moment is None or not EARLIEST_MOMENT <= moment <= LATEST_MOMENT:
        raise InvalidInput(
            f"{name} must lie between {EARLIEST_MOMENT.date()} and {LATEST_MOMENT.date()} (UTC); "
            f"got {value!r}"
        )
    return moment


def choose_bucket(since: datetime, until: datetime) -> Bucket:
    return choose_width(until - since, AUTO_BUCKETS, "day")


class Window(msgspec.Struct, frozen=True):
    """The half-open range [since, until) a summary covers, and the bucket of its time series."""

    since: datetime
    until: datetime
    bucket: Bucket


def resolve_window(
    since: datetime | None,
    until: datetime | None,
    bucket: Bucket | None,
    now: datetime,
    earliest: datetime | None,
) -> Window:
    """Fill the defaults (until: now; since: the earliest stored prediction, or an empty range when there is
    none), check the range, and pick the bucket when none is given."""
    until = as_utc(until) if until is not None else as_utc(now)
    if since is None:
        since = min(as_utc(earliest), until) if earliest is not None else until
    else:
        since = as_utc(since)
        if since >= until:
            raise InvalidInput(f"until ({until.isoformat()}) must be later than since ({since.isoformat()})")
    chosen = bucket or choose_bucket(since, until)
    count = bucket_count(since, until, chosen)
    if count > MAX_BUCKETS:
        raise InvalidInput(
            f"{count} {chosen} buckets from {since.isoformat()} to {until.isoformat()} is more than the "
            f"{MAX_BUCKETS} a series may hold; ask for a wider bucket or a shorter range"
        )
    return Window(since, until, chosen)


class RangeSplit(msgspec.Struct, frozen=True):
    """A range cut at whole hours: `whole_hours` is read from the hourly rollups, `edges` from raw rows."""

    whole_hours: tuple[datetime, datetime] | None
    edges: tuple[tuple[datetime, datetime], ...]


def split_at_hours(since: datetime, until: datetime) -> RangeSplit:
    first, last = ceil_to(since, "hour"), floor_to(until, "hour")
    if first >= last:
        return RangeSplit(None, ((since, until),) if since < until else ())
    edges = tuple((start, end) for start, end in ((since, first), (last, until)) if start < end)
    return RangeSplit((first, last), edges)


def latency_le_counts(latency_ms: float) -> tuple[int, ...]:
    """One prediction's part of the cumulative histogram: 1 for every bound at or above its latency."""
    return tuple(int(latency_ms <= bound) for bound in LATENCY_BOUNDS_MS)


def estimate_percentile(le_counts: Sequence[int], total: int, quantile: float) -> float | None:
    """The quantile of a cumulative histogram, interpolated linearly inside its bucket (as Prometheus'
    histogram_quantile does); above the last bound it answers the last bound."""
    if total == 0:
        return None
    rank = quantile * total
    lower_bound, below = 0.0, 0
    for bound, at_or_under in zip(LATENCY_BOUNDS_MS, le_counts, strict=True):
        if at_or_under >= rank and at_or_under > below:
            return lower_bound + (bound - lower_bound) * (rank - below) / (at_or_under - below)
        lower_bound, below = bound, at_or_under
    return float(LATENCY_BOUNDS_MS[-1])


class Slice(msgspec.Struct, frozen=True):
    """Aggregates of the predictions sharing one model, label and fallback flag (raw rows or rollups)."""

    model_used: str
    sentiment: str
    fallback_used: bool
    predictions: int
    latency_sum_ms: float
    latency_le: tuple[int, ...]


class SeriesCount(msgspec.Struct, frozen=True):
    bucket_start: datetime
    sentiment: str
    predictions: int


class Figures(msgspec.Struct, frozen=True):
    total: int
    distribution: dict[str, float]
    model_usage: dict[str, float]
    average_ms: float
    p50_ms: float | None
    p95_ms: float | None
    fallback_rate: float


def percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def summarise(slices: Iterable[Slice]) -> Figures:
    """Totals, percentages and latency figures from slices; the same slice may come in several parts."""
    total = fallbacks = 0
    latency_sum = 0.0
    by_label: dict[str, int] = dict.fromkeys(LABELS, 0)
    by_model: dict[str, int] = {}
    le = [0] * len(LATENCY_BOUNDS_MS)
    for part in slices:
        total += part.predictions
        latency_sum += part.latency_sum_ms
        by_label[part.sentiment] = by_label.get(part.sentiment, 0) + part.predictions
        by_model[part.model_used] = by_model.get(part.model_used, 0) + part.predictions
        fallbacks += part.predictions if part.fallback_used else 0
        le = [a + b for a, b in zip(le, part.latency_le, strict=True)]
    p50, p95 = estimate_percentile(le, total, 0.50), estimate_percentile(le, total, 0.95)
    return Figures(
        total=total,
        distribution={label: percent(count, total) for label, count in by_label.items()},
        model_usage={
            model: percent(count, total)
            for model, count in sorted(by_model.items(), key=lambda kv: (-kv[1], kv[0]))
        },
        average_ms=round(latency_sum / total, 3) if total else 0.0,
        p50_ms=round(p50, 3) if p50 is not None else None,
        p95_ms=round(p95, 3) if p95 is not None else None,
        fallback_rate=percent(fallbacks, total),
    )


def fill_series(
    counts: Iterable[SeriesCount], starts: Sequence[datetime]
) -> list[tuple[datetime, dict[str, int]]]:
    """Counts per label for every bucket start, zeros where nothing was stored; parts of one bucket add up."""
    series: dict[datetime, dict[str, int]] = {start: dict.fromkeys(LABELS, 0) for start in starts}
    for count in counts:
        labels = series.get(as_utc(count.bucket_start))
        if labels is not None:
            labels[count.sentiment] = labels.get(count.sentiment, 0) + count.predictions
    return list(series.items())
