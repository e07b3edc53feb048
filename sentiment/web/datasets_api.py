"""Data sets over HTTP: the JSON API (upload, progress, report, export; an admin's cancel and delete) and the
pages (upload form on Analyze, column picker, htmx progress bar, the data set's report, admins' buttons).

Uploads are parsed here as a stream (multipart/form-data): the file part goes straight to the data folder,
chunk by chunk, so neither the request nor the file is ever held in memory and the upload limit
(SENTIMENT_MAX_UPLOAD_BYTES) is checked as bytes arrive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromPath, QueryParameter, URLEncodedBody
from litestar.response import File, Template
from litestar.types import ControllerRouterHandler
from multipart import MultipartError, MultipartSegment, PushMultipartParser

from sentiment.core.buckets import Width, shifted
from sentiment.core.columns import covering_model, label_mismatch
from sentiment.core.domain import LABELS, Conflict, InvalidInput, SentimentError
from sentiment.core.evaluation import Agreement, Disagreement, Metrics
from sentiment.services.datasets import (
    DatasetOptions,
    DatasetReport,
    DatasetService,
    Example,
    Look,
    Progress,
    TrendPoint,
    Upload,
    UploadTooLarge,
)
from sentiment.web.chart_csv import SERIES_CSV, csv_response, series_csv
from sentiment.web.charts import bar_chart, sentiment_charts, view_of
from sentiment.web.dataset_charts import stacked_bars
from sentiment.web.errors import ErrorBody, error_responses
from sentiment.web.guard import ADMIN_SECURITY, CSRF_HEADER, require_admin, require_csrf
from sentiment.web.key_guard import require_uploader
from sentiment.web.pages import context
from sentiment.web.rate_limit import row_charge

MAX_FIELD_BYTES = 4096
DatasetId = Annotated[UUID, FromPath]

# -- shapes --------------------------------------------------------------------------------------------------


class ProblemOut(msgspec.Struct):
    line: Annotated[
        int, msgspec.Meta(description="line of the file where the row starts (the header is line 1)")
    ]
    reason: str


class DatasetOut(msgspec.Struct):
    id: UUID
    name: Annotated[str, msgspec.Meta(description="the uploaded file's name")]
    status: Annotated[
        str,
        msgspec.Meta(
            description="uploaded, queued, counting, scoring, done, failed, interrupted (its process "
            "stopped while scoring: the job resumes, after the last chunk stored, when the service starts "
            "again or on another replica) or cancelled (by an admin)"
        ),
    ]
    created_at: datetime
    size_bytes: int
    columns: Annotated[list[str], msgspec.Meta(description="the file's columns, from its header")]
    model: str | None
    text_column: str | None
    time_column: str | None
    group_column: str | None
    gold_column: str | None
    time_format: Annotated[str | None, msgspec.Meta(description="how the time column is read (detected)")]
    rows_total: Annotated[int | None, msgspec.Meta(description="data rows in the file; null until counted")]
    rows_done: Annotated[int, msgspec.Meta(description="rows scored or skipped so far")]
    rows_scored: int
    rows_skipped: Annotated[int, msgspec.Meta(description="rows that could not be scored (see problems)")]
    percent: float | None
    rate_rows_per_s: Annotated[float | None, msgspec.Meta(description="rows per second since scoring began")]
    eta_s: Annotated[float | None, msgspec.Meta(description="seconds left at the current rate")]
    started_at: datetime | None
    finished_at: datetime | None
    problem_count: int
    problems: Annotated[list[ProblemOut], msgspec.Meta(description="the first problems met, by line")]
    notes: list[str]
    error: str | None
    links: dict[str, str]
    compare_models: Annotated[
        list[str], msgspec.Meta(description="models that scored every row too, compared with `model`")
    ]
    resumes: Annotated[
        int,
        msgspec.Meta(
            description="times the job went on after its process stopped, from the last chunk stored (each "
            "row is still scored once)"
        ),
    ] = 0

    @classmethod
    def from_progress(cls, progress: Progress) -> DatasetOut:
        d = progress.dataset
        base = f"/datasets/{d.id}"
        links = {"self": base, "report": f"{base}/report", "page": f"/ui/datasets/{d.id}"}
        if progress.status == "done":
            links["export"] = f"{base}/export"
        return cls(
            id=d.id,
            name=d.name,
            status=progress.status,
            created_at=d.created_at,
            size_bytes=d.size_bytes,
            columns=d.columns,
            model=d.model,
            compare_models=d.compare_models or [],
            text_column=d.text_column,
            time_column=d.time_column,
            group_column=d.group_column,
            gold_column=d.gold_column,
            time_format=d.time_format,
            rows_total=d.rows_total,
            rows_done=d.rows_done,
            rows_scored=d.rows_scored,
            rows_skipped=d.rows_skipped,
            percent=progress.percent,
            rate_rows_per_s=round(d.rate, 1) if d.rate else None,
            eta_s=progress.eta_s,
            started_at=d.started_at,
            finished_at=d.finished_at,
            problem_count=d.problem_count,
            problems=[ProblemOut(int(line), str(reason)) for line, reason in d.problems],
            notes=d.notes,
            error=d.error,
            links=links,
            resumes=d.resumes,
        )


class TrendPointOut(msgspec.Struct):
    start: Annotated[datetime, msgspec.Meta(description="UTC start of the bucket")]
    counts: dict[str, int]


class GroupOut(msgspec.Struct):
    name: str
    total: int
    counts: dict[str, int]


class ReportOut(msgspec.Struct):
    dataset: DatasetOut
    distribution: Annotated[dict[str, int], msgspec.Meta(description="rows per predicted label")]
    trend_bucket: Annotated[
        str | None, msgspec.Meta(description="hour, day or month; null without a time column")
    ]
    trend: Annotated[list[TrendPointOut], msgspec.Meta(description="rows per label by the rows' own time")]
    trend_complete: Annotated[
        bool,
        msgspec.Meta(
            description="false when the rows' times span more than 1,200 buckets (a century of months): "
            "then only the buckets holding rows are listed"
        ),
    ]
    groups: Annotated[list[GroupOut], msgspec.Meta(description="the largest groups, largest first")]
    group_count: int
    metrics: Annotated[
        dict[str, Metrics],
        msgspec.Meta(
            description="with a gold column: per model (the one chosen, and VADER side by side) accuracy, "
            "macro-F1, macro recall, per-class figures and the confusion matrix"
        ),
    ]
    model_details: Annotated[
        dict[str, str] | None,
        msgspec.Meta(
            description="what the model was when it scored (its source, how it ran; a language model's "
            "server, prompt and settings), to reproduce the results; null until scoring starts"
        ),
    ] = None
    group_trends: Annotated[
        dict[str, list[TrendPointOut]],
        msgspec.Meta(
            description="the largest groups' rows per label over the trend's buckets, one series per group "
            "(empty without a time and a group column)"
        ),
    ] = {}
    agreements: Annotated[
        list[Agreement],
        msgspec.Meta(
            description="every pair of the models that scored the rows: the share of rows given the same "
            "label (observed) and Cohen's kappa (agreement beyond chance; null where chance agreement is "
            "complete)"
        ),
    ] = []
    disagreements: Annotated[
        list[Disagreement],
        msgspec.Meta(
            description="the rows the models label differently, widest spread of polarity (P(positive) - "
            "P(negative)) first, with each model's label and polarity (at most 25)"
        ),
    ] = []
    examples: Annotated[
        list[Example],
        msgspec.Meta(
            description="the most confident stored texts of each label (group null), and of each label in "
            "each of the largest groups"
        ),
    ] = []
    group_trend_bucket: Annotated[
        str | None,
        msgspec.Meta(
            description="hour, day or month: the finest that draws each group in at most 40 buckets"
        ),
    ] = None

    @classmethod
    def from_report(cls, report: DatasetReport) -> ReportOut:
        return cls(
            dataset=DatasetOut.from_progress(report.progress),
            distribution=report.distribution,
            trend_bucket=report.trend_width,
            trend=[TrendPointOut(point.start, point.counts) for point in report.trend],
            trend_complete=report.trend_complete,
            groups=[GroupOut(group.name, group.total, group.counts) for group in report.groups],
            group_count=report.group_count,
            metrics=report.metrics,
            model_details=report.progress.dataset.model_details,
            group_trends={
                name: [TrendPointOut(point.start, point.counts) for point in points]
                for name, points in report.group_trends.items()
            },
            group_trend_bucket=report.group_trend_width,
            agreements=report.agreements,
            disagreements=report.disagreements,
            examples=report.examples,
        )


# -- receiving an upload -------------------------------------------------------------------------------------


@dataclass
class UploadOperation(Operation):
    """Documents the multipart body the upload handlers parse themselves (as a stream)."""

    def __post_init__(self) -> None:
        def text(description: str, min_length: int | None = None) -> Schema:
            return Schema(
                type=OpenAPIType.STRING, min_length=min_length, max_length=200, description=description
            )

        self.request_body = RequestBody(
            required=True,
            description="the CSV file (field `file`) and the columns to read",
            content={
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        required=["file", "text_column"],
                        properties={
                            "file": Schema(
                                type=OpenAPIType.STRING,
                                format=OpenAPIFormat.BINARY,
                                description="CSV (or .tsv) in UTF-8 with a header line",
                            ),
                            "text_column": text("the column holding the texts", min_length=1),
                            "model": text("model key; the default model when absent"),
                            "time_column": text("a column of times, in any common format (read as UTC)"),
                            "group_column": text("a column to break results down by (e.g. airline)"),
                            "gold_column": text(
                                "a column of gold labels: negative/neutral/positive, neg/neu/pos, 0/1, "
                                "0/1/2 or -1/0/1"
                            ),
                            "time_format": text(
                                "how to read the time column (a strptime pattern); detected when absent"
                            ),
                            "compare_models": text(
                                "model keys, comma-separated (at most 4), that score every row too: the "
                                "report compares them with the model (gold metrics, pairwise agreement and "
                                "Cohen's kappa, the rows they disagree on most)"
                            ),
                        },
                    )
                )
            },
        )


async def receive_form(
    request: Request[Any, Any, Any], datasets: DatasetService
) -> tuple[dict[str, str], Upload | None]:
    """Parse a multipart body as it arrives: text fields into a dict, the one file part into an Upload."""
    content_type, options = request.content_type
    boundary = options.get("boundary")
    if content_type != "multipart/form-data" or not boundary:
        raise InvalidInput(
            "send the data set as multipart/form-data: the CSV in the field 'file', and text_column"
        )
    fields: dict[str, str] = {}
    upload: Upload | None = None
    segment: MultipartSegment | None = None
    value = bytearray()
    try:
        with PushMultipartParser(boundary.encode(), max_segment_count=32) as parser:
            async for chunk in request.stream():
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        segment = event
                        if event.filename is not None:
                            if upload is not None or event.name != "file":
                                raise InvalidInput("send one file, in the field 'file'")
                            if not event.filename:
                                raise InvalidInput("choose a CSV file to upload")
                            upload = await datasets.receive(event.filename)
                    elif event and segment is not None:
                        if segment.filename is not None and upload is not None:
                            await upload.write(event)
                        else:
                            value += event
                            if len(value) > MAX_FIELD_BYTES:
                                raise InvalidInput(f"the form field {segment.name!r} is too long")
                    elif segment is not None:
                        if segment.filename is None:
                            fields[segment.name] = value.decode("utf-8", "replace").strip()
                        value, segment = bytearray(), None
                if parser.closed:
                    break
    except MultipartError as error:
        if upload is not None:
            await upload.discard()
        raise InvalidInput(f"the body is not valid multipart/form-data: {error}") from None
    except UploadTooLarge as error:
        if upload is not None:
            await upload.discard()
        raise ClientException(detail=error.detail, status_code=413) from None
    except BaseException:
        if upload is not None:
            await upload.discard()
        raise
    return fields, upload


def _options(fields: dict[str, str]) -> DatasetOptions:
    if not fields.get("text_column"):
        raise InvalidInput("text_column is required: the name of the column that holds the texts")
    return DatasetOptions(
        text_column=fields["text_column"],
        model=fields.get("model") or None,
        time_column=fields.get("time_column") or None,
        group_column=fields.get("group_column") or None,
        gold_column=fields.get("gold_column") or None,
        time_format=fields.get("time_format") or None,
        compare=tuple(key.strip() for key in fields.get("compare_models", "").split(",") if key.strip()),
    )


# -- JSON API ------------------------------------------------------------------------------------------------

TOO_LARGE = ResponseSpec(data_container=ErrorBody, description="the file is over SENTIMENT_MAX_UPLOAD_BYTES")
# Not `media_type="text/csv"` on the handler: that would also label its JSON errors as CSV.
EXPORT = ResponseSpec(
    data_container=str, media_type="text/csv", description="the scored CSV, as an attachment"
)


@post(
    "/datasets",
    status_code=202,
    summary="Upload a CSV and score it in the background",
    description=(
        "Multipart upload: `file` (CSV with a header, UTF-8) and `text_column`; optionally `model`, "
        "`time_column`, `group_column` (results broken down by it), `gold_column` (accuracy, macro-F1 and "
        "the confusion matrix, for the model and for VADER side by side) and `time_format`. Answers at once "
        "with the data set; follow its progress in GET /datasets/{id}. Rows that cannot be scored are listed "
        "by line number and skipped."
    ),
    tags=["datasets"],
    guards=[require_uploader],
    request_max_body_size=None,  # streamed to disk; the upload limit is checked as bytes arrive
    operation_class=UploadOperation,
    responses={**error_responses(400, 404, 409, 507), 413: TOO_LARGE},
)
async def upload_dataset(
    request: Request[Any, Any, Any], datasets: NamedDependency[DatasetService]
) -> Response[DatasetOut]:
    fields, upload = await receive_form(request, datasets)
    if upload is None:
        raise InvalidInput("the upload holds no file: send the CSV in the field 'file'")
    try:
        options = _options(fields)
    except InvalidInput:
        await upload.discard()
        raise
    progress = await datasets.submit(upload, options, row_charge(request))
    return Response(
        DatasetOut.from_progress(progress),
        status_code=202,
        headers={"location": f"/datasets/{progress.dataset.id}"},
    )


@get("/datasets", summary="Recent data sets, newest first", tags=["datasets"])
async def list_datasets(datasets: NamedDependency[DatasetService]) -> list[DatasetOut]:
    return [DatasetOut.from_progress(progress) for progress in await datasets.recent()]


async def _progress(datasets: DatasetService, dataset_id: UUID) -> Progress:
    progress = await datasets.progress(dataset_id)
    if progress is None:
        raise NotFoundException(f"no data set {dataset_id}")
    return progress


@get(
    "/datasets/{dataset_id:uuid}",
    summary="A data set and its scoring progress: rows done and total, rate, time left, problems",
    tags=["datasets"],
    responses=error_responses(404),
)
async def get_dataset(dataset_id: DatasetId, datasets: NamedDependency[DatasetService]) -> DatasetOut:
    return DatasetOut.from_progress(await _progress(datasets, dataset_id))


@get(
    "/datasets/{dataset_id:uuid}/report",
    summary="A data set's figures: label distribution, trend over time, groups, metrics against gold labels",
    tags=["datasets"],
    responses=error_responses(404),
)
async def dataset_report(dataset_id: DatasetId, datasets: NamedDependency[DatasetService]) -> ReportOut:
    report = await datasets.report(dataset_id)
    if report is None:
        raise NotFoundException(f"no data set {dataset_id}")
    return ReportOut.from_report(report)


@get(
    "/datasets/{dataset_id:uuid}/trend.csv",
    summary="A data set's trend as CSV: per bucket of the rows' own time, counts, shares with 95% intervals",
    description=(
        "One line per bucket of the report's trend (group empty), then per bucket of each of the largest "
        "groups' trends: rows (n), the count of each label, each label's share in percent with its 95% "
        "Wilson interval, and net sentiment in points. The numbers behind the report's charts."
    ),
    tags=["datasets"],
    responses={**error_responses(404), 200: SERIES_CSV},
)
async def dataset_trend_csv(
    dataset_id: DatasetId, datasets: NamedDependency[DatasetService]
) -> Response[str]:
    report = await datasets.report(dataset_id)
    if report is None:
        raise NotFoundException(f"no data set {dataset_id}")
    points = [
        ("", start, end, counts) for start, end, counts in _trend_series(report.trend, report.trend_width)
    ]
    for name, trend in report.group_trends.items():
        points += [
            (name, start, end, counts)
            for start, end, counts in _trend_series(trend, report.group_trend_width)
        ]
    return csv_response(series_csv(points), f"{Path(report.progress.dataset.name).stem}-trend.csv")


@get(
    "/datasets/{dataset_id:uuid}/export",
    summary="The scored CSV: every input column, then label, confidence and one score per class",
    tags=["datasets"],
    responses={**error_responses(404, 409), 200: EXPORT},
)
async def export_dataset(dataset_id: DatasetId, datasets: NamedDependency[DatasetService]) -> File:
    found = await datasets.export(dataset_id)
    if found is None:
        raise NotFoundException(f"no data set {dataset_id}")
    dataset, path = found
    return File(path=path, filename=f"{Path(dataset.name).stem}-scored.csv", media_type="text/csv")


@delete(
    "/datasets/{dataset_id:uuid}",
    guards=[require_admin],
    security=ADMIN_SECURITY,
    summary="Delete a data set with its files, its scored rows and its figures (admin); a running job is "
    "cancelled first",
    tags=["datasets"],
    responses=error_responses(401, 403, 404),
)
async def delete_dataset(dataset_id: DatasetId, datasets: NamedDependency[DatasetService]) -> None:
    if not await datasets.delete(dataset_id):
        raise NotFoundException(f"no data set {dataset_id}")


@post(
    "/datasets/{dataset_id:uuid}/cancel",
    guards=[require_admin],
    security=ADMIN_SECURITY,
    status_code=200,
    summary="Stop a data set's running job (admin): it becomes cancelled, its progress is kept and its "
    "partial export removed",
    tags=["datasets"],
    responses=error_responses(401, 403, 404, 409),
)
async def cancel_dataset(dataset_id: DatasetId, datasets: NamedDependency[DatasetService]) -> DatasetOut:
    progress = await datasets.cancel(dataset_id)
    if progress is None:
        raise NotFoundException(f"no data set {dataset_id}")
    return DatasetOut.from_progress(progress)


# -- pages ---------------------------------------------------------------------------------------------------


async def require_csrf_header(connection: ASGIConnection, handler: BaseRouteHandler | None = None) -> None:
    """For uploads from the page: the token must come as htmx's header (the body is a stream parsed later)."""
    if connection.headers.get(CSRF_HEADER) is None:
        raise PermissionDeniedException("missing CSRF token: upload from the Analyze page")
    await require_csrf(connection, handler)


