"""Server-rendered pages (Jinja2 + htmx). Every asset they load is a file under /static: no CDN, no inline
script or style. Page forms carry the session's CSRF token; admin actions go through the one admin guard."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter, URLEncodedBody
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler

from sentiment.core.analytics_math import parse_moment
from sentiment.core.api_keys import key_digest
from sentiment.core.domain import LABELS, VADER_KEY, AlertState, InvalidInput, SentimentError
from sentiment.core.resources import bundled_dir
from sentiment.services.access import AccessService
from sentiment.services.alerts import AlertService
from sentiment.services.api_keys import ApiKeyService
from sentiment.services.failsafe import FailsafeService
from sentiment.services.history import SORTS, HistoryService, PredictionFilters
from sentiment.services.models import ModelService, ModelView
from sentiment.services.overview import OverviewService
from sentiment.services.predictions import PredictionService
from sentiment.web.api import AlertId
from sentiment.web.charts import bar_chart
from sentiment.web.guard import (
    client_of,
    csrf_token,
    is_admin_session,
    login_link,
    require_admin,
    require_csrf,
    return_path,
    throttled,
)
from sentiment.web.key_guard import SESSION_KEY, api_keys_of
from sentiment.web.overview import FALLBACK_CHOICES, overview_values

STATIC = Path(__file__).parent / "static"
TEMPLATES = bundled_dir("templates")

TEMPLATE_CONFIG = TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine)
STATIC_FILES = create_static_files_router(path="/static", directories=[STATIC], include_in_schema=False)


def context(request: Request[Any, Any, Any], active: str, **values: object) -> dict[str, object]:
    """What every page template gets: the CSRF token, whether the session is an admin's, the active tab."""
    return {
        "csrf": csrf_token(request.session),
        "is_admin": is_admin_session(request),
        "signed_in": isinstance(request.session.get(SESSION_KEY), str),
        "active": active,
        "login_link": login_link(request),
        "title": active.rsplit("/", 1)[-1].capitalize() if active != "/ui" else "Overview",
        **values,
    }


def render(
    request: Request[Any, Any, Any], template: str, partial: str, active: str, **values: object
) -> Template:
    """The whole page, or only its changing part when htmx asks for it."""
    name = partial if request.headers.get("hx-request") == "true" else template
    return Template(template_name=name, context=context(request, active, **values))


@get("/", include_in_schema=False)
async def home() -> Redirect:
    return Redirect("/ui")


@get("/docs", include_in_schema=False)
async def api_docs() -> Template:
    return Template(template_name="docs.html")


# -- overview -----------------------------------------------------------------------------------------------


@get("/ui", include_in_schema=False)
async def overview_page(
    request: Request[Any, Any, Any], overview: NamedDependency[OverviewService]
) -> Template:
    values = await overview_values(overview, request.query_params)
    return Template(template_name="overview.html", context=context(request, "/ui", **values))


@get("/ui/overview/live", include_in_schema=False)
async def overview_live(
    request: Request[Any, Any, Any], overview: NamedDependency[OverviewService]
) -> Template:
    values = await overview_values(overview, request.query_params)
    return Template(template_name="partials/overview_live.html", context=context(request, "/ui", **values))


# -- analyze ------------------------------------------------------------------------------------------------


class AnalyzeForm(msgspec.Struct):
    text: str = ""
    model: str | None = None
    csrf_token: str = ""


@get("/ui/analyze", include_in_schema=False)
async def analyze_page(
    request: Request[Any, Any, Any],
    predictions: NamedDependency[PredictionService],
    api_keys: NamedDependency[ApiKeyService],
) -> Template:
    offered = predictions.offered()
    values = {
        "models": offered.keys,
        "model_notes": offered.notes,
        "default_model": offered.default_model,
        "max_text_length": predictions.max_text_length,
        # SENTIMENT_UPLOADS=admin: the upload form is offered to admins and key holders only.
        "uploads_closed": api_keys.uploads == "admin"
        and not (is_admin_session(request) or isinstance(request.session.get(SESSION_KEY), str)),
    }
    return Template(template_name="analyze.html", context=context(request, "/ui/analyze", **values))


@post("/ui/analyze", guards=[require_csrf], status_code=200, include_in_schema=False)
async def analyze_text(
    request: Request[Any, Any, Any],
    data: URLEncodedBody[AnalyzeForm],
    predictions: NamedDependency[PredictionService],
) -> Template:
    values: dict[str, object]
    try:
        batch = await predictions.predict([data.text], model=data.model or None)
    except SentimentError as error:
        values = {"error": error.detail}
    else:
        prediction = batch.predictions[0]
        chart = bar_chart(
            [
                (label, prediction.scores.get(label, 0.0) * 100)
                for label in LABELS
                if label in prediction.scores
            ],
            unit="%",
        )
        values = {"prediction": prediction, "chart": chart}
        if prediction.model_used == VADER_KEY:
            values["vader_compound"] = vader_compound(prediction.sentiment, prediction.confidence)
    return Template(template_name="partials/analysis.html", context=context(request, "/ui/analyze", **values))


