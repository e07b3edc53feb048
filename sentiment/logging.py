"""Process-wide log set-up: structlog events and the stdlib loggers of uvicorn and alembic all leave as one
kind of line, JSON in production (`LOG_JSON=true`, tracebacks in an `exception` field), readable console lines
in development. structlog's own events (an access-log line per request among them) are rendered and written
by structlog itself: a stdlib record, handler and formatter per line cost twice the rendering."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

_SHARED: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


class AbandonedGracefulClose(logging.Filter):
    """SQLAlchemy closes an aiosqlite connection whose query was cancelled (a client that left mid-request)
    in a shielded task, then gives up on it and closes it by force; asyncio reports the abandoned task as an
    error when it is collected. Nothing is lost or left open: the line is not a fault to page anyone about."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "_terminate_graceful_close" not in record.getMessage()


class NamedWriteLogger(structlog.WriteLogger):
    """structlog's line writer, with the name the logger was asked for (the `logger` field)."""

    def __init__(self, name: str, file: TextIO) -> None:
        super().__init__(file)
        self.name = name


def configure_logging(level: str, json: bool) -> None:
    rendering: list[structlog.typing.Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if json
        else [structlog.dev.ConsoleRenderer(colors=False)]
    )
    stream = sys.stderr

    def writer(*args: Any) -> NamedWriteLogger:
        return NamedWriteLogger(str(args[0]) if args else "", stream)

    structlog.configure(
        processors=[*_SHARED, *rendering],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=writer,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # Alembic narrates every plugin it sets up; its warnings and errors still come through.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # Noise at every model load, not faults: torchao (which transformers imports when it is installed) reports
    # its optional GPU kernels and Triton missing on a CPU machine, and torch deprecates an API torchao calls.
    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
    asyncio_log = logging.getLogger("asyncio")
    if not any(isinstance(f, AbandonedGracefulClose) for f in asyncio_log.filters):
        asyncio_log.addFilter(AbandonedGracefulClose())