def _columns_form(
    request: Request[Any, Any, Any],
    datasets: DatasetService,
    look: Look,
    chosen: Mapping[str, object],
    error: str | None = None,
) -> Template:
    offered = datasets.offered()
    values = {
        "dataset_id": look.dataset.id,
        "name": look.dataset.name,
        "columns": look.dataset.columns,
        "preview": look.preview,
        "models": offered.keys,
        "default_model": offered.default_model,
        "chosen": chosen,
        "error": error,
        "warning": _label_warning(
            datasets, look, str(chosen.get("model") or ""), str(chosen.get("gold") or "")
        ),
    }
    return Template(
        template_name="partials/dataset_columns.html", context=context(request, "/ui/analyze", **values)
    )


def _label_warning(datasets: DatasetService, look: Look, model: str, gold_column: str) -> str | None:
    """Said before scoring when the chosen model lacks labels the chosen gold column holds."""
    return label_mismatch(
        model, datasets.model_labels().get(model, ()), look.gold_columns.get(gold_column, ())
    )


async def _look(datasets: DatasetService, dataset_id: UUID) -> Look:
    look = await datasets.look(dataset_id)
    if look is None:
        raise NotFoundException(f"no data set {dataset_id}")
    return look


@get("/ui/datasets/{dataset_id:uuid}/label-check", include_in_schema=False)
async def label_check(
    request: Request[Any, Any, Any],
    dataset_id: DatasetId,
    datasets: NamedDependency[DatasetService],
    model: Annotated[str, QueryParameter()] = "",
    gold_column: Annotated[str, QueryParameter()] = "",
) -> Template:
    warning = _label_warning(datasets, await _look(datasets, dataset_id), model, gold_column)
    return Template(
        template_name="partials/dataset_label_warning.html",
        context=context(request, "/ui/analyze", warning=warning),
    )


