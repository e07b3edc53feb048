"""Geometry of the data-set charts that sentiment.web.charts does not draw: one bar per group, split into the
shares of each label (so groups of very different sizes compare at a glance). Templates draw the SVG."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from sentiment.core.domain import LABELS


class Segment(msgspec.Struct, frozen=True):
    label: str
    x: float
    width: float
    count: int
    percent: float
    css: str


class StackedBar(msgspec.Struct, frozen=True):
    name: str
    y: float
    total: int
    segments: list[Segment]


class StackedChart(msgspec.Struct, frozen=True):
    width: int
    height: int
    label_width: int
    plot_width: int
    bars: list[StackedBar]


def stacked_bars(
    groups: Sequence[tuple[str, Mapping[str, int]]],
    width: int = 720,
    label_width: int = 150,
    bar_height: int = 28,
) -> StackedChart:
    """A 100% bar per group: each label's share of the group's rows, negative to positive from the left."""
    plot = width - label_width - 70  # room on the right for the group's row count
    bars = []
    for index, (name, counts) in enumerate(groups):
        total = sum(counts.get(label, 0) for label in LABELS)
        x = float(label_width)
        segments = []
        for label in LABELS:
            count = counts.get(label, 0)
            share = count / total if total else 0.0
            segments.append(
                Segment(
                    label, round(x, 2), round(plot * share, 2), count, round(100 * share, 1), f"bar-{label}"
                )
            )
            x += plot * share
        bars.append(StackedBar(name, index * bar_height, total, segments))
    return StackedChart(width, len(groups) * bar_height + 8, label_width, plot, bars)
