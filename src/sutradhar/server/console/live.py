"""The live calls: one snapshot (every worker's calls when Redis is configured, this worker's
otherwise) and a server-sent event stream that pushes it whenever it changes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from loguru import logger

from sutradhar.server.admin import services_of
from sutradhar.server.console.auth import require_console_api
from sutradhar.services import Services

router = APIRouter()
log = logger.bind(call_id="-", stage="console")

CHECK_EVERY_S = 1.0  # how often the stream looks for a change (the registry has no change event)
KEEPALIVE_S = 15.0  # a comment line so proxies do not close an idle stream
FIELDS = ("call_id", "transport", "language", "state", "since", "turns", "last_v2v_ms", "worker")


async def live_snapshot(services: Services) -> list[dict[str, Any]]:
    """The calls live now, oldest first, each with FIELDS (missing ones None)."""
    calls = await services.calls.list_all()
    rows = [{key: call.get(key) for key in FIELDS} for call in calls]
    return sorted(rows, key=lambda row: (row["since"] or 0.0, str(row["call_id"])))


def _event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


async def _stream(request: Request, services: Services) -> AsyncIterator[str]:
    last: list[dict[str, Any]] | None = None
    quiet_since = time.monotonic()
    yield "retry: 3000\n\n"  # reconnect after 3 s if the server restarts
    while not await request.is_disconnected():
        try:
            snapshot = await live_snapshot(services)
        except Exception as exc:  # noqa: BLE001 - a failed look keeps the stream for the next one
            log.warning("live snapshot failed: {}: {}", type(exc).__name__, exc)
            snapshot = last or []
        if snapshot != last:
            last = snapshot
            quiet_since = time.monotonic()
            yield _event("calls", {"now": time.time(), "calls": snapshot})
        if services.calls.draining and not services.calls:
            # This worker drained: end the stream so it does not hold the shutdown; the browser
            # reconnects (to another worker behind the proxy, or to this one once restarted).
            return
        elif time.monotonic() - quiet_since >= KEEPALIVE_S:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        await asyncio.sleep(CHECK_EVERY_S)


@router.get("/live/events", dependencies=[Depends(require_console_api)])
async def live_events(request: Request) -> StreamingResponse:
    """text/event-stream: an `calls` event with {"now", "calls": [...]} on every change."""
    return StreamingResponse(_stream(request, services_of(request)), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
