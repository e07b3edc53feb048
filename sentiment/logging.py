"""Process-wide log set-up: structlog events and the stdlib loggers of uvicorn and alembic all leave as one
kind of line, JSON in production (`LOG_JSON=true`), readable console lines in development."""

from __future__ import annotations

import logging
import sys

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


def configure_logging(level: str, json: bool) -> None:
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
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
