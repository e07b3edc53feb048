"""Execution paths of a transformers model (fp32, torch int8, ONNX Runtime, ONNX Runtime int8, or `auto`:
the fastest that passes on the device) and the self-check that keeps a fast path honest. A verdict is
remembered in the cache folder, so a start or a one-shot command after the first loads neither fp32 nor torch
to check again."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Literal, get_args

import msgspec
import structlog

from sentiment.core.domain import ModelLoadError
from sentiment.inference.backend import Backend
from sentiment.inference.long_texts import LongTexts
from sentiment.inference.self_check import SAMPLE_FINGERPRINT, SAMPLE_TEXTS, Verdict

log = structlog.get_logger(__name__)

ExecutionPath = Literal["auto", "fp32", "int8", "onnx", "onnx-int8"]
EXECUTION_PATHS: tuple[ExecutionPath, ...] = get_args(ExecutionPath)
# What `auto` tries on a CPU, fastest first (bench/paths.py); the first that passes its self-check serves,
# else fp32. On a GPU the model runs in half precision.
AUTO_ON_CPU: tuple[ExecutionPath, ...] = ("onnx-int8",)
GPU_HALF = "cuda-fp16"  # the execution path a GPU serves when half precision passes its self-check

# Exported models (ONNX) and self-check verdicts are kept here unless SENTIMENT_CACHE_DIR says otherwise.
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "sentiment"


def _gpu_driver_present() -> bool:
    """Whether a GPU driver is loaded at all: without one `auto` is the CPU and torch need not load."""
    return Path("/proc/driver/nvidia").exists() or Path("/dev/kfd").exists()


def resolve_device(device: str) -> str:
    """`auto` is the GPU when torch sees one, else the CPU;
    asking for `cuda` without one is refused clearly."""
    if device == "cpu" or (device == "auto" and not _gpu_driver_present()):
        return "cpu"
    import torch

    available = torch.cuda.is_available()
    if device == "cuda" and not available:
        raise ModelLoadError("SENTIMENT_DEVICE=cuda but torch sees no CUDA GPU here; use cpu or auto")
    return "cuda" if device == "cuda" or (device == "auto" and available) else "cpu"


def source_stamp(source: str, *parts: str) -> str:
    """A key for what is derived from a model (its export, its self-check verdict): the folder's files as they
    are and the versions of the libraries that derive it, read without importing them."""
    folder = Path(source)
    files = sorted(folder.iterdir()) if folder.is_dir() else []
    stamp = ",".join(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files if f.is_file())
    origin = folder.resolve() if folder.exists() else source
    versions = ",".join(_version(package) for package in ("torch", "transformers", "onnxruntime"))
    key = "|".join((str(origin), stamp or "hub", versions, *parts))
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return f"{package}-absent"


def build(
    source: str,
    path: ExecutionPath,
    threads: int | None,
    cache_dir: Path,
    make_fast: Callable[[str, ExecutionPath], Backend] | None = None,
    device: str = "cpu",
    long_texts: LongTexts = "head",
) -> Backend:
    """The backend for `path` (for `auto`, the first of AUTO_ON_CPU that passes its self-check), or fp32 with
    `fast_path_rejected` saying why. On a GPU the CPU paths do not apply: the model runs in half precision
    when that passes the same self-check (`fp32` asks for full precision on the GPU)."""
    reference = _Reference(source, threads, long_texts)
    if resolve_device(device) == "cuda":
        from sentiment.inference.transformers_backend import TransformersBackend

        on_gpu = partial(TransformersBackend, source, threads, device="cuda", long_texts=long_texts)
        return on_gpu_checked(
            path,
            make_half=lambda: on_gpu(half=True),
            make_full=lambda: on_gpu(half=False),
            reference=reference.backend,
            remembered=cache_dir / "self-checks" / f"{source_stamp(source, GPU_HALF)}.json",
        )
    make = make_fast or _fast_backend(threads, cache_dir, long_texts)
    candidates = AUTO_ON_CPU if path == "auto" else () if path == "fp32" else (path,)
    refusals: list[str] = []
    for candidate in candidates:
        remembered = cache_dir / "self-checks" / f"{source_stamp(source, candidate)}.json"
        fast, reason = _vetted(partial(make, source, candidate), reference.backend, remembered)
        if fast is not None:
            log.info("execution_path_chosen", source=source, path=candidate)
            return fast
        refusals.append(f"the {candidate} path was refused and the model runs in fp32: {reason}")
        log.warning("fast_path_rejected", source=source, path=candidate, reason=reason)
    fp32 = reference.backend()
    if refusals:
        fp32.fast_path_rejected = "; ".join(refusals)
    return fp32


def on_gpu_checked(
    path: ExecutionPath,
    make_half: Callable[[], Backend],
    make_full: Callable[[], Backend],
    reference: Callable[[], Backend],
    remembered: Path,
) -> Backend:
    """Half precision on the GPU when its labels pass the self-check against fp32 (on the CPU, where fp32 is
    the reference everywhere), else full precision on the GPU with `fast_path_rejected` saying why."""
    if path == "fp32":
        return make_full()
    half, reason = _vetted(make_half, reference, remembered)
    if half is not None:
        log.info("execution_path_chosen", path=GPU_HALF)
        return half
    log.warning("fast_path_rejected", path=GPU_HALF, reason=reason)
    full = make_full()
    full.fast_path_rejected = (
        f"the {GPU_HALF} path was refused and the model runs in fp32 on the GPU: {reason}"
    )
    return full


class _Reference:
    """fp32, loaded only when a verdict has to be measured or no fast path passes."""

    def __init__(self, source: str, threads: int | None, long_texts: LongTexts) -> None:
        self._source, self._threads, self._long_texts = source, threads, long_texts
        self._backend: Backend | None = None

    def backend(self) -> Backend:
        if self._backend is None:
            from sentiment.inference.transformers_backend import TransformersBackend

            self._backend = TransformersBackend(self._source, self._threads, long_texts=self._long_texts)
        return self._backend


def _vetted(
    make: Callable[[], Backend], reference: Callable[[], Backend], remembered: Path
) -> tuple[Backend | None, str | None]:
    """The fast backend when its verdict (remembered, else measured now and remembered) lets it serve, else
    None and why not. A path refused before is not built again."""
    verdict = _recall(remembered)
    if verdict is not None and (reason := verdict.refusal()) is not None:
        return None, f"{reason} (remembered in {remembered})"
    try:
        fast = make()
        if verdict is None:
            log.info("fast_path_checking", texts=len(SAMPLE_TEXTS), remembered_in=str(remembered))
            verdict = Verdict.of(reference().predict(SAMPLE_TEXTS), fast.predict(SAMPLE_TEXTS))
            _remember(remembered, verdict)
    except Exception as error:  # noqa: BLE001 - a fast path that cannot even be built leaves the model on fp32
        return None, f"it could not be built: {type(error).__name__}: {error}"
    reason = verdict.refusal()
    if reason is not None:
        fast.close()
        return None, reason
    return fast, None


def _recall(file: Path) -> Verdict | None:
    try:
        verdict = msgspec.json.decode(file.read_bytes(), type=Verdict)
    except (OSError, msgspec.DecodeError):
        return None
    return verdict if verdict.sample == SAMPLE_FINGERPRINT else None


def _remember(file: Path, verdict: Verdict) -> None:
    """Best effort: a read-only cache folder only means that the next start checks again."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        partial_file = file.with_name(f"{file.name}.{os.getpid()}")
        partial_file.write_bytes(msgspec.json.encode(verdict))
        partial_file.replace(file)
    except OSError as error:
        log.warning("self_check_not_remembered", file=str(file), error=str(error))


def _fast_backend(
    threads: int | None, cache_dir: Path, long_texts: LongTexts
) -> Callable[[str, ExecutionPath], Backend]:
    def make(source: str, path: ExecutionPath) -> Backend:
        if path == "int8":
            from sentiment.inference.transformers_backend import TransformersBackend

            return TransformersBackend(source, threads, int8=True, long_texts=long_texts)
        from sentiment.inference.onnx_backend import OnnxBackend

        return OnnxBackend(
            source, int8=path == "onnx-int8", cache_dir=cache_dir, threads=threads, long_texts=long_texts
        )

    return make
