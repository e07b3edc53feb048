"""The package as `pip install .` leaves it: built from the sdist into a wheel, installed (not editable) into
a fresh virtual environment outside the checkout, it upgrades a database and serves every page and asset."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import venv
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from sentiment.storage.tables import Base
from tests.conftest import ROOT, ServerProcess

pytestmark = pytest.mark.slow

# Every page without an id in its path (grep `@get(` in sentiment/web), with a word its <title> must hold.
PAGES = {
    "/ui": "overview",
    "/ui/analyze": "analyze",
    "/ui/datasets": "data sets",
    "/ui/predictions": "predictions",
    "/ui/models": "models",
    "/ui/alerts": "alerts",
    "/ui/login": "log",
    "/docs": "api documentation",
}
# The parts htmx swaps in: HTML fragments, no <title>.
FRAGMENTS = ["/ui/overview/live", "/ui/models/table", "/ui/alerts/table", "/ui/datasets/recent"]


class Installed:
    """A virtual environment holding only the wheel; the dependencies come from this checkout's .venv."""

    def __init__(self, root: Path, wheel: Path) -> None:
        self.root = root
        self.wheel = wheel
        self.bin = root / "bin"
        self.python = self.bin / "python"

    def env(self, **values: str) -> dict[str, str]:
        """The caller's environment less the service's settings and PYTHONPATH (it may name the checkout)."""
        prefixes = ("SENTIMENT_", "FAILSAFE_", "POSTGRES_")
        clean = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
        for name in ("DATABASE_URL", "PRELOAD_MODEL", "PYTHONPATH"):
            clean.pop(name, None)
        return {**clean, "HF_HUB_OFFLINE": "1", **values}

    def run(self, args: list[str], cwd: Path, **env: str) -> str:
        return run(args, cwd, self.env(**env))


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(args, check=False, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout.strip()


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    dist = tmp_path_factory.mktemp("dist")
    # The wheel is built from the sdist, as build frontends do: the sdist must hold templates/, migrations/.
    # No build isolation, so nothing is downloaded: hatchling comes from the test extra.
    run([sys.executable, "-m", "hatchling", "build", "--target", "sdist", "--directory", str(dist)], cwd=ROOT)
    [sdist] = dist.glob("sentiment-*.tar.gz")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--quiet",
            "--wheel-dir",
            str(dist),
            str(sdist),
        ],
        cwd=dist,
    )
    [wheel] = dist.glob("sentiment-*.whl")

    root = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root)
    target = Installed(root, wheel)
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(target.python),
            "install",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            "--quiet",
            str(wheel),
        ],
        cwd=root,
    )
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site_packages = target.run([str(target.python), "-c", purelib], cwd=root)
    # Appended after the venv's own site-packages: torch, litestar & co. come from the checkout's .venv,
    # `sentiment` from the wheel (the .venv's editable-install .pth is not read: it is no site directory).
    (Path(site_packages) / "_checkout_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return target


def test_wheel_ships_templates_migrations_static_files_and_the_license(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for template in (ROOT / "templates").rglob("*.html"):
        assert f"sentiment/templates/{template.relative_to(ROOT / 'templates').as_posix()}" in names
    for revision in (ROOT / "migrations" / "versions").glob("*.py"):
        assert f"sentiment/migrations/versions/{revision.name}" in names
    assert {"sentiment/migrations/env.py", "sentiment/migrations/script.py.mako"} <= names
    assert any(name.startswith("sentiment/web/static/vendor/htmx-") for name in names)
    assert "sentiment-0.1.0.dist-info/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(installed.wheel).read("sentiment-0.1.0.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in metadata


def test_installed_package_and_its_folders_come_from_the_venv_not_the_checkout(
    installed: Installed, tmp_path: Path
) -> None:
    script = (
        "import sentiment; from sentiment.core.resources import bundled_dir; "
        "print(sentiment.__file__); print(bundled_dir('templates')); print(bundled_dir('migrations'))"
    )
    output = installed.run([str(installed.python), "-c", script], cwd=tmp_path)
    paths = [Path(line) for line in output.splitlines()]
    assert len(paths) == 3
    for path in paths:
        assert path.resolve().is_relative_to(installed.root.resolve()), path
        assert not path.resolve().is_relative_to(ROOT), path
    assert paths[1].name == "templates" and (paths[1] / "base.html").is_file()
    assert paths[2].name == "migrations" and (paths[2] / "env.py").is_file()


def test_installed_cli_upgrades_the_database_and_serves_every_page_and_asset(
    installed: Installed, tmp_path: Path, start_server: Callable[..., ServerProcess]
) -> None:
    database = tmp_path / "wheel.db"
    url = f"sqlite+aiosqlite:///{database}"
    installed.run([str(installed.bin / "sentiment"), "db", "upgrade"], cwd=tmp_path, DATABASE_URL=url)
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert connection.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1
    assert set(Base.metadata.tables) | {"alembic_version"} <= tables

    # No auto-migration: the schema the pages read is the one `sentiment db upgrade` made.
    server = start_server(
        {"DATABASE_URL": url, "SENTIMENT_AUTO_MIGRATE": "false", "PYTHONPATH": ""},
        command=[str(installed.bin / "sentiment"), "serve"],
    )
    assets: set[str] = set()
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/", follow_redirects=True).url.path == "/ui"
        for path, word in PAGES.items():
            response = client.get(path)
            assert response.status_code == 200, (path, response.text[:500])
            title = re.search(r"<title>(.*?)</title>", response.text, re.DOTALL)
            assert title, (path, response.text[:500])
            assert "sentiment service" in title[1].lower() and word in title[1].lower(), (path, title[1])
            assets |= set(re.findall(r'(?:src|href)="(/static/[^"]+)"', response.text))
        for path in FRAGMENTS:
            response = client.get(path, headers={"hx-request": "true"})
            assert response.status_code == 200 and response.text.strip(), (path, response.text[:500])
        assert any(a.startswith("/static/vendor/htmx-") for a in assets)
        assert any(a.startswith("/static/vendor/swagger-ui-") for a in assets)
        for asset in sorted(assets):
            response = client.get(asset)
            assert response.status_code == 200 and response.content, asset
        # /docs' start-up script reads the OpenAPI document.
        assert client.get("/schema/openapi.json").json()["info"]["title"]
    assert server.stop() in (0, -signal.SIGTERM)
    assert "Traceback" not in server.log_path.read_text()
