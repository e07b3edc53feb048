"""The log set-up's filter: asyncio's report of SQLAlchemy's abandoned graceful close, and nothing else."""

import logging

from sentiment.logging import AbandonedGracefulClose


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
