"""A data-set chunk the database refuses for its content (issue 14), in-process on SQLite and Postgres: the
rows it refuses on their own are listed by line and left out, the rest of the chunk is stored once, the job
finishes in seconds (a content refusal is not waited out as an outage), and a NUL in a group value past the
upload's first look is stored as U+FFFD.

A NUL can no longer get a row refused, and a group value is cut to its column's length, so the database is
given a rule the rows can break: on Postgres the group column is narrowed (a value too long for it is a data
exception, SQLSTATE 22001, as the NUL was 22021); on SQLite, which does not enforce lengths, a trigger aborts
the insert (an IntegrityError)."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from typing import Any
from uuid import UUID

from litestar.testing import AsyncTestClient
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from sentiment.app import create_app
from sentiment.services.tabular import PROBE_BYTES
from sentiment.storage.database import create_engine, upgrade
from sentiment.storage.tables import PredictionRow
from tests.conftest import in_app
from tests.integration.test_datasets import finished, settings_for, upload

ROWS = 200  # in chunks of 64 (settings_for): rows 1-64, 65-128, 129-192, 193-200
GROUP_FITS = 12  # characters the rule lets a group value have
TOO_LONG = "Virgin America"  # 14
NUL_GROUP = "Delta\x00Air"
# 0-based rows whose group breaks the rule: the first two and the last of the second chunk, one in the third.
REFUSED = (64, 65, 127, 150)
NUL_ROW = 190  # past PROBE_BYTES: a NUL that early refuses the upload
PATIENCE_S = 20.0  # a content refusal retried as an outage took 125 s


def line(row: int) -> int:
    """A row's line in the file, the header being line 1."""
    return row + 2


def text_of(row: int) -> str:
    return f"a fine day number {row}" + " and the sun shines" * 20


def groups_csv(long_group_rows: tuple[int, ...]) -> bytes:
    groups = {row: TOO_LONG for row in long_group_rows} | {NUL_ROW: NUL_GROUP}
    rows = "".join(f"{text_of(i)},{groups.get(i, 'Delta')}\n" for i in range(ROWS))
    content = f"text,group\n{rows}".encode()
    assert content.index(b"\x00") > PROBE_BYTES
    return content


async def refuse_long_groups(url: str, table: str, column: str) -> None:
    """Migrate the database, then make it refuse a value of `table`.`column` longer than GROUP_FITS."""
    await asyncio.to_thread(upgrade, url)
    if make_url(url).get_backend_name() == "sqlite":
        rule = (
            f"CREATE TRIGGER {column}_fits BEFORE INSERT ON {table} WHEN length(NEW.{column}) > {GROUP_FITS} "
            f"BEGIN SELECT RAISE(ABORT, '{column} is longer than {GROUP_FITS}'); END"
        )
    else:
        rule = f"ALTER TABLE {table} ALTER COLUMN {column} TYPE varchar({GROUP_FITS})"
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(rule))
    finally:
        await engine.dispose()


async def stored_groups(client: AsyncTestClient, dataset_id: str) -> list[str | None]:
    async def read() -> list[str | None]:
        async with client.app.state.resources.engine.connect() as connection:
            query = select(PredictionRow.group_name).where(PredictionRow.dataset_id == UUID(dataset_id))
            return list((await connection.scalars(query)).all())

    return in_app(client, read)


async def scored_in_time(client: AsyncTestClient, content: bytes) -> tuple[str, dict[str, Any]]:
    """Upload and score a file; its id and final progress, failing if it takes an outage's patience."""
    started = asyncio.get_running_loop().time()
    response = await upload(client, content, text_column="text", group_column="group", model="vader")
    assert response.status_code == 202, response.text
    dataset_id = response.json()["id"]
    body = await finished(client, dataset_id, timeout_s=PATIENCE_S)
    assert asyncio.get_running_loop().time() - started < PATIENCE_S
    return dataset_id, body


async def test_rows_refused_for_their_content_are_listed_by_line_and_the_rest_of_their_chunk_is_stored(
    database_url: str, tmp_path: Path
) -> None:
    await refuse_long_groups(database_url, "predictions", "group_name")
    async with AsyncTestClient(app=create_app(settings_for(database_url, tmp_path))) as client:
        dataset_id, body = await scored_in_time(client, groups_csv(REFUSED))
        groups = await stored_groups(client, dataset_id)
        report = (await client.get(f"/datasets/{dataset_id}/report")).json()
        export = list(csv.reader(io.StringIO((await client.get(f"/datasets/{dataset_id}/export")).text)))
    kept = ROWS - len(REFUSED)
    assert body["status"] == "done" and body["error"] is None, body
    assert (body["rows_total"], body["rows_done"], body["rows_scored"], body["rows_skipped"]) == (
        ROWS,
        ROWS,
        kept,
        len(REFUSED),
    )
    assert body["problem_count"] == len(REFUSED)
    assert [problem["line"] for problem in body["problems"]] == [line(row) for row in REFUSED]
    assert all(
        problem["reason"].startswith("the database refused to store the row (")
        and problem["reason"].endswith("): scored, but not stored, counted or exported")
        for problem in body["problems"]
    ), body["problems"]
    assert any(note.startswith(f"{len(REFUSED)} rows were scored but refused") for note in body["notes"])
    assert not any("could not be scored" in note for note in body["notes"])
    # Each row once: none of the refused, every other one (the chunks before a refusal not written again).
    assert len(groups) == kept and TOO_LONG not in groups
    assert groups.count("Delta\ufffdAir") == 1 and groups.count("Delta") == kept - 1
    assert sum(report["distribution"].values()) == kept
    assert {group["name"]: group["total"] for group in report["groups"]} == {
        "Delta": kept - 1,
        "Delta\ufffdAir": 1,
    }
    assert len(export) == 1 + kept
    assert {row[0] for row in export[1:]}.isdisjoint(text_of(row) for row in REFUSED)


async def test_a_nul_in_a_group_value_is_stored_as_a_replacement_character_not_refused(
    database_url: str, tmp_path: Path
) -> None:
    async with AsyncTestClient(app=create_app(settings_for(database_url, tmp_path))) as client:
        dataset_id, body = await scored_in_time(client, groups_csv(()))
        groups = await stored_groups(client, dataset_id)
    assert body["status"] == "done" and body["error"] is None, body
    assert (body["rows_scored"], body["rows_skipped"], body["problems"]) == (ROWS, 0, [])
    assert len(groups) == ROWS and groups.count("Delta\ufffdAir") == 1


async def test_a_chunk_refused_for_its_counts_fails_the_job_at_once_and_stores_none_of_that_chunk(
    database_url: str, tmp_path: Path
) -> None:
    """No row of the chunk is refused on its own (the counts are), so there is nothing to leave out: the job
    fails in one line instead of waiting as for an outage, and the chunk's transaction stores none of it."""
    await refuse_long_groups(database_url, "dataset_counts", "key")
    async with AsyncTestClient(app=create_app(settings_for(database_url, tmp_path))) as client:
        dataset_id, body = await scored_in_time(client, groups_csv((REFUSED[0],)))
        groups = await stored_groups(client, dataset_id)
    assert body["status"] == "failed", body
    assert body["error"].startswith("the database refused the rows for their content (")
    assert body["error"].endswith("); the service's log has the details")
    assert (body["rows_done"], len(groups)) == (64, 64)  # the first chunk, stored before the refusal
