"""A data set's export while a run of its job writes it, kept in step with the chunks stored, so that a job
stopped at any moment and resumed exports each row once.

A chunk's scored rows are appended and synced to disk before the transaction that stores the chunk, and that
transaction records which run's file holds them and its size after them. Whatever the moment the process
stopped, that file then holds at least what the last chunk stored says. A resumed run starts a file of its
own with the first that-many bytes of it (leaving out the rows of a chunk appended but never stored) and
appends from there, after the input rows that chunk had consumed. Each run writes its own file, so a run taken
for dead that still appends one last chunk before it learns it lost the data set writes into a file nobody
reads.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import IO, NamedTuple
from uuid import UUID

from sentiment.core.domain import Scored, SentimentError
from sentiment.services.tabular import Row, ScoredWriter


class ExportLost(SentimentError):
    """The rows a stopped job had exported are not (all) in the data folder: it cannot go on without them."""

    def __init__(self) -> None:
        super().__init__(
            "the rows scored before the job stopped are missing from its export file, so it cannot resume: "
            "with several replicas SENTIMENT_DATA_DIR must be a folder they share; upload the file again"
        )


class ResumePoint(NamedTuple):
    """Where a run goes on: after `rows` input rows (problem rows included), with the first `export_bytes`
    of the file `export_run` wrote (None: no chunk was stored, the export starts afresh)."""

    rows: int
    export_bytes: int | None
    export_run: UUID | None


FRESH = ResumePoint(0, None, None)


def resume_point(rows_done: int, export_bytes: int | None, export_run: UUID | None) -> ResumePoint:
    """Where a job goes on from what its last stored chunk recorded. Every chunk records its export with its
    rows, so rows without one mean the export cannot be trusted (ExportLost)."""
    if export_bytes is None or export_run is None:
        if rows_done:
            raise ExportLost()
        return FRESH
    return ResumePoint(rows_done, export_bytes, export_run)


class PartialExport:
    """The export a run writes, as CSV with cells neutralised against formula injection. Its methods block on
    the disk: call them in a thread."""

    def __init__(
        self, path: Path, columns: Sequence[str], labels: Sequence[str], kept: tuple[Path, int] | None
    ) -> None:
        """Start the run's file: with the header, or with the first bytes of an earlier run's file (`kept`:
        its path and how many bytes), ExportLost (and no file started) when that one is missing or shorter."""
        self._text = io.StringIO()
        self._writer = ScoredWriter(self._text, columns, labels, for_spreadsheets=True)
        header = self._encoded()
        if kept is None:
            self._file: IO[bytes] = path.open("wb")
            self._file.write(header)
            self.size = len(header)
        else:
            earlier_path, size = kept
            with _holding(earlier_path, size) as earlier:
                self._file = path.open("wb")
                shutil.copyfileobj(earlier, self._file)
            self.cut(size)

    def _encoded(self) -> bytes:
        data = self._text.getvalue().encode("utf-8")
        self._text.seek(0)
        self._text.truncate()
        return data

    def append(self, rows: Sequence[Row], scored: Sequence[Scored]) -> int:
        """Append the rows and sync the file to disk, before the chunk that holds them is stored; its size
        after them, to store with that chunk."""
        self._writer.write(rows, scored)
        self._file.write(self._encoded())
        self._file.flush()
        os.fsync(self._file.fileno())
        self.size = self._file.tell()
        return self.size

    def cut(self, size: int) -> None:
        """Drop what follows the first `size` bytes (rows appended for a chunk that was not stored)."""
        self._file.truncate(size)
        self._file.seek(size)
        self.size = size

    def close(self) -> None:
        self._file.close()


def _holding(path: Path, size: int) -> IO[bytes]:
    """An earlier run's file, open to read, once it is found to hold at least `size` bytes (ExportLost when it
    is missing or shorter)."""
    try:
        earlier = path.open("rb")
    except FileNotFoundError:
        raise ExportLost() from None
    if os.fstat(earlier.fileno()).st_size < size:
        earlier.close()
        raise ExportLost()
    return earlier
