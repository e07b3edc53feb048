"""Sentiment-analysis service: transformer models behind a circuit breaker with VADER fallback."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sentiment")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
