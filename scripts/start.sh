#!/usr/bin/env bash
# Install the service into .venv (first run only) and start it on http://127.0.0.1:8080.
# Serves the reference model ../shared/models/minilm-sst2 when that folder exists, VADER otherwise;
# PRELOAD_MODEL / SENTIMENT_MODELS set by you win. Extra arguments go to `sentiment serve` (e.g. --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."

# Installs again whenever pyproject.toml changed since the last install (new or updated dependencies).
stamp=.venv/.installed-pyproject
if [ ! -x .venv/bin/sentiment ] || ! cmp -s pyproject.toml "$stamp"; then
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/pip install --quiet --upgrade pip
    .venv/bin/pip install --quiet -e .
    cp pyproject.toml "$stamp"
fi

reference=../shared/models/minilm-sst2
if [ -z "${PRELOAD_MODEL:-}" ] && [ -z "${SENTIMENT_MODELS:-}" ] && [ -d "$reference" ]; then
    export SENTIMENT_MODELS="minilm-sst2=$reference" PRELOAD_MODEL=minilm-sst2
fi
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
exec .venv/bin/sentiment serve "$@"
