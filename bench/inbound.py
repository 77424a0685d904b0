"""Inbound: the server's CPU for each 20 ms frame of caller audio, against the ASGI server's floor.

A phone call sends one media message every 20 ms for as long as it lasts, speech or silence, so
at 300 calls the server takes 15,000 messages a second before a single turn. This measures what
each one costs, with nothing else going on:

- `sutradhar`: `sutradhar serve` as `load --providers http` starts it; N Twilio streams that send
  silence (after their greetings have played), the server's CPU over the steady stretch divided by
  the frames it received;
- `asgi_floor`: the same streams into a bare ASGI app on the same uvicorn and WebSocket
  implementation that receives each message and drops it: what any Python ASGI server pays
  before our code runs (WebSocket parsing, the event loop, the kernel).

- `asgi_floor_media_protocol`: the same bare app on our WebSocket protocol
  (`server/websocket_protocol.py`, which `sutradhar serve` runs): what its short path for data
  frames saves per frame;

- `media_loop_in_process`: our part alone, `telephony/media.py` over a stand-in socket that hands
  it the same messages (one suspension each, as on the wire), minus the stand-in's own cost: the
  media loop, the Twilio decode, the inbound rate check, VAD and the turn detector.

The load generator is one aiohttp process of this machine's.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import multiprocessing as mp
import time
import uuid
from typing import Any

from bench.load import CONNECTED, twilio_media, twilio_start, twilio_stop

SILENCE = base64.b64encode(b"\xff" * 160).decode()  # 20 ms of mu-law silence
SETTLE_S = 8.0  # connected, greeted, and the greeting played out before the steady stretch


async def _stream(sockets: Any, url: str, stop_at: float, sent: list[int]) -> None:
    stream_sid, call_sid = "MZ" + uuid.uuid4().hex, "CA" + uuid.uuid4().hex
    # No permessage-deflate: Twilio does not offer it, and inflating every frame would cost the
    # server more than the frame itself.
    ws = await sockets.ws_connect(url.replace("http", "ws", 1) + "/twilio/media", autoping=False,
                                  compress=0)
    await ws.send_str(CONNECTED)
    await ws.send_str(twilio_start(stream_sid, call_sid))

    async def drain() -> None:
        async for _ in ws:
            pass

    reader = asyncio.create_task(drain())
    seq, due = 1, time.monotonic()
    while time.monotonic() < stop_at:
        seq += 1
        await ws.send_str(twilio_media(seq, SILENCE, stream_sid))
        sent[0] += 1
        due += 0.02
        await asyncio.sleep(max(0.0, due - time.monotonic()))
    await ws.send_str(twilio_stop(seq + 1, stream_sid, call_sid))
    await ws.close()
    reader.cancel()


async def _drive(url: str, streams: int, seconds: float, settle_s: float, cpu_s: Any) -> dict[str, Any]:
    """Run the streams; measure `cpu_s()` (the server's) over the steady stretch only."""
    import aiohttp

    sent = [0]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as sockets:
        stop_at = time.monotonic() + settle_s + seconds + 0.5
        tasks = [asyncio.create_task(_stream(sockets, url, stop_at, sent)) for _ in range(streams)]
        await asyncio.sleep(settle_s)
        cpu0, sent0, t0 = cpu_s(), sent[0], time.monotonic()
        await asyncio.sleep(seconds)
        cpu1, sent1, t1 = cpu_s(), sent[0], time.monotonic()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    frames = sent1 - sent0
    return {"frames": frames, "seconds": round(t1 - t0, 2), "server_cpu_s": round(cpu1 - cpu0, 3),
            "us_per_frame": round(1e6 * (cpu1 - cpu0) / max(1, frames), 1),
            "core_percent": round(100 * (cpu1 - cpu0) / (t1 - t0), 1), "errors": errors[:3]}


async def _floor_app(scope: dict, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await receive()
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


def _serve_floor(port: int, protocol: str = "websockets-sansio") -> None:
    import uvicorn

    from bench.common import use_uvloop

    use_uvloop()
    ws: Any = protocol
    if protocol == "media":
        from sutradhar.server.websocket_protocol import MediaWebSocketProtocol

        ws = MediaWebSocketProtocol
    uvicorn.run(_floor_app, host="127.0.0.1", port=port, loop="uvloop", log_level="warning", ws=ws)


def _floor(streams: int, seconds: float, settle_s: float, protocol: str) -> dict[str, Any]:
    from bench.http_stack import ProcessTree
    from sutradhar.testing.ports import free_port

    port = free_port()
    floor_proc = mp.get_context("spawn").Process(target=_serve_floor, args=(port, protocol), daemon=True)
    floor_proc.start()
    try:
        _wait_listening(port)
        return asyncio.run(_drive(f"http://127.0.0.1:{port}", streams, seconds, settle_s,
                                  ProcessTree(floor_proc.pid).cpu_s))
    finally:
        floor_proc.terminate()
        floor_proc.join(5)


def run(streams: int = 100, seconds: float = 15.0, settle_s: float = SETTLE_S,
        loop_frames: int = 20_000) -> dict[str, Any]:
    from bench.common import use_uvloop
    from bench.http_stack import ProcessTree, ProductionServer, ProviderProcess
    from bench.scenario import Delays

    use_uvloop()
    provider = ProviderProcess(Delays())
    try:
        provider.wait_ready("/v1/models", 30)
        server = ProductionServer(provider.url, 1)
        try:
            server.wait_ready(timeout_s=60)
            ours = asyncio.run(_drive(server.url, streams, seconds, settle_s, ProcessTree(server.proc.pid).cpu_s))
        finally:
            server.stop()
    finally:
        provider.stop()

    floor = _floor(streams, seconds, settle_s, "websockets-sansio")
    floor_media = _floor(streams, seconds, settle_s, "media")
    ours_us, floor_us = ours["us_per_frame"], floor["us_per_frame"]
    in_process = asyncio.run(_media_loop_in_process(loop_frames))
    return {"streams": streams, "seconds": seconds, "sutradhar": ours, "asgi_floor": floor,
            "asgi_floor_media_protocol": floor_media,
            "media_loop_in_process": in_process,
            "ours_us_per_frame": round(ours_us - floor_us, 1),
            "cores_at_300_calls": {"sutradhar": round(ours_us * 15_000 / 1e6, 2),
                                   "asgi_floor": round(floor_us * 15_000 / 1e6, 2),
                                   "asgi_floor_media_protocol":
                                       round(floor_media["us_per_frame"] * 15_000 / 1e6, 2)}}


class _CannedSocket:
    """A WebSocket as the media loop sees it, handing out prepared messages."""

    client = None
    headers: dict[str, str] = {}
    scope: dict[str, Any] = {}  # no media sink: every message through receive(), one suspension each

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        self.next = 0

    async def receive(self) -> dict[str, Any]:
        i = self.next
        self.next += 1
        if i >= len(self.messages):
            return {"type": "websocket.disconnect"}
        await asyncio.sleep(0)  # a message that arrives later: the loop suspends for each
        return {"type": "websocket.receive", "text": self.messages[i]}

    async def send_text(self, data: str) -> None:
        pass

    async def send_bytes(self, data: bytes) -> None:
        pass

    async def close(self, code: int = 1000, reason: str = "") -> None:
        pass


async def _media_loop_in_process(frames: int) -> dict[str, float]:
    import tempfile

    from sutradhar.config import load_settings
    from sutradhar.engines.registry import EngineSet
    from sutradhar.services import open_services
    from sutradhar.telephony.media import _run
    from sutradhar.telephony.transport import Transport
    from sutradhar.telephony.twilio.codec import TwilioCodec
    from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS

    # INBOUND_MAX_SPEED=0: the canned messages come faster than real time; the check's cost is
    # then missing from this figure (about 1 us), not from the server's.
    settings = load_settings(_env_file=None, data_dir=tempfile.mkdtemp(prefix="sutradhar-inbound-"),
                             log_level="WARNING", greeting="", inbound_max_speed=0.0)
    services = await open_services(settings, EngineSet([ScriptedSTT()], [ScriptedLLM()], [ScriptedTTS()]),
                                   records=False)
    try:
        sid = "MZ" + uuid.uuid4().hex
        start = twilio_start(sid, "CA" + sid[2:])
        media = [twilio_media(n, SILENCE, sid) for n in range(2, frames + 2)]
        # The event loop's thread only, with the collector held off, and the stand-in timed
        # before and after the loop (the lesser counts): background work the services start
        # (their first health round) or a full collection of a large heap (a test worker's) in
        # one short section would swamp the few milliseconds each measures.
        socket = _CannedSocket([start, *media])
        gc.collect()
        gc.disable()
        try:
            before = await _drain(_CannedSocket(media))
            cpu = time.thread_time()
            await _run(socket, Transport(socket, TwilioCodec()), services)  # type: ignore[arg-type]
            loop_s = time.thread_time() - cpu
            stand_in_s = min(before, await _drain(_CannedSocket(media)))
        finally:
            gc.enable()
    finally:
        await services.aclose()
    return {"frames": frames, "us_per_frame": round(1e6 * (loop_s - stand_in_s) / frames, 1),
            "stand_in_us_per_frame": round(1e6 * stand_in_s / frames, 1)}


async def _drain(socket: _CannedSocket) -> float:
    """The stand-in's own cost: this thread's CPU seconds to hand out all its messages."""
    cpu = time.thread_time()
    while (await socket.receive())["type"] != "websocket.disconnect":
        pass
    return time.thread_time() - cpu


def _wait_listening(port: int, timeout_s: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the floor server did not listen on {port} within {timeout_s}s")
