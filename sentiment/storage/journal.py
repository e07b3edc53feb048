"""A local, append-only journal of answered predictions. A prediction is on disk (fsynced, in groups shared by
the requests that arrive together) before its 200 leaves, and stays there until the database has it: a crash
loses nothing, and a database outage costs disk, within a budget, instead of memory.

Each process writes into a folder of its own under the journal root, holding an exclusive lock on it. At start
it adopts the folders of processes that are gone (their lock is free: a `kill -9`, a crashed pod sharing the
volume), so that their rows are written by whoever starts next.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import secrets
import socket
import struct
import tempfile
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import msgspec
import structlog

from sentiment.core.domain import Prediction

log = structlog.get_logger(__name__)

# Each record: payload length, CRC-32 of the payload, rows in it; then the rows as MessagePack.
RECORD_HEADER = struct.Struct("<III")
SEGMENT_SUFFIX = ".seg"
# Most bytes read back at once: what waits for the database is on disk, and memory holds one batch of it.
READ_BYTES = 2 * 1024 * 1024
LOCK_NAME = "lock"


class JournalFailed(OSError):
    """The journal could not make rows durable (a full or failing disk): nothing may be answered 200."""


@dataclass
class Segment:
    number: int
    path: Path
    size: int  # bytes on disk that are durable
    rows: int
    # Written by a process before this one: rows in it may already be in the database.
    inherited: bool = False
    consumed_rows: int = 0


@dataclass(frozen=True)
class Position:
    """Where the reader is: a segment and a byte offset in it."""

    segment: int
    offset: int


@dataclass(frozen=True)
class JournalBatch:
    rows: list[Prediction]
    end: Position
    bytes: int
    inherited: bool
    lost_rows: int = 0  # past a record the disk damaged: counted as gone, logged
    end_of_journal: bool = False  # it holds every durable row there was when it was read


class Journal:
    """Appends rows durably (`append`), hands them back in order (`read`) and forgets them once the database
    has them (`advance`). Appends happen on the event loop; the disk work runs on a thread."""

    def __init__(self, root: Path, segment_bytes: int = 8 * 1024 * 1024) -> None:
        self._root = root
        self._segment_bytes = segment_bytes
        self._folder = root / f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._lock: BinaryIO | None = None
        self._segments: deque[Segment] = deque()
        self._file: BinaryIO | None = None
        self._reader = Position(0, 0)
        self._waiting: list[bytes] = []
        self._waiting_rows = 0
        self._group: asyncio.Future[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(list[Prediction])
        self.arrived = asyncio.Event()  # set whenever rows become durable
        self.durable_rows = 0
        self.durable_bytes = 0
        self.consumed_rows = 0
        self.consumed_bytes = 0
        self.failure: str | None = None

    @property
    def folder(self) -> Path:
        return self._folder

    @property
    def backlog_rows(self) -> int:
        return self.durable_rows - self.consumed_rows

    @property
    def backlog_bytes(self) -> int:
        return self.durable_bytes - self.consumed_bytes

    def open(self) -> None:
        """Take a folder of one's own, adopt the rows of processes that are gone, open a new segment."""
        self._root.mkdir(parents=True, exist_ok=True)
        self._folder.mkdir()
        self._lock = _locked(self._folder / LOCK_NAME)
        if self._lock is None:  # pragma: no cover - a fresh random name cannot be held by anyone else
            raise JournalFailed(f"journal folder {self._folder} is locked by another process")
        number = 0
        for orphan in sorted(self._root.iterdir()):
            if orphan == self._folder or not orphan.is_dir():
                continue
            lock = _locked(orphan / LOCK_NAME)
            if lock is None:
                continue  # a live process's own journal
            try:
                for path in sorted(orphan.glob(f"*{SEGMENT_SUFFIX}")):
                    number += 1
                    adopted = self._folder / f"{number:012d}{SEGMENT_SUFFIX}"
                    os.replace(path, adopted)
                    size, rows = _recover(adopted)
                    self._segments.append(Segment(number, adopted, size, rows, inherited=True))
                    self.durable_rows += rows
                    self.durable_bytes += size
                (orphan / LOCK_NAME).unlink(missing_ok=True)
                orphan.rmdir()
            finally:
                lock.close()
        if self.durable_rows:
            log.warning(
                "journal_rows_adopted",
                rows=self.durable_rows,
                bytes=self.durable_bytes,
                segments=len(self._segments),
            )
        self._reader = Position(self._segments[0].number if self._segments else number + 1, 0)
        self._start_segment(number + 1)
        _sync_folder(self._folder)

    def close(self) -> None:
        """Release the folder; remove it when the database has every row, else leave it for the next start."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._lock is None:
            return
        if self.backlog_rows == 0:
            for segment in self._segments:
                segment.path.unlink(missing_ok=True)
            (self._folder / LOCK_NAME).unlink(missing_ok=True)
            self._folder.rmdir()
        else:
            log.warning("journal_kept_for_next_start", rows=self.backlog_rows, folder=str(self._folder))
        self._lock.close()
        self._lock = None

    async def append(self, rows: Sequence[Prediction]) -> None:
        """Return once the rows are durable. Requests arriving while a group is being synced form the next
        group: one write and one fsync for all of them."""
        payload = self._encoder.encode(rows)
        self._waiting.append(RECORD_HEADER.pack(len(payload), zlib.crc32(payload), len(rows)) + payload)
        self._waiting_rows += len(rows)
        if self._group is None:
            self._group = asyncio.get_running_loop().create_future()
        group = self._group
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="journal-flush")
        # Shielded: a request cancelled while waiting does not take its rows' group down with it.
        await asyncio.shield(group)

    async def settled(self) -> None:
        """Wait for the appends under way (at shutdown, before the journal closes)."""
        if self._flusher is not None:
            await self._flusher

    async def _flush(self) -> None:
        while self._waiting:
            records, rows, group = self._waiting, self._waiting_rows, self._group
            self._waiting, self._waiting_rows, self._group = [], 0, None
            assert group is not None and self._file is not None
            data = b"".join(records)
            try:
                await asyncio.to_thread(_write_durably, self._file, data)
            except OSError as error:
                self.failure = f"{type(error).__name__}: {error.strerror or error}"
                log.error("journal_append_failed", rows=rows, error=self.failure, folder=str(self._folder))
                group.set_exception(JournalFailed(f"the prediction journal cannot write: {self.failure}"))
                group.exception()  # retrieved: every waiter may have gone
                continue
            self.failure = None
            segment = self._segments[-1]
            segment.size += len(data)
            segment.rows += rows
            self.durable_rows += rows
            self.durable_bytes += len(data)
            group.set_result(None)
            self.arrived.set()
            if segment.size >= self._segment_bytes:
                self._file.close()
                self._start_segment(segment.number + 1)

    def read(self, max_rows: int, max_bytes: int = READ_BYTES) -> JournalBatch | None:
        """The next durable records after the reader's position, whole, until `max_rows` or `max_bytes` is
        reached: None when the database has everything. Blocking file reads: call it on a thread."""
        rows: list[Prediction] = []
        position = self._reader
        for segment in list(self._segments):  # a batch never spans segments: inherited rows are told apart
            if segment.number < position.segment:
                continue
            if segment.number > position.segment:
                position = Position(segment.number, 0)
            end = segment.size
            if position.offset >= end:
                continue
            lost = 0
            with segment.path.open("rb") as file:
                file.seek(position.offset)
                offset = position.offset
                while offset < end and len(rows) < max_rows and offset - position.offset < max_bytes:
                    length, checksum, _ = RECORD_HEADER.unpack(file.read(RECORD_HEADER.size))
                    payload = file.read(length)
                    if zlib.crc32(payload) != checksum:  # the disk damaged it: the rest cannot be framed
                        lost = segment.rows - segment.consumed_rows - len(rows)
                        log.error(
                            "journal_record_corrupt", segment=str(segment.path), offset=offset, lost_rows=lost
                        )
                        offset = end
                        break
                    rows.extend(self._decoder.decode(payload))
                    offset += RECORD_HEADER.size + length
            size = offset - position.offset
            at_end = offset >= end and segment is self._segments[-1]
            return JournalBatch(rows, Position(segment.number, offset), size, segment.inherited, lost, at_end)
        return None

    def advance(self, batch: JournalBatch) -> None:
        """The database has the batch: move past it and delete the segments left behind."""
        self._reader = batch.end
        self.consumed_rows += len(batch.rows) + batch.lost_rows
        self.consumed_bytes += batch.bytes
        for segment in self._segments:
            if segment.number == batch.end.segment:
                segment.consumed_rows += len(batch.rows) + batch.lost_rows
        while len(self._segments) > 1:
            oldest = self._segments[0]
            if oldest.number > batch.end.segment or (
                oldest.number == batch.end.segment and batch.end.offset < oldest.size
            ):
                break
            self._segments.popleft()
            oldest.path.unlink(missing_ok=True)

    def _start_segment(self, number: int) -> None:
        path = self._folder / f"{number:012d}{SEGMENT_SUFFIX}"
        self._file = path.open("ab", buffering=0)
        self._segments.append(Segment(number, path, 0, 0))


def unwritable(root: Path) -> str | None:
    """Why the journal cannot live under `root` (checked before serving, to say so in one line), or None."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as error:
        return f"cannot be written: {error.strerror or error}"
    return None


