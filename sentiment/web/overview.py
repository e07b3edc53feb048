"""What the overview page shows, turned from the overview service's snapshot into plain values and charts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from sentiment.core.clock import utc_now
from sentiment.core.domain import LABELS
from sentiment.services.overview import OverviewService
from sentiment.web.charts import bar_chart, line_chart

RANGES: dict[str, tuple[str, timedelta | None]] = {
    "1h": ("last hour", timedelta(hours=1)),
    "24h": ("last 24 hours", timedelta(days=1)),
    "7d": ("last 7 days", timedelta(days=7)),
    "30d": ("last 30 days", timedelta(days=30)),
    "all": ("all time", None),
}


def _ms(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "—"


async def overview_values(overview: OverviewService, query: Mapping[str, str]) -> dict[str, object]:
    chosen = query.get("range", "all")
    if chosen not in RANGES:
        chosen = "all"
    label, span = RANGES[chosen]
    now = utc_now()
    snapshot = await overview.snapshot(since=now - span if span else None, until=now)
    summary = snapshot.summary
    times = [point.bucket_start for point in summary.time_series]
    timeline = line_chart(
        times, {name: [getattr(point.counts, name) for point in summary.time_series] for name in LABELS}
    )
    usage = sorted(summary.model_usage.items(), key=lambda item: -item[1])
    return {
        "range_label": label,
        "ranges": [(key, name) for key, (name, _) in RANGES.items()],
        "chosen_range": chosen,
        "query": f"?range={chosen}",
        "summary": {
            "total": f"{summary.total_predictions:,}",
            "count": summary.total_predictions,
            "fallback_rate": summary.fallback_rate,
            "average_ms": summary.average_response_time,
            "activations": summary.circuit_breaker_activations,
            "bucket": summary.bucket,
        },
        "timeline": timeline,
        "distribution": bar_chart(
            [(name, summary.sentiment_distribution.get(name, 0.0)) for name in LABELS],
            unit="%",
            label_width=80,
        ),
        "usage": bar_chart(usage, unit="%", label_width=120),
        "latency": [
            {"key": row.model, "requests": row.requests, "p50": _ms(row.p50_ms), "p95": _ms(row.p95_ms)}
            for row in snapshot.latency
        ],
        "breakers": [{"model": line.model, "state": line.state} for line in snapshot.breakers],
        "alerts": snapshot.active_alerts,
        "updated": summary.last_updated.strftime("%Y-%m-%d %H:%M:%S"),
    }
