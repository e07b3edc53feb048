"""Dependency providers: handlers ask for a service by name and get the one the lifespan built."""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import Provide

from sentiment.services import AlertService, PredictionService, SystemService


def _predictions(state: State) -> PredictionService:
    return state.services.predictions


def _alerts(state: State) -> AlertService:
    return state.services.alerts


def _system(state: State) -> SystemService:
    return state.services.system


DEPENDENCIES = {
    "predictions": Provide(_predictions, sync_to_thread=False),
    "alerts": Provide(_alerts, sync_to_thread=False),
    "system": Provide(_system, sync_to_thread=False),
}
