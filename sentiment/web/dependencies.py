"""Dependency providers: handlers ask for a service by name and get the one the lifespan built."""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import Provide

from sentiment.services.alerts import AlertService
from sentiment.services.analytics import AnalyticsService
from sentiment.services.models import ModelService
from sentiment.services.container import Services
from sentiment.services.history import HistoryService
from sentiment.services.predictions import PredictionService
from sentiment.services.system import SystemService


def _predictions(state: State) -> PredictionService:
    return state.services.predictions


def _alerts(state: State) -> AlertService:
    return state.services.alerts


def _system(state: State) -> SystemService:
    return state.services.system


def _models(state: State) -> ModelService:
    return state.services.models


def _history(state: State) -> HistoryService:
    return state.services.history


def _analytics(state: State) -> AnalyticsService:
    return state.services.analytics


def _services(state: State) -> Services:
    return state.services


DEPENDENCIES = {
    "services": Provide(_services, sync_to_thread=False),
    "models": Provide(_models, sync_to_thread=False),
    "history": Provide(_history, sync_to_thread=False),
    "analytics": Provide(_analytics, sync_to_thread=False),
    "predictions": Provide(_predictions, sync_to_thread=False),
    "alerts": Provide(_alerts, sync_to_thread=False),
    "system": Provide(_system, sync_to_thread=False),
}