def vader_compound(label: str, confidence: float) -> str:
    """VADER's compound score, read back from its answer (whose confidence is |compound| for a positive or
    negative label and 1 - 20|compound| inside the neutral band): a score in [-1, 1], not a probability."""
    if label == "positive":
        return f"+{confidence:.3f}"
    if label == "negative":
        return f"\u2212{confidence:.3f}"
    return f"\u00b1{(1 - confidence) / 20:.3f}"


# -- predictions --------------------------------------------------------------------------------------------


def _moment(raw: str | None, name: str) -> datetime | None:
    return parse_moment(raw, name) if raw else None


def history_filters(query: Mapping[str, str]) -> PredictionFilters:
    """The predictions page's filters, named as GET /predictions names them (so its export link can pass them
    on as they are); a value that is not a choice is ignored, a malformed time or data set raises."""
    return PredictionFilters(
        text=query.get("q") or None,
        label=query.get("label") if query.get("label") in LABELS else None,
        model=query.get("model") or None,
        since=_moment(query.get("since"), "since"),
        until=_moment(query.get("until"), "until"),
        dataset=UUID(query["dataset"]) if query.get("dataset") else None,
        group=query.get("group") or None,
        fallback=FALLBACK_CHOICES.get(query.get("fallback", "")),
        sort=next((sort for sort in SORTS if sort == query.get("sort")), "newest"),
    )


@get("/ui/predictions", include_in_schema=False)
async def predictions_page(
    request: Request[Any, Any, Any], history: NamedDependency[HistoryService]
) -> Template:
    query = request.query_params
    error = None
    try:
        filters = history_filters(query)
        page_number = max(1, int(query.get("page") or 1))
    except (ValueError, InvalidInput) as invalid:
        error, filters, page_number = f"ignored a filter that is not valid: {invalid}", PredictionFilters(), 1
    page = await history.page(filters, page_number)
    kept = {k: v for k, v in query.items() if k != "page" and v and (k, v) != ("sort", "newest")}
    kept = kept if error is None else {}

    def link(number: int) -> str:
        return "/ui/predictions?" + urlencode({**kept, "page": number})

    def export_link(export_format: str) -> str:
        return f"/predictions/export.{export_format}?" + urlencode(kept)

    values = {
        "page": page,
        "filters": filters,
        "error": error,
        "link": link,
        "export_link": export_link,
        "models": history.model_keys,
        "datasets": await history.datasets(),
        "sorts": SORTS,
        "since_value": filters.since.strftime("%Y-%m-%dT%H:%M") if filters.since else "",
        "until_value": filters.until.strftime("%Y-%m-%dT%H:%M") if filters.until else "",
    }
    shown = render(
        request, "predictions.html", "partials/predictions_table.html", "/ui/predictions", **values
    )
    # The address bar gets the filters that are set, not every empty field of the form.
    shown.headers["HX-Push-Url"] = link(page.page) if page.page > 1 else "/ui/predictions?" + urlencode(kept)
    return shown


# -- models -------------------------------------------------------------------------------------------------


def _actions(model: ModelView) -> list[str]:
    if model.kind == "vader":
        return [] if model.is_default else ["default"]
    if model.status == "not downloaded" or (model.download is not None and model.download.state == "failed"):
        return ["download"]
    actions = []
    if model.status in {"available", "failed"}:
        actions.append("load")
    if model.status == "loaded" and not model.is_default:
        actions += ["default", "unload"]
    return actions


def _models_values(models: ModelService, error: str | None = None) -> dict[str, object]:
    overview_ = models.overview()
    busy = any(m.status in {"loading", "downloading"} for m in overview_.models)
    details = {model.key: models.detail(model.key) for model in overview_.models}
    return {"overview": overview_, "details": details, "actions": _actions, "busy": busy, "error": error}


@get("/ui/models", include_in_schema=False)
async def models_page(request: Request[Any, Any, Any], models: NamedDependency[ModelService]) -> Template:
    return render(
        request, "models.html", "partials/models_table.html", "/ui/models", **_models_values(models)
    )


@get("/ui/models/table", include_in_schema=False)
async def models_table(request: Request[Any, Any, Any], models: NamedDependency[ModelService]) -> Template:
    return Template(
        template_name="partials/models_table.html",
        context=context(request, "/ui/models", **_models_values(models)),
    )


@post("/ui/models/{key:str}/{action:str}", guards=[require_admin], status_code=200, include_in_schema=False)
async def model_action(
    request: Request[Any, Any, Any],
    key: FromPath[str],
    action: FromPath[str],
    models: NamedDependency[ModelService],
) -> Template:
    error = None
    try:
        if action == "load":
            await models.request_load(key)
        elif action == "unload":
            await models.request_unload(key)
        elif action == "default":
            await models.request_default(key)
        elif action == "download":
            models.start_download(key)
        else:
            error = f"unknown action {action!r}"
    except SentimentError as failure:
        error = failure.detail
    return Template(
        template_name="partials/models_table.html",
        context=context(request, "/ui/models", **_models_values(models, error)),
    )


# -- alerts -------------------------------------------------------------------------------------------------