@post(
    "/ui/datasets",
    guards=[require_csrf_header, require_uploader],
    status_code=200,
    request_max_body_size=None,
    include_in_schema=False,
)
async def upload_from_page(
    request: Request[Any, Any, Any], datasets: NamedDependency[DatasetService]
) -> Template:
    try:
        _, upload = await receive_form(request, datasets)
        if upload is None:
            raise InvalidInput("choose a CSV file to upload")
        dataset = await datasets.create(upload)
    except (SentimentError, ClientException) as error:
        return Template(
            template_name="partials/dataset_error.html",
            context=context(request, "/ui/analyze", error=error.detail),
        )
    look = await _look(datasets, dataset.id)
    guess, offered = look.guess, datasets.offered()
    chosen: dict[str, object] = {
        "text": guess.text,
        "time": guess.time,
        "group": guess.group,
        "gold": guess.gold,
        # A model whose labels cover the gold labels: a binary one would never get the neutral rows right.
        "model": covering_model(
            offered.keys, datasets.model_labels(), guess.gold_labels, offered.default_model
        ),
        "compare": [],
    }
    return _columns_form(request, datasets, look, chosen)


class StartForm(msgspec.Struct):
    text_column: str = ""
    time_column: str = ""
    group_column: str = ""
    gold_column: str = ""
    model: str = ""
    # One checkbox ticked arrives as a string, several as a list.
    compare_models: str | list[str] = ""
    csrf_token: str = ""

    @property
    def compared(self) -> list[str]:
        return [self.compare_models] if isinstance(self.compare_models, str) else self.compare_models


