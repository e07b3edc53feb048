"""What the overview page shows, turned from the overview service's snapshot into plain values and charts.

Its filters live in the URL (`range`, or `since`/`until` for a range of one's own; `model`; `view` counts or
share), so a view can be shared, bookmarked and left with the back button."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from urllib.parse import urlencode

import msgspec

from sentiment.core.analytics_math import parse_moment
from sentiment.core.buckets import shifted
from sentiment.core.clock import utc_now
from sentiment.core.domain import LABELS, InvalidInput
from sentiment.services.analytics import AnalyticsFilters
from sentiment.services.overview import OverviewService
from sentiment.web.charts import bar_chart, sentiment_charts, view_of

RANGES: dict[str, tuple[str, timedelta | None]] = {
    "1h": ("last hour", timedelta(hours=1)),
    "24h": ("last 24 hours", timedelta(days=1)),
    "7d": ("last 7 days", timedelta(days=7)),
    "30d": ("last 30 days", timedelta(days=30)),
    "all": ("all time", None),
}
FILTERS = ("range", "since", "until", "model", "label", "fallback", "view")
# A page's fallback filter as its URL writes it (GET /predictions and /analytics read true/false too).
FALLBACK_CHOICES = {"true": True, "false": False}


def _ms(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "—"


async def overview_values(overview: OverviewService, query: Mapping[str, str]) -> dict[str, object]:
    now = utc_now()
    kept = {name: query[name] for name in FILTERS if query.get(name)}
    error = None
    try:
        since = parse_moment(kept["since"], "since") if "since" in kept else None
        until = parse_moment(kept["until"], "until") if "until" in kept else None
    except InvalidInput as invalid:
        error, since, until = f"ignored a date that is not valid: {invalid.detail}", None, None
        kept.pop("since", None), kept.pop("until", None)
    custom = since is not None or until is not None
    chosen = kept.get("range", "all") if kept.get("range") in RANGES and not custom else "all"
    range_label, span = RANGES[chosen]
    if custom:
        range_label = f"{since:%Y-%m-%d %H:%M} to " if since else "from the start to "
        range_label += f"{until:%Y-%m-%d %H:%M} UTC" if until else "now"
    else:
        since = now - span if span else None
    model = kept.get("model") if kept.get("model") in overview.model_keys else None
    label = next((name for name in LABELS if name == kept.get("label")), None)
    fallback = FALLBACK_CHOICES.get(kept.get("fallback", ""))
    view = view_of(kept.get("view"))
    snapshot = await overview.snapshot(
        AnalyticsFilters(since=since, until=until or now, model=model, label=label, fallback=fallback)
    )
    summary = snapshot.summary
    series = [
        (
            point.bucket_start,
            shifted(point.bucket_start, 1, point.bucket),
            msgspec.structs.asdict(point.counts),
        )
        for point in summary.time_series
    ]
    usage = sorted(summary.model_usage.items(), key=lambda item: -item[1])

    fallback_words = {True: "answered by the fallback", False: "not by the fallback", None: ""}
    narrowed = [part for part in (model, label, fallback_words[fallback]) if part]

    def with_view(chosen_view: str) -> str:
        return "/ui?" + urlencode({**kept, "view": chosen_view})

    return {
        "range_label": ", ".join([range_label, *narrowed]),
        "ranges": [(key, name) for key, (name, _) in RANGES.items()],
        "chosen_range": None if custom else chosen,
        "filters": {
            "since": f"{since:%Y-%m-%dT%H:%M}" if custom and since else "",
            "until": f"{until:%Y-%m-%dT%H:%M}" if until else "",
            "model": model or "",
            "label": label or "",
            "fallback": kept.get("fallback", "") if fallback is not None else "",
            "view": view,
        },
        "models": overview.model_keys,
        "error": error,
        "query": "?" + urlencode(kept),
        "with_view": with_view,
        "summary": {
            "total": f"{summary.total_predictions:,}",
            "count": summary.total_predictions,
            "fallback_rate": summary.fallback_rate,
            "average_ms": summary.average_response_time,
            "activations": summary.circuit_breaker_activations,
            "bucket": summary.bucket,
        },
        "timeline": sentiment_charts(series, view, now=summary.last_updated),
        "series_csv": "/analytics/series.csv?"
        + urlencode(
            {
                "since": summary.since.isoformat(),
                "until": summary.until.isoformat(),
                "bucket": summary.bucket,
                **({"model": model} if model else {}),
                **({"label": label} if label else {}),
                **({"fallback": kept["fallback"]} if fallback is not None else {}),
            }
        ),
        "distribution": bar_chart(
            [(name, summary.sentiment_distribution.get(name, 0.0)) for name in LABELS], unit="%"
        ),
        "usage": bar_chart(usage, unit="%"),
        "latency": [
            {"key": row.model, "requests": row.requests, "p50": _ms(row.p50_ms), "p95": _ms(row.p95_ms)}
            for row in snapshot.latency
        ],
        "breakers": [{"model": line.model, "state": line.state} for line in snapshot.breakers],
        "alerts": snapshot.active_alerts,
        "updated": summary.last_updated.strftime("%Y-%m-%d %H:%M:%S"),
    }
