"""Model management: the catalogue as operators see it, downloads with progress, load/unload/default without
dropping a request, and the shared choices every replica follows."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec
import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from sentiment.core.clock import WallClock, utc_now
from sentiment.core.domain import (
    VADER_KEY,
    Conflict,
    ModelLoadError,
    alert_model,
    first_line,
    model_alert_key,
)
from sentiment.core.tasks import cancel_and_wait
from sentiment.inference.catalogue import ModelSpec
from sentiment.inference.download import DownloadFailed, DownloadProgress, HubUnreachable, download_model
from sentiment.inference.registry import DownloadState, ModelEntry, ModelRegistry
from sentiment.inference.stats import ModelFigures, UsageFigures
from sentiment.services.alerts import AlertService
from sentiment.services.failsafe import Failsafe
from sentiment.services.metrics import MODEL_LOAD_TIME
from sentiment.storage.database import create_engine
from sentiment.storage.repositories import ModelChoiceRepository, ModelChoices

log = structlog.get_logger(__name__)

Downloader = Callable[..., str]


class ModelView(msgspec.Struct):
    key: str
    source: str
    kind: str
    labels: list[str]
    path: str
    execution_path: str | None
    status: str
    is_default: bool
    breaker: str | None
    error: str | None
    download: DownloadState | None


class ModelDetail(msgspec.Struct):
    model: ModelView
    figures: ModelFigures
    load_seconds: float | None
    memory_mb: float | None
    queue_depth: int | None
    # What the loaded model is: its source and how it runs (a language model's server, prompt and settings).
    details: dict[str, str]
    # A language model's requests and tokens as its server reports them.
    usage: UsageFigures | None


class ModelsOverview(msgspec.Struct):
    default_model: str
    models: list[ModelView]


class OfferedModels(msgspec.Struct):
    """The models a form offers: those that answer now or were asked to, and the one chosen when none is."""

    keys: list[str]
    default_model: str
    # Why an offered model would not answer a request itself now (its breaker open, say); none for the rest.
    notes: dict[str, str] = msgspec.field(default_factory=dict)


def offered_models(registry: ModelRegistry) -> OfferedModels:
    return OfferedModels([entry.key for entry in registry.serving()], registry.default_key)


class CatalogueLine(msgspec.Struct, frozen=True):
    key: str
    kind: str
    status: str
    labels: tuple[str, ...]
    source: str
    is_default: bool


def catalogue(specs: Sequence[ModelSpec], default_key: str) -> list[CatalogueLine]:
    """The catalogue as `sentiment models list` prints it: what is on disk, without loading anything."""
    return [
        CatalogueLine(
            spec.key, spec.kind, _status_on_disk(spec), spec.labels, spec.source, spec.key == default_key
        )
        for spec in specs
    ]


def _status_on_disk(spec: ModelSpec) -> str:
    return ModelEntry(spec).status  # an entry never loaded: available, or not downloaded


def pull_model(spec: ModelSpec, on_progress: Callable[[DownloadProgress], None]) -> str:
    """Download a hub model into the local cache (`sentiment models pull`); answers the folder it is in."""
    if spec.kind != "transformers" or spec.is_local:
        raise Conflict(f"{spec.key} is served from {spec.source}; there is nothing to download")
    try:
        return download_model(spec.source, on_progress=on_progress)
    except (HubUnreachable, DownloadFailed) as error:
        raise ModelLoadError(str(error)) from error


REPLICA = socket.gethostname()


class DefaultOrigin(msgspec.Struct, frozen=True):
    """Where the default model came from: the configuration (PRELOAD_MODEL), or a choice made through the API,
    which is stored and outlives restarts (`sentiment models default --clear` forgets it)."""

    source: Literal["configuration", "api"] = "configuration"
    chosen_at: datetime | None = None
    replica: str | None = None  # the host whose API the choice was made on


class StoredDefault(msgspec.Struct, frozen=True):
    default_model: str
    chosen_at: datetime | None
    chosen_by: str | None


async def stored_choice(database_url: str) -> StoredDefault | None:
    """The default model chosen through the API and stored, if one was (`sentiment models default`)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            choices = await ModelChoiceRepository(connection).get()
    finally:
        await engine.dispose()
    if choices.default_model is None:
        return None
    return StoredDefault(choices.default_model, choices.updated_at, choices.chosen_by)