@post(
    "/ui/datasets/{dataset_id:uuid}/start",
    guards=[require_csrf, require_uploader],
    status_code=200,
    include_in_schema=False,
)
async def start_from_page(
    request: Request[Any, Any, Any],
    dataset_id: DatasetId,
    data: URLEncodedBody[StartForm],
    datasets: NamedDependency[DatasetService],
) -> Template:
    fields = {
        "text_column": data.text_column,
        "time_column": data.time_column,
        "group_column": data.group_column,
        "gold_column": data.gold_column,
        "model": data.model,
        "compare_models": ",".join(data.compared),
    }
    try:
        progress = await datasets.start(dataset_id, _options(fields), row_charge(request))
    except SentimentError as error:
        found = await datasets.progress(dataset_id)
        if found is None or found.status != "uploaded":
            return Template(
                template_name="partials/dataset_error.html",
                context=context(request, "/ui/analyze", error=error.detail),
            )
        chosen = {
            "text": data.text_column,
            "time": data.time_column,
            "group": data.group_column,
            "gold": data.gold_column,
            "model": data.model,
            "compare": data.compared,
        }
        return _columns_form(request, datasets, await _look(datasets, dataset_id), chosen, error.detail)
    if progress is None:
        raise NotFoundException(f"no data set {dataset_id}")
    return _progress_template(request, progress)


