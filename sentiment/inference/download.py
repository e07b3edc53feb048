"""Download a sequence-classification model from a Hugging Face hub into the local hub cache, with progress.

Blocking and thread-based (no asyncio): a service runs `download_model` in a worker thread and reads progress
from `on_progress`. Downloads are an explicit user action, so they go to the hub even when the process runs
with HF_HUB_OFFLINE=1 (which keeps every other hub look-up, e.g. by transformers, off the network).

Steps:
1. One model-info request (`HfApi.model_info` with file metadata) under a short overall deadline: an
   unreachable hub raises `HubUnreachable` within about `connect_timeout_s` instead of after huggingface_hub's
   minute of retries, and the answer names the commit and the size of every file.
2. The files a sequence-classification model needs are picked from that listing (config, weights, tokenizer
   files; never READMEs, other frameworks' weights or checkpoints in sub-folders).
3. Each is fetched with `hf_hub_download` (revision "main", so refs/main is written and the model can later be
   loaded by its hub id with local_files_only=True), its bytes counted through huggingface_hub's `tqdm_class`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self, TypeVar

import httpx2
import msgspec
from huggingface_hub import HfApi, constants, hf_hub_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

T = TypeVar("T")

LOCAL_FOLDER_ADVICE = (
    "set SENTIMENT_MODELS=key=/path/to/folder"
    " with a folder holding config.json, the weights and tokenizer files"
)
REVISION = "main"

CONFIG_FILE = "config.json"
TOKENIZER_FILES = frozenset(
    {
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "merges.txt",
        "vocab.json",
        "special_tokens_map.json",
        "added_tokens.json",
    }
)
SENTENCEPIECE_SUFFIX = ".model"  # spiece.model, sentencepiece.bpe.model, tokenizer.model


class HubUnreachable(Exception):
    """The hub did not answer (no route, no DNS, refused, timed out, server error): nothing downloaded."""

    def __init__(self, endpoint: str, reason: str) -> None:
        super().__init__(
            f"the model hub at {endpoint} cannot be reached ({reason}); to use a model without the hub, "
            f"{LOCAL_FOLDER_ADVICE}"
        )
        self.endpoint = endpoint
        self.reason = reason


class DownloadFailed(Exception):
    """The hub answered, but the download cannot be done: unknown or gated repo, unusable model, bad file."""


class DownloadProgress(msgspec.Struct, frozen=True):
    bytes_done: int
    bytes_total: int | None  # None when the hub did not report every file's size
    files_done: int
    files_total: int

    @property
    def percent(self) -> float | None:
        """Bytes done as a share of the total, 0.0 to 100.0; None when the total is unknown."""
        if self.bytes_total is None:
            return None
        if self.bytes_total == 0:
            return 100.0 if self.files_done == self.files_total else 0.0
        return 100.0 * self.bytes_done / self.bytes_total


def download_model(
    repo_id: str,
    *,
    endpoint: str | None = None,
    cache_dir: str | None = None,
    on_progress: Callable[[DownloadProgress], None] = lambda p: None,
    connect_timeout_s: float = 3.0,
) -> str:
    """Download what `repo_id` needs for sequence classification and return the local snapshot folder.

    `endpoint` defaults to huggingface_hub's configured one (HF_ENDPOINT, else https://huggingface.co);
    `cache_dir` to the standard hub cache (HF_HUB_CACHE). Files already in the cache are not fetched again.
    `on_progress` gets an immutable `DownloadProgress` after the file listing (0 bytes done), as bytes arrive,
    and after each file; the last call has bytes_done == bytes_total and files_done == files_total. It may be
    called from huggingface_hub's own threads (Xet downloads report from them), so keep it quick and
    thread-safe; an exception it raises aborts the download. Raises HubUnreachable (within about
    `connect_timeout_s`) or DownloadFailed.
    """
    endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
    with _hub_calls_allowed():
        siblings, commit = _list_files(repo_id, endpoint, connect_timeout_s)
        wanted = select_model_files(list(siblings))
        missing = _missing_parts(wanted)
        if missing:
            raise DownloadFailed(
                f"{repo_id} on {endpoint} is not a transformers model this service can load:"
                f" it has no {missing}"
            )
        tracker = _Progress({name: siblings[name] for name in wanted}, on_progress)
        tracker.report()
        paths = [_fetch(repo_id, name, endpoint, cache_dir, tracker) for name in wanted]
    folders = {Path(path).parent for path in paths}
    if len(folders) != 1:
        raise DownloadFailed(
            f"{repo_id} changed on {endpoint} during the download (it was at commit {commit}); try again"
        )
    return str(folders.pop())


def select_model_files(filenames: Sequence[str]) -> list[str]:
    """The top-level files a sequence-classification model needs, config and tokenizer first: config.json, the
    tokenizer files, and the safetensors weights (or the PyTorch .bin weights when there are none)."""
    top = sorted(name for name in filenames if "/" not in name)
    safetensors = [n for n in top if n.endswith((".safetensors", ".safetensors.index.json"))]
    pytorch = [
        n
        for n in top
        if n in {"pytorch_model.bin", "pytorch_model.bin.index.json"}
        or (n.startswith("pytorch_model-") and n.endswith(".bin"))
    ]
    tokenizer = [n for n in top if n in TOKENIZER_FILES or n.endswith(SENTENCEPIECE_SUFFIX)]
    config = [n for n in top if n == CONFIG_FILE]
    return config + tokenizer + (safetensors or pytorch)


def _missing_parts(wanted: Sequence[str]) -> str:
    parts = {
        "config.json": CONFIG_FILE in wanted,
        "weights (*.safetensors or pytorch_model.bin)": any(
            n.endswith((".safetensors", ".bin")) for n in wanted
        ),
        "tokenizer files": any(n in TOKENIZER_FILES or n.endswith(SENTENCEPIECE_SUFFIX) for n in wanted),
    }
    return ", ".join(part for part, present in parts.items() if not present)


# huggingface_hub reads HF_HUB_OFFLINE once, at import, into `constants.HF_HUB_OFFLINE`, and its HTTP client
# refuses every request while that is true. It has no per-call switch; its maintainers' advice for changing
# offline mode at runtime is to set `huggingface_hub.constants.HF_HUB_OFFLINE`
# (huggingface/transformers#42308). That is process-wide, so it is counted: the first download in flight turns
# offline mode off, the last one to end puts the previous value back. While a download runs, other hub
# look-ups in the process could reach the network too; this service loads models with local_files_only=True,
# so none do.
_online_lock = threading.Lock()
_online_users = 0
_offline_before = False


@contextmanager
def _hub_calls_allowed() -> Iterator[None]:
    global _online_users, _offline_before
    with _online_lock:
        if _online_users == 0:
            _offline_before = constants.HF_HUB_OFFLINE
            constants.HF_HUB_OFFLINE = False
        _online_users += 1
    try:
        yield
    finally:
        with _online_lock:
            _online_users -= 1
            if _online_users == 0:
                constants.HF_HUB_OFFLINE = _offline_before


def _list_files(repo_id: str, endpoint: str, timeout_s: float) -> tuple[dict[str, int | None], str]:
    """The repo's files with their sizes, and its commit: the reachability probe."""
    api = HfApi(endpoint=endpoint)
    try:
        info = _within(timeout_s, lambda: api.model_info(repo_id, files_metadata=True, timeout=timeout_s))
    except TimeoutError:
        raise HubUnreachable(endpoint, f"no answer within {timeout_s:g} s") from None
    except (httpx2.TransportError, OfflineModeIsEnabled) as error:
        raise HubUnreachable(endpoint, _transport_reason(error)) from error
    except GatedRepoError as error:
        raise DownloadFailed(
            f"{repo_id} on {endpoint} is gated: accept its terms on the hub and set HF_TOKEN"
        ) from error
    except RepositoryNotFoundError as error:
        raise DownloadFailed(
            f"repository {repo_id} not found on {endpoint} (check the id; a private repo needs HF_TOKEN)"
        ) from error
    except RevisionNotFoundError as error:
        raise DownloadFailed(f"{repo_id} on {endpoint} has no {REVISION!r} revision") from error
    except HfHubHTTPError as error:
        status = error.response.status_code
        if status >= 500:
            raise HubUnreachable(endpoint, f"it answered HTTP {status}") from error
        raise DownloadFailed(
            f"{endpoint} answered HTTP {status} to the model info of {repo_id} "
            "(is it a Hugging Face hub, and does the repository exist?)"
        ) from error
    except (ValueError, KeyError, TypeError) as error:  # not JSON, or JSON without the expected fields
        raise DownloadFailed(f"{endpoint} did not answer like a Hugging Face hub ({error!r})") from error
    if not info.sha or info.siblings is None:
        raise DownloadFailed(f"{endpoint} did not list the files of {repo_id}")
    return {s.rfilename: s.size for s in info.siblings}, info.sha


