"""Operations: the Docker image's own entry command and environment, JSON logs with request ids, and the
scripts a newcomer runs."""

import json
import os
import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import ROOT, SST2_MODEL, ServerProcess


def final_stage(dockerfile: Path) -> tuple[dict[str, str], list[str], str]:
    """ENV, CMD and WORKDIR of the Dockerfile's last stage (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    stage = text.rsplit("\nFROM ", 1)[1]
    env: dict[str, str] = {}
    command: list[str] = []
    workdir = "/"
    for line in stage.splitlines():
        instruction, _, rest = line.strip().partition(" ")
        if instruction == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(rest))
        elif instruction == "CMD":
            command = json.loads(rest)
        elif instruction == "WORKDIR":
            workdir = rest.strip()
    return env, command, workdir


def test_image_entry_command_and_environment_serve_on_all_interfaces(
    tmp_path: Path, start_server: Callable[..., ServerProcess]
) -> None:
    env, command, workdir = final_stage(ROOT / "Dockerfile")
    assert command == ["sentiment", "serve"] and workdir == "/app"
    assert env["HOST"] == "0.0.0.0" and env["PORT"] == "8080"
    # Outside Docker, the volumes /data and /models are
    # folders of the test, and PATH finds this venv's script.
    env = {
        name: value.replace("/data/", f"{tmp_path}/").replace("/models/", f"{tmp_path}/")
        for name, value in env.items()
    }
    env["PATH"] = f"{Path(os.sys.executable).parent}:{os.environ['PATH']}"
    server = start_server(
        {**env, "SENTIMENT_MODELS": f"mine={SST2_MODEL}", "PRELOAD_MODEL": "mine"}, command=command
    )
    listening = subprocess.run(["ss", "-ltn"], check=True, capture_output=True, text=True).stdout
    assert f"0.0.0.0:{server.port}" in listening
    answer = httpx.post(f"{server.base_url}/predict", json={"text": "I love it"}).json()
    assert answer["sentiment"] == "positive"
    assert (tmp_path / "sentiment.db").exists()
    # LOG_JSON=true in the image: every line, uvicorn's included, is a JSON object.
    lines = [json.loads(line) for line in server.log_path.read_text().splitlines()]
    assert any(line["event"] == "starting" for line in lines)
    assert any(line.get("logger") == "uvicorn.error" for line in lines)


def test_json_log_line_carries_the_request_id_and_never_the_text(
    tmp_path: Path, start_server: Callable[..., ServerProcess]
) -> None:
    secret_text = "my very private tweet about nothing"
    server = start_server({"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'l.db'}", "LOG_JSON": "true"})
    response = httpx.post(
        f"{server.base_url}/predict", json={"text": secret_text}, headers={"x-request-id": "req-7"}
    )
    assert response.status_code == 200
    server.stop()
    log = server.log_path.read_text()
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    request_lines = [e for e in events if e.get("request_id") == "req-7"]
    assert request_lines and request_lines[-1]["event"] == "http_request"
    assert request_lines[-1]["route"] == "/predict" and request_lines[-1]["status"] == 200
    assert secret_text not in log


def fake_checkout(root: Path) -> Path:
    """scripts/start.sh in a copy of the checkout whose .venv tools only record what they were asked (and, for
    `sentiment`, which models it was given); the record's path."""
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "start.sh").write_bytes((ROOT / "scripts" / "start.sh").read_bytes())
    (root / "pyproject.toml").write_text("[project]\nname = 'sentiment'\n")
    tools = root / ".venv" / "bin"
    tools.mkdir(parents=True)
    calls = root / "calls.log"
    for tool in ("python", "pip"):
        (tools / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\n')
        (tools / tool).chmod(0o755)
    (tools / "sentiment").write_text(
        f'#!/bin/sh\necho "sentiment $*" >> {calls}\n'
        f'echo "$PRELOAD_MODEL|$SENTIMENT_MODELS" > {root / "models.log"}\n'
    )
    (tools / "sentiment").chmod(0o755)
    return calls


def start(root: Path, **env: str) -> list[str]:
    calls = root / "calls.log"
    calls.write_text("")
    done = subprocess.run(
        ["bash", "scripts/start.sh"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stderr
    return calls.read_text().splitlines()


def test_start_script_installs_again_only_when_the_project_file_changed(tmp_path: Path) -> None:
    fake_checkout(tmp_path)
    assert start(tmp_path) == [
        "pip install --quiet --upgrade pip",
        "pip install --quiet -e .",
        "sentiment serve",
    ]
    assert start(tmp_path) == ["sentiment serve"]  # nothing changed: no install
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'sentiment'\ndependencies = ['dask']\n")
    assert start(tmp_path)[:2] == ["pip install --quiet --upgrade pip", "pip install --quiet -e ."]


def test_start_script_serves_the_three_class_model_with_the_binary_one_beside(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    fake_checkout(root)
    models = tmp_path / "shared" / "models"
    clean = {"PRELOAD_MODEL": "", "SENTIMENT_MODELS": ""}
    start(root, **clean)
    assert (root / "models.log").read_text().strip() == "|"  # no model folders: VADER
    (models / "minilm-sst2").mkdir(parents=True)
    start(root, **clean)
    assert (root / "models.log").read_text().strip() == "minilm-sst2|minilm-sst2=../shared/models/minilm-sst2"
    (models / "minilm-tweets3").mkdir()
    start(root, **clean)
    assert (root / "models.log").read_text().strip() == (
        "minilm-tweets3|minilm-tweets3=../shared/models/minilm-tweets3,minilm-sst2=../shared/models/minilm-sst2"
    )
    start(root, PRELOAD_MODEL="vader", SENTIMENT_MODELS="")
    assert (root / "models.log").read_text().strip() == "vader|"  # the user's choice wins
