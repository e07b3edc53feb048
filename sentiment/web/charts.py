"""Chart geometry as plain logic: scales, ticks and SVG path data. Templates draw the SVG from these numbers,
so charts are server-rendered, need no script, and run under the pages' Content-Security-Policy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import msgspec


class Tick(msgspec.Struct, frozen=True):
    position: float
    label: str


class Bar(msgspec.Struct, frozen=True):
    label: str
    value: float
    text: str
    y: float
    length: float
    css: str


class BarChart(msgspec.Struct, frozen=True):
    width: int
    height: int
    label_width: int
    bars: list[Bar]
    ticks: list[Tick]


class Series(msgspec.Struct, frozen=True):
    name: str
    css: str
    path: str
    points: list[tuple[float, float]]


class LineChart(msgspec.Struct, frozen=True):
    width: int
    height: int
    left: int
    bottom: int
    series: list[Series]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    empty: bool


VALUE_ROOM = 56


def nice_ticks(maximum: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least `maximum` (1, 2 or 5 times a power of ten apart)."""
    if maximum <= 0:
        return [0.0, 1.0]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(math.ceil(maximum / step) + 1)]


def format_number(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1_000:
        return f"{value / 1_000:g}k"
    return f"{value:g}"


def bar_chart(
    items: Sequence[tuple[str, float]],
    unit: str = "",
    width: int = 360,
    label_width: int = 110,
    bar_height: int = 28,
) -> BarChart:
    """Horizontal bars, one per item, on a shared 0..max scale with labelled ticks (room on the right for the
    value written after the longest bar)."""
    plot = width - label_width - VALUE_ROOM
    ticks = nice_ticks(max((value for _, value in items), default=0.0))
    top = ticks[-1]
    bars = [
        Bar(
            label=label,
            value=value,
            text=f"{value:.1f}{unit}" if unit == "%" else f"{format_number(value)}{unit}",
            y=index * bar_height,
            length=plot * value / top if top else 0.0,
            css=f"bar-{label}" if label in {"negative", "neutral", "positive"} else "bar",
        )
        for index, (label, value) in enumerate(items)
    ]
    return BarChart(
        width=width,
        height=len(items) * bar_height + 24,
        label_width=label_width,
        bars=bars,
        ticks=[
            Tick(label_width + plot * t / top if top else label_width, format_number(t) + unit) for t in ticks
        ],
    )


def time_format(start: datetime, end: datetime) -> str:
    span = (end - start).total_seconds()
    if span <= 2 * 86_400:
        return "%H:%M"
    return "%d %b"


def line_chart(
    times: Sequence[datetime], series: dict[str, Sequence[float]], width: int = 720, height: int = 260
) -> LineChart:
    """One line per series over shared time (x) and count (y) axes, with at most ~6 time labels."""
    left, bottom, top_margin, right_margin = 48, 28, 8, 32
    plot_w, plot_h = width - left - right_margin, height - bottom - top_margin
    maximum = max((value for values in series.values() for value in values), default=0.0)
    y_values = nice_ticks(maximum)
    y_top = y_values[-1]

    def x_at(index: int) -> float:
        return left + (plot_w * index / (len(times) - 1) if len(times) > 1 else plot_w / 2)

    def y_at(value: float) -> float:
        return top_margin + plot_h * (1 - value / y_top)

    lines = []
    for name, values in series.items():
        points = [(round(x_at(i), 1), round(y_at(v), 1)) for i, v in enumerate(values)]
        path = " ".join(f"{'M' if i == 0 else 'L'}{x},{y}" for i, (x, y) in enumerate(points))
        lines.append(Series(name, f"line-{name}", path, points))
    x_ticks = []
    if times:
        fmt = time_format(times[0], times[-1])
        step = max(1, math.ceil(len(times) / 6))
        x_ticks = [Tick(round(x_at(i), 1), times[i].strftime(fmt)) for i in range(0, len(times), step)]
    return LineChart(
        width=width,
        height=height,
        left=left,
        bottom=height - bottom,
        series=lines,
        x_ticks=x_ticks,
        y_ticks=[Tick(round(y_at(v), 1), format_number(v)) for v in y_values],
        empty=maximum == 0,
    )
