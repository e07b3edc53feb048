"""What a stopped data-set job goes on from: where it resumes in the file and in its export, and the tallies
it kept, restored exactly as the last stored chunk left them."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from uuid_utils.compat import uuid7

from sentiment.core.domain import Scored
from sentiment.core.evaluation import Confusion
from sentiment.services.datasets import JobTally, confusion_from
from sentiment.services.partial_export import FRESH, ExportLost, PartialExport, ResumePoint, resume_point
from sentiment.services.tabular import Row
from sentiment.storage.datasets import Dataset

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
COLUMNS = ["text", "group"]
LABELS = ("negative", "neutral", "positive")


def scored(label: str) -> Scored:
    return Scored(label, 0.5, {name: 0.5 if name == label else 0.25 for name in LABELS})  # type: ignore[arg-type]


def rows(*texts: str) -> list[Row]:
    return [Row(line, [text, "United"]) for line, text in enumerate(texts, start=2)]


def a_dataset(**stored: object) -> Dataset:
    base = Dataset(uuid7(), "data.csv", "scoring", NOW, 100, COLUMNS)
    return msgspec.structs.replace(base, **stored)


def test_a_job_that_stored_no_chunk_starts_afresh() -> None:
    assert resume_point(0, None, None) == FRESH == ResumePoint(0, None, None)


def test_a_job_goes_on_after_the_rows_and_the_export_bytes_its_last_chunk_stored() -> None:
    run = uuid7()
    assert resume_point(192, 4_096, run) == ResumePoint(192, 4_096, run)


def test_rows_stored_without_their_export_cannot_be_resumed() -> None:
    with pytest.raises(ExportLost, match="cannot resume"):
        resume_point(64, None, None)


def test_the_tallies_come_back_exactly_as_the_last_chunk_stored_them() -> None:
    tally = JobTally()
    tally.rows_done, tally.rows_scored, tally.rows_skipped, tally.refused = 130, 120, 10, 2
    tally.rate, tally.untimed, tally.no_gold = 12.5, 3, 4
    tally.problem(7, "the text ('text') is empty")
    tally.problem(9, "3 fields where the header has 2")
    matrix = Confusion()
    matrix.add("negative", "positive", 5)
    confusion = {"vader": matrix, "minilm-sst2": Confusion()}

    progress = tally.progress(confusion, NOW)
    # Stored and read back as JSON, as the database does.
    stored = msgspec.json.decode(msgspec.json.encode(a_dataset(**progress)), type=Dataset)
    restored = JobTally.resumed(stored)

    assert vars(restored) == vars(tally)
    assert confusion_from(stored.confusion, ["vader", "minilm-sst2"]) == confusion


def test_restored_tallies_are_copies_that_leave_the_stored_record_alone() -> None:
    stored = a_dataset(problems=[[7, "empty"]], confusion={"vader": [[1, 0, 0], [0, 0, 0], [0, 0, 0]]})
    restored, matrices = JobTally.resumed(stored), confusion_from(stored.confusion, ["vader"])
    restored.problem(8, "empty")
    matrices["vader"].add("negative", "negative")
    assert stored.problems == [[7, "empty"]]
    assert stored.confusion["vader"][0][0] == 1


def test_a_record_from_before_tallies_were_stored_restores_them_as_zero() -> None:
    restored = JobTally.resumed(a_dataset(rows_done=64, rows_scored=64, tally=None, rate=None))
    assert (restored.rows_done, restored.refused, restored.untimed, restored.no_gold) == (64, 0, 0, 0)
    assert restored.rate == 0.0


def test_confusion_starts_empty_for_a_model_with_none_stored_and_drops_models_not_compared() -> None:
    stored = {"vader": [[2, 0, 0], [0, 1, 0], [0, 0, 3]]}
    assert confusion_from(stored, ["minilm-sst2", "vader"]) == {
        "minilm-sst2": Confusion(),
        "vader": Confusion([[2, 0, 0], [0, 1, 0], [0, 0, 3]]),
    }
    assert confusion_from(stored, []) == {}


def read_csv(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_a_new_export_starts_with_its_header_and_reports_its_size_after_each_append(tmp_path: Path) -> None:
    path = tmp_path / "first.part"
    export = PartialExport(path, COLUMNS, LABELS, None)
    header_size = export.size
    size = export.append(rows("great", "=1+1"), [scored("positive"), scored("neutral")])
    export.close()
    assert header_size == len(b"text,group,label,confidence,score_negative,score_neutral,score_positive\r\n")
    assert size == path.stat().st_size == export.size
    assert [row[:3] for row in read_csv(path)] == [
        ["text", "group", "label"],
        ["great", "United", "positive"],
        ["'=1+1", "United", "neutral"],  # neutralised for spreadsheets, as every export is
    ]


def test_rows_appended_for_a_chunk_that_was_not_stored_are_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "first.part"
    export = PartialExport(path, COLUMNS, LABELS, None)
    stored = export.append(rows("great"), [scored("positive")])
    export.append(rows("awful"), [scored("negative")])
    export.cut(stored)
    export.append(rows("fine"), [scored("neutral")])
    export.close()
    assert [row[0] for row in read_csv(path)] == ["text", "great", "fine"]


def test_a_resumed_export_keeps_the_stored_bytes_of_the_earlier_one_and_goes_on_in_a_file_of_its_own(
    tmp_path: Path,
) -> None:
    earlier_path = tmp_path / "earlier.part"
    earlier = PartialExport(earlier_path, COLUMNS, LABELS, None)
    stored = earlier.append(rows("great", "awful"), [scored("positive"), scored("negative")])
    earlier.append(rows("never stored"), [scored("neutral")])  # the process stopped before its transaction
    earlier.close()

    path = tmp_path / "resumed.part"
    resumed = PartialExport(path, COLUMNS, LABELS, (earlier_path, stored))
    assert resumed.size == stored
    resumed.append(rows("fine"), [scored("neutral")])
    resumed.close()
    # A run taken for dead that still appends writes into its own file, not this one.
    with earlier_path.open("ab") as zombie:
        zombie.write(b"late,United,positive,0.5,0.25,0.25,0.5\r\n")
    assert [row[0] for row in read_csv(path)] == ["text", "great", "awful", "fine"]


@pytest.mark.parametrize("earlier", ["missing", "shorter"])
def test_an_export_missing_the_stored_bytes_cannot_be_resumed(tmp_path: Path, earlier: str) -> None:
    earlier_path = tmp_path / "earlier.part"
    if earlier == "shorter":
        earlier_path.write_bytes(b"text,group\r\n")
    with pytest.raises(ExportLost, match="SENTIMENT_DATA_DIR must be a folder they share"):
        PartialExport(tmp_path / "resumed.part", COLUMNS, LABELS, (earlier_path, 4_096))
    assert not (tmp_path / "resumed.part").exists()
