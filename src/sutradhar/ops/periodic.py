"""A job the server repeats in the background (health checks, breaker sync, heartbeats)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from loguru import logger


class Periodic:
    """Runs `job` every `interval_s` in one task until closed; a failing run is logged, not fatal."""

    def __init__(self, name: str, job: Callable[[], Awaitable[object]], interval_s: float) -> None:
        self.name = name
        self.job = job
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def _loop(self) -> None:
        while True:
            try:
                await self.job()
            except Exception as exc:  # noqa: BLE001 - the next run may succeed
                logger.bind(stage="background").warning("{} failed: {}", self.name, exc)
            await asyncio.sleep(self.interval_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
