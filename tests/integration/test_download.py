"""Hub downloads against a local stand-in for the hub (tests/hubstub.py): real HTTP, cache and model load.

The test session runs with HF_HUB_OFFLINE=1 (tests/conftest.py); downloads must still reach the endpoint they
are given, and leave offline mode as it was.
"""

from __future__ import annotations

import itertools
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import constants, try_to_load_from_cache

from sentiment.inference.download import DownloadFailed, DownloadProgress, HubUnreachable, download_model
from tests.conftest import SST2_MODEL
from tests.hubstub import HubStub

REPO = "org/minilm"
MODEL_FILES = {
    "config.json",
    "model.safetensors",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
}
ADVICE = (
    "set SENTIMENT_MODELS=key=/path/to/folder"
    " with a folder holding config.json, the weights and tokenizer files"
)


def model_bytes() -> int:
    return sum((SST2_MODEL / name).stat().st_size for name in MODEL_FILES)


@pytest.fixture
def hub() -> Iterator[HubStub]:
    with HubStub({REPO: SST2_MODEL}) as stub:
        yield stub


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_rises_to_completion(reports: list[DownloadProgress], bytes_total: int, files_total: int) -> None:
    assert reports, "no progress was reported"
    assert reports[0].bytes_done == 0 and reports[0].files_done == 0
    for before, after in itertools.pairwise(reports):
        assert after.bytes_done >= before.bytes_done and after.files_done >= before.files_done
        assert after.percent is not None and before.percent is not None and after.percent >= before.percent
    assert {(r.bytes_total, r.files_total) for r in reports} == {(bytes_total, files_total)}
    last = reports[-1]
    assert (last.bytes_done, last.files_done, last.percent) == (bytes_total, files_total, 100.0)


def test_download_reports_progress_rising_to_100_percent_and_the_folder_loads_and_predicts(
    hub: HubStub, tmp_path: Path
) -> None:
    reports: list[DownloadProgress] = []

    folder = download_model(REPO, endpoint=hub.endpoint, cache_dir=str(tmp_path), on_progress=reports.append)

    assert_rises_to_completion(reports, model_bytes(), len(MODEL_FILES))
    assert any(0 < (r.percent or 0) < 100 for r in reports), "no progress between 0 and 100 %"
    assert {p.name for p in Path(folder).iterdir()} == MODEL_FILES
    assert Path(folder).is_relative_to(tmp_path)
    # refs/main is written, so the cache also answers for the hub id (how the registry tells "downloaded").
    cached_config = try_to_load_from_cache(REPO, "config.json", cache_dir=str(tmp_path))
    assert cached_config == str(Path(folder, "config.json"))
    assert constants.HF_HUB_OFFLINE, "offline mode was not restored after the download"

    from sentiment.inference.transformers_backend import TransformersBackend

    backend = TransformersBackend(folder)
    assert backend.predict(["a wonderful, moving film"])[0].label == "positive"


def test_only_the_files_a_classifier_needs_are_fetched_and_safetensors_win_over_other_weights(
    tmp_path: Path,
) -> None:
    repo = {
        **HubStub.folder_files(SST2_MODEL),
        "pytorch_model.bin": b"unused pytorch weights",
        "tf_model.h5": b"unused tensorflow weights",
        "training_args.bin": b"unused",
        "checkpoint-500/model.safetensors": b"unused checkpoint",
        "onnx/model.onnx": b"unused onnx",
    }
    with HubStub({REPO: repo}) as hub:
        folder = download_model(REPO, endpoint=hub.endpoint, cache_dir=str(tmp_path))

    assert set(hub.downloaded()) == MODEL_FILES
    assert {p.name for p in Path(folder).iterdir()} == MODEL_FILES


def test_pytorch_weights_are_fetched_when_the_repo_has_no_safetensors(tmp_path: Path) -> None:
    repo = {
        "config.json": b"{}",
        "vocab.txt": b"[PAD]\n[UNK]\n",
        "pytorch_model.bin": b"pytorch weights",
        "README.md": b"# a model",
    }
    reports: list[DownloadProgress] = []
    with HubStub({REPO: repo}) as hub:
        download_model(REPO, endpoint=hub.endpoint, cache_dir=str(tmp_path), on_progress=reports.append)

    assert set(hub.downloaded()) == {"config.json", "vocab.txt", "pytorch_model.bin"}
    assert_rises_to_completion(reports, sum(len(repo[name]) for name in hub.downloaded()), 3)


