"""Analytics endpoint: figures and a time series over stored predictions, computed in SQL."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec import Example
from litestar.params import QueryParameter
from litestar.types import ControllerRouterHandler

from sentiment.core.analytics_math import Bucket
from sentiment.core.buckets import shifted
from sentiment.core.domain import Label
from sentiment.services.analytics import Analytics, AnalyticsFilters, AnalyticsService
from sentiment.web.chart_csv import SERIES_CSV, csv_response, series_csv
from sentiment.web.errors import error_responses

_MOMENT = "an ISO 8601 date or datetime (no offset means UTC; send + as %2B)"


async def analytics_filters(
    since: Annotated[
        str | None,
        QueryParameter(
            description=f"start of the range, inclusive: {_MOMENT}",
            format="date-time",
            examples=[Example(value="2026-01-31T00:00:00Z")],
        ),
    ] = None,
    until: Annotated[
        str | None,
        QueryParameter(
            description=f"end of the range, exclusive: {_MOMENT}; default now",
            format="date-time",
            examples=[Example(value="2026-02-01")],
        ),
    ] = None,
    model: Annotated[
        str | None, QueryParameter(description="only predictions answered by this model (model_used)")
    ] = None,
    dataset: Annotated[
        UUID | None, QueryParameter(description="this data set's rows instead of live traffic")
    ] = None,
    bucket: Annotated[
        Bucket | None,
        QueryParameter(description="width of the time-series buckets; chosen from the range if absent"),
    ] = None,
    label: Annotated[Label | None, QueryParameter(description="only predictions with this label")] = None,
    fallback: Annotated[
        bool | None, QueryParameter(description="true: answered by the fallback only; false: never")
    ] = None,
) -> AnalyticsFilters:
    return AnalyticsFilters.from_query(since, until, model, dataset, bucket, label, fallback)


_FILTERS = {"filters": Provide(analytics_filters)}


@get(
    "/analytics",
    summary="Totals, sentiment distribution, model usage, latency, breaker activations and counts over time",
    description=(
        "Covers the predictions stored in [since, until), optionally for one model (model_used): live "
        "traffic (/predict and /predict/batch), or with `dataset` one data set's rows instead. Defaults: "
        "until is now, since is the hour of the earliest matching prediction (all "
        "time). The bucket of the time series is chosen from the range (minute up to 3 hours, hour up to "
        "7 days, day beyond) unless given; buckets are UTC and all are listed, zero where nothing was stored."
    ),
    tags=["analytics"],
    dependencies=_FILTERS,
    responses=error_responses(400),
)
async def analytics_summary(
    analytics: NamedDependency[AnalyticsService], filters: NamedDependency[AnalyticsFilters]
) -> Analytics:
    return await analytics.summary(filters)


@get(
    "/analytics/series.csv",
    summary="The time series of /analytics as CSV: counts, shares with 95% intervals, net sentiment",
    description=(
        "The same filters and buckets as GET /analytics; one line per bucket: its rows (n), the count of "
        "each label, each label's share in percent with its 95% Wilson interval, and net sentiment (positive "
        "share minus negative share, in points). The numbers behind the overview's chart."
    ),
    tags=["analytics"],
    dependencies=_FILTERS,
    responses={**error_responses(400), 200: SERIES_CSV},
)
async def analytics_series_csv(
    analytics: NamedDependency[AnalyticsService], filters: NamedDependency[AnalyticsFilters]
) -> Response[str]:
    summary = await analytics.summary(filters)
    points = [
        ("", p.bucket_start, shifted(p.bucket_start, 1, p.bucket), msgspec.structs.asdict(p.counts))
        for p in summary.time_series
    ]
    return csv_response(series_csv(points), f"sentiment-{summary.bucket}s.csv")


ROUTES: list[ControllerRouterHandler] = [analytics_summary, analytics_series_csv]
