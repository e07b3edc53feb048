"""A bounded cache of recent model answers: social-media text repeats itself (retweets, copy-paste)."""

from __future__ import annotations

from cachetools import LRUCache

from sentiment.core.domain import Scored


class ResultCache:
    """Keyed by (model, text). Size 0 turns it off. Only the model's own answers go in, never a fallback's."""

    def __init__(self, size: int) -> None:
        self._entries: LRUCache[tuple[str, str], Scored] | None = LRUCache(maxsize=size) if size > 0 else None
        self.hits = 0
        self.misses = 0

    @property
    def size(self) -> int:
        return len(self._entries) if self._entries is not None else 0

    def get(self, model: str, text: str) -> Scored | None:
        if self._entries is None:
            return None
        found = self._entries.get((model, text))
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, model: str, text: str, scored: Scored) -> None:
        if self._entries is not None:
            self._entries[(model, text)] = scored
