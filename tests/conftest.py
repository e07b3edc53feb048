"""Shared fixtures: settings, databases (SQLite and Postgres),
a loaded reference model, the app and its client."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

# Hubs are unreachable here: fail at once instead of retrying for a minute.
os.environ["HF_HUB_OFFLINE"] = "1"
# The suite's expected figures were measured on fp32; `auto` (the default) is tested on its own
# (tests/integration/test_execution_paths.py). Commands the tests start inherit this.
FP32 = {"SENTIMENT_EXECUTION_PATH": "fp32"}
os.environ.update(FP32)

import asyncpg
import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from sentiment.app import create_app
from sentiment.inference.backend import Backend
from sentiment.inference.catalogue import BUILTIN_MODELS, ModelSpec
from sentiment.inference.registry import load_backend
from sentiment.settings import Settings
from sentiment.storage.database import create_engine, upgrade
from sentiment.storage.settings import WriterSettings

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SST2_MODEL = SHARED / "models" / "minilm-sst2"
TWEETS_MODEL = SHARED / "models" / "minilm-tweets3"
DATA = SHARED / "data"
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def loader() -> Callable[[ModelSpec], Backend]:
    """Loads each model once per test session; the app under test shares the loaded backends."""
    cache: dict[str, Backend] = {}

    def load(spec: ModelSpec) -> Backend:
        if spec.source not in cache:
            cache[spec.source] = load_backend(spec)
        return cache[spec.source]

    return load


async def _postgres_reachable() -> bool:
    try:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await connection.close()
    return True


async def _postgres_database() -> AsyncIterator[str]:
    """A database of its own on the running Postgres, created for one test and dropped after it."""
    if not await _postgres_reachable():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}")
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}")
    name = f"sentiment_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+asyncpg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async for url in _postgres_database():
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database of each kind: the same storage tests run against SQLite and Postgres."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    async for url in _postgres_database():
        yield url


def make_settings(database_url: str, **overrides: object) -> Settings:
    """Test settings: the reference models catalogued, migrations applied on start for every database, the
    prediction journal in a folder of its own."""
    base = Settings(
        database_url=database_url,
        models=BUILTIN_MODELS
        + (ModelSpec("minilm-sst2", str(SST2_MODEL)), ModelSpec("minilm-tweets3", str(TWEETS_MODEL))),
        auto_migrate=True,
        execution_path="fp32",
    )
    settings = msgspec.structs.replace(base, **overrides)
    if settings.writer.journal_dir == WriterSettings().journal_dir:  # never the working folder's journal
        journal = tempfile.mkdtemp(prefix="sentiment-journal-")
        settings = msgspec.structs.replace(
            settings, writer=msgspec.structs.replace(settings.writer, journal_dir=journal)
        )
    return settings


async def wait_until_settled(app: Litestar, timeout_s: float = 60.0) -> None:
    """Wait for the default model's background load to end (loaded or failed)."""
    registry = app.state.resources.registry
    entry = registry.entry(registry.default_key)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while entry.loading or (not entry.loaded and entry.error is None):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"model {entry.key} still {entry.status} after {timeout_s} s")
        await asyncio.sleep(0.01)


def in_app(client: AsyncTestClient, fn: Callable[..., Awaitable[T]], *args: object) -> T:
    """Run a coroutine function on the app's own event loop
    (the test client serves it from another thread)."""
    return client.blocking_portal.call(fn, *args)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh, migrated database of each kind, for the storage code's own tests."""
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
async def sst2_client(
    sqlite_url: str, loader: Callable[[ModelSpec], Backend]
) -> AsyncIterator[AsyncTestClient]:
    """A client of the app serving minilm-sst2 as the default model, on SQLite."""
    app = create_app(make_settings(sqlite_url, default_model="minilm-sst2"), loader=loader)
    async with AsyncTestClient(app=app) as client:
        await wait_until_settled(app)
        yield client


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        layer = Path(str(item.fspath)).parent.name
        if layer in {"unit", "integration", "e2e"}:
            item.add_marker(getattr(pytest.mark, layer))


