"""The console's live list is the cluster's: a call served by another worker (through a real
redis-server) is on this worker's page and its event stream."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from sutradhar.ops.live_calls import LiveCalls
from sutradhar.ops.prometheus import Telemetry
from sutradhar.ops.redis_client import connect_redis
from tests.support.server import free_port, live_server, make_settings


@dataclass
class OtherWorkersCall:
    call_id: str

    def live_info(self) -> dict[str, Any]:
        return {"transport": "plivo", "language": "gu-IN", "state": "speaking", "turns": 3,
                "last_v2v_ms": 812.5}


async def first_snapshot(client: httpx.AsyncClient) -> dict[str, Any]:
    async with client.stream("GET", "/console/live/events") as events:
        async for line in events.aiter_lines():
            if line.startswith("data:"):
                return json.loads(line.removeprefix("data:"))
    raise AssertionError("the stream ended without a snapshot")


async def test_a_call_on_another_worker_is_on_this_workers_console(redis_url):
    redis = connect_redis(redis_url)
    await redis.flushdb()
    other = LiveCalls(limit=10, telemetry=Telemetry(), redis=redis, worker="other-host:4242")
    other.register(OtherWorkersCall("CA-elsewhere"))
    await other.heartbeat()
    port = free_port()
    settings = make_settings(public_url=f"http://127.0.0.1:{port}", port=port, redis_url=redis_url)
    try:
        with live_server(settings, records=False) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                snapshot = await first_snapshot(client)
                page = (await client.get("/console")).text
    finally:
        await other.aclose()
        await redis.aclose()
    [call] = snapshot["calls"]
    assert call["call_id"] == "CA-elsewhere" and call["worker"] == "other-host:4242"
    assert (call["transport"], call["language"], call["state"], call["turns"], call["last_v2v_ms"]) == (
        "plivo", "gu-IN", "speaking", 3, 812.5)
    assert 'data-call-id="CA-elsewhere"' in page and "812.5 ms" in page and "other-host:4242" in page