def _within(deadline_s: float, call: Callable[[], T]) -> T:
    """Run `call` in a daemon thread and give up after `deadline_s`: httpx's timeouts do not bound the DNS
    lookup (getaddrinfo), which a broken resolver can stretch to many seconds. A call given up on is left to
    end on its own."""
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # noqa: BLE001 - handed to the caller below, who re-raises it
            outcome["error"] = error
        finally:
            done.set()

    threading.Thread(target=run, name="hub-probe", daemon=True).start()
    if not done.wait(deadline_s):
        raise TimeoutError
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _transport_reason(error: BaseException) -> str:
    if isinstance(error, OfflineModeIsEnabled):
        return "offline mode is on"
    if isinstance(error, httpx2.TimeoutException):
        return "timed out"
    text = str(error) or type(error).__name__
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return f"its host name does not resolve: {text}"
    return text


def _fetch(repo_id: str, filename: str, endpoint: str, cache_dir: str | None, tracker: _Progress) -> str:
    try:
        path = hf_hub_download(
            repo_id,
            filename,
            revision=REVISION,
            endpoint=endpoint,
            cache_dir=cache_dir,
            tqdm_class=tracker.bar_class(filename),  # duck-typed, as the docs allow
        )
    except (RepositoryNotFoundError, RemoteEntryNotFoundError, RevisionNotFoundError) as error:
        raise DownloadFailed(f"{repo_id} on {endpoint}: {filename} cannot be downloaded ({error})") from error
    except (httpx2.TransportError, LocalEntryNotFoundError) as error:
        raise HubUnreachable(endpoint, f"lost while downloading {filename}: {error}") from error
    except (HfHubHTTPError, OSError, ValueError) as error:
        raise DownloadFailed(
            f"downloading {filename} of {repo_id} from {endpoint} failed: {error}"
        ) from error
    tracker.file_done(filename)
    return path