def _progress_template(request: Request[Any, Any, Any], progress: Progress) -> Template:
    """The progress panel; each answer tells the page's list of data sets to refresh too, so the two agree."""
    return Template(
        template_name="partials/dataset_progress.html",
        context=context(request, "/ui/analyze", **progress_values(progress)),
        headers={"HX-Trigger": "dataset-progress"},
    )


@post(
    "/ui/datasets/{dataset_id:uuid}/cancel", guards=[require_admin], status_code=200, include_in_schema=False
)
async def cancel_from_page(
    request: Request[Any, Any, Any], dataset_id: DatasetId, datasets: NamedDependency[DatasetService]
) -> Template:
    try:
        progress = await datasets.cancel(dataset_id)
    except Conflict:
        progress = await datasets.progress(dataset_id)  # it ended meanwhile: show how
    if progress is None:
        raise NotFoundException(f"no data set {dataset_id}")
    return _progress_template(request, progress)


@post(
    "/ui/datasets/{dataset_id:uuid}/delete", guards=[require_admin], status_code=200, include_in_schema=False
)
async def delete_from_page(
    request: Request[Any, Any, Any], dataset_id: DatasetId, datasets: NamedDependency[DatasetService]
) -> Template:
    progress = await _progress(datasets, dataset_id)
    await datasets.delete(dataset_id)
    return Template(
        template_name="partials/dataset_deleted.html",
        context=context(request, "/ui/analyze", name=progress.dataset.name),
    )


