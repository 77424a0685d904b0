"""Transport abuse: property-based fuzzing (hypothesis) of every carrier's inbound messages against
the real server, while a healthy call runs beside the fuzzed ones.

Whatever arrives (malformed JSON, wrong types, unknown events, media before start, invalid base64,
binary frames, huge payloads, floods), the server logs a clear warning, closes the socket where
that is right, never lets an exception escape into the ASGI stack, and the healthy call keeps
getting answers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.fixtures import UTTERANCES
from tests.e2e.harness import (
    LiveServer,
    LogCapture,
    e2e_settings,
    free_port,
    live_server,
)
from tests.e2e.wire import TwilioCaller

CARRIERS = {
    # path, the event key, event names the carrier really sends, the id keys of a start message
    "twilio": ("/twilio/media", "event", ["connected", "start", "media", "dtmf", "mark", "stop"]),
    "exotel": ("/exotel/media?sample-rate=8000", "event", ["connected", "start", "media", "dtmf", "mark", "stop"]),
    "plivo": ("/plivo/media", "event", ["start", "media", "dtmf", "playedStream", "clearedAudio", "stop"]),
    "browser": ("/browser/media", "type", ["start", "text", "dtmf", "mark", "stop"]),
}
MAX_MESSAGE_BYTES = 64 * 1024

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                         st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=12)
base64ish = st.one_of(st.binary(max_size=400).map(lambda b: base64.b64encode(b).decode()),
                      st.text(max_size=60), st.just("!!!not base64!!!"), st.just("QUJD="), json_values)


def templates(carrier: str) -> list[Any]:
    """Valid inbound messages of each kind the carrier sends (protocols.md), to mutate."""
    payload = base64.b64encode(b"\xff" * 160).decode()
    if carrier == "twilio":
        return [json.loads(_valid_start(carrier)),
                {"event": "media", "sequenceNumber": "3", "streamSid": "MZfuzz",
                 "media": {"track": "inbound", "chunk": "1", "timestamp": "20", "payload": payload}},
                {"event": "mark", "sequenceNumber": "4", "streamSid": "MZfuzz", "mark": {"name": "1.0"}},
                {"event": "dtmf", "sequenceNumber": "5", "streamSid": "MZfuzz",
                 "dtmf": {"track": "inbound_track", "digit": "1"}},
                {"event": "stop", "sequenceNumber": "6", "streamSid": "MZfuzz",
                 "stop": {"accountSid": "AC", "callSid": "CA"}}]
    if carrier == "exotel":
        return [json.loads(_valid_start(carrier)),
                {"event": "media", "sequence_number": "3", "stream_sid": "s",
                 "media": {"chunk": "2", "timestamp": "200", "payload": base64.b64encode(bytes(320)).decode()}},
                {"event": "mark", "sequence_number": "4", "stream_sid": "s", "mark": {"name": "1.0"}},
                {"event": "dtmf", "sequence_number": "5", "stream_sid": "s", "dtmf": {"digit": "5", "duration": "100"}},
                {"event": "stop", "sequence_number": "6", "stream_sid": "s", "stop": {"call_sid": "c", "reason": "x"}}]
    if carrier == "plivo":
        return [json.loads(_valid_start(carrier)),
                {"event": "media", "sequenceNumber": 3, "streamId": "s",
                 "media": {"track": "inbound", "timestamp": "1", "chunk": 2, "payload": payload}},
                {"event": "playedStream", "sequenceNumber": 4, "streamId": "s", "name": "1.0"},
                {"event": "dtmf", "sequenceNumber": 5, "streamId": "s", "dtmf": {"digit": "5"}},
                {"event": "clearedAudio", "sequenceNumber": 6, "streamId": "s"}]
    return [json.loads(_valid_start(carrier)), {"type": "text", "text": "hello"}, {"type": "dtmf", "digit": "1"},
            {"type": "mark", "name": "1.0"}, {"type": "stop"}]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            out.append((*prefix, key))
            out.extend(_paths(item, (*prefix, key)))
    return out


@st.composite
def mutated(draw: Any, carrier: str) -> str:
    """A valid message with one to three fields replaced by anything JSON, or deleted."""
    message = json.loads(json.dumps(draw(st.sampled_from(templates(carrier)))))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(message)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = message
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            parent[path[-1]] = draw(st.one_of(json_values, base64ish))
        else:
            del parent[path[-1]]
    return json.dumps(message)


def carrier_messages(carrier: str) -> st.SearchStrategy[str | bytes]:
    key = CARRIERS[carrier][1]
    unknown = st.fixed_dictionaries({key: st.one_of(st.text(max_size=12), json_values)},
                                    optional={"media": json_values, "start": json_values})
    return st.one_of(
        mutated(carrier), mutated(carrier), mutated(carrier),  # weighted: most messages nearly valid
        unknown.map(json.dumps),  # unknown events, wrong types for the event itself
        json_values.map(json.dumps),  # JSON that is not an object, or an object of anything
        st.text(max_size=200),  # not JSON at all
        st.binary(max_size=400),  # binary frames (audio on the browser, junk elsewhere)
        st.just(HUGE),  # over MAX_MESSAGE_BYTES (expanded when sent, to keep reports short)
    )


HUGE = "<a media message larger than MAX_MESSAGE_BYTES>"


def _expand(message: str | bytes, carrier: str) -> str | bytes:
    if message == HUGE:
        return json.dumps({CARRIERS[carrier][1]: "media", "media": {"payload": "A" * (MAX_MESSAGE_BYTES + 10)}})
    return message


class HealthyCall:
    """A normal Twilio call taking turns in its own thread and loop, beside the fuzzing."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.answered = 0
        self.unanswered = 0
        self.closed_early = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> HealthyCall:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(20)

    async def _run(self) -> None:
        speech = UTTERANCES["en-IN"][1].pcm()
        async with TwilioCaller(self.server.ws_url) as caller:
            await caller.wait_audio(0.1)
            while not self._stop.is_set():
                answered = await caller.turn(speech, pace_s=0.002, timeout=5)
                if caller.closed.is_set():
                    self.closed_early = True
                    return
                if answered:
                    self.answered += 1
                else:
                    self.unanswered += 1


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory) -> Iterator[tuple[LiveServer, LogCapture]]:
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("fuzz"))
    port = free_port()
    try:
        with LogCapture() as logs, live_server(e2e_settings(public_url=f"http://127.0.0.1:{port}", port=port,
                                                            max_message_bytes=MAX_MESSAGE_BYTES,
                                                            inactivity_timeout_s=5.0)) as server:
            yield server, logs
    finally:
        os.chdir(cwd)


