"""Process memory: what loading a model takes (RssAnon), and handing freed memory back to the OS on unload."""

from __future__ import annotations

import ctypes
import gc
import os
from pathlib import Path

M_ARENA_MAX = -8  # glibc's mallopt parameter number
SERVICE_ARENAS = 2


def anonymous_memory_bytes() -> int | None:
    """RssAnon of this process: what loading a model's weights adds, and what unloading should give back."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


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
