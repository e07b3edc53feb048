#!/usr/bin/env bash
# Run the test suite: installs the test dependencies into .venv (and chromium for the browser tests), makes sure
# PostgreSQL answers, lints the Dockerfile and the code (ruff, mypy, import contracts), runs pytest.
# Arguments go to pytest, e.g. `scripts/test.sh -m unit` or `scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --upgrade pip
fi
.venv/bin/pip install --quiet -e '.[test]'

# The storage tests run against SQLite and the local PostgreSQL (127.0.0.1:5432, trust auth).
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
    for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

# Browser tests drive Debian's chromium through playwright (never `playwright install`).
# Another apt (an unattended upgrade) may hold its lock: wait for it, up to five minutes, and say so.
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing chromium for the browser tests (waits up to 300 s if another apt holds the lock)" >&2
    apt-get -o DPkg::Lock::Timeout=300 update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq chromium >/dev/null
fi

# The Dockerfile cannot be built here (no Docker engine): it is linted instead.
.venv/bin/hadolint Dockerfile

# The code gates: lint, format, types, and the direction of imports (contracts in pyproject.toml).
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .
.venv/bin/mypy
.venv/bin/lint-imports --no-cache

# Model hubs are unreachable here: fail at once rather than retrying.
export HF_HUB_OFFLINE=1
exec .venv/bin/pytest "$@"
