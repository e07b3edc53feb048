from sentiment.core.domain import Scored
from sentiment.inference.cache import ResultCache

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
