"""The data folder's bounds: the quota on what uploads and scored files hold, the disk's spare room, and which
never-started uploads expire."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from uuid_utils.compat import uuid7

from sentiment.core.domain import StorageFull
from sentiment.services.datasets import expired_uploads
from sentiment.services.quota import MB, DiskQuota, size_text
from sentiment.settings import Settings, SettingsError
from sentiment.storage.datasets import Dataset, DatasetStatus

PLENTY = 10**12


def free(size: int) -> Callable[[Path], int]:
    return lambda _folder: size


@pytest.mark.parametrize(
    ("size", "text"),
    [(512, "0.5 KB"), (16 * 1024, "16 KB"), (1536 * 1024, "1.5 MB"), (2048 * MB, "2,048 MB")],
)
def test_sizes_read_as_kb_or_mb(size: int, text: str) -> None:
    assert size_text(size) == text


async def test_the_folder_is_measured_with_every_file_under_it(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "source.csv").write_bytes(b"x" * 1000)
    (tmp_path / "a" / "scored.csv").write_bytes(b"x" * 24)
    quota = DiskQuota(tmp_path, 2048, 0, free(PLENTY))
    await quota.measure()
    assert quota.used == 1024


async def test_bytes_past_the_quota_are_refused_and_not_counted(tmp_path: Path) -> None:
    quota = DiskQuota(tmp_path, 2048, 0, free(PLENTY))
    quota.take(1024)
    with pytest.raises(StorageFull) as refused:
        quota.take(1025)
    assert refused.value.detail == (
        "the data sets' files would pass their quota: 1 KB of 2 KB used (SENTIMENT_DATA_QUOTA_MB); delete "
        "data sets that are no longer needed (DELETE /datasets/{id} with the admin token, or Delete on the "
        "Analyze page) to make room"
    )
    quota.take(1024)  # exactly the quota fits
    assert quota.used == 2048
    with pytest.raises(StorageFull):
        quota.check()


async def test_a_walk_replaces_what_was_counted_before_it_and_keeps_what_came_during_it(
    tmp_path: Path,
) -> None:
    quota = DiskQuota(tmp_path, 10_000, 0, free(PLENTY))
    quota.take(5000)  # written and then deleted: the walk finds nothing
    await quota.measure()
    assert quota.used == 0


async def test_a_disk_short_of_its_spare_room_refuses_even_under_the_quota(tmp_path: Path) -> None:
    quota = DiskQuota(tmp_path, 1000 * MB, 100 * MB, free(50 * MB))
    with pytest.raises(StorageFull) as refused:
        quota.check()
    assert refused.value.detail.startswith(
        "the disk holding the data sets has 50 MB free, under the 100 MB it keeps spare "
        "(SENTIMENT_DATA_MIN_FREE_MB); delete data sets"
    )


async def test_the_disk_is_asked_once_per_megabyte_taken(tmp_path: Path) -> None:
    asked = []

    def disk(_folder: Path) -> int:
        asked.append(1)
        return PLENTY

    quota = DiskQuota(tmp_path, PLENTY, 0, disk)
    for _ in range(4 * 16):
        quota.take(64 * 1024)
    assert len(asked) == 4


def upload(status: DatasetStatus, age: timedelta, now: datetime) -> Dataset:
    return Dataset(id=uuid7(), name="a.csv", status=status, created_at=now - age, size_bytes=1, columns=["t"])


def test_only_uploads_never_started_and_older_than_the_limit_expire() -> None:
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    day = timedelta(hours=24)
    old = upload("uploaded", day + timedelta(seconds=1), now)
    exactly = upload("uploaded", day, now)
    fresh = upload("uploaded", timedelta(hours=1), now)
    started = [
        upload(status, 10 * day, now) for status in ("queued", "scoring", "done", "failed", "cancelled")
    ]
    assert expired_uploads([old, exactly, fresh, *started], now, day) == [old.id]


def test_the_folder_bounds_are_read_from_the_environment() -> None:
    datasets = Settings.from_env(
        {
            "SENTIMENT_DATA_QUOTA_MB": "512",
            "SENTIMENT_DATA_MIN_FREE_MB": "0",
            "SENTIMENT_UPLOAD_EXPIRY_HOURS": "0.5",
        }
    ).datasets
    assert (datasets.quota_mb, datasets.min_free_mb, datasets.upload_expiry_hours) == (512.0, 0.0, 0.5)
    defaults = Settings.from_env({}).datasets
    assert (defaults.quota_mb, defaults.min_free_mb, defaults.upload_expiry_hours) == (2048.0, 100.0, 24.0)
    with pytest.raises(SettingsError, match="SENTIMENT_DATA_QUOTA_MB"):
        Settings.from_env({"SENTIMENT_DATA_QUOTA_MB": "0"})