def _write_durably(file: BinaryIO, data: bytes) -> None:
    """Write and fdatasync; on failure cut the file back, so that a torn record never precedes good ones."""
    start = file.tell()
    view = memoryview(data)
    try:
        while view:  # an unbuffered write may take only part (the last bytes before the disk is full)
            view = view[file.write(view) or 0 :]
        os.fdatasync(file.fileno())
    except OSError:
        os.ftruncate(file.fileno(), start)
        file.seek(start)
        raise


def _recover(path: Path) -> tuple[int, int]:
    """Size and rows of the whole records in a segment left by a process that died: a record it was writing
    when it died (never acknowledged) is cut off."""
    size = rows = 0
    with path.open("r+b") as file:
        while True:
            header = file.read(RECORD_HEADER.size)
            if len(header) < RECORD_HEADER.size:
                break
            length, checksum, count = RECORD_HEADER.unpack(header)
            payload = file.read(length)
            if len(payload) < length or zlib.crc32(payload) != checksum:
                break
            size += RECORD_HEADER.size + length
            rows += count
        if file.seek(0, os.SEEK_END) != size:
            log.warning("journal_torn_record_cut", segment=str(path), kept_bytes=size)
            file.truncate(size)
    return size, rows


def _locked(path: Path) -> BinaryIO | None:
    """The lock file, held exclusively, or None when another process holds it (it is alive)."""
    file = path.open("ab")
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.close()
        return None
    return file


def _sync_folder(folder: Path) -> None:
    """Make the folder's new entries (renamed segments, the new one) survive a power cut."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
