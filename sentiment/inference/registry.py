"""The models this process knows, their load state, and the worker thread each loaded model runs on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import structlog
from huggingface_hub import try_to_load_from_cache

from sentiment.domain import VADER_KEY, ModelNotLoaded, Scored, UnknownModel
from sentiment.inference.backend import Backend
from sentiment.inference.catalogue import ModelSpec
from sentiment.inference.faults import Fault

log = structlog.get_logger(__name__)

ModelStatus = Literal["available", "not downloaded", "loading", "loaded", "failed"]
BackendLoader = Callable[[ModelSpec], Backend]


def load_backend(spec: ModelSpec, threads: int | None = None) -> Backend:
    """Build the backend a spec names; imported lazily so VADER-only use never imports torch."""
    if spec.kind == "vader":
        from sentiment.inference.vader import VaderBackend

        return VaderBackend()
    from sentiment.inference.transformers_backend import TransformersBackend

    return TransformersBackend(spec.source, threads)


class TimedResult:
    """Scored texts with where the time went: waiting for the worker thread, and running the model."""

    __slots__ = ("scored", "queue_ms", "inference_ms")

    def __init__(self, scored: list[Scored], queue_ms: float, inference_ms: float) -> None:
        self.scored = scored
        self.queue_ms = queue_ms
        self.inference_ms = inference_ms


class ModelEntry:
    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.backend: Backend | None = None
        self.loading = False
        self.error: str | None = None
        # A model "should serve" once it is the default or was asked to load: until it is loaded, and while
        # it fails, its requests are answered by VADER rather than refused.
        self.wanted = False
        self.load_seconds: float | None = None
        self.fault: Fault | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def status(self) -> ModelStatus:
        if self.backend is not None:
            return "loaded"
        if self.loading:
            return "loading"
        if self.error is not None:
            return "failed"
        if self.spec.is_local or try_to_load_from_cache(self.spec.source, "config.json") is not None:
            return "available"
        return "not downloaded"

    async def run(self, texts: Sequence[str]) -> TimedResult:
        """Run the model on its own worker thread; the event loop only awaits."""
        backend, executor = self.backend, self._executor
        if backend is None or executor is None:
            raise ModelNotLoaded(self.key)
        submitted = time.perf_counter()
        fault = self.fault

        def timed() -> TimedResult:
            started = time.perf_counter()
            if fault is not None:
                fault.apply()
            scored = backend.predict(texts)
            return TimedResult(scored, (started - submitted) * 1000, (time.perf_counter() - started) * 1000)

        return await asyncio.get_running_loop().run_in_executor(executor, timed)

    def set_fault(self, fault: Fault | None) -> None:
        if self.fault is not None:
            self.fault.clear()
        self.fault = fault

    def attach(self, backend: Backend) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"model-{self.key}")
        self.backend = backend

    def detach(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        self.backend, self._executor = None, None


class ModelRegistry:
    def __init__(self, specs: Sequence[ModelSpec], default_key: str, loader: BackendLoader = load_backend) -> None:
        self._entries = {spec.key: ModelEntry(spec) for spec in specs}
        self._loader = loader
        self.default_key = default_key
        self._entries[default_key].wanted = True
        self.vader = self._entries[VADER_KEY]
        self.vader.attach(loader(self.vader.spec))

    @property
    def keys(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[ModelEntry]:
        return list(self._entries.values())

    def entry(self, key: str) -> ModelEntry:
        try:
            return self._entries[key]
        except KeyError:
            raise UnknownModel(key, self.keys) from None

    def select(self, key: str | None) -> ModelEntry:
        """The entry that should answer for `key` (default when None); refuses a model nobody asked to serve."""
        entry = self.entry(key or self.default_key)
        if entry.backend is None and not entry.loading and not entry.wanted:
            raise ModelNotLoaded(entry.key)
        return entry

    async def load(self, key: str) -> ModelEntry:
        """Load in a thread; a failure is recorded on the entry (and logged), never raised to the caller."""
        entry = self.entry(key)
        entry.wanted = True
        if entry.backend is not None or entry.loading:
            return entry
        entry.loading, entry.error = True, None
        started = time.perf_counter()
        log.info("model_loading", model=key, source=entry.spec.source)
        try:
            backend = await asyncio.to_thread(self._loader, entry.spec)
        except Exception as error:  # any load failure leaves the service up and serving VADER
            entry.error = str(error) or type(error).__name__
            log.error("model_load_failed", model=key, error=entry.error)
        else:
            entry.attach(backend)
            entry.load_seconds = time.perf_counter() - started
            log.info("model_loaded", model=key, seconds=round(entry.load_seconds, 2), labels=backend.labels)
        finally:
            entry.loading = False
        return entry

    def close(self) -> None:
        for entry in self._entries.values():
            entry.detach()
