"""JSON API: predictions, health and status, alerts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.types import ControllerRouterHandler

from sentiment.services.alerts import AlertService
from sentiment.services.predictions import PredictionBatch, PredictionService
from sentiment.services.system import DatabaseHealth, Readiness, Status, SystemService
from sentiment.web.errors import error_responses
from sentiment.web.guard import ADMIN_SECURITY, require_admin, require_json
from sentiment.web.key_guard import count_texts
from sentiment.web.schemas import AlertOut, BatchIn, BatchOut, Health, PredictIn, PredictionOut


def _timing_headers(batch: PredictionBatch) -> dict[str, str]:
    return {"x-queue-time": f"{batch.queue_ms:.3f}", "x-inference-time": f"{batch.inference_ms:.3f}"}


PREDICTION_ERRORS = error_responses(400, 404, 409, 415, 503)
AlertId = Annotated[int, PathParameter(ge=1, le=2**31 - 1, description="an alert's id from GET /alerts")]


@post(
    "/predict",
    status_code=200,
    before_request=require_json,
    summary="Score one text",
    tags=["predictions"],
    responses=PREDICTION_ERRORS,
)
async def predict(
    request: Request[Any, Any, Any],
    data: JSONBody[PredictIn],
    predictions: NamedDependency[PredictionService],
) -> Response[PredictionOut]:
    batch = await predictions.predict([data.text], model=data.model)
    count_texts(request, 1)
    return Response(PredictionOut.from_domain(batch.predictions[0]), headers=_timing_headers(batch))


@post(
    "/predict/batch",
    status_code=200,
    before_request=require_json,
    summary="Score a batch of texts, answered in input order",
    tags=["predictions"],
    responses=PREDICTION_ERRORS,
)
async def predict_batch(
    request: Request[Any, Any, Any], data: JSONBody[BatchIn], predictions: NamedDependency[PredictionService]
) -> Response[BatchOut]:
    batch = await predictions.predict(data.texts, model=data.model)
    count_texts(request, len(batch.predictions))
    out = BatchOut(
        results=[PredictionOut.from_domain(p) for p in batch.predictions],
        model_used=batch.model_requested,
        total_processing_time_ms=batch.total_ms,
        batch_size=len(batch.predictions),
    )
    return Response(out, headers=_timing_headers(batch))


@get("/health", summary="Liveness: 200 while the process serves", tags=["system"])
async def health() -> Health:
    return Health(status="ok")


@get(
    "/ready",
    summary="Readiness: 200 once the default model is loaded and the database answers",
    tags=["system"],
    responses=error_responses(503),
)
async def ready(system: NamedDependency[SystemService]) -> Readiness:
    return await system.readiness()


@get("/status", summary="Version, uptime, models, database", tags=["system"])
async def status(system: NamedDependency[SystemService]) -> Status:
    return await system.status()


@get(
    "/db/health",
    summary="Database reachability, latency, schema and unsaved predictions "
    "(503 when it does not answer, its schema is behind or writes fail)",
    tags=["system"],
    responses={
        503: ResponseSpec(
            data_container=DatabaseHealth,
            description="the database does not answer, its schema is behind, or writes to it fail",
        )
    },
)
async def db_health(system: NamedDependency[SystemService]) -> Response[DatabaseHealth]:
    report = await system.database_health()
    return Response(report, status_code=200 if report.state in ("ok", "backlog") else 503)


@get(
    "/alerts", summary="Active and past alerts, newest first", tags=["alerts"], responses=error_responses(400)
)
async def list_alerts(
    alerts: NamedDependency[AlertService],
    alert_state: Annotated[Literal["active", "resolved"] | None, QueryParameter(name="state")] = None,
) -> list[AlertOut]:
    return [AlertOut.from_domain(alert) for alert in await alerts.list(alert_state)]


@post(
    "/alerts/{alert_id:int}/acknowledge",
    status_code=200,
    guards=[require_admin],
    security=ADMIN_SECURITY,
    summary="Acknowledge an alert (admin token)",
    tags=["alerts"],
    responses=error_responses(401, 403, 404),
)
async def acknowledge_alert(alert_id: AlertId, alerts: NamedDependency[AlertService]) -> AlertOut:
    alert = await alerts.acknowledge(alert_id)
    if alert is None:
        raise NotFoundException(f"no alert with id {alert_id}")
    return AlertOut.from_domain(alert)


ROUTES: list[ControllerRouterHandler] = [
    predict,
    predict_batch,
    health,
    ready,
    status,
    db_health,
    list_alerts,
    acknowledge_alert,
]
