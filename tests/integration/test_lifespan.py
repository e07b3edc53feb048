"""Start-up and shutdown of the app: every resource is released, in the reverse order of its making, even when
one release fails."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from sentiment.app import create_app
from sentiment.inference.registry import ModelRegistry
from sentiment.services.alerts import AlertService
from sentiment.services.datasets import DatasetService
from sentiment.services.models import ModelService
from sentiment.storage.writer import PredictionWriter
from tests.conftest import make_settings


async def test_shutdown_releases_every_resource_even_when_one_step_fails(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    released: list[str] = []

    def spy(cls: type, method: str, name: str, fail: bool = False) -> None:
        original = getattr(cls, method)

        async def release(self: object, *args: Any, **kwargs: Any) -> Any:
            released.append(name)
            if fail:
                raise RuntimeError(f"{name} would not close")
            return await original(self, *args, **kwargs)

        monkeypatch.setattr(cls, method, release)

    spy(DatasetService, "close", "datasets")
    spy(ModelService, "close", "models")
    spy(AlertService, "close", "alerts", fail=True)
    spy(PredictionWriter, "close", "writer")
    spy(ModelRegistry, "close", "registry")
    spy(AsyncEngine, "dispose", "engine")

    app = create_app(make_settings(sqlite_url))
    with pytest.raises(BaseException) as failed:
        async with AsyncTestClient(app=app) as client:
            assert (await client.get("/health")).status_code == 200
            released.clear()  # the migrations at start-up use an engine of their own
    assert [str(error) for error in _leaves(failed.value)] == ["alerts would not close"]
    assert released == ["datasets", "models", "alerts", "writer", "registry", "engine"]


def _leaves(error: BaseException) -> list[BaseException]:
    """The errors inside (possibly nested) exception groups: the test client runs the lifespan in a task
    group."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]
