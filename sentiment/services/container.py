"""The services the app builds in its lifespan; handlers get each one by dependency injection."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from sentiment.inference.cache import ResultCache
from sentiment.inference.registry import ModelRegistry
from sentiment.services.alerts import AlertService
from sentiment.services.analytics import AnalyticsService
from sentiment.services.datasets import DatasetService
from sentiment.services.failsafe import Failsafe
from sentiment.services.history import HistoryService
from sentiment.services.models import ModelService
from sentiment.services.predictions import PredictionService
from sentiment.services.system import SystemService
from sentiment.settings import Settings
from sentiment.storage.writer import PredictionWriter


@dataclass
class Services:
    """Everything the app wires together, built in the lifespan and reached through dependency injection."""

    settings: Settings
    engine: AsyncEngine
    registry: ModelRegistry
    writer: PredictionWriter
    predictions: PredictionService
    alerts: AlertService
    failsafe: Failsafe
    cache: ResultCache
    models: ModelService
    history: HistoryService
    analytics: AnalyticsService
    system: SystemService
    datasets: DatasetService  # data sets