async def _send_all(url: str, messages: list[str | bytes]) -> tuple[int | None, bool]:
    """Send the messages on one socket; (close code, whether the server closed it)."""
    try:
        async with websockets.connect(url, max_size=2**24, open_timeout=5) as ws:
            for message in messages:
                try:
                    await ws.send(message)
                except websockets.ConnectionClosed:
                    break
            try:
                await asyncio.wait_for(ws.recv(), 0.05)
            except (TimeoutError, websockets.ConnectionClosed):
                pass
            closed_by_server = ws.close_code is not None
            return ws.close_code, closed_by_server
    except websockets.InvalidStatus as exc:
        return exc.response.status_code, True


def _carrier_present(server: LiveServer, carrier: str) -> bool:
    """Whether the server accepts a WebSocket on the carrier's path (an unknown path is refused)."""
    async def probe() -> bool:
        try:
            async with websockets.connect(server.ws_url + CARRIERS[carrier][0], open_timeout=5):
                return True
        except websockets.InvalidStatus:
            return False

    return asyncio.run(probe())


def _unexpected(logs: LogCapture, since: int) -> list[str]:
    bad = [r for r in logs.records[since:] if r["level"] in ("ERROR", "CRITICAL")]
    return [f"{r['message']} {r['exception'][-300:]}" for r in bad]


@pytest.mark.parametrize("carrier", list(CARRIERS))
def test_fuzzed_inbound_messages_never_escape_and_a_concurrent_call_is_unaffected(fuzz_server, carrier):
    server, logs = fuzz_server
    if not _carrier_present(server, carrier):
        pytest.skip(f"needs the {carrier} transport ({CARRIERS[carrier][0]}, telephony), not merged into main yet")
    path = CARRIERS[carrier][0]
    since = len(logs.records)

    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(messages=st.lists(carrier_messages(carrier), min_size=1, max_size=5),
           start_first=st.booleans())
    def fuzz(messages: list[str | bytes], start_first: bool) -> None:
        mark = len(logs.records)
        wire = [_expand(m, carrier) for m in messages]
        asyncio.run(_send_all(server.ws_url + path, [_valid_start(carrier), *wire] if start_first else wire))
        deadline = time.monotonic() + 3
        while server.live_calls() > 1 and time.monotonic() < deadline:  # the healthy call stays
            time.sleep(0.01)
        time.sleep(0.03)  # the handler's last words (an escaped exception) come just after
        assert not _unexpected(logs, mark), _unexpected(logs, mark)[:3]

    with HealthyCall(server) as healthy:
        time.sleep(0.5)
        fuzz()
        time.sleep(1.5)
    assert not _unexpected(logs, since), _unexpected(logs, since)[:3]
    assert not healthy.closed_early, "the healthy call was closed during the fuzzing"
    assert healthy.answered >= 1 and healthy.unanswered == 0, (healthy.answered, healthy.unanswered)
    assert logs.find("malformed message ignored") or logs.find("closing"), "no clear warning was logged"
    assert server.wait_tasks_settled(10) == []
    assert server.live_calls() == 0