def test_progress_can_be_read_from_another_thread_while_the_download_runs(tmp_path: Path) -> None:
    latest: list[DownloadProgress] = []
    seen_mid_way: list[DownloadProgress] = []
    result: list[str] = []

    def download(endpoint: str) -> None:
        folder = download_model(REPO, endpoint=endpoint, cache_dir=str(tmp_path), on_progress=latest.append)
        result.append(folder)

    with HubStub({REPO: SST2_MODEL}, bytes_per_s=40_000_000) as hub:
        worker = threading.Thread(target=download, args=(hub.endpoint,))
        worker.start()
        while worker.is_alive():
            if latest and 0 < (latest[-1].percent or 0) < 100:
                seen_mid_way.append(latest[-1])
            time.sleep(0.01)
        worker.join()

    assert result, "the download did not finish"
    assert seen_mid_way, "no progress between 0 and 100 % was visible while the download ran"
    assert latest[-1].percent == 100.0


def test_a_second_download_fetches_no_bytes_and_still_reports_100_percent(
    hub: HubStub, tmp_path: Path
) -> None:
    first = download_model(REPO, endpoint=hub.endpoint, cache_dir=str(tmp_path))
    fetched_before = len(hub.downloaded())
    reports: list[DownloadProgress] = []

    second = download_model(REPO, endpoint=hub.endpoint, cache_dir=str(tmp_path), on_progress=reports.append)

    assert second == first
    assert len(hub.downloaded()) == fetched_before
    assert_rises_to_completion(reports, model_bytes(), len(MODEL_FILES))


def test_an_exception_from_on_progress_stops_the_download_and_leaves_no_partial_file(tmp_path: Path) -> None:
    class Cancelled(Exception):
        pass

    def cancel_mid_weights(progress: DownloadProgress) -> None:
        if progress.bytes_done > 5_000_000:
            raise Cancelled

    with HubStub({REPO: SST2_MODEL}, bytes_per_s=40_000_000) as hub, pytest.raises(Cancelled):
        download_model(REPO, endpoint=hub.endpoint, cache_dir=str(tmp_path), on_progress=cancel_mid_weights)

    cached = {path.name for path in tmp_path.rglob("*") if path.is_file() or path.is_symlink()}
    assert "model.safetensors" not in cached
    assert not [name for name in cached if name.endswith(".incomplete")]


@pytest.mark.parametrize("where", ["closed port", "unresolvable host"])
def test_an_unreachable_hub_fails_within_5_s_with_the_local_folder_advice(
    where: str, closed_port: int, tmp_path: Path
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port}" if where == "closed port" else "http://hub.invalid"
    reports: list[DownloadProgress] = []
    began = time.monotonic()

    with pytest.raises(HubUnreachable) as caught:
        download_model(REPO, endpoint=endpoint, cache_dir=str(tmp_path), on_progress=reports.append)

    assert time.monotonic() - began < 5
    assert f"the model hub at {endpoint} cannot be reached" in str(caught.value)
    assert ADVICE in str(caught.value)
    assert reports == []
    assert constants.HF_HUB_OFFLINE, "offline mode was not restored after a failed download"


def test_a_hub_whose_name_lookup_hangs_fails_within_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """httpx's timeouts do not bound getaddrinfo; a resolver that never answers must not hold the caller."""
    released = threading.Event()

    def hanging_lookup(*args: object, **kwargs: object) -> list[object]:
        released.wait(30)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", hanging_lookup)
    began = time.monotonic()
    try:
        with pytest.raises(HubUnreachable, match="no answer within 1 s") as caught:
            download_model(REPO, endpoint="http://hub.example", cache_dir=str(tmp_path), connect_timeout_s=1)
        assert time.monotonic() - began < 2
        assert ADVICE in str(caught.value)
    finally:
        released.set()


def test_a_hub_that_accepts_connections_but_never_answers_fails_within_5_s(tmp_path: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel completes the handshake; nobody ever reads or answers
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        began = time.monotonic()

        with pytest.raises(HubUnreachable, match="cannot be reached") as caught:
            download_model(REPO, endpoint=endpoint, cache_dir=str(tmp_path))

        assert time.monotonic() - began < 5
        assert ADVICE in str(caught.value)


def test_a_repo_the_hub_does_not_know_fails_with_download_failed_naming_it(
    hub: HubStub, tmp_path: Path
) -> None:
    expected = rf"repository org/no-such-model not found on {re.escape(hub.endpoint)}"
    with pytest.raises(DownloadFailed, match=expected):
        download_model("org/no-such-model", endpoint=hub.endpoint, cache_dir=str(tmp_path))

    assert hub.downloaded() == []
    assert not any(tmp_path.iterdir()), "a failed download left files in the cache"


def test_a_repo_without_weights_fails_before_downloading_anything(tmp_path: Path) -> None:
    repo = {"config.json": b"{}", "tokenizer.json": b"{}", "README.md": b"# no weights"}
    with HubStub({REPO: repo}) as hub:
        no_weights = re.escape("it has no weights (*.safetensors or pytorch_model.bin)")
        with pytest.raises(DownloadFailed, match=no_weights):
            download_model(REPO, endpoint=hub.endpoint, cache_dir=str(tmp_path))

    assert hub.downloaded() == []
