"""The one interface every model backend implements: a list of texts in, a scored label per text out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sentiment.core.domain import Label, Scored


class Backend(Protocol):
    """Small and synchronous: knows nothing of HTTP, asyncio or the database."""

    labels: tuple[Label, ...]

    def predict(self, texts: Sequence[str]) -> list[Scored]: ...