def _valid_start(carrier: str) -> str:
    if carrier == "twilio":
        return json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": "MZfuzz", "start": {
            "accountSid": "AC", "streamSid": "MZfuzz", "callSid": f"CAfuzz{time.monotonic_ns()}",
            "tracks": ["inbound"], "customParameters": {},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
    if carrier == "exotel":
        sid = f"fuzz{time.monotonic_ns()}"
        return json.dumps({"event": "start", "sequence_number": "1", "stream_sid": sid, "start": {
            "stream_sid": sid, "call_sid": sid, "account_sid": "AC", "custom_parameters": {},
            "media_format": {"encoding": "audio/x-raw", "sample_rate": "8000", "bit_rate": "16"}}})
    if carrier == "plivo":
        sid = f"fuzz{time.monotonic_ns()}"
        return json.dumps({"event": "start", "sequenceNumber": 1, "start": {
            "callId": sid, "streamId": sid, "accountId": "MA", "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}}, "extra_headers": ""})
    return json.dumps({"type": "start", "call_id": f"fuzz{time.monotonic_ns()}"})


# --- deterministic abuse: the socket is closed where that is right, and only that socket ---

WRONG_TYPES = [
    {"event": "media", "media": "not an object"},
    {"event": "media", "media": ["a", "list"]},
    {"event": "media", "media": {"payload": 12345}},
    {"event": "mark", "mark": "not an object"},
    {"event": "dtmf", "dtmf": None},
    {"event": 42},
    ["a", "list"],
]


@pytest.mark.parametrize("message", WRONG_TYPES, ids=lambda m: json.dumps(m)[:40])
async def test_wrong_types_in_a_live_call_are_logged_and_ignored(fuzz_server, message):
    server, logs = fuzz_server
    since = len(logs.records)
    async with TwilioCaller(server.ws_url) as caller:
        await caller.wait_audio(0.05)
        await caller.send(message)
        await asyncio.sleep(0.3)
        assert not caller.closed.is_set(), f"one bad message closed the call ({caller.close_code})"
    await asyncio.sleep(0.2)
    assert not _unexpected(logs, since), _unexpected(logs, since)[:2]
    assert any("malformed" in r["message"] for r in logs.records[since:])


@pytest.mark.parametrize("start", [
    {"streamSid": "MZ1", "callSid": "CA1", "customParameters": "not an object"},
    {"streamSid": "MZ1", "callSid": ["not", "a", "string"]},
    "not an object",
], ids=["params-str", "callsid-list", "start-str"])
async def test_a_malformed_start_is_refused_with_a_warning_not_a_traceback(fuzz_server, start):
    server, logs = fuzz_server
    since = len(logs.records)
    caller = await TwilioCaller(server.ws_url).connect(start=False)
    await caller.send({"event": "start", "start": start})
    await asyncio.sleep(0.3)
    await caller.close()
    await asyncio.sleep(0.2)
    assert not _unexpected(logs, since), _unexpected(logs, since)[:2]
    assert server.live_calls() == 0


async def test_oversized_message_closes_only_that_socket_with_1009(fuzz_server):
    server, logs = fuzz_server
    async with TwilioCaller(server.ws_url) as bystander, TwilioCaller(server.ws_url) as abuser:
        await abuser.wait_audio(0.05)
        await abuser.send({"event": "media", "media": {"payload": "A" * (MAX_MESSAGE_BYTES * 2)}})
        await asyncio.wait_for(abuser.closed.wait(), 5)
        assert abuser.close_code in (1009, 1006)  # uvicorn's ws_max_size, or our own limit
        assert not bystander.closed.is_set()
        assert await bystander.turn(UTTERANCES["en-IN"][0].pcm()), "the bystander call stopped answering"


async def test_a_flood_of_malformed_messages_closes_the_socket_with_1008(fuzz_server):
    server, logs = fuzz_server
    async with TwilioCaller(server.ws_url) as abuser:
        await abuser.wait_audio(0.05)
        for _ in range(200):
            if not await abuser.send("{not json"):
                break
        await asyncio.wait_for(abuser.closed.wait(), 5)
        assert abuser.close_code == 1008
    assert logs.find("malformed message ignored", "WARNING")


async def test_a_flood_of_malformed_messages_before_start_closes_the_socket_with_1008(fuzz_server):
    server, _ = fuzz_server
    caller = await TwilioCaller(server.ws_url).connect(start=False)
    for _ in range(200):
        if not await caller.send("{not json"):
            break
    await asyncio.wait_for(caller.closed.wait(), 5)  # not after INACTIVITY_TIMEOUT_S
    assert caller.close_code == 1008
    assert server.live_calls() == 0


async def test_media_flood_before_start_is_ignored_and_the_idle_socket_is_closed(fuzz_server):
    server, _ = fuzz_server
    caller = await TwilioCaller(server.ws_url).connect(start=False)
    for _ in range(500):
        await caller.send(caller.media(b"\xff" * 160))
    assert server.live_calls() == 0
    await asyncio.wait_for(caller.closed.wait(), 10)  # no start within INACTIVITY_TIMEOUT_S
    assert caller.close_code == 1000
