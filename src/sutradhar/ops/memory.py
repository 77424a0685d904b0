"""Giving memory back once calls end: glibc's malloc keeps the heap pages a burst of calls or
sockets freed, so resident memory stays at the peak while the server sits idle.

Measured with `sutradhar bench memory` (300 idle media sockets, then 100 calls): Python objects
of finished calls are all gone (tracemalloc: ~0.2 MB still allocated after a round), yet RSS
stayed 21 MB and 31 MB above idle, with 17-22 MB of it free inside malloc's heap. `malloc_trim(0)`
hands those pages back; what remains is pymalloc arenas pinned by a few long-lived blocks.

`MemoryReleaser` trims while no call is live (never in the middle of one), every
MEMORY_TRIM_INTERVAL_S. Elsewhere than glibc (macOS, musl) there is no `malloc_trim` and it does
nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import time
from collections.abc import Callable
from typing import Any

from loguru import logger

from sutradhar.ops.periodic import Periodic

log = logger.bind(stage="memory")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _load_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Any = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_malloc_trim = _load_trim()


def rss_bytes() -> int | None:
    """This process's resident memory now (Linux), without psutil."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def release_memory() -> int | None:
    """Return the free pages of malloc's heaps to the OS; the resident bytes released (None when
    this libc cannot). ctypes drops the GIL for the call (a few ms on a 150 MB heap)."""
    if _malloc_trim is None:
        return None
    before = rss_bytes()
    _malloc_trim(0)
    after = rss_bytes()
    return (before - after) if before is not None and after is not None else 0


class MemoryReleaser:
    """Trims the heap every `interval_s` while `busy()` is false (no call is live)."""

    def __init__(self, busy: Callable[[], bool], interval_s: float) -> None:
        self.busy = busy
        self.interval_s = interval_s
        self.trims = 0
        self._periodic = Periodic("memory-release", self.release_if_idle, interval_s)

    @property
    def available(self) -> bool:
        return _malloc_trim is not None

    async def release_if_idle(self) -> None:
        if self.busy():
            return
        started = time.perf_counter()
        released = release_memory()
        if released is None:
            return
        self.trims += 1
        if released >= 2**20:  # worth a line; an idle server's repeated trims release nothing
            log.info("idle: returned {:.1f} MB to the OS in {:.1f} ms", released / 2**20,
                     (time.perf_counter() - started) * 1000)

    async def start(self) -> None:
        if self.interval_s > 0 and self.available:
            self._periodic.start()

    async def aclose(self) -> None:
        await self._periodic.stop()
