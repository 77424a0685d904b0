"""MemoryReleaser: freed heap pages go back to the OS while no call is live, never during one."""

from __future__ import annotations

import pytest

from sutradhar.ops import memory
from sutradhar.ops.memory import MemoryReleaser, release_memory, rss_bytes


class FakeTrim:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, pad: int) -> int:
        self.calls += 1
        return 1


@pytest.fixture
def trim(monkeypatch: pytest.MonkeyPatch) -> FakeTrim:
    fake = FakeTrim()
    monkeypatch.setattr(memory, "_malloc_trim", fake)
    return fake


async def test_trims_while_no_call_is_live(trim: FakeTrim) -> None:
    releaser = MemoryReleaser(busy=lambda: False, interval_s=10)
    await releaser.release_if_idle()
    await releaser.release_if_idle()
    assert (trim.calls, releaser.trims) == (2, 2)


async def test_never_trims_during_a_call(trim: FakeTrim) -> None:
    releaser = MemoryReleaser(busy=lambda: True, interval_s=10)
    await releaser.release_if_idle()
    assert (trim.calls, releaser.trims) == (0, 0)


async def test_interval_zero_starts_no_background_job(trim: FakeTrim) -> None:
    releaser = MemoryReleaser(busy=lambda: False, interval_s=0)
    await releaser.start()
    assert not releaser._periodic.running
    await releaser.aclose()


async def test_without_malloc_trim_it_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_malloc_trim", None)
    releaser = MemoryReleaser(busy=lambda: False, interval_s=10)
    await releaser.start()
    await releaser.release_if_idle()
    assert release_memory() is None
    assert (releaser.trims, releaser._periodic.running) == (0, False)


@pytest.mark.skipif(memory._malloc_trim is None or rss_bytes() is None, reason="needs glibc and /proc")
def test_freed_heap_holes_are_returned_to_the_os() -> None:
    # 4 KB buffers come from malloc's heap (pymalloc takes only <= 512 bytes); keeping every 8th
    # alive leaves holes the heap cannot shrink past, as a burst of finished sockets does.
    buffers = [bytes(4096) for _ in range(8000)]
    kept = buffers[::8]
    del buffers
    released = release_memory()
    assert released is not None and released > 8 * 2**20, f"released {released} bytes"
    assert len(kept) == 1000
