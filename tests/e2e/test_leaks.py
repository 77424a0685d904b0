"""Nothing leaks across calls: after repeated calls the server loop has no task left over, no call
is still registered, and memory stays roughly flat."""

from __future__ import annotations

import asyncio

from tests.e2e.harness import e2e_settings, free_port, live_server
from tests.e2e.load import rss_mb, short_call


async def test_repeated_calls_leave_no_tasks_and_memory_roughly_flat():
    port = free_port()
    with live_server(e2e_settings(public_url=f"http://127.0.0.1:{port}", port=port)) as server:
        async def round_of(n: int) -> None:
            outcomes = await asyncio.gather(*(short_call(server.ws_url, turns=1) for _ in range(n)))
            assert all(o.ok for o in outcomes), [o for o in outcomes if not o.ok]

        for _ in range(2):  # warm up: first-call imports, codec tables, the store's connection
            await round_of(4)
        assert server.wait_tasks_settled(5) == []
        baseline = rss_mb()
        for _ in range(5):
            await round_of(4)
        left = server.wait_tasks_settled(5)
        grown = rss_mb() - baseline
        assert server.live_calls() == 0
    assert left == [], left
    assert grown < 20, f"memory grew {grown:.1f} MB over 20 calls"
