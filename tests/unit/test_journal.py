"""The prediction journal: durable appends in groups, reading back in order, forgetting what the database has,
adopting what a dead process left, and refusing (not pretending) when the disk is full."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from uuid_utils.compat import uuid7

from sentiment.core.domain import Prediction
from sentiment.storage.journal import RECORD_HEADER, Journal, JournalFailed


def row(text: str) -> Prediction:
    return Prediction(
        id=uuid7(),
        text=text,
        sentiment="positive",
        confidence=0.9,
        scores={"negative": 0.1, "positive": 0.9},
        model_requested="vader",
        model_used="vader",
        fallback_used=False,
        processing_time_ms=1.0,
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        group="g",
    )


@pytest.fixture
def journals() -> Iterator[list[Journal]]:
    """Journals a test opens, closed after it (as a process's end would)."""
    opened: list[Journal] = []
    yield opened
    for journal in opened:
        journal.close()


def opened(journals: list[Journal], root: Path, segment_bytes: int = 8 << 20) -> Journal:
    journal = Journal(root, segment_bytes)
    journal.open()
    journals.append(journal)
    return journal


def read_all(journal: Journal, max_rows: int = 1000) -> list[Prediction]:
    rows: list[Prediction] = []
    while (batch := journal.read(max_rows)) is not None:
        rows.extend(batch.rows)
        journal.advance(batch)
    return rows


async def test_rows_come_back_in_order_in_whole_records_and_the_folder_goes_when_all_are_stored(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path)
    journal.open()
    first, second = [row("a"), row("b")], [row("c")]
    await asyncio.gather(journal.append(first), journal.append(second))
    assert (journal.durable_rows, journal.backlog_rows) == (3, 3)
    batch = journal.read(max_rows=1)  # whole records: a record is never split
    assert batch is not None and batch.rows == first and not batch.inherited
    assert not batch.end_of_journal  # the writer reads on at once: it is behind
    journal.advance(batch)
    assert journal.backlog_rows == 1
    last = journal.read(max_rows=10)
    assert last is not None and last.rows == second and last.end_of_journal  # caught up: it may wait
    journal.advance(last)
    assert journal.read(10) is None and journal.backlog_bytes == 0
    journal.close()
    assert list(tmp_path.iterdir()) == []


async def test_concurrent_appends_share_one_write_and_one_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, journals: list[Journal]
) -> None:
    syncs = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (syncs.append(fd), real(fd)))
    journal = opened(journals, tmp_path)
    await journal.append([row("warm-up")])
    syncs.clear()
    await asyncio.gather(*(journal.append([row(f"t{i}")]) for i in range(50)))
    # All fifty arrive before the first group is synced: one write, one sync.
    assert len(syncs) == 1
    assert len(read_all(journal)) == 51


async def test_full_segments_are_rotated_and_deleted_once_read_past(
    tmp_path: Path, journals: list[Journal]
) -> None:
    journal = opened(journals, tmp_path, segment_bytes=400)
    for i in range(6):
        await journal.append([row("x" * 300 + str(i))])
    segments = sorted(journal.folder.glob("*.seg"))
    assert len(segments) == 7  # one record each, then a new empty one
    rows = read_all(journal)
    assert [r.text[-1] for r in rows] == list("012345")
    assert sorted(journal.folder.glob("*.seg")) == segments[-1:]


async def test_a_new_process_adopts_the_rows_of_a_dead_one_and_cuts_a_torn_record(tmp_path: Path) -> None:
    dead = Journal(tmp_path)
    dead.open()
    kept = [row("one"), row("two")]
    await dead.append(kept)
    await dead.append([row("three")])
    segment = min(dead.folder.glob("*.seg"))
    # Dies mid-write of a fourth record (header and half a payload on disk), without closing.
    with segment.open("ab") as file:
        file.write(RECORD_HEADER.pack(100, 0, 1) + b"x" * 50)
    dead._lock.close()  # type: ignore[union-attr]  # what the kernel does when the process dies
    dead._file.close()  # type: ignore[union-attr]
    heir = Journal(tmp_path)
    heir.open()
    assert heir.backlog_rows == 3
    batch = heir.read(1000)
    assert batch is not None and batch.inherited
    assert batch.rows[:2] == kept and [r.text for r in batch.rows] == ["one", "two", "three"]
    heir.advance(batch)
    await heir.append([row("four")])
    after = heir.read(1000)
    assert after is not None and not after.inherited and [r.text for r in after.rows] == ["four"]
    heir.advance(after)
    heir.close()
    assert list(tmp_path.iterdir()) == []


HOLD_A_JOURNAL = """
import sys, time
from pathlib import Path
from sentiment.storage.journal import Journal
journal = Journal(Path(sys.argv[1]))
journal.open()
print("open", flush=True)
time.sleep(60)
"""


def test_the_journal_of_a_live_process_is_left_alone(tmp_path: Path, journals: list[Journal]) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOLD_A_JOURNAL,
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        other = opened(journals, tmp_path)
        assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2
    finally:
        holder.kill()
        holder.communicate()
    heir = opened(journals, tmp_path)  # the holder is gone: its (empty) folder is adopted and removed
    assert {p for p in tmp_path.iterdir()} == {heir.folder, other.folder}


async def test_a_record_the_disk_damaged_costs_the_rest_of_its_segment_not_the_writer(
    tmp_path: Path, journals: list[Journal]
) -> None:
    journal = opened(journals, tmp_path)
    for text in ("first", "second", "third"):
        await journal.append([row(text)])
    segment = min(journal.folder.glob("*.seg"))
    data = bytearray(segment.read_bytes())
    second_record = len(data) // 3 + RECORD_HEADER.size + 10
    data[second_record] ^= 0xFF
    segment.write_bytes(bytes(data))
    batch = journal.read(1000)
    assert batch is not None and [r.text for r in batch.rows] == ["first"] and batch.lost_rows == 2
    journal.advance(batch)
    assert journal.backlog_rows == 0 and journal.read(1000) is None
    await journal.append([row("after")])
    assert [r.text for r in read_all(journal)] == ["after"]


async def test_rows_kept_at_close_are_written_by_the_next_start(
    tmp_path: Path, journals: list[Journal]
) -> None:
    journal = Journal(tmp_path)
    journal.open()
    await journal.append([row("waiting")])
    journal.close()  # the database never took it
    heir = opened(journals, tmp_path)
    assert [r.text for r in read_all(heir)] == ["waiting"]


async def test_a_full_disk_refuses_the_rows_and_leaves_no_torn_record(
    tiny_filesystem: Path, journals: list[Journal]
) -> None:
    journal = opened(journals, tiny_filesystem)
    await journal.append([row("fits")])
    with pytest.raises(JournalFailed, match="cannot write"):
        await journal.append([row("y" * 200_000)])
    assert journal.failure is not None and "No space left" in journal.failure
    assert journal.durable_rows == 1
    rows = read_all(journal)  # the good record is whole, the failed one left nothing behind
    assert [r.text for r in rows] == ["fits"]
    await journal.append([row("after")])  # room again (the big one is gone): writes resume
    assert journal.failure is None
    assert [r.text for r in read_all(journal)] == ["after"]