class ServerProcess:
    """The real service, started as `python -m sentiment serve` on a free port."""

    def __init__(self, env: dict[str, str], log_path: Path, command: list[str] | None = None) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        clean = {
            k: v for k, v in os.environ.items() if not k.startswith(("SENTIMENT_", "FAILSAFE_", "POSTGRES_"))
        }
        clean.pop("DATABASE_URL", None)
        clean.pop("PRELOAD_MODEL", None)
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            command or [sys.executable, "-m", "sentiment", "serve"],
            env={**clean, "HF_HUB_OFFLINE": "1", **FP32, **env, "PORT": str(self.port)},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=log_path.parent,
        )

    def wait_healthy(self, timeout_s: float = 60.0, probe: str = "/health") -> None:
        """Until `probe` answers 200: /health (serving) or /ready (the default model loaded too)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode}:\n{self.log_path.read_text()}"
                )
            try:
                if httpx.get(f"{self.base_url}{probe}", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{probe} not 200 after {timeout_s} s:\n{self.log_path.read_text()}")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start real service processes with the given environment (and command, default `python -m sentiment
    serve`) on a free port; each is stopped when the test ends."""
    started: list[ServerProcess] = []

    def start(env: dict[str, str], command: list[str] | None = None) -> ServerProcess:
        server = ServerProcess(env, tmp_path / f"server-{len(started)}.log", command)
        started.append(server)
        server.wait_healthy()
        return server

    yield start
    for server in started:
        server.stop()


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


@pytest.fixture
def browser() -> Iterator[object]:
    """Debian's chromium driven by playwright (never `playwright install`). Function-scoped: playwright's sync
    API keeps an event loop running while it is open, which must not overlap the async tests' loops."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageWatch:
    """A page, with every console error and every request that left 127.0.0.1 recorded."""

    def __init__(self, page: object) -> None:
        self.page = page
        self.console_errors: list[str] = []
        self.foreign_requests: list[str] = []
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)  # type: ignore[attr-defined]
        page.on("pageerror", lambda e: self.console_errors.append(str(e)))  # type: ignore[attr-defined]
        page.on("request", self._check_host)  # type: ignore[attr-defined]

    def _check_host(self, request: object) -> None:
        url = httpx.URL(request.url)  # type: ignore[attr-defined]
        if url.scheme in {"http", "https", "ws", "wss"} and url.host not in {"127.0.0.1", "localhost"}:
            self.foreign_requests.append(str(url))

    def log_in(self, base_url: str, token: str) -> None:
        """Through the login form, which lands on the alerts page when no page asked for the login."""
        self.page.goto(f"{base_url}/ui/login")  # type: ignore[attr-defined]
        self.page.fill("#token", token)  # type: ignore[attr-defined]
        self.page.click("button[type=submit]")  # type: ignore[attr-defined]
        self.page.wait_for_url(f"{base_url}/ui/alerts")  # type: ignore[attr-defined]

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        return path


@pytest.fixture
def watched_page(browser: object) -> Iterator[PageWatch]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    yield PageWatch(context.new_page())
    context.close()


@pytest.fixture
def tiny_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: a real full disk, not a simulated one."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)]
    made = subprocess.run(command, capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.fixture
def own_postgres() -> Iterator[object]:
    """A PostgreSQL server of this test's own, started, that the test may stop and start."""
    if not (Path("/usr/lib/postgresql/15/bin/initdb")).exists():
        pytest.skip("PostgreSQL server binaries are not installed")
    from tests.ownpostgres import OwnPostgres

    server = OwnPostgres()
    server.start()
    yield server
    server.remove()


async def page_csrf(client: AsyncTestClient, path: str = "/ui/analyze") -> str:
    """The CSRF token of the client's page session, read from a page's form (which opens the session)."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', (await client.get(path)).text)
    assert match, "the page form carries no CSRF token"
    return match.group(1)
