import pytest

from sentiment.inference.stats import ModelStats, percentile


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_figures_count_requests_texts_fallbacks_and_errors() -> None:
    stats = ModelStats()
    stats.record_request(texts=1, latency_ms=10.0, fallback_texts=0)
    stats.record_request(texts=4, latency_ms=30.0, fallback_texts=4)
    stats.record_error()
    figures = stats.figures()
    assert (figures.requests, figures.texts, figures.fallbacks, figures.errors) == (2, 5, 4, 1)
    assert (figures.latency_p50_ms, figures.latency_p95_ms) == (10.0, 30.0)


def test_no_requests_means_no_latency_figures() -> None:
    figures = ModelStats().figures()
    assert figures.latency_p50_ms is None and figures.requests == 0


def test_percentile_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
