"""Failsafe endpoints: breaker states, manual reset, and (admin only) faults injected on purpose."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sentiment.core.domain import VADER_KEY
from sentiment.services.failsafe import FailsafeReport
from sentiment.inference.faults import Fault
from sentiment.services.container import Services
from sentiment.web.errors import error_responses
from sentiment.web.guard import require_admin
from sentiment.web.schemas import ModelKey


class ResetIn(msgspec.Struct, forbid_unknown_fields=True):
    model: ModelKey | None = None


class FaultIn(msgspec.Struct, forbid_unknown_fields=True):
    model: ModelKey
    mode: Literal["fail", "hang", "none"]
    hang_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0


def _report(services: Services) -> FailsafeReport:
    registry = services.registry
    models = [key for key in registry.keys if key != VADER_KEY]
    faults = {key: fault.mode for key in models if (fault := registry.entry(key).fault) is not None}
    return services.failsafe.report(models, faults)


@get(
    "/failsafe/status",
    summary="Per-model circuit breakers: state, failures in the window, next trial, settings",
    tags=["failsafe"],
)
async def failsafe_status(services: NamedDependency[Services]) -> FailsafeReport:
    return _report(services)


@post(
    "/failsafe/reset",
    status_code=200,
    guards=[require_admin],
    summary="Close breakers by hand: all, or one model (admin token)",
    tags=["failsafe"],
    responses=error_responses(400, 401, 403, 404),
)
async def failsafe_reset(
    services: NamedDependency[Services], data: JSONBody[ResetIn | None] = None
) -> FailsafeReport:
    model = data.model if data is not None else None
    if model is not None:
        services.registry.entry(model)  # 404 for an unknown key
    services.failsafe.reset(model)
    return _report(services)


@post(
    "/failsafe/faults",
    status_code=200,
    guards=[require_admin],
    summary="Make a model fail or hang on purpose, for tests and demonstrations; mode none clears it (admin token)",
    tags=["failsafe"],
    responses=error_responses(400, 401, 403, 404),
)
async def failsafe_fault(services: NamedDependency[Services], data: JSONBody[FaultIn]) -> FailsafeReport:
    entry = services.registry.entry(data.model)
    entry.set_fault(None if data.mode == "none" else Fault(data.mode, data.hang_seconds))
    return _report(services)


ROUTES = [failsafe_status, failsafe_reset, failsafe_fault]
