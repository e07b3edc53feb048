"""Geometry of the data-set charts that sentiment.web.charts does not draw: one bar per group, split into the
shares of each label (so groups of very different sizes compare at a glance). Templates draw the SVG."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from sentiment.core.domain import LABELS


class Segment(msgspec.Struct, frozen=True):
    label: str
    x: float  # percent of the width
    width: float  # percent of the width
    count: int
    percent: float
    css: str


class StackedBar(msgspec.Struct, frozen=True):
    name: str
    y: float
    total: int
    segments: list[Segment]


class StackedChart(msgspec.Struct, frozen=True):
    height: int
    bars: list[StackedBar]


def stacked_bars(groups: Sequence[tuple[str, Mapping[str, int]]], row_height: int = 38) -> StackedChart:
    """A 100% bar per group under its name (its row count at the right end of that line): each label's share
    of the group's rows, negative to positive from the left, in percent of the width."""
    bars = []
    for index, (name, counts) in enumerate(groups):
        total = sum(counts.get(label, 0) for label in LABELS)
        x = 0.0
        segments = []
        for label in LABELS:
            count = counts.get(label, 0)
            share = 100 * count / total if total else 0.0
            segments.append(
                Segment(label, round(x, 3), round(share, 3), count, round(share, 1), f"bar-{label}")
            )
            x += share
        bars.append(StackedBar(name, index * row_height, total, segments))
    return StackedChart(len(groups) * row_height, bars)
