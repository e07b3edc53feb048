"""Clocks, injected wherever time matters so tests can move it, and the one rule for the times they compare:
every time is UTC."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import overload

WallClock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(moment: datetime) -> datetime: ...
@overload
def as_utc(moment: None) -> None: ...
def as_utc(moment: datetime | None) -> datetime | None:
    """The moment in UTC; a naive one is taken as UTC (SQLite hands times back that way, and so may a caller).
    None stays None, for the optional times of stored rows."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
