"""A bounded cache of recent model answers: social-media text repeats itself (retweets, copy-paste)."""

from __future__ import annotations

import sys
from typing import NamedTuple

from cachetools import LRUCache

from sentiment.core.domain import Scored

# What an entry holds besides its text (the key's tuple, the answer, the LRU's bookkeeping), measured.
ENTRY_OVERHEAD_BYTES = 420


class _Cached(NamedTuple):
    scored: Scored
    size: int


class ResultCache:
    """Keyed by (model, text), bounded by entries and by bytes (a cache of 10,000-character texts would
    otherwise take 40 times the memory of one of tweets). Size 0 turns it off. Only the model's own answers go
    in, never a fallback's."""

    def __init__(self, size: int, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._max_entries = size
        self._entries: LRUCache[tuple[str, str], _Cached] | None = (
            LRUCache(maxsize=max_bytes, getsizeof=lambda cached: cached.size) if size > 0 else None
        )
        self.hits = 0
        self.misses = 0

    @property
    def size(self) -> int:
        return len(self._entries) if self._entries is not None else 0

    @property
    def bytes(self) -> int:
        return int(self._entries.currsize) if self._entries is not None else 0

    def get(self, model: str, text: str) -> Scored | None:
        if self._entries is None:
            return None
        found = self._entries.get((model, text))
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        return found.scored

    def put(self, model: str, text: str, scored: Scored) -> None:
        if self._entries is None:
            return
        size = sys.getsizeof(text) + ENTRY_OVERHEAD_BYTES
        if size > self._entries.maxsize:
            return  # larger than the whole cache: not worth evicting everything for
        self._entries[(model, text)] = _Cached(scored, size)
        while len(self._entries) > self._max_entries:
            self._entries.popitem()
