"""Chart geometry as plain logic: scales, calendar ticks and SVG path data. Templates draw the SVG from these
numbers, so charts are server-rendered, need no script, and run under the pages' Content-Security-Policy.

Charts fill their card's width at any screen size with text at a fixed pixel size: horizontal positions are
percentages of the width (text, ticks, bars, hover areas), and lines and bands are drawn in a nested SVG
stretched to the width (`preserveAspectRatio="none"`, x from 0 to 1000, y in pixels) with strokes that do not
stretch. Nothing is scaled as a picture, so a 390 px phone shows 12 px labels as a 1366 px screen does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Literal, TypeVar

import msgspec

from sentiment.core.buckets import shifted
from sentiment.core.clock import as_utc
from sentiment.core.domain import LABELS
from sentiment.core.shares import share_buckets

Anchor = Literal["start", "middle", "end"]
VIEW_WIDTH = 1000  # the nested SVG's x range, across the whole width
MAX_TIME_TICKS = 6  # what fits under a 390 px wide chart at 12 px
T = TypeVar("T")


class Tick(msgspec.Struct, frozen=True):
    position: float
    label: str
    anchor: Anchor = "middle"


class Bar(msgspec.Struct, frozen=True):
    label: str
    value: float
    text: str
    y: float
    percent: float  # its length, in percent of the width
    css: str


class BarChart(msgspec.Struct, frozen=True):
    height: int
    bars: list[Bar]


class Series(msgspec.Struct, frozen=True):
    name: str
    css: str
    path: str  # in the nested SVG's units
    partial_path: str  # the segment into the bucket that is still filling, drawn dashed ('' when none)
    dots: list[
        tuple[float, float]
    ] = []  # values with no neighbour to join (x percent, y pixels): drawn as dots


class Band(msgspec.Struct, frozen=True):
    name: str
    css: str
    path: str


class Column(msgspec.Struct, frozen=True):
    """A bucket's hover area, as wide as the bucket: its title lists the values."""

    x: float
    width: float
    title: str


class TimeChart(msgspec.Struct, frozen=True):
    height: int
    plot_top: int
    plot_height: int
    bottom: int
    series: list[Series]
    bands: list[Band]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    columns: list[Column]
    caption: str
    empty: bool


class Bucket(msgspec.Struct, frozen=True):
    """One point of a time chart: its bucket [start, end), the value of each series (None: no value, a gap in
    the line) and, optionally, each series' interval."""

    start: datetime
    end: datetime
    values: dict[str, float | None]
    intervals: dict[str, tuple[float, float]] = {}
    note: str = ""


