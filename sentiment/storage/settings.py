"""The storage package's settings, kept apart from the writer so that reading settings imports no database
driver."""

from __future__ import annotations

import msgspec

from sentiment.core.bounds import AtLeastOne, Positive


class WriterSettings(msgspec.Struct, frozen=True):
    """Rows per insert, rows and megabytes held while the database is away (beyond either, new ones are
    dropped), and seconds between flushes."""

    batch_size: AtLeastOne = 500
    max_pending: AtLeastOne = 100_000
    max_pending_mb: Positive = 256.0
    flush_interval_s: Positive = 0.2
