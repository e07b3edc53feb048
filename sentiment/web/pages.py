"""Server-rendered pages (Jinja2 + htmx). Every asset they load is a file under /static: no CDN, no inline script
or style. Page forms carry the session's CSRF token; admin actions go through the one admin guard."""

from __future__ import annotations

import hmac
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, URLEncodedBody
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from sentiment.services.alerts import AlertService
from sentiment.core.analytics_math import parse_moment
from sentiment.core.domain import LABELS, InvalidInput, SentimentError
from sentiment.services.models import ModelService, ModelView
from sentiment.services.container import Services
from sentiment.services.history import HistoryService
from sentiment.services.predictions import PredictionService
from sentiment.storage.history import HistoryFilters
from sentiment.web import overview
from sentiment.web.api import AlertId
from sentiment.web.charts import bar_chart
from sentiment.web.guard import csrf_token, is_admin_session, require_admin, require_csrf, token_fingerprint

STATIC = Path(__file__).parent / "static"
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"

TEMPLATE_CONFIG = TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine)
STATIC_FILES = create_static_files_router(path="/static", directories=[STATIC], include_in_schema=False)
PAGE = {"include_in_schema": False}


def context(request: Request[Any, Any, Any], active: str, **values: object) -> dict[str, object]:
    """What every page template gets: the CSRF token, whether the session is an admin's, the active tab."""
    token: str | None = request.app.state.services.settings.admin_token
    return {
        "csrf": csrf_token(request.session),
        "is_admin": token is not None and is_admin_session(request, token),
        "active": active,
        "title": active.rsplit("/", 1)[-1].capitalize() if active != "/ui" else "Overview",
        **values,
    }


def render(request: Request[Any, Any, Any], template: str, partial: str, active: str, **values: object) -> Template:
    """The whole page, or only its changing part when htmx asks for it."""
    name = partial if request.headers.get("hx-request") == "true" else template
    return Template(template_name=name, context=context(request, active, **values))


@get("/", **PAGE)
async def home() -> Redirect:
    return Redirect("/ui")


@get("/docs", **PAGE)
async def api_docs() -> Template:
    return Template(template_name="docs.html")


# -- overview -----------------------------------------------------------------------------------------------


