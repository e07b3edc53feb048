"""The one table that turns domain errors into HTTP statuses, in Litestar's error shape."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, TooManyRequestsException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.response import Redirect
from litestar.types import ExceptionHandlersMap
from sqlalchemy.exc import SQLAlchemyError

from sentiment.core.domain import (
    Conflict,
    InvalidInput,
    ModelNotLoaded,
    NotReady,
    QueueFull,
    RateLimited,
    SentimentError,
    StorageBehind,
    StorageFull,
    UnknownModel,
)
from sentiment.services.system import database_away_error, missing_schema_error
from sentiment.web.guard import login_link, login_page_for
from sentiment.web.key_guard import LoginRequired

log = structlog.get_logger(__name__)

STATUS_OF: dict[type[SentimentError], int] = {
    InvalidInput: 400,
    UnknownModel: 404,
    ModelNotLoaded: 409,
    Conflict: 409,
    QueueFull: 503,
    RateLimited: 429,
    StorageFull: 507,
    StorageBehind: 503,
    NotReady: 503,
}


def status_of(error: BaseException) -> int:
    """The status an error is answered with: an HTTP exception's own, a domain error's from STATUS_OF, else
    500."""
    if isinstance(error, HTTPException):
        return error.status_code
    if isinstance(error, SentimentError):
        return next((code for kind, code in STATUS_OF.items() if isinstance(error, kind)), 500)
    return 500


def domain_error_response(_: Request, error: SentimentError) -> Response[dict[str, object]]:
    status = status_of(error)
    headers = (
        {"retry-after": str(error.retry_after_s)}
        if isinstance(error, QueueFull | RateLimited | StorageBehind)
        else None
    )
    body: dict[str, object] = {"status_code": status, "detail": error.detail}
    if error.extra is not None:
        body["extra"] = error.extra
    return Response(body, status_code=status, headers=headers)


def invalid_utf8_response(_: Request, error: UnicodeDecodeError) -> Response[dict[str, object]]:
    # Litestar's JSON decoding lets this escape as a 500; a body that is not UTF-8 is the client's error.
    detail = f"request body is not valid UTF-8 (byte {error.start})"
    return Response({"status_code": 400, "detail": detail}, status_code=400)


def database_error_response(request: Request, error: Exception) -> Response[dict[str, object]]:
    """A database that does not answer, or lacks its schema, is a 503 saying what to do; any other database
    error is a bug in a query: a 500 logged with its traceback, never called an outage."""
    if not (missing_schema_error(error) or database_away_error(error)):
        return unhandled_error_response(request, error)
    log.warning(
        "database_unavailable",
        error=f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
    )
    if missing_schema_error(error):
        detail = "the database has no schema, or an older one: run `sentiment db upgrade`"
    elif isinstance(error, socket.gaierror):
        detail = (
            f"the database host cannot be found ({error.strerror}): check DATABASE_URL (or POSTGRES_HOST); "
            "predictions are still answered and stored once it can be reached"
        )
    else:
        detail = "the database does not answer; predictions are still answered and stored when it returns"
    return Response({"status_code": 503, "detail": detail}, status_code=503, headers={"retry-after": "5"})


def unhandled_error_response(request: Request, error: Exception) -> Response[dict[str, object]]:
    """Whatever no other handler takes: logged once with its traceback (the request id is bound to the line),
    answered in the one error shape. JSON nested too deep for the decoder is the client's error, not ours."""
    if isinstance(error, RecursionError) and "deserializing" in str(error):
        detail = "the JSON body nests too deeply"
        return Response({"status_code": 400, "detail": detail}, status_code=400)
    log.error("unhandled_error", method=request.method, path=request.url.path, exc_info=error)
    return Response({"status_code": 500, "detail": "Internal Server Error"}, status_code=500)


def too_many_requests_response(_: Request, error: TooManyRequestsException) -> Response[dict[str, object]]:
    headers = dict(error.headers or {})
    headers["retry-after"] = headers.get("RateLimit-Reset", "1")
    detail = "rate limit reached for this client: retry after the number of seconds in Retry-After"
    return Response({"status_code": 429, "detail": detail}, status_code=429, headers=headers)


def login_redirect(request: Request, _: LoginRequired) -> Response[Any]:
    """A page asked for without a session while keys are on goes to the login page (htmx, asking for a part
    of a page, follows HX-Redirect)."""
    if request.headers.get("hx-request"):
        # The page htmx was updating is the one to come back to, not the part it asked for.
        page = urlsplit(request.headers.get("hx-current-url", ""))
        login = login_page_for(page.path + (f"?{page.query}" if page.query else ""))
        return Response(None, status_code=401, headers={"hx-redirect": login})
    return Redirect(login_link(request), status_code=303)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    LoginRequired: login_redirect,
    TooManyRequestsException: too_many_requests_response,
    SentimentError: domain_error_response,
    UnicodeDecodeError: invalid_utf8_response,
    SQLAlchemyError: database_error_response,
    ConnectionError: database_error_response,
    socket.gaierror: database_error_response,  # a host name that does not resolve
    500: unhandled_error_response,
}


class ErrorBody(msgspec.Struct):
    status_code: int
    detail: str
    extra: dict[str, Any] | list[Any] | None = None


_ERROR_MEANING = {
    400: "bad input: the detail names the rule or limit that was broken",
    401: "missing or wrong admin token",
    403: "no admin token is configured on the service",
    404: "unknown model or resource; for models, extra.known_models lists the keys",
    409: "the model is catalogued but not loaded, or the action contradicts the current state",
    415: "the body is labelled as a form or plain text: send it as application/json",
    429: "too many wrong tokens or keys from this address: Retry-After says when to try again",
    503: "not ready, or the model's queue is full (then Retry-After says when to retry)",
    507: "the data sets' files hold their quota (SENTIMENT_DATA_QUOTA_MB) or the disk is nearly full: delete "
    "data sets to make room",
}


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the errors an endpoint can answer, all in the one error shape. An endpoint that
    checks a token (401) also throttles wrong ones (429)."""
    if 401 in statuses and 429 not in statuses:
        statuses = (*statuses, 429)
    return {
        status: ResponseSpec(
            data_container=ErrorBody,
            description=_ERROR_MEANING[status],
            examples=[Example(value={"status_code": status, "detail": _ERROR_MEANING[status]})],
        )
        for status in statuses
    }