def progress_values(progress: Progress, poll: bool = True) -> dict[str, object]:
    d = progress.dataset
    running = progress.status in {"queued", "counting", "scoring"}
    return {
        "d": d,
        "status": progress.status,
        "running": running,
        "poll": poll and running,
        "percent": progress.percent,
        "rate": f"{d.rate:,.0f}" if d.rate else None,
        "eta": _duration(progress.eta_s) if progress.eta_s is not None else None,
        "took": _duration((d.finished_at - d.started_at).total_seconds())
        if d.finished_at and d.started_at
        else None,
    }


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@get("/ui/datasets/{dataset_id:uuid}/progress", include_in_schema=False)
async def progress_fragment(
    request: Request[Any, Any, Any], dataset_id: DatasetId, datasets: NamedDependency[DatasetService]
) -> Template:
    return _progress_template(request, await _progress(datasets, dataset_id))


def _trend_series(
    points: Sequence[TrendPoint], width: Width | None
) -> list[tuple[datetime, datetime, Mapping[str, int]]]:
    if width is None:
        return []
    return [(point.start, _bucket_end(point.start, width), point.counts) for point in points]


def _bucket_end(start: datetime, width: Width) -> datetime:
    """The start of the next bucket; the last moment datetime holds for the bucket of December 9999."""
    try:
        return shifted(start, 1, width)
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)


