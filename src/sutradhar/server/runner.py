"""Running the server process: uvicorn, with SIGTERM meaning "drain" rather than "drop every call".

uvicorn's own SIGTERM handling closes every WebSocket with 1012 at once, which would cut off every
caller on each deploy. Here the first SIGTERM drains the worker (`server.drain`) and only then asks
uvicorn to stop; a second SIGTERM, or SIGINT (Ctrl-C), stops at once as uvicorn always did.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from types import FrameType

import uvicorn
from fastapi import FastAPI
from loguru import logger

from sutradhar.config import Settings
from sutradhar.engines.registry import EngineSet
from sutradhar.server.app import create_app
from sutradhar.server.drain import drain
from sutradhar.server.websocket_protocol import MediaWebSocketProtocol

log = logger.bind(stage="server")


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain: asyncio.Task[None] | None = None

    async def serve(self, sockets: list | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        services = getattr(self.app.state, "services", None)
        if (sig == signal.SIGTERM and self._drain is None and not self.should_exit and self.started
                and services is not None and self._loop is not None):
            # A signal handler may run between any two bytecodes of the loop: hand over safely.
            self._loop.call_soon_threadsafe(self._begin_drain)
            return
        if self._drain is not None and not self._drain.done():
            log.warning("second stop signal during the drain: stopping now, live calls are cut off")
        super().handle_exit(sig, frame)

    def _begin_drain(self) -> None:
        self._drain = asyncio.get_running_loop().create_task(self._drain_then_stop(), name="drain")

    async def _drain_then_stop(self) -> None:
        try:
            await drain(self.app.state.services)
        except Exception as exc:  # noqa: BLE001 - stop anyway; the calls' own code records them
            log.opt(exception=exc).error("drain failed: {}", exc)
        self.should_exit = True


def uvicorn_config(app: FastAPI, settings: Settings, **overrides: object) -> uvicorn.Config:
    """How uvicorn runs the app, for `serve` and the test harness alike; `overrides` for tests."""
    loop = "auto"
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        pass
    options: dict[str, object] = dict(
        host=settings.host, port=settings.port, loop=loop, log_level=settings.log_level.lower(),
        ws_max_size=settings.max_message_bytes,
        ws=MediaWebSocketProtocol,  # uvicorn's websockets-sansio, cheaper per frame
        # No permessage-deflate: a 20 ms frame of base64 audio barely compresses, zlib would run
        # on both ends for every message with a compression context held per call, and only a
        # connection without extensions takes the media protocol's short path. Browsers ask for
        # it by default and are told no; carriers' media streams do not ask.
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=5,
        # The client address stays the TCP peer: X-Forwarded-For is read by the per-source
        # limit, and only from TRUSTED_PROXIES (telephony/admission.py).
        proxy_headers=False,
        log_config=None)  # setup_logging routes uvicorn's logging into ours
    options.update(overrides)
    return uvicorn.Config(app, **options)  # type: ignore[arg-type]


def serve(settings: Settings, engines: EngineSet | None = None, sock: socket.socket | None = None) -> None:
    """Run the server in this process until SIGTERM (drain) or SIGINT (stop). `engines`: prepared
    engines instead of the configured ones (tests); `sock`: a bound socket to serve on (workers)."""
    app = create_app(settings, engines=engines)
    DrainingServer(uvicorn_config(app, settings), app).run(sockets=[sock] if sock is not None else None)