@get("/ui", **PAGE)
async def overview_page(request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
    values = await overview.gather(services, request.query_params)
    return Template(template_name="overview.html", context=context(request, "/ui", **values))


@get("/ui/overview/live", **PAGE)
async def overview_live(request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
    values = await overview.gather(services, request.query_params)
    return Template(template_name="partials/overview_live.html", context=context(request, "/ui", **values))


# -- analyze ------------------------------------------------------------------------------------------------


class AnalyzeForm(msgspec.Struct):
    text: str = ""
    model: str | None = None
    csrf_token: str = ""


@get("/ui/analyze", **PAGE)
async def analyze_page(request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
    values = {
        "models": [e.key for e in services.registry.entries() if e.loaded or e.wanted],
        "default_model": services.registry.default_key,
        "max_text_length": services.settings.max_text_length,
    }
    return Template(template_name="analyze.html", context=context(request, "/ui/analyze", **values))


@post("/ui/analyze", guards=[require_csrf], status_code=200, **PAGE)
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
        chart = bar_chart([(label, prediction.scores.get(label, 0.0) * 100) for label in LABELS if label in prediction.scores],
                          unit="%", width=420, label_width=80)
        values = {"prediction": prediction, "chart": chart}
    return Template(template_name="partials/analysis.html", context=context(request, "/ui/analyze", **values))


# -- predictions --------------------------------------------------------------------------------------------


def _moment(raw: str | None, name: str) -> datetime | None:
    return parse_moment(raw, name) if raw else None


@get("/ui/predictions", **PAGE)
async def predictions_page(
    request: Request[Any, Any, Any], services: NamedDependency[Services], history: NamedDependency[HistoryService]
) -> Template:
    query = request.query_params
    error = None
    try:
        filters = HistoryFilters(
            text=query.get("text") or None,
            label=query.get("label") if query.get("label") in LABELS else None,
            model=query.get("model") or None,
            since=_moment(query.get("since"), "since"),
            until=_moment(query.get("until"), "until"),
            page=max(1, int(query.get("page") or 1)),
        )
    except (ValueError, InvalidInput) as invalid:
        error, filters = f"ignored a filter that is not valid: {invalid}", HistoryFilters()
    page = await history.page(filters)
    kept = {k: v for k, v in query.items() if k != "page" and v}

    def link(number: int) -> str:
        return "/ui/predictions?" + urlencode({**kept, "page": number})

    values = {
        "page": page,
        "filters": filters,
        "error": error,
        "link": link,
        "models": services.registry.keys,
        "since_value": filters.since.strftime("%Y-%m-%dT%H:%M") if filters.since else "",
        "until_value": filters.until.strftime("%Y-%m-%dT%H:%M") if filters.until else "",
    }
    return render(request, "predictions.html", "partials/predictions_table.html", "/ui/predictions", **values)


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
    return {"overview": overview_, "actions": _actions, "busy": busy, "error": error}


@get("/ui/models", **PAGE)
async def models_page(request: Request[Any, Any, Any], models: NamedDependency[ModelService]) -> Template:
    return render(request, "models.html", "partials/models_table.html", "/ui/models", **_models_values(models))


@get("/ui/models/table", **PAGE)
async def models_table(request: Request[Any, Any, Any], models: NamedDependency[ModelService]) -> Template:
    return Template(template_name="partials/models_table.html",
                    context=context(request, "/ui/models", **_models_values(models)))


@post("/ui/models/{key:str}/{action:str}", guards=[require_admin], status_code=200, **PAGE)
async def model_action(
    request: Request[Any, Any, Any], key: FromPath[str], action: FromPath[str], models: NamedDependency[ModelService]
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
    return Template(template_name="partials/models_table.html",
                    context=context(request, "/ui/models", **_models_values(models, error)))


# -- alerts -------------------------------------------------------------------------------------------------


@get("/ui/alerts", **PAGE)
async def alerts_page(request: Request[Any, Any, Any], alerts: NamedDependency[AlertService]) -> Template:
    return render(request, "alerts.html", "partials/alerts_table.html", "/ui/alerts", alerts=await alerts.list())


@get("/ui/alerts/table", **PAGE)
async def alerts_table(request: Request[Any, Any, Any], alerts: NamedDependency[AlertService]) -> Template:
    return Template(template_name="partials/alerts_table.html",
                    context=context(request, "/ui/alerts", alerts=await alerts.list()))


@post("/ui/alerts/{alert_id:int}/acknowledge", guards=[require_admin], status_code=200, **PAGE)
async def acknowledge_from_page(
    request: Request[Any, Any, Any], alert_id: AlertId, alerts: NamedDependency[AlertService]
) -> Template:
    await alerts.acknowledge(alert_id)
    return Template(template_name="partials/alerts_table.html",
                    context=context(request, "/ui/alerts", alerts=await alerts.list()))


# -- login --------------------------------------------------------------------------------------------------


class LoginForm(msgspec.Struct):
    token: str = ""
    csrf_token: str = ""


@get("/ui/login", **PAGE)
async def login_page(request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
    configured = services.settings.admin_token is not None
    return Template(template_name="login.html", context=context(request, "/ui/login", token_configured=configured))


@post("/ui/login", guards=[require_csrf], status_code=200, **PAGE)
async def login(
    request: Request[Any, Any, Any], data: URLEncodedBody[LoginForm], services: NamedDependency[Services]
) -> Response[Any]:
    expected = services.settings.admin_token
    if expected is not None and hmac.compare_digest(data.token.encode(), expected.encode()):
        request.session["admin"] = token_fingerprint(expected)
        return Redirect("/ui/alerts")
    error = "wrong token" if expected is not None else "no admin token is configured on the service"
    template = Template(
        template_name="login.html",
        context=context(request, "/ui/login", token_configured=expected is not None, error=error),
        status_code=401 if expected is not None else 403,
    )
    return template


@post("/ui/logout", guards=[require_csrf], **PAGE)
async def logout(request: Request[Any, Any, Any]) -> Redirect:
    request.session.pop("admin", None)
    return Redirect("/ui")


ROUTES = [
    STATIC_FILES, home, api_docs, overview_page, overview_live, analyze_page, analyze_text, predictions_page,
    models_page, models_table, model_action, alerts_page, alerts_table, acknowledge_from_page, login_page, login,
    logout,
]
