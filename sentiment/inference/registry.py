"""The models this process knows, their load state, and the batching queue each loaded model serves from."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import msgspec
import structlog
from huggingface_hub import try_to_load_from_cache
from huggingface_hub.errors import HFValidationError

from sentiment.core.domain import VADER_KEY, Conflict, ModelLoadError, ModelNotLoaded, UnknownModel
from sentiment.inference.backend import Backend
from sentiment.inference.batching import BatchPolicy
from sentiment.inference.catalogue import ModelSpec
from sentiment.inference.faults import Fault
from sentiment.inference.long_texts import LongTexts
from sentiment.inference.memory import anonymous_memory_bytes, release_freed_memory
from sentiment.inference.queue import BatchQueue, CallOutcome, TimedResult
from sentiment.inference.stats import ModelStats, TokenUsage

log = structlog.get_logger(__name__)

ModelStatus = Literal["available", "not downloaded", "downloading", "loading", "loaded", "failed"]
BackendLoader = Callable[[ModelSpec], Backend]
OutcomeHook = Callable[[str, CallOutcome], None]

# VADER answers in microseconds: no reason to hold texts back, and room for the largest batch requests.
# VADER's cost is linear in its words (LinearVader): up to about 170 ms for a 10,000-character run of emoji, a
# few ms for ordinary long text. Texts over LONG_TEXT_CHARS go to a lane of their own, one per call.
VADER_POLICY = BatchPolicy(max_batch_size=256, max_batch_tokens=1 << 30, max_wait_s=0.0, max_queue=1 << 16)
LONG_TEXT_CHARS = 1000
# VADER answers this much text (a tweet) in well under a millisecond, about 1.5 ms at worst (300 emoji): on an
# idle queue it runs on the event loop, where a thread hand-off would cost more than the scoring
# (bench/overhead.py).
VADER_INLINE_CHARS = 300
LONG_VADER_POLICY = BatchPolicy(max_batch_size=1, max_wait_s=0.0, max_queue=1 << 12)
UNLOAD_DRAIN_S = 30.0


def load_backend(
    spec: ModelSpec,
    threads: int | None = None,
    remote_timeout_s: float = 10.0,
    cache_dir: str | None = None,
    device: str = "cpu",
    long_texts: LongTexts = "head",
) -> Backend:
    """Build the backend a spec names; imported lazily so VADER-only use never imports torch."""
    if spec.kind == "vader":
        from sentiment.inference.vader import VaderBackend

        return VaderBackend()
    if spec.llm is not None:
        from sentiment.inference.llm import LlmBackend

        return LlmBackend(spec.source, spec.llm)
    if spec.kind == "remote":
        from sentiment.inference.remote import RemoteBackend

        return RemoteBackend(spec.source, remote_timeout_s)
    if spec.missing_folder:
        raise ModelLoadError(folder_not_found(spec))
    from sentiment.inference.paths import DEFAULT_CACHE_DIR, build

    return build(
        spec.source,
        spec.path,
        threads,
        Path(cache_dir or DEFAULT_CACHE_DIR),
        device=device,
        long_texts=long_texts,
    )


def folder_not_found(spec: ModelSpec) -> str:
    return f"model folder {spec.source} not found (a volume not mounted, or a typo in its path?)"


def policy_for(policy: BatchPolicy, backend: Backend) -> BatchPolicy:
    """A GPU is fed larger batches: padding costs little there, and each call has a fixed launch cost. A model
    that scores every window of a long text costs its whole length, not one window: calls are sized by it."""
    if backend.scores_every_window:
        policy = msgspec.structs.replace(policy, max_tokens_per_text=None)
    if backend.batch_limit is not None:
        limit = backend.batch_limit
        policy = msgspec.structs.replace(
            policy,
            max_batch_size=min(policy.max_batch_size, limit),
            micro_batch_size=min(policy.micro_batch_size, limit),
            max_wait_s=0.0,
        )
    if backend.device != "cuda":
        return policy
    return msgspec.structs.replace(
        policy,
        max_batch_size=max(policy.max_batch_size, 256),
        max_batch_tokens=max(policy.max_batch_tokens, 256 * 128),
        micro_batch_size=max(policy.micro_batch_size, 256),
        micro_batch_tokens=max(policy.micro_batch_tokens, 256 * 128),
    )


class DownloadState(msgspec.Struct):
    state: Literal["downloading", "done", "failed"]
    bytes_done: int = 0
    bytes_total: int | None = None
    percent: float | None = None
    error: str | None = None
    folder: str | None = None


class ModelEntry:
    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.queue: BatchQueue | None = None
        # VADER only: a second lane, on its own thread, for long texts, so that a long text (up to 10,000
        # characters, a few hundred ms of pure Python) never holds up the short ones queued behind it.
        self.long_lane: BatchQueue | None = None
        self.labels: tuple[str, ...] = spec.labels
        self.loading = False
        self.error: str | None = folder_not_found(spec) if spec.missing_folder else None
        # A model "should serve" once it is the default or was asked to load: until it is loaded, and while
        # it fails, its requests are answered by VADER rather than refused.
        self.wanted = False
        self.load_seconds: float | None = None
        self.memory_bytes: int | None = None
        self.fault: Fault | None = None
        self.execution_path: str | None = None
        self.fast_path_rejected: str | None = None
        # What the loaded model is (its source, how it runs; a language model's server, prompt, settings).
        self.details: dict[str, str] = {}
        # Its own deadline for a call, when it has one (a language model); else the breaker's.
        self.call_timeout_s: float | None = None
        self.usage: TokenUsage | None = None
        self.download: DownloadState | None = None
        self.stats = ModelStats()

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def loaded(self) -> bool:
        return self.queue is not None

    @property
    def depth(self) -> int:
        """Texts waiting in its queue (and in VADER's long lane)."""
        return sum(lane.depth for lane in (self.queue, self.long_lane) if lane is not None)

    @property
    def serves(self) -> bool:
        """Answers requests now, or was asked to (VADER answers for it until it is loaded)."""
        return self.loaded or self.wanted

    @property
    def source(self) -> str:
        """Where it loads from: a finished download's folder, else the configured source."""
        if self.download is not None and self.download.folder is not None:
            return self.download.folder
        return self.spec.source

    @property
    def status(self) -> ModelStatus:
        if self.queue is not None:
            return "loaded"
        if self.loading:
            return "loading"
        if self.error is not None:
            return "failed"
        if self.download is not None and self.download.state == "downloading":
            return "downloading"
        if self.spec.is_local or self.download_folder() is not None:
            return "available"
        return "not downloaded"

    def download_folder(self) -> str | None:
        if self.download is not None and self.download.folder is not None:
            return self.download.folder
        try:
            cached = try_to_load_from_cache(self.spec.source, "config.json")
        except HFValidationError:  # not a hub id either: nothing of it can be in the cache
            return None
        return str(Path(cached).parent) if isinstance(cached, str) else None

    async def run(
        self, texts: Sequence[str], trial: bool = False, timeout_s: float | None = None, bulk: bool = False
    ) -> TimedResult:
        """The texts' answers; `bulk` work (a data set, an evaluation) gives way to live requests."""
        if self.queue is None:
            raise ModelNotLoaded(self.key)
        long = [len(text) > LONG_TEXT_CHARS for text in texts]
        if self.long_lane is None or not any(long):
            return await self.queue.submit(texts, trial, timeout_s, bulk)
        if all(long):
            return await self.long_lane.submit(texts, trial, timeout_s, bulk)
        shorts_in = [text for text, is_long in zip(texts, long, strict=True) if not is_long]
        longs_in = [text for text, is_long in zip(texts, long, strict=True) if is_long]
        short_part, long_part = await asyncio.gather(
            self.queue.submit(shorts_in, trial, timeout_s, bulk),
            self.long_lane.submit(longs_in, trial, timeout_s, bulk),
        )
        shorts, longs = iter(short_part.scored), iter(long_part.scored)
        return TimedResult(
            [next(longs) if is_long else next(shorts) for is_long in long],
            max(short_part.queue_ms, long_part.queue_ms),
            max(short_part.inference_ms, long_part.inference_ms),
        )

    def apply_fault(self) -> None:
        """Runs on the model's worker thread before each call,
        so an injected hang occupies it like a real one."""
        if self.fault is not None:
            self.fault.apply()


class ModelRegistry:
    def __init__(
        self,
        specs: Sequence[ModelSpec],
        default_key: str,
        loader: BackendLoader,
        policy: BatchPolicy,
        call_timeout_s: float | None,
        on_outcome: OutcomeHook = lambda _key, _outcome: None,
    ) -> None:
        """Build inside a running event loop: VADER is attached, with its queue, at once."""
        self._entries = {spec.key: ModelEntry(spec) for spec in specs}
        self._loader = loader
        self._policy = policy
        self._call_timeout_s = call_timeout_s
        self._on_outcome = on_outcome
        self.default_key = default_key
        self._entries[default_key].wanted = True
        self.vader = self._entries[VADER_KEY]
        vader = loader(self.vader.spec)
        self._attach(self.vader, vader, VADER_POLICY, None, inline_chars=VADER_INLINE_CHARS)
        self.vader.long_lane = BatchQueue(
            f"{VADER_KEY}-long",
            vader,
            LONG_VADER_POLICY,
            None,
            on_outcome=lambda outcome: self._on_outcome(VADER_KEY, outcome),
            before_call=self.vader.apply_fault,
        )

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
        """The entry that should answer for `key` (the default when None); refuses a model nobody asked to
        serve."""
        entry = self.entry(key or self.default_key)
        if not entry.serves and not entry.loading:
            raise ModelNotLoaded(entry.key)
        return entry

    def serving(self) -> list[ModelEntry]:
        """The models offered to users: those that answer now or were asked to (the rest would be refused)."""
        return [entry for entry in self._entries.values() if entry.serves]

    def add(self, spec: ModelSpec) -> ModelEntry:
        """Catalogue a model made while the process runs (a fine-tuned one)."""
        if spec.key in self._entries:
            raise Conflict(f"a model {spec.key} is already catalogued")
        entry = self._entries[spec.key] = ModelEntry(spec)
        return entry

    def want(self, key: str) -> ModelEntry:
        """Mark a model as one that should serve: VADER answers for it until it is loaded."""
        entry = self.entry(key)
        entry.wanted = True
        return entry

    def set_fault(self, key: str, fault: Fault | None) -> ModelEntry:
        """Make the model fail or hang on purpose (None clears it)."""
        entry = self.entry(key)
        if entry.fault is not None:
            entry.fault.clear()  # a hang in progress ends now
        entry.fault = fault
        return entry

    def set_download(self, key: str, state: DownloadState) -> None:
        """Record a download's progress; call on the event loop
        (downloads report from their thread through it)."""
        self.entry(key).download = state

    def make_default(self, key: str) -> None:
        """Requests from now on go to `key`; those already queued on the old default finish there."""
        self.want(key)
        if key != self.default_key:
            log.info("default_model_changed", previous=self.default_key, model=key)
            self.default_key = key

    async def load(self, key: str) -> ModelEntry:
        """Load in a thread; a failure is recorded on the entry (and logged), never raised to the caller."""
        entry = self.want(key)
        if entry.loaded or entry.loading:
            return entry
        entry.loading, entry.error = True, None
        started, memory_before = time.perf_counter(), anonymous_memory_bytes()
        spec = msgspec.structs.replace(entry.spec, source=entry.source)
        log.info("model_loading", model=key, source=spec.source)
        try:
            backend = await asyncio.to_thread(self._loader, spec)
        except Exception as error:  # noqa: BLE001 - any load failure leaves the service up and serving VADER
            entry.error = str(error) or type(error).__name__
            log.error("model_load_failed", model=key, error=entry.error)
        else:
            self._attach(entry, backend, policy_for(self._policy, backend), self._call_timeout_s)
            entry.load_seconds = time.perf_counter() - started
            memory_after = anonymous_memory_bytes()
            if memory_before is not None and memory_after is not None:
                entry.memory_bytes = max(memory_after - memory_before, 0)
            log.info("model_loaded", model=key, seconds=round(entry.load_seconds, 2), labels=backend.labels)
        finally:
            entry.loading = False
        return entry

    async def unload(self, key: str) -> ModelEntry:
        """Stop taking requests for the model, let the queued ones finish on it, then free its memory."""
        entry = self.entry(key)
        if key == VADER_KEY:
            raise Conflict("vader is the fallback of every model and cannot be unloaded")
        if key == self.default_key:
            raise Conflict(f"{key} is the default model; make another model the default first")
        entry.wanted = False
        queue, entry.queue = entry.queue, None
        if queue is not None:
            if not await queue.drain(UNLOAD_DRAIN_S):
                log.warning("model_unloaded_with_queued_texts", model=key, queued=queue.depth)
            await queue.close()
            del queue
            release_freed_memory()
            log.info("model_unloaded", model=key)
        return entry

    def _attach(
        self,
        entry: ModelEntry,
        backend: Backend,
        policy: BatchPolicy,
        timeout_s: float | None,
        inline_chars: int = 0,
    ) -> None:
        entry.labels = backend.labels
        entry.execution_path = backend.execution_path
        entry.fast_path_rejected = backend.fast_path_rejected
        entry.details = {"model": entry.key, "source": entry.source, **backend.details}
        entry.call_timeout_s = backend.call_timeout_s
        entry.usage = backend.usage
        entry.queue = BatchQueue(
            entry.key,
            backend,
            policy,
            backend.call_timeout_s or timeout_s,
            on_outcome=lambda outcome: self._on_outcome(entry.key, outcome),
            before_call=entry.apply_fault,
            inline_chars=inline_chars,
            may_run_inline=lambda: entry.fault is None,
        )

    async def close(self) -> None:
        for entry in self._entries.values():
            if entry.queue is not None:
                await entry.queue.close()
                entry.queue = None
            if entry.long_lane is not None:
                await entry.long_lane.close()
                entry.long_lane = None
