"""A loopback receiver for post-call results webhooks: answers the statuses it is given (then
200), keeps every request, and sets `delivered` on the first 200."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.server import free_port


@dataclass
class ResultsReceiver:
    statuses: deque[int] = field(default_factory=deque)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    delivered: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    port: int = field(default_factory=free_port)
    _runner: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/results"

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        status = self.statuses.popleft() if self.statuses else 200
        if status < 300:
            self.delivered.set()
        async with self.arrived:
            self.arrived.notify_all()
        return web.Response(status=status, text="ok" if status < 300 else "down")

    async def wait_for_requests(self, count: int, timeout_s: float = 10.0) -> None:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.requests) >= count), timeout_s)

    async def __aenter__(self) -> ResultsReceiver:
        app = web.Application()
        app.router.add_post("/results", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()