# The alerts page's filter: active, resolved, or every alert (none).
AlertFilter = Annotated[AlertState | None, QueryParameter(name="state")]


@get("/ui/alerts", include_in_schema=False)
async def alerts_page(
    request: Request[Any, Any, Any], alerts: NamedDependency[AlertService], alert_state: AlertFilter = None
) -> Template:
    listed = await alerts.list(alert_state)
    return render(
        request, "alerts.html", "partials/alerts_table.html", "/ui/alerts", alerts=listed, state=alert_state
    )


@get("/ui/alerts/table", include_in_schema=False)
async def alerts_table(
    request: Request[Any, Any, Any], alerts: NamedDependency[AlertService], alert_state: AlertFilter = None
) -> Template:
    return Template(
        template_name="partials/alerts_table.html",
        context=context(request, "/ui/alerts", alerts=await alerts.list(alert_state), state=alert_state),
    )


@post(
    "/ui/alerts/{alert_id:int}/acknowledge", guards=[require_admin], status_code=200, include_in_schema=False
)
async def acknowledge_from_page(
    request: Request[Any, Any, Any],
    alert_id: AlertId,
    alerts: NamedDependency[AlertService],
    alert_state: AlertFilter = None,
) -> Template:
    await alerts.acknowledge(alert_id)
    return Template(
        template_name="partials/alerts_table.html",
        context=context(request, "/ui/alerts", alerts=await alerts.list(alert_state), state=alert_state),
    )


class BreakerForm(msgspec.Struct):
    model: str


@post("/ui/failsafe/reset", guards=[require_admin], status_code=200, include_in_schema=False)
async def reset_breaker_from_page(
    data: URLEncodedBody[BreakerForm], failsafe: NamedDependency[FailsafeService]
) -> Response[str]:
    """Closes one model's breaker; the alerts table, told by the event, shows its alert resolved."""
    failsafe.reset(data.model)
    return Response("", headers={"hx-trigger": "alerts-changed"})


# -- login --------------------------------------------------------------------------------------------------


class LoginForm(msgspec.Struct):
    token: str = ""
    csrf_token: str = ""
    next: str = ""  # the page to go back to (validated by return_path)


def login_context(
    request: Request[Any, Any, Any], access: AccessService, **values: object
) -> dict[str, object]:
    """The login page's values; `next_page` is where a successful login goes back to."""
    keys_required = api_keys_of(request).required
    return context(
        request, "/ui/login", token_configured=access.configured, keys_required=keys_required, **values
    )


@get("/ui/login", include_in_schema=False)
async def login_page(
    request: Request[Any, Any, Any],
    access: NamedDependency[AccessService],
    next_page: Annotated[str | None, QueryParameter(name="next")] = None,
) -> Template:
    return Template(
        template_name="login.html", context=login_context(request, access, next_page=return_path(next_page))
    )


@post("/ui/login", guards=[require_csrf], status_code=200, include_in_schema=False)
async def login(
    request: Request[Any, Any, Any], data: URLEncodedBody[LoginForm], access: NamedDependency[AccessService]
) -> Response[Any]:
    client = client_of(request)
    if refusal := throttled(access, client):
        return Template(
            template_name="login.html",
            context=login_context(request, access, error=refusal.detail, next_page=return_path(data.next)),
            status_code=429,
            headers={"retry-after": str(refusal.retry_after_s)},
        )
    keys = api_keys_of(request)
    if access.accepts(data.token):
        access.throttle.succeeded(client)
        start_session(request, {"admin": access.session_mark()})
        return Redirect(return_path(data.next) or "/ui/alerts")
    if keys.required and (key := await keys.verify(data.token)) is not None and key.revoked_at is None:
        access.throttle.succeeded(client)
        start_session(request, {SESSION_KEY: key_digest(data.token)})
        return Redirect(return_path(data.next) or "/ui")
    if not access.configured and not keys.required:
        error, status = "no admin token is configured on the service", 403
    else:
        access.throttle.failed(client)
        error, status = ("wrong token or API key" if keys.required else "wrong token"), 401
    return Template(
        template_name="login.html",
        context=login_context(request, access, error=error, next_page=return_path(data.next)),
        status_code=status,
    )


def start_session(request: Request[Any, Any, Any], values: dict[str, object]) -> None:
    """A new session: a new id (one planted or copied before login is worth nothing after it) and a new CSRF
    token (one read before login no longer works)."""
    request.clear_session()
    request.set_session(values)
    csrf_token(request.session)


@post("/ui/logout", guards=[require_csrf], include_in_schema=False)
async def logout(request: Request[Any, Any, Any]) -> Redirect:
    """Deletes the session on the server: a copy of its cookie opens nothing afterwards."""
    request.clear_session()
    return Redirect("/ui")


ROUTES: list[ControllerRouterHandler] = [
    STATIC_FILES,
    home,
    api_docs,
    overview_page,
    overview_live,
    analyze_page,
    analyze_text,
    predictions_page,
    models_page,
    models_table,
    model_action,
    alerts_page,
    alerts_table,
    acknowledge_from_page,
    reset_breaker_from_page,
    login_page,
    login,
    logout,
]
