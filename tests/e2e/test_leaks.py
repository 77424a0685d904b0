"""Nothing leaks across calls: after repeated calls the server loop has no task left over, no call
is still registered, no object of a finished call (its session, orchestrator, playout, transport,
turn detector) is still alive, and memory stays roughly flat."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import websockets

from tests.e2e.fixtures import UTTERANCES
from tests.e2e.harness import e2e_settings, free_port, live_server
from tests.e2e.load import rss_mb, short_call
from tests.e2e.wire import TwilioCaller
from tests.support.server import LiveServer


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


class CallObjects:
    """Weak references to every per-call object of each call the server registers."""

    def __init__(self, server: LiveServer) -> None:
        self.refs: list[tuple[str, str, weakref.ref[Any]]] = []
        calls = server.services.calls
        register = calls.register

        def watching(call: Any) -> None:
            for part, obj in (("CallSession", call), ("AgentOrchestrator", call.orchestrator),
                              ("Playout", call.playout), ("Transport", call.transport),
                              ("TurnDetector", call.detector)):
                self.refs.append((call.call_id, part, weakref.ref(obj)))
            register(call)

        calls.register = watching  # the sessions register themselves: watch them as they do

    def alive(self, server: LiveServer) -> list[str]:
        """What is still alive after a full collection, with what refers to it (on the server loop,
        so no cleanup is racing the collection)."""
        async def collect() -> list[str]:
            gc.collect()
            left = []
            for call_id, part, ref in self.refs:
                obj = ref()
                if obj is not None:
                    holders = sorted({type(r).__name__ for r in gc.get_referrers(obj)})
                    # No referrer found: the holder predates the server's gc.freeze() (a module global).
                    left.append(f"{part} of {call_id} held by {holders or 'an object frozen at start-up'}")
            return left

        return server.run(collect(), timeout=30)


async def _hang_up_mid_reply(ws_url: str) -> None:
    """The caller speaks, and the line drops while the agent is answering."""
    caller = TwilioCaller(ws_url)
    await caller.connect()
    assert await caller.wait_audio(0.05)
    before = len(caller.audio)
    await caller.say(UTTERANCES["en-IN"][1].pcm())
    await caller.silence(800)
    assert await caller.wait_audio(before / 16000 + 0.05), "no reply began"
    await caller.abort()


async def _idle_socket_then_close(ws_url: str) -> None:
    """A media socket that never sends `start`, closed by the carrier."""
    async with websockets.connect(f"{ws_url}/twilio/media", open_timeout=5) as ws:
        await ws.send('{"event": "connected", "protocol": "Call", "version": "1.0.0"}')


async def test_no_object_of_a_finished_call_survives_it():
    port = free_port()
    with live_server(e2e_settings(public_url=f"http://127.0.0.1:{port}", port=port)) as server:
        watched = CallObjects(server)
        outcomes = await asyncio.gather(*(short_call(server.ws_url, turns=1) for _ in range(3)))
        assert all(o.ok for o in outcomes), [o for o in outcomes if not o.ok]
        await asyncio.gather(_hang_up_mid_reply(server.ws_url), _idle_socket_then_close(server.ws_url))

        assert server.wait_tasks_settled(10) == []
        assert server.live_calls() == 0
        assert server.run(_registry_sizes(server)) == (0, 0)
        assert len({call_id for call_id, _, _ in watched.refs}) == 4  # every call was watched
        assert watched.alive(server) == []


async def _registry_sizes(server: LiveServer) -> tuple[int, int]:
    calls = server.services.calls
    return len(calls.items()), len(calls._since)
