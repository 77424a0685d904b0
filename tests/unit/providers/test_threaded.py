"""Blocking producers on a worker thread: items stream in order, errors cross, early stop stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from sutradhar.engines.threaded import stream_from_thread


async def test_items_arrive_in_order_and_errors_cross_the_thread() -> None:
    def produce(stop: threading.Event) -> Iterator[int]:
        yield from range(3)
        raise ValueError("engine failed")

    with ThreadPoolExecutor(1) as executor:
        got = []
        with pytest.raises(ValueError, match="engine failed"):
            async for item in stream_from_thread(executor, produce):
                got.append(item)
    assert got == [0, 1, 2]


async def test_closing_the_stream_stops_the_producer_at_its_next_item() -> None:
    made: list[int] = []
    finished = threading.Event()

    def produce(stop: threading.Event) -> Iterator[int]:
        try:
            for n in range(1000):
                if stop.is_set():
                    return
                made.append(n)
                time.sleep(0.005)  # a token's worth of work
                yield n
        finally:
            finished.set()

    with ThreadPoolExecutor(1) as executor:
        stream = stream_from_thread(executor, produce)
        async for _ in stream:
            break
        await stream.aclose()
        assert finished.wait(1.0)
    assert len(made) < 10
