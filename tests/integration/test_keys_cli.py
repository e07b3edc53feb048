"""`sentiment keys` as its own process, on the database a server would share."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from tests.integration.test_datasets_cli import sentiment


def test_keys_are_created_once_listed_without_the_key_and_revoked_by_prefix(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"}
    created = sentiment(tmp_path, "keys", "create", "data team", "--rate-per-minute", "30", env=env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("sk_") and "not shown again" in created.stderr
    listed = sentiment(tmp_path, "keys", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "data team" in listed.stdout and key[:8] in listed.stdout and "active" in listed.stdout
    assert key not in listed.stdout + listed.stderr
    with sqlite3.connect(tmp_path / "keys.db") as db:
        assert db.execute("SELECT key_hash FROM api_keys").fetchall() == [
            (hashlib.sha256(key.encode()).hexdigest(),)
        ]
    revoked = sentiment(tmp_path, "keys", "revoke", key[:8], env=env)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.startswith("revoked ")
    assert "revoked" in sentiment(tmp_path, "keys", "list", env=env).stdout.splitlines()[1]


def test_keys_refuse_bad_input_in_one_line_with_exit_code_2(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"}
    for args, message in [
        (("create", "  "), "a key needs a name of 1 to 100 characters"),
        (("create", "team", "--rate-per-minute", "0"), "rate_per_minute must be between 1 and"),
        (("revoke", "sk_nothing"), "no API key has the id or prefix 'sk_nothing'"),
    ]:
        done = sentiment(tmp_path, "keys", *args, env=env)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines() == [done.stderr.strip()]
        assert message in done.stderr
