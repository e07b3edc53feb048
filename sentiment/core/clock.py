"""Clocks, injected wherever time matters so tests can move it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

WallClock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