async def clear_stored_choices(database_url: str) -> bool:
    """`sentiment models default --clear`: forget the choices made through the API; False when there were
    none. Running replicas keep their models until they restart."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            return await ModelChoiceRepository(connection).clear()
    finally:
        await engine.dispose()


class ModelService:
    def __init__(
        self,
        registry: ModelRegistry,
        failsafe: Failsafe,
        alerts: AlertService,
        engine: AsyncEngine,
        sync_interval_s: float,
        downloader: Downloader = download_model,
        clock: WallClock = utc_now,
    ) -> None:
        self._registry = registry
        self._failsafe = failsafe
        self._alerts = alerts
        self._engine = engine
        self._sync_interval_s = sync_interval_s
        self._downloader = downloader
        self._clock = clock
        self._tasks: set[asyncio.Task[object]] = set()
        self._pending_default: str | None = None
        # When the choices this process acts on were made: shared choices no newer than that are already
        # applied (or superseded by a local change that is being saved), so the follower leaves them alone.
        self._choices_at: datetime | None = None
        self.default_origin = DefaultOrigin()

    # -- what operators see -------------------------------------------------------------------------------

    def overview(self) -> ModelsOverview:
        return ModelsOverview(self._registry.default_key, [self.view(e) for e in self._registry.entries()])

    def view(self, entry: ModelEntry) -> ModelView:
        return ModelView(
            key=entry.key,
            source=entry.spec.source,
            kind=entry.spec.kind,
            labels=list(entry.labels),
            path=entry.spec.path if entry.spec.kind == "transformers" else entry.spec.kind,
            execution_path=entry.execution_path,
            status=entry.status,
            is_default=entry.key == self._registry.default_key,
            breaker=self._failsafe.breaker(entry.key).state.value if entry.key != VADER_KEY else None,
            error=entry.error,
            download=entry.download,
        )

    def detail(self, key: str) -> ModelDetail:
        entry = self._registry.entry(key)
        return ModelDetail(
            model=self.view(entry),
            figures=entry.stats.figures(),
            load_seconds=entry.load_seconds,
            memory_mb=round(entry.memory_bytes / 2**20, 1) if entry.memory_bytes is not None else None,
            queue_depth=entry.depth if entry.queue is not None else None,
            details=entry.details,
            usage=entry.usage.figures() if entry.usage is not None else None,
        )

    # -- actions ------------------------------------------------------------------------------------------

    async def load(self, key: str) -> ModelEntry:
        """Load (in the background when called from a request) and keep the load alert in step."""
        entry = await self._registry.load(key)
        alert_key = model_alert_key("model_load_failed", key)
        if entry.error is not None:
            self._alerts.post_raise(
                alert_key, "model_load_failed", "critical", f"model {key} failed to load: {entry.error}"
            )
        elif entry.loaded:
            MODEL_LOAD_TIME.labels(model=key).set(entry.load_seconds or 0.0)
            # Failures counted while it was loading say nothing about the loaded model.
            self._failsafe.reset(key, reason="model loaded")
            self._alerts.post_resolve(alert_key)
            path_key = model_alert_key("fast_path_rejected", key)
            if entry.fast_path_rejected is not None:
                self._alerts.post_raise(
                    path_key, "fast_path_rejected", "warning", f"{key}: {entry.fast_path_rejected}"
                )
            else:
                self._alerts.post_resolve(path_key)
            if self._pending_default == key:
                self._make_default(key)
        return entry

    async def add_trained(self, spec: ModelSpec) -> ModelEntry:
        """A model fine-tuned here joins the catalogue and serves at once; saved as a chosen model, so a
        restart (which catalogues it from SENTIMENT_MODELS_DIR) loads it again."""
        self._registry.add(spec)
        self._registry.want(spec.key)
        entry = await self.load(spec.key)
        await self._save_choices()
        return entry

    def preload(self, key: str) -> None:
        """Start-up: load the configured default in the background; /health answers meanwhile."""
        self._spawn(self.load(key))

    def start_load(self, key: str) -> ModelView:
        entry = self._registry.entry(key)
        if entry.status == "not downloaded":
            raise Conflict(f'model {key} is not downloaded: POST /models/download {{"model": "{key}"}} first')
        self._registry.want(key)
        self._spawn(self.load(key))
        return self.view(entry)

    async def request_load(self, key: str) -> ModelView:
        view = self.start_load(key)
        await self._save_choices()
        return view

    async def request_unload(self, key: str) -> ModelView:
        entry = await self._registry.unload(key)
        await self._save_choices()
        return self.view(entry)

    async def request_default(self, key: str) -> ModelsOverview:
        """The default becomes `key` now if it is loaded, else as soon as its load finishes."""
        entry = self._registry.entry(key)
        if entry.status == "not downloaded":
            raise Conflict(f'model {key} is not downloaded: POST /models/download {{"model": "{key}"}} first')
        self._switch_default(key)
        await self._save_choices()
        self.default_origin = DefaultOrigin("api", self._choices_at, REPLICA)
        return self.overview()

    def start_download(self, key: str) -> ModelView:
        entry = self._registry.entry(key)
        if entry.spec.kind != "transformers" or entry.spec.is_local:
            raise Conflict(f"model {key} is served from {entry.spec.source}; there is nothing to download")
        if entry.download is not None and entry.download.state == "downloading":
            return self.view(entry)
        self._registry.set_download(key, DownloadState("downloading"))
        self._spawn(self._download(entry))
        return self.view(entry)

    async def _download(self, entry: ModelEntry) -> None:
        loop = asyncio.get_running_loop()

        def progress(update: DownloadProgress) -> None:
            # Runs on the download's thread: the registry is changed on the event loop only.
            state = DownloadState("downloading", update.bytes_done, update.bytes_total, update.percent)
            loop.call_soon_threadsafe(self._registry.set_download, entry.key, state)

        alert_key = model_alert_key("model_download_failed", entry.key)
        log.info("model_download_started", model=entry.key, source=entry.spec.source)
        try:
            folder = await asyncio.to_thread(self._downloader, entry.spec.source, on_progress=progress)
        except Exception as error:  # noqa: BLE001 - every failure ends the download as failed, with its message
            message = str(error) or type(error).__name__
            self._registry.set_download(entry.key, DownloadState("failed", error=message))
            log.error("model_download_failed", model=entry.key, error=message)
            self._alerts.post_raise(
                alert_key, "model_download_failed", "warning", f"download of {entry.key} failed: {message}"
            )
            return
        done = entry.download
        self._registry.set_download(
            entry.key,
            DownloadState(
                "done",
                done.bytes_done if done else 0,
                done.bytes_total if done else None,
                100.0,
                folder=folder,
            ),
        )
        log.info("model_download_finished", model=entry.key, folder=folder)
        self._alerts.post_resolve(alert_key)

    def _switch_default(self, key: str) -> None:
        entry = self._registry.want(key)
        if entry.loaded:
            self._make_default(key)
        else:
            self._pending_default = key
            if not entry.loading:
                self._spawn(self.load(key))

    def _make_default(self, key: str) -> None:
        self._pending_default = None
        self._registry.make_default(key)

    # -- replicas follow the shared choices ---------------------------------------------------------------

    def _choices(self) -> ModelChoices:
        loaded = tuple(e.key for e in self._registry.entries() if e.wanted and e.key != VADER_KEY)
        default = self._pending_default or self._registry.default_key
        return ModelChoices(default_model=default, loaded=loaded, chosen_by=REPLICA)

    async def _save_choices(self) -> None:
        self._choices_at = now = self._clock()
        try:
            async with self._engine.begin() as connection:
                await ModelChoiceRepository(connection).save(self._choices(), now)
        except (SQLAlchemyError, OSError) as error:
            log.error("model_choices_not_saved", error=first_line(error))

    async def follow_shared_choices(self) -> None:
        """Apply the choices another replica stored: load, unload and switch default to match them."""
        try:
            async with self._engine.connect() as connection:
                choices = await ModelChoiceRepository(connection).get()
        except (SQLAlchemyError, OSError) as error:
            log.warning("model_choices_not_read", error=first_line(error))
            return
        if choices.default_model is None or choices.updated_at is None:
            return  # nothing chosen through the API yet: the configuration rules
        if self._choices_at is not None and choices.updated_at <= self._choices_at:
            return
        self._choices_at = choices.updated_at
        known = set(self._registry.keys)
        for key in set(choices.loaded) - known | ({choices.default_model} - known):
            log.warning("model_choice_unknown_here", model=key)
        target = choices.default_model if choices.default_model in known else self._registry.default_key
        if target == choices.default_model:
            self.default_origin = DefaultOrigin("api", choices.updated_at, choices.chosen_by)
        for key in choices.loaded:
            entry = self._registry.entry(key) if key in known else None
            if entry is not None and not entry.loaded and not entry.loading and entry.error is None:
                self.start_load(key)
        if target != self._registry.default_key and target != self._pending_default:
            self._switch_default(target)
        for entry in self._registry.entries():
            if (
                entry.loaded
                and entry.key not in choices.loaded
                and entry.key not in {VADER_KEY, target, self._registry.default_key}
            ):
                await self._registry.unload(entry.key)

    async def retire_alerts_of_removed_models(self) -> None:
        """Resolve the active alerts of models no longer configured: nothing else would ever clear them."""
        try:
            active = await self._alerts.list(state="active", limit=1000)
        except (SQLAlchemyError, OSError) as error:
            log.warning("alerts_of_removed_models_not_checked", error=first_line(error))
            return
        known = set(self._registry.keys)
        for alert in active:
            model = alert_model(alert.key)
            if model is not None and model not in known:
                log.info("alert_of_removed_model_resolved", key=alert.key)
                self._alerts.post_resolve(alert.key)

    async def run_sync(self) -> None:
        while True:
            await self.follow_shared_choices()
            await asyncio.sleep(self._sync_interval_s)

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        await cancel_and_wait(*self._tasks)
