"""Run a blocking producer on a worker thread and consume what it yields in the event loop.

Local engines (llama.cpp, Piper, espeak-ng's library) produce results piece by piece in blocking
code. The producer runs on the engine's own executor, hands each item to the loop with
`call_soon_threadsafe`, and checks a stop flag between items: when the consumer stops (barge-in
cancels the task, or it closes the stream) the thread stops at its next item, freeing the cores.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from typing import Any, TypeVar

T = TypeVar("T")
_DONE = object()


async def stream_from_thread(
    executor: Executor, produce: Callable[[threading.Event], Iterator[T]]
) -> AsyncIterator[T]:
    """Yield the items of `produce(stop)` as the worker thread makes them.

    Exceptions raised by the producer are re-raised in the consumer.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    stop = threading.Event()

    def emit(item: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop closed while the thread was finishing
            stop.set()

    def work() -> None:
        try:
            for item in produce(stop):
                if stop.is_set():
                    break
                emit(item)
        except BaseException as exc:  # handed to the consumer
            emit(_Failure(exc))
        finally:
            emit(_DONE)

    future = loop.run_in_executor(executor, work)
    try:
        while (item := await queue.get()) is not _DONE:
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        # Nobody awaits the future after a cancel; retrieve its result so nothing is logged.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error
