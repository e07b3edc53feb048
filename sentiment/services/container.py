"""The services the app builds in its lifespan; each handler gets the one it uses by dependency injection."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from sentiment.inference.registry import ModelRegistry
from sentiment.services.access import AccessService
from sentiment.services.alerts import AlertService
from sentiment.services.analytics import AnalyticsService
from sentiment.services.api_keys import ApiKeyService
from sentiment.services.datasets import DatasetService
from sentiment.services.failsafe import FailsafeService
from sentiment.services.history import HistoryService
from sentiment.services.models import ModelService
from sentiment.services.overview import OverviewService
from sentiment.services.predictions import PredictionService
from sentiment.services.system import SystemService
from sentiment.services.training import TrainingService
from sentiment.storage.writer import PredictionWriter


@dataclass(frozen=True)
class Services:
    """One field per service the web layer may ask for, by the field's name."""

    access: AccessService
    api_keys: ApiKeyService
    predictions: PredictionService
    models: ModelService
    failsafe: FailsafeService
    alerts: AlertService
    analytics: AnalyticsService
    overview: OverviewService
    history: HistoryService
    datasets: DatasetService
    training: TrainingService
    system: SystemService


@dataclass(frozen=True)
class Resources:
    """What the services are built on, kept on the app for tests that look inside it; no handler gets
    these."""

    engine: AsyncEngine
    registry: ModelRegistry
    writer: PredictionWriter
