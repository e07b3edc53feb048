"""Failsafe endpoints: breaker states, manual reset, and (admin only) faults injected on purpose."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.types import ControllerRouterHandler

from sentiment.services.failsafe import FailsafeReport, FailsafeService
from sentiment.web.errors import error_responses
from sentiment.web.guard import ADMIN_SECURITY, require_admin
from sentiment.web.schemas import ModelKey


class ResetIn(msgspec.Struct, forbid_unknown_fields=True):
    model: ModelKey | None = None


class FaultIn(msgspec.Struct, forbid_unknown_fields=True):
    model: ModelKey
    mode: Literal["fail", "hang", "none"]
    hang_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0


@get(
    "/failsafe/status",
    summary="Per-model circuit breakers: state, failures in the window, next trial, settings",
    tags=["failsafe"],
)
async def failsafe_status(failsafe: NamedDependency[FailsafeService]) -> FailsafeReport:
    return failsafe.report()


@post(
    "/failsafe/reset",
    status_code=200,
    guards=[require_admin],
    security=ADMIN_SECURITY,
    summary="Close breakers by hand: all, or one model (admin token)",
    tags=["failsafe"],
    responses=error_responses(400, 401, 403, 404),
)
async def failsafe_reset(
    failsafe: NamedDependency[FailsafeService], data: JSONBody[ResetIn | None] = None
) -> FailsafeReport:
    return failsafe.reset(data.model if data is not None else None)


@post(
    "/failsafe/faults",
    status_code=200,
    guards=[require_admin],
    security=ADMIN_SECURITY,
    summary=(
        "Make a model fail or hang on purpose, for tests and demonstrations; "
        "mode none clears it (admin token)"
    ),
    tags=["failsafe"],
    responses=error_responses(400, 401, 403, 404),
)
async def failsafe_fault(
    failsafe: NamedDependency[FailsafeService], data: JSONBody[FaultIn]
) -> FailsafeReport:
    return failsafe.inject_fault(data.model, None if data.mode == "none" else data.mode, data.hang_seconds)


ROUTES: list[ControllerRouterHandler] = [failsafe_status, failsafe_reset, failsafe_fault]
