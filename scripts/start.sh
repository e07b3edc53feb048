#!/usr/bin/env bash
# Install the service into .venv (first run only) and start it on http://127.0.0.1:8080.
# Serves ../shared/models/minilm-tweets3 (3-class) with minilm-sst2 beside it when those folders exist, VADER
# otherwise; PRELOAD_MODEL / SENTIMENT_MODELS set by you win. Extra arguments go to `sentiment serve` (e.g. --port 9000).
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

# The 3-class social-media model answers by default (a binary model calls "meh, it was ok I guess" positive and
# leaves every neutral share at 0%); the binary SST-2 model is catalogued beside it, loaded on first use.
models=../shared/models
if [ -z "${PRELOAD_MODEL:-}" ] && [ -z "${SENTIMENT_MODELS:-}" ]; then
    catalogue=()
    for key in minilm-tweets3 minilm-sst2; do
        [ -d "$models/$key" ] && catalogue+=("$key=$models/$key")
    done
    if [ ${#catalogue[@]} -gt 0 ]; then
        SENTIMENT_MODELS="$(IFS=,; echo "${catalogue[*]}")"
        export SENTIMENT_MODELS PRELOAD_MODEL="${catalogue[0]%%=*}"
    fi
fi
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
exec .venv/bin/sentiment serve "$@"
