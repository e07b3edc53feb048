"""What the overview page shows, gathered from the services into plain values for its template."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from sentiment.services.analytics import AnalyticsFilters
from sentiment.core.clock import utc_now
from sentiment.core.domain import LABELS, VADER_KEY
from sentiment.services.container import Services
from sentiment.web.charts import bar_chart, line_chart

RANGES: dict[str, tuple[str, timedelta | None]] = {
    "1h": ("last hour", timedelta(hours=1)),
    "24h": ("last 24 hours", timedelta(days=1)),
    "7d": ("last 7 days", timedelta(days=7)),
    "30d": ("last 30 days", timedelta(days=30)),
    "all": ("all time", None),
}


async def gather(services: Services, query: Mapping[str, str]) -> dict[str, object]:
    chosen = query.get("range") if query.get("range") in RANGES else "all"
    label, span = RANGES[chosen]
    now = utc_now()
    summary = await services.analytics.summary(AnalyticsFilters(since=now - span if span else None, until=now))
    times = [point.bucket_start for point in summary.time_series]
    timeline = line_chart(
        times, {name: [getattr(point.counts, name) for point in summary.time_series] for name in LABELS}
    )
    usage = sorted(summary.model_usage.items(), key=lambda item: -item[1])
    latency = [
        {"key": e.key, "requests": figures.requests,
         "p50": f"{figures.latency_p50_ms:.1f}" if figures.latency_p50_ms is not None else "—",
         "p95": f"{figures.latency_p95_ms:.1f}" if figures.latency_p95_ms is not None else "—"}
        for e in services.registry.entries()
        if (figures := e.stats.figures()).requests
    ]
    breakers = [
        {"model": e.key, "state": services.failsafe.breaker(e.key).state.value}
        for e in services.registry.entries()
        if e.key != VADER_KEY and (e.loaded or e.wanted)
    ]
    return {
        "range_label": label,
        "ranges": [(key, name) for key, (name, _) in RANGES.items()],
        "chosen_range": chosen,
        "query": f"?range={chosen}",
        "summary": {
            "total": f"{summary.total_predictions:,}",
            "fallback_rate": summary.fallback_rate,
            "average_ms": summary.average_response_time,
            "activations": summary.circuit_breaker_activations,
            "bucket": summary.bucket,
        },
        "timeline": timeline,
        "distribution": bar_chart([(name, summary.sentiment_distribution.get(name, 0.0)) for name in LABELS],
                                  unit="%", label_width=80),
        "usage": bar_chart(usage, unit="%", label_width=120),
        "latency": latency,
        "breakers": breakers,
        "alerts": await services.alerts.list("active", limit=20),
        "updated": summary.last_updated.strftime("%Y-%m-%d %H:%M:%S"),
    }
