"""The log set-up: one kind of line from structlog and the stdlib, tracebacks in JSON, and the filter of
asyncio's report of SQLAlchemy's abandoned graceful close (and nothing else)."""

import io
import json
import logging
import sys

import pytest
import structlog

from sentiment.logging import AbandonedGracefulClose, configure_logging


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, message, None, None)


def test_only_the_abandoned_graceful_close_of_a_cancelled_sqlite_query_is_dropped() -> None:
    drop = AbandonedGracefulClose()
    abandoned = (
        "Task was destroyed but it is pending!\ntask: <Task pending name='Task-86' coro="
        "<AsyncAdapt_aiosqlite_connection._terminate_graceful_close() done, defined at .../aiosqlite.py:239>>"
    )
    assert not drop.filter(record(abandoned))
    assert drop.filter(record("Task was destroyed but it is pending!\ntask: <Task pending coro=<work()>>"))
    assert drop.filter(record("Exception in callback Handle._run()"))


def test_json_lines_carry_the_traceback_and_the_level_drops_what_is_below_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    handlers, level = root.handlers, root.level
    try:
        configure_logging("INFO", json=True)
        log = structlog.get_logger("sentiment.test")
        log.debug("hidden")
        with structlog.contextvars.bound_contextvars(request_id="r-1"):
            try:
                raise ZeroDivisionError("division by zero")
            except ZeroDivisionError as error:
                log.error("unhandled_error", path="/x", exc_info=error)
        logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    finally:
        structlog.reset_defaults()
        root.handlers, root.level = handlers, level
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["unhandled_error", "Started server process [42]"]
    error_line, uvicorn_line = lines
    assert (error_line["logger"], error_line["level"], error_line["request_id"]) == (
        "sentiment.test",
        "error",
        "r-1",
    )
    assert error_line["exception"].startswith("Traceback") and "ZeroDivisionError" in error_line["exception"]
    assert (uvicorn_line["logger"], uvicorn_line["level"]) == ("uvicorn.error", "info")
