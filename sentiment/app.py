"""The one app factory: wires settings, services, routes, error handling and the lifespan."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path

from litestar import Litestar
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import DURATION_VALUES
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components

from sentiment import __version__
from sentiment.core.domain import VADER_KEY
from sentiment.core.rate_budget import RateBudget
from sentiment.core.tasks import Deadline, cancel_and_wait, within
from sentiment.core.throttle import AttemptThrottle
from sentiment.inference.cache import ResultCache
from sentiment.inference.queue import CallOutcome
from sentiment.inference.registry import BackendLoader, ModelRegistry, load_backend
from sentiment.inference.stats import RecentWindow
from sentiment.services.access import AccessService
from sentiment.services.alert_rules import AlertMonitor
from sentiment.services.alerts import AlertService
from sentiment.services.analytics import AnalyticsService
from sentiment.services.api_keys import ApiKeyService
from sentiment.services.container import Resources, Services
from sentiment.services.datasets import DatasetService  # data sets
from sentiment.services.failsafe import Failsafe, FailsafeService
from sentiment.services.history import HistoryService
from sentiment.services.metrics import observe_call
from sentiment.services.models import ModelService
from sentiment.services.overview import OverviewService
from sentiment.services.predictions import PredictionService
from sentiment.services.system import SystemService
from sentiment.services.training import TrainingService
from sentiment.settings import RateUnit, Settings
from sentiment.storage.database import create_engine, upgrade
from sentiment.storage.retention import purge_forever
from sentiment.storage.sessions import DatabaseStore
from sentiment.storage.writer import PredictionWriter
from sentiment.web import (
    analytics_api,
    api,
    datasets_api,
    failsafe_api,
    history_api,
    keys_api,
    models_api,
    pages,
    training_api,
)
from sentiment.web.dependencies import service_dependencies
from sentiment.web.disconnect import CancelWhenClientGoes
from sentiment.web.errors import EXCEPTION_HANDLERS
from sentiment.web.guard import ADMIN_TOKEN, ADMIN_TOKEN_SCHEME
from sentiment.web.key_guard import require_api_key, scores_text
from sentiment.web.observability import RequestContextMiddleware, metrics
from sentiment.web.rate_limit import AddressRateLimit
from sentiment.web.sessions import PageSessionConfig, SessionsWhereNeeded

# The most a shutdown step that only tidies up (alerts, key usage, background tasks) may take.
STEP_S = 2.0


def session_config(settings: Settings) -> PageSessionConfig:
    """Kept in the database, the cookie holding only a random id: HttpOnly, SameSite=Strict. A session ends
    after 12 h unused, or SENTIMENT_SESSION_IDLE_MINUTES: row and cookie expire together, renewed by use."""
    idle_s = settings.session_idle_minutes * 60 if settings.session_idle_minutes else None
    return PageSessionConfig(
        store="sessions",
        samesite="strict",
        httponly=True,
        secure=settings.secure_cookies,
        max_age=idle_s or 12 * 3600,
        renew_on_access=True,
        exclude="^/static/",  # assets need no session: no database read for each of them
    )


def rate_limit(limit: tuple[RateUnit, int], batch_size: int) -> DefineMiddleware:
    """Per client address, one budget over every request that scores text; a data-set start is charged for
    its rows, as the /predict/batch requests they would take."""
    unit, count = limit
    budget = RateBudget(count, DURATION_VALUES[unit], time.monotonic)
    return DefineMiddleware(
        AddressRateLimit, budget=budget, applies=scores_text, batch_size=batch_size, unit=unit
    )


def create_app(settings: Settings, loader: BackendLoader | None = None) -> Litestar:
    """Build the app; nothing connects or loads until the
    lifespan starts. `loader` lets tests share loaded models."""
    load = loader or partial(
        load_backend,
        threads=settings.torch_threads,
        remote_timeout_s=settings.breaker.call_timeout_s,
        cache_dir=settings.cache_dir,
        device=settings.device,
        long_texts=settings.long_texts,
    )
    sessions = DatabaseStore()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # Every resource is released in the reverse order of its making, even when a step fails on the way,
        # and all within the shutdown's second half (the first is the server's, for the requests in flight).
        deadline = Deadline(settings.server.drain_s)
        async with AsyncExitStack() as stack:
            if settings.auto_migrate:
                await asyncio.to_thread(upgrade, settings.database_url)
            engine = create_engine(settings.database_url)
            stack.push_async_callback(within, deadline, "database", engine.dispose)
            sessions.attach(engine)
            alerts = AlertService(engine)
            failsafe = Failsafe(settings.breaker, alerts)

            def on_outcome(model: str, outcome: CallOutcome) -> None:
                failsafe.record(model, outcome)
                observe_call(model, outcome)
                if not outcome.ok:
                    registry.entry(model).stats.record_error()

            registry = ModelRegistry(
                settings.models,
                settings.default_model,
                load,
                settings.batching,
                settings.breaker.call_timeout_s,
                on_outcome=on_outcome,
            )
            stack.push_async_callback(within, deadline, "models", registry.close)
            writer = PredictionWriter(engine, settings.writer, settings.store_text)
            writer.start()
            # What the database does not take in time stays in the journal; the steps after it keep 2 s.
            stack.push_async_callback(lambda: writer.close(deadline.remaining(keep_s=2.0)))
            alerts.start()
            stack.push_async_callback(within, deadline, "alerts", lambda: alerts.close(STEP_S))
            models = ModelService(registry, failsafe, alerts, engine, settings.sync_interval_s)
            stack.push_async_callback(within, deadline, "model-sync", models.close)
            datasets = DatasetService(
                engine,
                registry,
                settings.datasets,
                settings.store_text,
                max_text_length=settings.max_text_length,
            )
            # Data-set jobs stop before the models and the database.
            stack.push_async_callback(within, deadline, "data-set-jobs", datasets.close)
            training = TrainingService(
                settings,
                Path(settings.models_dir),
                lambda: [entry.spec for entry in registry.entries()],
                models.add_trained,
                datasets.training_source,
            )
            await asyncio.to_thread(training.remove_abandoned)
            # A training run stops at its next step; its thread is not waited for past the deadline.
            stack.push_async_callback(within, deadline, "training", training.close)
            api_keys = ApiKeyService(engine, settings.api_keys, settings.uploads)
            api_keys.start()
            # Its last usage is written before the engine goes.
            stack.push_async_callback(within, deadline, "api-key-usage", api_keys.close)

            cache = ResultCache(settings.cache_size, int(settings.cache_mb * 1024 * 1024))
            recent = RecentWindow(settings.alert_rules.window_s, clock=time.monotonic)
            system = SystemService(registry, models, failsafe, cache, writer, engine, __version__)
            analytics = AnalyticsService(engine)
            app.state.services = Services(
                access=AccessService(settings.admin_token, AttemptThrottle(time.monotonic)),
                api_keys=api_keys,
                predictions=PredictionService(
                    registry,
                    failsafe,
                    cache,
                    writer,
                    recent,
                    settings.max_text_length,
                    settings.max_batch_size,
                ),
                models=models,
                failsafe=FailsafeService(failsafe, registry),
                alerts=alerts,
                analytics=analytics,
                overview=OverviewService(analytics, registry, failsafe, alerts),
                history=HistoryService(engine, registry.keys),
                datasets=datasets,
                training=training,
                system=system,
            )
            app.state.resources = Resources(engine, registry, writer)
            # The default model loads in the background: /health
            # answers at once, VADER serves until it is loaded.
            if settings.default_model != VADER_KEY:
                models.preload(settings.default_model)
            monitor = AlertMonitor(settings.alert_rules, recent, alerts)
            background = [
                asyncio.create_task(models.run_sync(), name="model-choices"),
                asyncio.create_task(models.retire_alerts_of_removed_models(), name="removed-models-alerts"),
                asyncio.create_task(monitor.run(system.storage_state), name="alert-rules"),
                asyncio.create_task(datasets.expire_forever(), name="upload-expiry"),
                asyncio.create_task(datasets.resume_forever(), name="data-set-resume"),
            ]
            if settings.retention_days is not None:
                background.append(
                    asyncio.create_task(purge_forever(engine, settings.retention_days), name="retention")
                )
            stack.push_async_callback(lambda: cancel_and_wait(*background, timeout_s=STEP_S))
            stack.callback(deadline.start)  # the first step of the shutdown
            yield

    app = Litestar(
        route_handlers=[
            *api.ROUTES,
            *failsafe_api.ROUTES,
            *models_api.ROUTES,
            *analytics_api.ROUTES,
            *history_api.ROUTES,
            *pages.ROUTES,
            *datasets_api.ROUTES,
            *training_api.ROUTES,
            *keys_api.ROUTES,
            metrics,
        ],
        # Only with SENTIMENT_API_KEYS=on (never on probes, scrape or pages): each guard costs every request.
        guards=[require_api_key] if settings.api_keys else [],
        dependencies=service_dependencies(lambda: app.state.services),
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        middleware=[
            RequestContextMiddleware,
            CancelWhenClientGoes,
            DefineMiddleware(SessionsWhereNeeded, config=session_config(settings)),
            *([rate_limit(settings.rate_limit, settings.max_batch_size)] if settings.rate_limit else []),
        ],
        stores={"sessions": sessions},
        request_max_body_size=settings.max_body_bytes,
        logging_config=None,  # logging is the process's: sentiment.logging sets it up once
        template_config=pages.TEMPLATE_CONFIG,
        # Only the JSON document under /schema: the interactive docs at /docs are served from local files.
        openapi_config=OpenAPIConfig(
            title="Sentiment service",
            version=__version__,
            render_plugins=[JsonRenderPlugin()],
            components=Components(security_schemes={ADMIN_TOKEN_SCHEME: ADMIN_TOKEN}),
        ),
    )
    return app
