"""Stored predictions for API clients: a keyset-paged list and a streamed CSV or JSON Lines export, both
under the same filters."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import get
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter
from litestar.response import Stream
from litestar.types import ControllerRouterHandler

from sentiment.core.analytics_math import parse_moment
from sentiment.core.domain import Label
from sentiment.services.history import (
    ExportFormat,
    HistoryService,
    PredictionFilters,
    PredictionList,
    Sort,
)
from sentiment.web.errors import error_responses

_MOMENT = "an ISO 8601 date or datetime (no offset means UTC; send + as %2B)"


async def prediction_filters(
    since: Annotated[str | None, QueryParameter(description=f"stored at or after: {_MOMENT}")] = None,
    until: Annotated[str | None, QueryParameter(description=f"stored before: {_MOMENT}")] = None,
    model: Annotated[str | None, QueryParameter(description="answered by this model (model_used)")] = None,
    label: Annotated[Label | None, QueryParameter(description="with this label")] = None,
    dataset: Annotated[
        UUID | None, QueryParameter(description="this data set's rows instead of live traffic")
    ] = None,
    group: Annotated[
        str | None, QueryParameter(description="in this group (a data set's group column)")
    ] = None,
    fallback: Annotated[
        bool | None, QueryParameter(description="true: answered by the fallback only; false: never")
    ] = None,
    q: Annotated[str | None, QueryParameter(description="text contains this, case-insensitively")] = None,
    sort: Annotated[Sort, QueryParameter(description="order of the rows")] = "newest",
) -> PredictionFilters:
    return PredictionFilters(
        text=q or None,
        label=label,
        model=model or None,
        since=parse_moment(since, "since") if since else None,
        until=parse_moment(until, "until") if until else None,
        dataset=dataset,
        group=group or None,
        fallback=fallback,
        sort=sort,
    )


_FILTERS = {"filters": Provide(prediction_filters)}
_CSV = ResponseSpec(data_container=str, media_type="text/csv", description="CSV, a header line first")
_JSONL = ResponseSpec(data_container=str, media_type="application/x-ndjson", description="JSON Lines")


@get(
    "/predictions",
    summary="Stored predictions, newest first, a page at a time",
    description=(
        "Live traffic unless `dataset` names a data set. Pages are read by keyset: pass a page's "
        "`next_cursor` as `cursor` (with the same filters) for the next one; a deep page costs what the "
        "first does."
    ),
    tags=["predictions"],
    dependencies=_FILTERS,
    responses=error_responses(400),
)
async def list_predictions(
    history: NamedDependency[HistoryService],
    filters: NamedDependency[PredictionFilters],
    limit: Annotated[int, QueryParameter(ge=1, le=1000, description="rows per page")] = 100,
    cursor: Annotated[str | None, QueryParameter(description="the previous page's next_cursor")] = None,
) -> PredictionList:
    return await history.listing(filters, cursor, limit)


def _export(history: HistoryService, filters: PredictionFilters, export_format: ExportFormat) -> Stream:
    return Stream(
        history.export(filters, export_format),
        media_type=(_CSV if export_format == "csv" else _JSONL).media_type,
        headers={"Content-Disposition": f'attachment; filename="{history.export_name(export_format)}"'},
    )


_EXPORT_DESCRIPTION = (
    "The same filters as GET /predictions, every matching row, read and sent a chunk at a time (a million "
    "rows in constant memory)."
)


@get(
    "/predictions/export.csv",
    summary="Every stored prediction under the filters, as CSV, streamed",
    description=f"{_EXPORT_DESCRIPTION} Cells a spreadsheet would run as formulas start with an apostrophe.",
    tags=["predictions"],
    dependencies=_FILTERS,
    responses={
        **error_responses(400),
        200: _CSV,
    },
)
async def export_csv(
    history: NamedDependency[HistoryService], filters: NamedDependency[PredictionFilters]
) -> Stream:
    return _export(history, filters, "csv")


@get(
    "/predictions/export.jsonl",
    summary="Every stored prediction under the filters, as JSON Lines, streamed",
    description=f"{_EXPORT_DESCRIPTION} One prediction a line, as GET /predictions lists it.",
    tags=["predictions"],
    dependencies=_FILTERS,
    responses={
        **error_responses(400),
        200: _JSONL,
    },
)
async def export_jsonl(
    history: NamedDependency[HistoryService], filters: NamedDependency[PredictionFilters]
) -> Stream:
    return _export(history, filters, "jsonl")


ROUTES: list[ControllerRouterHandler] = [list_predictions, export_csv, export_jsonl]
