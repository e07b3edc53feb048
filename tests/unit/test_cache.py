import sys

from sentiment.core.domain import Scored
from sentiment.inference.cache import ENTRY_OVERHEAD_BYTES, ResultCache

POSITIVE = Scored("positive", 0.9, {"negative": 0.1, "positive": 0.9})
NEGATIVE = Scored("negative", 0.8, {"negative": 0.8, "positive": 0.2})


def test_hit_returns_the_stored_answer_for_the_same_model_only() -> None:
    cache = ResultCache(10)
    cache.put("a", "great", POSITIVE)
    assert cache.get("a", "great") == POSITIVE
    assert cache.get("b", "great") is None
    assert (cache.hits, cache.misses) == (1, 1)


def test_least_recently_used_entry_is_evicted_at_the_bound() -> None:
    cache = ResultCache(2)
    cache.put("m", "one", POSITIVE)
    cache.put("m", "two", NEGATIVE)
    assert cache.get("m", "one") == POSITIVE  # "two" is now the oldest use
    cache.put("m", "three", NEGATIVE)
    assert cache.get("m", "two") is None
    assert cache.get("m", "one") == POSITIVE
    assert cache.size == 2


def test_size_zero_turns_the_cache_off() -> None:
    cache = ResultCache(0)
    cache.put("m", "one", POSITIVE)
    assert cache.get("m", "one") is None
    assert (cache.hits, cache.misses, cache.size) == (0, 0, 0)


def test_the_cache_is_bounded_by_bytes_as_well_as_entries() -> None:
    """10,000 entries of 10,000-character texts would take about 400 MB: the byte bound keeps its budget."""
    long_text = "x" * 10_000
    entry = sys.getsizeof(long_text + "1") + ENTRY_OVERHEAD_BYTES
    cache = ResultCache(100, max_bytes=3 * entry)
    for n in range(1, 6):
        cache.put("m", long_text + str(n), POSITIVE)
    assert cache.size == 3 and cache.bytes == 3 * entry
    assert cache.get("m", long_text + "1") is None and cache.get("m", long_text + "5") == POSITIVE
    cache.put("m", "y" * 100_000, NEGATIVE)  # larger than the whole cache: not kept, nothing evicted for it
    assert cache.get("m", "y" * 100_000) is None and cache.size == 3
