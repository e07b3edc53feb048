"""API-key management for admins: the JSON endpoints (create, list, revoke) and the Keys page. A new key is
in the one answer that creates it, marked `no-store`; afterwards only its prefix is ever shown."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody, PathParameter, URLEncodedBody
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from sentiment.core.api_keys import MAX_NAME_LENGTH, MAX_RATE_PER_MINUTE, ApiKey
from sentiment.core.domain import InvalidInput
from sentiment.services.api_keys import ApiKeyService, CreatedKey
from sentiment.web.errors import error_responses
from sentiment.web.guard import ADMIN_SECURITY, is_admin_session, require_admin, require_json
from sentiment.web.pages import context

NO_STORE = {"cache-control": "no-store"}
ADMIN_ERRORS = error_responses(401, 403)
KeyId = Annotated[UUID, PathParameter(description="a key's id from GET /keys")]


class KeyIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[
        str, msgspec.Meta(min_length=1, max_length=MAX_NAME_LENGTH, description="who the key is for")
    ]
    rate_per_minute: (
        Annotated[
            int,
            msgspec.Meta(
                ge=1,
                le=MAX_RATE_PER_MINUTE,
                description="requests that score text per minute for this key; absent: the service-wide "
                "limit only",
            ),
        ]
        | None
    ) = None


class KeyOut(msgspec.Struct):
    id: UUID
    name: str
    prefix: Annotated[str, msgspec.Meta(description="the key's first characters, to tell keys apart")]
    rate_per_minute: int | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    requests: Annotated[int, msgspec.Meta(description="requests made with the key")]
    texts: Annotated[int, msgspec.Meta(description="texts scored for them")]

    @classmethod
    def from_domain(cls, key: ApiKey) -> KeyOut:
        return cls(**msgspec.structs.asdict(key))


class CreatedKeyOut(msgspec.Struct):
    key: Annotated[str, msgspec.Meta(description="the key itself: shown this once only, store it now")]
    record: KeyOut

    @classmethod
    def from_domain(cls, created: CreatedKey) -> CreatedKeyOut:
        return cls(created.key, KeyOut.from_domain(created.record))


# -- JSON API ------------------------------------------------------------------------------------------------


@post(
    "/keys",
    status_code=201,
    guards=[require_admin],
    before_request=require_json,
    security=ADMIN_SECURITY,
    summary="Create an API key; the answer is the only time the key is shown (admin token)",
    tags=["keys"],
    responses=error_responses(400, 401, 403, 415),
)
async def create_key(
    data: JSONBody[KeyIn], api_keys: NamedDependency[ApiKeyService]
) -> Response[CreatedKeyOut]:
    created = await api_keys.create(data.name, data.rate_per_minute)
    return Response(CreatedKeyOut.from_domain(created), status_code=201, headers=NO_STORE)


@get(
    "/keys",
    guards=[require_admin],
    security=ADMIN_SECURITY,
    summary="Every API key with its usage, never the key (admin token)",
    tags=["keys"],
    responses=ADMIN_ERRORS,
)
async def list_keys(api_keys: NamedDependency[ApiKeyService]) -> list[KeyOut]:
    return [KeyOut.from_domain(key) for key in await api_keys.list()]


@delete(
    "/keys/{key_id:uuid}",
    status_code=200,
    guards=[require_admin],
    security=ADMIN_SECURITY,
    summary="Revoke an API key: every replica refuses it within 5 seconds (admin token)",
    tags=["keys"],
    responses=error_responses(401, 403, 404),
)
async def revoke_key(key_id: KeyId, api_keys: NamedDependency[ApiKeyService]) -> KeyOut:
    revoked = await api_keys.revoke(str(key_id))
    if revoked is None:
        raise NotFoundException(f"no API key {key_id}")
    return KeyOut.from_domain(revoked)


# -- page ----------------------------------------------------------------------------------------------------


class KeyForm(msgspec.Struct):
    name: str = ""
    rate_per_minute: str = ""
    csrf_token: str = ""


async def _table(
    request: Request[Any, Any, Any],
    api_keys: ApiKeyService,
    created: CreatedKey | None = None,
    error: str | None = None,
) -> Template:
    values = {"keys": await api_keys.list(), "created": created, "error": error}
    return Template(
        template_name="partials/keys_table.html",
        context=context(request, "/ui/keys", **values),
        headers=NO_STORE,
    )


@get("/ui/keys", include_in_schema=False)
async def keys_page(request: Request[Any, Any, Any], api_keys: NamedDependency[ApiKeyService]) -> Template:
    # Only an admin sees the keys; anyone else is asked to log in.
    keys = await api_keys.list() if is_admin_session(request) else []
    return Template(
        template_name="keys.html", context=context(request, "/ui/keys", title="API keys", keys=keys)
    )


@post("/ui/keys", guards=[require_admin], status_code=200, include_in_schema=False)
async def create_from_page(
    request: Request[Any, Any, Any], data: URLEncodedBody[KeyForm], api_keys: NamedDependency[ApiKeyService]
) -> Template:
    raw_rate = data.rate_per_minute.strip()
    try:
        if raw_rate and not raw_rate.isdigit():
            raise InvalidInput(f"the rate per minute must be a whole number, not {raw_rate!r}")
        created = await api_keys.create(data.name, int(raw_rate) if raw_rate else None)
    except InvalidInput as error:
        return await _table(request, api_keys, error=error.detail)
    return await _table(request, api_keys, created=created)


@post("/ui/keys/{key_id:uuid}/revoke", guards=[require_admin], status_code=200, include_in_schema=False)
async def revoke_from_page(
    request: Request[Any, Any, Any], key_id: KeyId, api_keys: NamedDependency[ApiKeyService]
) -> Template:
    await api_keys.revoke(str(key_id))
    return await _table(request, api_keys)


ROUTES: list[ControllerRouterHandler] = [
    create_key,
    list_keys,
    revoke_key,
    keys_page,
    create_from_page,
    revoke_from_page,
]
