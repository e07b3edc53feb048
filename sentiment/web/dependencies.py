"""Dependency providers: a handler names the one service it uses and gets the one the lifespan built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

from litestar.connection import ASGIConnection
from litestar.di import Provide

from sentiment.services.access import AccessService
from sentiment.services.container import Services


def access_of(connection: ASGIConnection[Any, Any, Any, Any]) -> AccessService:
    """For guards and the page context, which run outside dependency injection."""
    services: Services = connection.app.state.services
    return services.access


def service_dependencies(services: Callable[[], Services]) -> dict[str, Provide]:
    """One provider per service, each reading the services the lifespan built. They take no parameters:
    Litestar checks and converts a provider's parameters (a copy of the app's State) on every request."""
    return {
        field.name: Provide(_provider(services, field.name), sync_to_thread=False)
        for field in fields(Services)
    }


def _provider(services: Callable[[], Services], name: str) -> Callable[[], object]:
    def provide() -> object:
        return getattr(services(), name)

    return provide
