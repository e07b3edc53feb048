"""Dependency providers: a handler names the one service it uses and gets the one the lifespan built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import Provide

from sentiment.services.access import AccessService
from sentiment.services.container import Services


def access_of(connection: ASGIConnection[Any, Any, Any, Any]) -> AccessService:
    """For guards and the page context, which run outside dependency injection."""
    services: Services = connection.app.state.services
    return services.access


def _provider(name: str) -> Callable[[State], object]:
    def provide(state: State) -> object:
        return getattr(state.services, name)

    return provide


DEPENDENCIES = {
    field.name: Provide(_provider(field.name), sync_to_thread=False) for field in fields(Services)
}