class _Progress:
    """Sums the bytes of each file as huggingface_hub reports them; a finished file counts its full size (one
    that was already cached reports no bytes at all)."""

    def __init__(self, sizes: dict[str, int | None], on_progress: Callable[[DownloadProgress], None]) -> None:
        self._sizes = sizes
        known = [size for size in sizes.values() if size is not None]
        self._total = sum(known) if len(known) == len(sizes) else None
        self._counted = dict.fromkeys(sizes, 0)
        self._done: set[str] = set()
        self._on_progress = on_progress
        self._last: DownloadProgress | None = None
        self._lock = threading.Lock()

    def report(self) -> None:
        with self._lock:
            done = sum(self._bytes_of(name) for name in self._sizes)
            snapshot = DownloadProgress(done, self._total, len(self._done), len(self._sizes))
            if snapshot != self._last:  # a file's last bytes and its completion often say the same
                self._last = snapshot
                self._on_progress(snapshot)

    def _bytes_of(self, name: str) -> int:
        size = self._sizes[name]
        if name in self._done:
            return size if size is not None else self._counted[name]
        return min(self._counted[name], size) if size is not None else self._counted[name]

    def add(self, name: str, n: float | None) -> None:
        with self._lock:
            self._counted[name] = max(0, self._counted[name] + int(n or 0))
        self.report()

    def file_done(self, name: str) -> None:
        with self._lock:
            self._done.add(name)
        self.report()

    def bar_class(self, name: str) -> type:
        """A stand-in for tqdm that huggingface_hub accepts as `tqdm_class` ("must inherit from tqdm or at
        least mimic its behavior"): it makes one bar per file and calls `update` with the bytes written to
        disk; over Xet it also calls `update_transfer` with network bytes, ignored as they'd count twice."""
        tracker = self

        class FileBar:
            def __init__(
                self, *args: object, total: int | None = None, initial: int = 0, **kwargs: object
            ) -> None:
                self.total = total
                self.n = 0
                if initial:
                    self.update(initial)

            def update(self, n: float | None = 1) -> None:
                self.n += int(n or 0)
                tracker.add(name, n)

            def update_transfer(self, n: float | None = 1) -> None:
                pass

            def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
                pass

            def set_transfer_postfix_str(self, s: str = "", refresh: bool = True) -> None:
                pass

            def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
                pass

            def refresh(self) -> None:
                pass

            def close(self) -> None:
                pass

            def __enter__(self) -> Self:
                return self

            def __exit__(self, *exc: object) -> None:
                pass

        return FileBar
