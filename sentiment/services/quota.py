"""The data folder's quota: uploads and scored files together hold at most SENTIMENT_DATA_QUOTA_MB, and the
disk under them keeps SENTIMENT_DATA_MIN_FREE_MB free, so that data sets never fill the disk the database, the
logs and the model cache live on.

What the folder holds is measured by walking it (at each upload and each start: replicas may share the folder)
plus what this process has written since; every writer asks before it writes more, or right after writing a
scored chunk, and is refused with StorageFull (HTTP 507) saying what is used and how to make room."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from sentiment.core.domain import StorageFull

MB = 1 << 20
# The disk's free space is asked for (a statvfs, a round trip on a network file system) once per this many
# bytes written, not for every piece of an upload.
FREE_CHECK_BYTES = 1 << 20
MAKE_ROOM = (
    "delete data sets that are no longer needed (DELETE /datasets/{id} with the admin token, or Delete on "
    "the Analyze page) to make room"
)


def folder_bytes(folder: Path) -> int:
    """The bytes of the files under `folder`; files that vanish while it is walked count as nothing."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def disk_free(folder: Path) -> int:
    """Free bytes on the disk holding `folder` (or the nearest existing folder above it)."""
    for candidate in (folder, *folder.resolve().parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free
    return 0


def size_text(size: float) -> str:
    """1,536 KB -> '1.5 MB'; whole numbers without their '.0'."""
    value, unit = (size / MB, "MB") if size >= MB else (size / 1024, "KB")
    return f"{value:,.1f}".removesuffix(".0") + f" {unit}"


class DiskQuota:
    def __init__(
        self,
        folder: Path,
        quota_bytes: int,
        min_free_bytes: int,
        free_bytes: Callable[[Path], int] = disk_free,
    ) -> None:
        self._folder = folder
        self._quota = quota_bytes
        self._min_free = min_free_bytes
        self._free_bytes = free_bytes
        self._walked = 0
        self._taken = 0  # bytes written by this process since the last walk
        self._unchecked = 0  # bytes taken since the disk's free space was last asked for

    @property
    def used(self) -> int:
        return self._walked + self._taken

    async def measure(self) -> None:
        """Walk the folder (in a thread). What is taken meanwhile stays counted on top of it: it may count
        twice until the next walk, which errs on the side of room."""
        taken = self._taken
        self._walked = await asyncio.to_thread(folder_bytes, self._folder)
        self._taken -= taken

    def check(self) -> None:
        """StorageFull when nothing more may be written: the quota is used up (no room for one byte more) or
        the disk is short of room."""
        self._check_quota(1)
        self._check_free(0)
        self._unchecked = 0

    def take(self, size: int) -> None:
        """Count `size` more bytes; StorageFull (nothing counted) when they would pass the quota or leave the
        disk with less than its spare room."""
        self._check_quota(size)
        if self._unchecked + size >= FREE_CHECK_BYTES:
            self._check_free(size)
            self._unchecked = 0
        else:
            self._unchecked += size
        self._taken += size

    def _check_quota(self, size: int) -> None:
        if self.used + size > self._quota:
            raise StorageFull(
                f"the data sets' files would pass their quota: {size_text(self.used)} of "
                f"{size_text(self._quota)} used (SENTIMENT_DATA_QUOTA_MB); {MAKE_ROOM}"
            )

    def full_disk(self, error: OSError) -> StorageFull | None:
        """What a write that failed for want of room (the disk full, a disk quota reached) means to the
        client, or None for any other failure."""
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            return None
        return StorageFull(f"the disk holding the data sets is full ({error.strerror}); {MAKE_ROOM}")

    def _check_free(self, size: int) -> None:
        free = self._free_bytes(self._folder)
        if free - size < self._min_free:
            raise StorageFull(
                f"the disk holding the data sets has {size_text(free)} free, under the "
                f"{size_text(self._min_free)} it keeps spare (SENTIMENT_DATA_MIN_FREE_MB); {MAKE_ROOM}, or "
                "give the data folder more room"
            )