def nice_ticks(maximum: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least `maximum` (1, 2 or 5 times a power of ten apart)."""
    if maximum <= 0:
        return [0.0, 1.0]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(math.ceil(maximum / step) + 1)]


def format_number(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if abs(value) >= 1_000:
        return f"{value / 1_000:g}k"
    return f"{value:g}"


def bar_chart(items: Sequence[tuple[str, float]], unit: str = "", row_height: int = 36) -> BarChart:
    """Horizontal bars, one per item, each under its label with its value at the right end of that line; the
    longest bar on a round scale (a share in percent: on 0-100%)."""
    top = 100.0 if unit == "%" else nice_ticks(max((value for _, value in items), default=0.0))[-1]
    bars = [
        Bar(
            label=label,
            value=value,
            text=f"{value:.1f}{unit}" if unit == "%" else f"{format_number(value)}{unit}",
            y=index * row_height,
            percent=round(100 * value / top, 2) if top else 0.0,
            css=f"bar-{label}" if label in {"negative", "neutral", "positive"} else "bar",
        )
        for index, (label, value) in enumerate(items)
    ]
    return BarChart(height=len(items) * row_height, bars=bars)


# -- time axes ----------------------------------------------------------------------------------------------

Step = tuple[Literal["minute", "hour", "day", "week", "month", "year"], int]
_STEPS: tuple[Step, ...] = (
    ("minute", 1),
    ("minute", 5),
    ("minute", 10),
    ("minute", 15),
    ("minute", 30),
    ("hour", 1),
    ("hour", 2),
    ("hour", 3),
    ("hour", 6),
    ("hour", 12),
    ("day", 1),
    ("day", 2),
    ("week", 1),
    ("week", 2),
    ("month", 1),
    ("month", 2),
    ("month", 3),
    ("month", 6),
    ("year", 1),
    ("year", 2),
    ("year", 5),
    ("year", 10),
    ("year", 25),
    ("year", 50),
    ("year", 100),
    ("year", 250),
    ("year", 500),
    ("year", 1000),
    ("year", 2000),
    ("year", 5000),
)
_APPROX_SECONDS = {
    "minute": 60,
    "hour": 3600,
    "day": 86_400,
    "week": 604_800,
    "month": 2_629_746,
    "year": 31_556_952,
}


def _first_boundary(moment: datetime, step: Step) -> datetime:
    """The first calendar boundary of `step` at or after `moment` (UTC): whole minutes, hours of the day,
    midnights, Mondays, months of the year, years divisible by the count."""
    unit, count = step
    if unit in ("minute", "hour"):
        size = timedelta(minutes=count) if unit == "minute" else timedelta(hours=count)
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return day + size * math.ceil((moment - day) / size)
    if unit in ("day", "week"):
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        if day < moment:
            day += timedelta(days=1)
        if unit == "week":
            day += timedelta(days=-day.weekday() % 7)
            return day
        ordinal = day.toordinal()
        return day + timedelta(days=-ordinal % count)
    if unit == "year":
        january = moment.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        year = january.year if january == moment else january.year + 1
        return january.replace(year=year + -year % count)
    month = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if month < moment:
        month = shifted(month, 1, "month")
    return shifted(month, -(month.month - 1) % count, "month")


def _next_boundary(moment: datetime, step: Step) -> datetime:
    unit, count = step
    if unit == "minute":
        return moment + timedelta(minutes=count)
    if unit == "hour":
        return moment + timedelta(hours=count)
    if unit in ("day", "week"):
        return moment + timedelta(days=count * (7 if unit == "week" else 1))
    return shifted(moment, count * (12 if unit == "year" else 1), "month")


def _tick_label(moment: datetime, step: Step) -> str:
    unit = step[0]
    if unit in ("minute", "hour"):
        return (
            moment.strftime("%d %b") if moment.hour == 0 and moment.minute == 0 else moment.strftime("%H:%M")
        )
    if unit in ("day", "week"):
        return moment.strftime("%d %b")
    if unit == "month":
        return moment.strftime("%b %Y")
    return str(moment.year)


def calendar_ticks(start: datetime, end: datetime, most: int = MAX_TIME_TICKS) -> list[tuple[datetime, str]]:
    """Tick times on calendar boundaries (hours, days, Mondays, months, years: the finest step that gives at
    most `most` ticks in [start, end]), each with its label."""
    start, end = as_utc(start), as_utc(end)
    span = (end - start).total_seconds()
    if span <= 0:
        return []
    for step in _STEPS:
        if span / (_APPROX_SECONDS[step[0]] * step[1]) > most + 1:
            continue
        ticks: list[tuple[datetime, str]] = []
        try:
            moment = _first_boundary(start, step)
            while moment <= end and len(ticks) <= most:
                ticks.append((moment, _tick_label(moment, step)))
                moment = _next_boundary(moment, step)
        except (ValueError, OverflowError):  # the next boundary lies past year 9999
            pass
        if len(ticks) <= most:
            return ticks
    return []


def span_caption(start: datetime, end: datetime) -> str:
    """What the axis covers, with its time zone: '21 Feb 2015 – 24 Feb 2015, UTC'."""
    last = as_utc(end) - timedelta(microseconds=1)
    return f"{as_utc(start):%d %b %Y %H:%M} – {last:%d %b %Y %H:%M}, UTC"


def _anchor(percent: float) -> Anchor:
    return "start" if percent < 6 else "end" if percent > 94 else "middle"


# -- time charts ------------------------------------------------------------------------------------------


def _runs(points: Sequence[T | None]) -> list[list[T]]:
    """The unbroken stretches of a line: a missing value ends one."""
    runs: list[list[T]] = [[]]
    for point in points:
        if point is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append(point)
    return [run for run in runs if run]


def _path(points: Sequence[tuple[float, float] | None]) -> str:
    return " ".join(
        " ".join(f"{'M' if i == 0 else 'L'}{x:g},{y:g}" for i, (x, y) in enumerate(run))
        for run in _runs(points)
    )


def time_chart(
    buckets: Sequence[Bucket],
    names: Sequence[str],
    y_range: tuple[float, float] | None = None,
    y_unit: str = "",
    now: datetime | None = None,
    linear: bool = True,
    describe: Callable[[Bucket], str] | None = None,
    height: int = 240,
) -> TimeChart:
    """Lines (and interval bands, where buckets have them) over time. `linear`: x follows time, with ticks on
    calendar boundaries; otherwise buckets stand side by side (time with gaps left out) and ticks name some of
    them. A bucket that ends after `now` is still filling: its segment is drawn dashed. Values are at bucket
    middles; hovering a bucket's column shows `describe(bucket)` (by default, every series' value)."""
    plot_top, bottom_room = 16, 34
    plot_h = height - plot_top - bottom_room
    values = [v for b in buckets for v in b.values.values() if v is not None]
    values += [bound for b in buckets for pair in b.intervals.values() for bound in pair]
    if y_range is None:
        y_ticks_values = nice_ticks(max(values, default=0.0))
        low, high = 0.0, y_ticks_values[-1]
    else:
        low, high = y_range
        step = nice_ticks(high - low)[1]
        y_ticks_values = [low + i * step for i in range(round((high - low) / step) + 1)]
    if not buckets:
        return TimeChart(height, plot_top, plot_h, plot_top + plot_h, [], [], [], [], [], "", True)
    first, last = as_utc(buckets[0].start), as_utc(buckets[-1].end)
    total_s = (last - first).total_seconds() or 1.0

    def x_of(index: int, moment: datetime) -> float:
        """Percent of the width."""
        if linear:
            return 100 * (as_utc(moment) - first).total_seconds() / total_s
        return 100 * index / len(buckets)

    def y_of(value: float) -> float:
        return round(plot_h * (1 - (value - low) / (high - low)), 1) if high > low else plot_h

    edges = [(x_of(i, b.start), x_of(i + 1, b.end)) for i, b in enumerate(buckets)]
    middles = [(a + b) / 2 for a, b in edges]
    partial = now is not None and as_utc(buckets[-1].end) > as_utc(now)
    series, bands = [], []
    for name in names:
        points = [
            (round(VIEW_WIDTH * m / 100, 1), y_of(v)) if (v := b.values.get(name)) is not None else None
            for m, b in zip(middles, buckets, strict=True)
        ]
        whole = points[:-1] if partial and len(points) > 1 else points
        tail = points[-2:] if partial and len(points) > 1 and None not in points[-2:] else []
        dots = [
            (round(middles[i], 3), plot_top + point[1])
            for i, point in enumerate(points)
            if point is not None
            and (i == 0 or points[i - 1] is None)
            and (i == len(points) - 1 or points[i + 1] is None)
        ]
        series.append(Series(name, f"line-{name}", _path(whole), _path(tail), dots))
        band_runs = _runs(
            [
                (m, b.intervals[name]) if name in b.intervals else None
                for m, b in zip(middles, buckets, strict=True)
            ]
        )
        paths = []
        for run in band_runs:
            upper = [f"{VIEW_WIDTH * m / 100:.1f},{y_of(hi)}" for m, (_, hi) in run]
            lower = [f"{VIEW_WIDTH * m / 100:.1f},{y_of(lo)}" for m, (lo, _) in reversed(run)]
            paths.append("M" + " L".join(upper + lower) + " Z")
        if paths:
            bands.append(Band(name, f"band-{name}", " ".join(paths)))
    if linear:
        x_ticks = [
            Tick(round(p, 2), label, _anchor(p))
            for moment, label in calendar_ticks(first, last)
            if 0 <= (p := x_of(0, moment)) <= 100
        ]
    else:
        every = max(1, math.ceil(len(buckets) / MAX_TIME_TICKS))
        x_ticks = [
            Tick(round(middles[i], 2), f"{buckets[i].start:%d %b %Y}", _anchor(middles[i]))
            for i in range(0, len(buckets), every)
        ]
    say = describe or (
        lambda b: ", ".join(
            f"{n} {format_number(v)}{y_unit}" for n in names if (v := b.values.get(n)) is not None
        )
    )
    columns = [
        Column(
            round(a, 3),
            round(b - a, 3),
            f"{bucket.start:%d %b %Y %H:%M}–{bucket.end:%H:%M} UTC: {say(bucket) or 'nothing'}"
            + (" (still filling)" if partial and i == len(buckets) - 1 else "")
            + (f"; {bucket.note}" if bucket.note else ""),
        )
        for i, ((a, b), bucket) in enumerate(zip(edges, buckets, strict=True))
    ]
    caption = span_caption(first, last) + ("; the last bucket is still filling (dashed)" if partial else "")
    return TimeChart(
        height=height,
        plot_top=plot_top,
        plot_height=plot_h,
        bottom=plot_top + plot_h,
        series=series,
        bands=bands,
        x_ticks=x_ticks,
        y_ticks=[Tick(plot_top + y_of(v), format_number(v) + y_unit, "start") for v in y_ticks_values],
        columns=columns,
        caption=caption,
        empty=not values or max(values) == 0 and y_range is None,
    )


# -- sentiment over time: counts, or shares with their intervals and net sentiment ---------------------------

View = Literal["counts", "share"]
VIEWS: tuple[View, ...] = ("counts", "share")


def view_of(raw: str | None) -> View:
    """A view named in a query string; counts unless it names another."""
    return "share" if raw == "share" else "counts"


class SentimentCharts(msgspec.Struct, frozen=True):
    view: View
    main: TimeChart
    net: TimeChart | None  # the share view's net sentiment (positive minus negative share)


def _share_text(bucket: Bucket) -> str:
    parts = [
        f"{name} {value:.1f}% (95% CI {low:.1f}–{high:.1f})"
        for name, value in bucket.values.items()
        if value is not None and name in bucket.intervals
        for low, high in [bucket.intervals[name]]
    ]
    return "; ".join(parts) or "no rows"


def sentiment_charts(
    series: Sequence[tuple[datetime, datetime, Mapping[str, int]]],
    view: View,
    now: datetime | None = None,
    linear: bool = True,
    height: int = 240,
) -> SentimentCharts:
    """Counts per label over time, or (`share`) each label's share with its 95% Wilson band, n per bucket in
    the hover text, and net sentiment beneath."""
    if view == "counts":
        buckets = [
            Bucket(
                start,
                end,
                {label: float(counts.get(label, 0)) for label in LABELS},
                note=f"n {sum(counts.values()):,}",
            )
            for start, end, counts in series
        ]
        return SentimentCharts(view, time_chart(buckets, LABELS, now=now, linear=linear, height=height), None)
    shares = share_buckets([(start, counts) for start, _, counts in series])
    share_points, net_points = [], []
    for (start, end, _), share in zip(series, shares, strict=True):
        values: dict[str, float | None] = {
            label: s.percent if (s := share.shares[label]) else None for label in LABELS
        }
        intervals: dict[str, tuple[float, float]] = {
            label: (s.interval.low, s.interval.high) for label in LABELS if (s := share.shares[label])
        }
        share_points.append(Bucket(start, end, values, intervals, note=f"n {share.n:,}"))
        net_points.append(Bucket(start, end, {"net": share.net}, note=f"n {share.n:,}"))
    main = time_chart(
        share_points, LABELS, (0.0, 100.0), "%", now, linear, describe=_share_text, height=height
    )
    net = time_chart(net_points, ("net",), (-100.0, 100.0), "", now, linear, height=160)
    return SentimentCharts(view, main, net)