def report_values(report: DatasetReport, query: Mapping[str, str]) -> dict[str, object]:
    """The report's figures and charts; `view` in the query: its trend as counts (default) or shares."""
    values = progress_values(report.progress, poll=False)
    values["in_report"] = True
    total = sum(report.distribution.values())
    values["report"] = report
    values["distribution"] = bar_chart(
        [(label, 100 * report.distribution[label] / total if total else 0.0) for label in LABELS], unit="%"
    )
    view = view_of(query.get("view"))
    width = report.trend_width
    values["trend"] = (
        sentiment_charts(_trend_series(report.trend, width), view, linear=report.trend_complete)
        if report.trend and width
        else None
    )
    # One small panel per large group, each its shares with their 95% bands, on the report's time axis.
    panel = report.group_trend_width
    values["group_trends"] = [
        (
            name,
            sentiment_charts(_trend_series(points, panel), "share", linear=report.trend_complete, height=180),
        )
        for name, points in report.group_trends.items()
        if panel
    ]
    page = f"/ui/datasets/{report.progress.dataset.id}"
    values["with_view"] = lambda chosen: f"{page}?{urlencode({'view': chosen})}"
    values["groups"] = (
        stacked_bars([(group.name, group.counts) for group in report.groups]) if report.groups else None
    )
    values["metrics"] = list(report.metrics.items())
    values["compared"] = list(report.disagreements[0].labels) if report.disagreements else []
    dataset_id = str(report.progress.dataset.id)
    values["examples"] = {
        label: [e for e in report.examples if e.group is None and e.label == label] for label in LABELS
    }
    group_examples: dict[str, dict[str, Example]] = {}
    for example in report.examples:
        if example.group is not None:
            group_examples.setdefault(example.group, {})[example.label] = example
    values["group_examples"] = group_examples
    values["examples_link"] = lambda label, group=None: (
        "/ui/predictions?"
        + urlencode(
            {
                "dataset": dataset_id,
                "label": label,
                **({"group": group} if group is not None else {}),
                "sort": "most_confident",
            }
        )
    )
    values["text_link"] = lambda text: (
        "/ui/predictions?" + urlencode({"dataset": str(report.progress.dataset.id), "q": text[:80]})
    )
    return values


