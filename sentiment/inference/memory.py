"""Process memory: what loading a model takes (RssAnon), the peak
(VmHWM), and handing freed memory back to the OS on unload."""

from __future__ import annotations

import ctypes
import gc
import os
import resource
from pathlib import Path

M_ARENA_MAX = -8  # glibc's mallopt parameter number
SERVICE_ARENAS = 2
PROC_STATUS = Path("/proc/self/status")


def status_kib(field: str, status: Path = PROC_STATUS) -> int | None:
    """A memory figure of this process from its /proc status file, in KiB ("RssAnon", "VmHWM"); None where the
    file or the figure is missing (not Linux)."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def anonymous_memory_bytes() -> int | None:
    """RssAnon of this process: what loading a model's weights adds, and what unloading should give back."""
    kib = status_kib("RssAnon")
    return kib * 1024 if kib is not None else None


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM first: getrusage's ru_maxrss survives exec on Linux, so a
    process started from a big parent (a test run with torch loaded) would report the parent's peak."""
    kib = status_kib("VmHWM")
    if kib is None:
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return kib / 1024


def release_freed_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc keeps them otherwise)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def limit_malloc_arenas() -> None:
    """Cap glibc's per-thread malloc arenas (unless MALLOC_ARENA_MAX says otherwise). Model loads and forward
    passes run on worker threads; with an arena each, an unloaded model's pages stay scattered and are not
    returned. Call once, before those threads start."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, SERVICE_ARENAS)
    except (OSError, AttributeError):
        pass
