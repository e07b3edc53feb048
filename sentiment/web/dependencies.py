"""Dependency providers: a handler names the one service it uses and gets the one the lifespan built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import Provide

from sentiment.services.access import AccessService
from sentiment.services.container import Services


def services_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Services:
    services: Services = connection.app.state.services
    return services


def access_of(connection: ASGIConnection[Any, Any, Any, Any]) -> AccessService:
    """For guards and the page context, which run outside dependency injection."""
    return services_of(connection).access


def _provider(name: str) -> Callable[[State], object]:
    def provide(state: State) -> object:
        return getattr(state.services, name)

    return provide


SERVICE_NAMES = (
    "access",
    "predictions",
    "models",
    "failsafe",
    "alerts",
    "analytics",
    "overview",
    "history",
    "datasets",
    "system",
)
DEPENDENCIES = {name: Provide(_provider(name), sync_to_thread=False) for name in SERVICE_NAMES}
