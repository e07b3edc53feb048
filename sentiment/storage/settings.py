"""The storage package's settings, kept apart from the writer so that reading settings imports no database
driver."""

from __future__ import annotations

import msgspec

from sentiment.core.bounds import AtLeastOne, Positive


class WriterSettings(msgspec.Struct, frozen=True):
    """Rows per insert and seconds between inserts; where the journal of answered predictions lives, and how
    many rows and megabytes of it may wait for the database (beyond either, predictions get 503)."""

    batch_size: AtLeastOne = 2000  # bench/write_rate.py: Postgres gains 25-60% over 500, SQLite levels off
    max_pending: AtLeastOne = 1_000_000
    journal_dir: str = "./journal"
    journal_mb: Positive = 1024.0
    flush_interval_s: Positive = 0.2
