"""Analytics endpoint: figures and a time series over stored predictions, computed in SQL."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import get
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import QueryParameter
from litestar.types import ControllerRouterHandler

from sentiment.core.analytics_math import Bucket
from sentiment.services.analytics import Analytics, AnalyticsFilters, AnalyticsService
from sentiment.web.errors import error_responses

_MOMENT = "an ISO 8601 date or datetime (no offset means UTC; send + as %2B)"


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
    responses=error_responses(400),
)
async def analytics_summary(
    analytics: NamedDependency[AnalyticsService],
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
) -> Analytics:
    return await analytics.summary(AnalyticsFilters.from_query(since, until, model, dataset, bucket))


ROUTES: list[ControllerRouterHandler] = [analytics_summary]
