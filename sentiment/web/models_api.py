"""Model management endpoints: the catalogue with each model's state and figures, downloads, load, unload,
and the default model. Every action needs the admin token."""

from __future__ import annotations

import msgspec
from litestar import get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.types import ControllerRouterHandler

from sentiment.services.models import ModelDetail, ModelService, ModelsOverview, ModelView
from sentiment.web.errors import error_responses
from sentiment.web.guard import ADMIN_SECURITY, require_admin
from sentiment.web.schemas import ModelKey

ADMIN_ERRORS = error_responses(400, 401, 403, 404, 409)


class ModelIn(msgspec.Struct, forbid_unknown_fields=True):
    model: ModelKey


@get(
    "/models",
    summary="Every known model: source, labels, status, default, breaker, download",
    tags=["models"],
)
async def list_models(models: NamedDependency[ModelService]) -> ModelsOverview:
    return models.overview()


@get(
    "/models/{key:str}",
    summary="One model with its figures: requests, latency, errors, fallbacks, memory",
    tags=["models"],
    responses=error_responses(404),
)
async def model_detail(key: FromPath[str], models: NamedDependency[ModelService]) -> ModelDetail:
    return models.detail(key)


@post(
    "/models/download",
    status_code=202,
    guards=[require_admin],
    security=ADMIN_SECURITY,
    tags=["models"],
    responses=ADMIN_ERRORS,
    summary="Download a hub model in the background; progress shows in GET /models/{key} (admin token)",
)
async def download_model(data: JSONBody[ModelIn], models: NamedDependency[ModelService]) -> ModelView:
    return models.start_download(data.model)


@post(
    "/models/{key:str}/load",
    status_code=202,
    guards=[require_admin],
    security=ADMIN_SECURITY,
    tags=["models"],
    responses=ADMIN_ERRORS,
    summary="Load a model in the background (admin token)",
)
async def load_model(key: FromPath[str], models: NamedDependency[ModelService]) -> ModelView:
    return await models.request_load(key)


@post(
    "/models/{key:str}/unload",
    status_code=200,
    guards=[require_admin],
    security=ADMIN_SECURITY,
    tags=["models"],
    responses=ADMIN_ERRORS,
    summary="Unload a model: queued requests finish on it, then its memory is freed (admin token)",
)
async def unload_model(key: FromPath[str], models: NamedDependency[ModelService]) -> ModelView:
    return await models.request_unload(key)


@put(
    "/models/default",
    status_code=200,
    guards=[require_admin],
    security=ADMIN_SECURITY,
    tags=["models"],
    responses=ADMIN_ERRORS,
    summary="Make a model the default, as soon as it is loaded; every replica follows (admin token)",
)
async def set_default_model(data: JSONBody[ModelIn], models: NamedDependency[ModelService]) -> ModelsOverview:
    return await models.request_default(data.model)


ROUTES: list[ControllerRouterHandler] = [
    list_models,
    model_detail,
    download_model,
    load_model,
    unload_model,
    set_default_model,
]
