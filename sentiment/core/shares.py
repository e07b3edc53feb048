"""Shares of each label per time bucket, with how sure they are: a share of 3 posts and a share of 3,000 read
the same as percentages, so each comes with its count and a 95% Wilson score interval (which, unlike the
normal approximation, stays inside 0-100% and is honest for small counts and shares near 0 or 1)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime

import msgspec

from sentiment.core.domain import LABELS

Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile


class Interval(msgspec.Struct, frozen=True, array_like=True):
    low: float
    high: float


class LabelShare(msgspec.Struct, frozen=True):
    percent: float
    interval: Interval


class ShareBucket(msgspec.Struct, frozen=True):
    start: datetime
    n: int
    shares: dict[str, LabelShare | None]  # None where the bucket holds no rows: no share to speak of
    net: float | None  # positive share minus negative share, in points (-100..100)


def wilson(successes: int, trials: int, z: float = Z_95) -> Interval:
    """The Wilson score interval of a proportion, as fractions (0..1)."""
    if trials <= 0:
        raise ValueError("an interval needs at least one trial")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must lie in 0..{trials}, not {successes}")
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    # At p = 0 (or 1) the exact bound is 0 (or 1) itself, which rounding would miss by a hair.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return Interval(low, high)


def share_buckets(series: Sequence[tuple[datetime, Mapping[str, int]]]) -> list[ShareBucket]:
    """Each bucket's share of every label (percent) with its 95% interval, its count and its net sentiment."""
    buckets = []
    for start, counts in series:
        n = sum(counts.get(label, 0) for label in LABELS)
        if n == 0:
            buckets.append(ShareBucket(start, 0, dict.fromkeys(LABELS), None))
            continue
        shares: dict[str, LabelShare | None] = {}
        for label in LABELS:
            k = counts.get(label, 0)
            interval = wilson(k, n)
            shares[label] = LabelShare(100 * k / n, Interval(100 * interval.low, 100 * interval.high))
        net = 100 * (counts.get("positive", 0) - counts.get("negative", 0)) / n
        buckets.append(ShareBucket(start, n, shares, net))
    return buckets