@get("/ui/datasets/{dataset_id:uuid}", include_in_schema=False)
async def dataset_page(
    request: Request[Any, Any, Any], dataset_id: DatasetId, datasets: NamedDependency[DatasetService]
) -> Template:
    report = await datasets.report(dataset_id)
    if report is None:
        raise NotFoundException(f"no data set {dataset_id}")
    values = report_values(report, request.query_params)
    values["title"] = report.progress.dataset.name
    return Template(template_name="dataset.html", context=context(request, "/ui/datasets", **values))


@get("/ui/datasets/{dataset_id:uuid}/report", include_in_schema=False)
async def report_fragment(
    request: Request[Any, Any, Any], dataset_id: DatasetId, datasets: NamedDependency[DatasetService]
) -> Template:
    report = await datasets.report(dataset_id)
    if report is None:
        raise NotFoundException(f"no data set {dataset_id}")
    return Template(
        template_name="partials/dataset_report.html",
        context=context(request, "/ui/analyze", **report_values(report, request.query_params)),
    )


# The data sets page lists this many a page, newest first.
DATASETS_PER_PAGE = 25


@get("/ui/datasets", include_in_schema=False)
async def datasets_page(
    request: Request[Any, Any, Any],
    datasets: NamedDependency[DatasetService],
    page: Annotated[int, QueryParameter(ge=1, le=1_000_000)] = 1,
) -> Template:
    found, total = await datasets.page(page, DATASETS_PER_PAGE)
    pages = max(1, -(-total // DATASETS_PER_PAGE))
    values = {
        "recent": [progress_values(progress, poll=False) for progress in found],
        "total": total,
        "page": min(page, pages),
        "pages": pages,
        "title": "Data sets",
    }
    return Template(template_name="datasets.html", context=context(request, "/ui/datasets", **values))


@get("/ui/datasets/recent", include_in_schema=False)
async def recent_fragment(
    request: Request[Any, Any, Any], datasets: NamedDependency[DatasetService]
) -> Template:
    recent = [progress_values(progress, poll=False) for progress in await datasets.recent(10)]
    return Template(
        template_name="partials/dataset_list.html", context=context(request, "/ui/analyze", recent=recent)
    )


ROUTES: list[ControllerRouterHandler] = [
    label_check,
    dataset_trend_csv,
    upload_dataset,
    list_datasets,
    get_dataset,
    dataset_report,
    export_dataset,
    delete_dataset,
    cancel_dataset,
    upload_from_page,
    datasets_page,
    start_from_page,
    cancel_from_page,
    delete_from_page,
    progress_fragment,
    dataset_page,
    report_fragment,
    recent_fragment,
]
