"""Stream admission against the real server on loopback: single-use stream tokens, the public Host,
start and first-media timeouts that free call slots, per-source socket limits, and caller audio
faster than real time.

Every refusal is checked where an attacker sees it (close code, HTTP status) and where the operator
does (no call record, the log line, the counter).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import websockets

from sutradhar.testing.scripted import ScriptedSTT
from sutradhar.testing.simulator import CallerTurn, SimConfig, simulate
from tests.e2e.harness import LogCapture
from tests.e2e.wire import TwilioCaller, handshake_signature, stream_token
from tests.support.audio import speech_pcm
from tests.support.server import RecordingRecorder, scripted_server, wait_until

AUTH = "tw-admission-secret"


def twilio_server(recorder: RecordingRecorder | None = None, **overrides: Any) -> Any:
    """Twilio auth configured (STREAM_TOKENS=auto then asks for tokens), records kept."""
    return scripted_server(recorder or RecordingRecorder(), twilio_account_sid="ACadm",
                           twilio_auth_token=AUTH, **overrides)


async def closed_with(caller: TwilioCaller, timeout: float = 5.0) -> tuple[int | None, str]:
    await asyncio.wait_for(caller.closed.wait(), timeout)
    return caller.close_code, caller.close_reason


def refused_count(srv: Any, reason: str, carrier: str = "twilio") -> float:
    return srv.services.telemetry.value("sutradhar_streams_refused_total", carrier=carrier, reason=reason)


async def handshake_status(port: int, path: str, host: str) -> int:
    """The HTTP status of a WebSocket upgrade sent with this Host header (101: accepted)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    await writer.drain()
    status = int((await asyncio.wait_for(reader.readline(), 5)).split()[1])
    writer.close()
    return status


# --- stream tokens ---

async def test_a_replayed_signed_handshake_without_the_calls_token_opens_no_call() -> None:
    recorder = RecordingRecorder()
    with LogCapture() as logs, twilio_server(recorder) as srv:
        signed = handshake_signature(srv.ws_url, AUTH)  # valid, and the same for every call
        before = refused_count(srv, "token")
        for token in (None, "f" * 32):  # no token at all; a made-up one for a call id never answered
            caller = await TwilioCaller(srv.ws_url, call_id="CAnever-answered", headers=signed, token=token).connect()
            assert await closed_with(caller) == (1008, "stream not admitted")
        assert refused_count(srv, "token") == before + 2
        assert srv.live_calls() == 0
    assert recorder.started == [] and recorder.ended == []  # nothing stored
    refusals = logs.find("refusing stream", "WARNING")
    assert [r["extra"]["call_id"] for r in refusals] == ["CAnever-answered"] * 2


async def test_a_stream_token_opens_one_stream_and_is_refused_the_second_time() -> None:
    recorder = RecordingRecorder()
    with twilio_server(recorder) as srv:
        signed = handshake_signature(srv.ws_url, AUTH)
        token = await stream_token(srv.url, "CAonce", AUTH)
        async with TwilioCaller(srv.ws_url, call_id="CAonce", headers=signed, token=token) as first:
            assert await first.wait_audio(0.05), "the genuine stream got no greeting"
        assert wait_until(lambda: recorder.ended)
        again = await TwilioCaller(srv.ws_url, call_id="CAonce", headers=signed, token=token).connect()
        assert await closed_with(again) == (1008, "stream not admitted")
    assert [call_id for call_id, _ in recorder.started] == ["CAonce"]


async def test_a_token_issued_for_another_call_sid_is_refused() -> None:
    recorder = RecordingRecorder()
    with twilio_server(recorder) as srv:
        token = await stream_token(srv.url, "CAissued", AUTH)
        caller = await TwilioCaller(srv.ws_url, call_id="CAother", headers=handshake_signature(srv.ws_url, AUTH),
                                    token=token).connect()
        assert await closed_with(caller) == (1008, "stream not admitted")
    assert recorder.started == []


async def test_the_simulator_goes_through_the_signed_webhook_and_its_call_is_answered() -> None:
    stt = ScriptedSTT(script=("hello there",))
    with scripted_server(stt=stt, twilio_account_sid="ACadm", twilio_auth_token=AUTH) as srv:
        result = await simulate(SimConfig(srv.url, [CallerTurn(speech_pcm("Hello there."), 8000)],
                                          auth_token=AUTH, timeout_s=30))
    assert result.close_code != 1008 and len(result.latencies_ms) == 1
    assert "token" in result.ivr_twiml[-1]


@pytest.mark.parametrize("carrier", ["plivo", "exotel"])
async def test_stream_tokens_required_for_plivo_and_exotel_when_configured(carrier: str) -> None:
    recorder = RecordingRecorder()
    with scripted_server(recorder, stream_tokens="required") as srv:
        # Straight at the socket, as a replay would: refused before a call exists.
        bare = await simulate(SimConfig(srv.url, [], carrier=carrier, reply_wait_s=1, timeout_s=10))
        assert bare.close_code == 1008 and recorder.started == []
        # Through the answer webhook (Plivo XML extraHeaders, Exotel's stream URL): the call runs.
        answered = await simulate(SimConfig(srv.url, [], carrier=carrier, webhook=True, reply_wait_s=3,
                                            timeout_s=10))
        assert answered.frames, "the answered stream got no greeting"
        assert answered.close_code != 1008
    assert [call_id for call_id, _ in recorder.started] == [answered.call_id]


# --- the public Host ---

async def test_requests_for_another_host_are_refused_on_carrier_routes_only() -> None:
    with LogCapture() as logs, twilio_server() as srv:
        before = refused_count(srv, "host")
        async with httpx.AsyncClient(base_url=srv.url, timeout=5) as client:
            forged = {"Host": "attacker.example"}
            assert (await client.post("/twilio/voice", data={"CallSid": "CAh"}, headers=forged)).status_code == 403
            assert (await client.post("/plivo/answer", data={"CallUUID": "u1"}, headers=forged)).status_code == 403
            assert (await client.get("/exotel/stream", headers=forged)).status_code == 403
            assert (await client.get("/", headers=forged)).status_code == 403
            assert (await client.get("/health", headers=forged)).status_code == 200  # load balancers use the IP
            assert (await client.post("/plivo/answer", data={"CallUUID": "u1"})).status_code == 200
        assert await handshake_status(srv.port, "/twilio/media", "attacker.example") == 403
        assert await handshake_status(srv.port, "/plivo/media", f"127.0.0.1:{srv.port}") == 101
        assert refused_count(srv, "host") == before + 2  # /twilio/voice and the /twilio/media handshake
    assert logs.find("Host 'attacker.example' is not PUBLIC_URL's", "WARNING")


# --- timeouts that free slots ---

async def test_a_socket_that_never_sends_start_is_closed_after_the_start_timeout() -> None:
    with scripted_server(start_timeout_s=0.5) as srv:
        before = refused_count(srv, "no_start")
        caller = await TwilioCaller(srv.ws_url).connect(start=False)
        for _ in range(30):  # media before start neither starts a call nor extends the deadline
            await caller.send(caller.media(b"\xff" * 160))
        assert await closed_with(caller) == (1000, "no start")
        assert refused_count(srv, "no_start") == before + 1
        assert srv.live_calls() == 0


async def test_start_only_streams_are_ended_for_no_media_and_their_slots_reused() -> None:
    recorder = RecordingRecorder()
    with scripted_server(recorder, max_concurrent_calls=2, first_media_timeout_s=2.0) as srv:
        holders = [await TwilioCaller(srv.ws_url).connect() for _ in range(2)]  # start, then nothing
        assert all([await h.wait_audio(0.02) for h in holders])  # they hold both slots ...
        extra = await TwilioCaller(srv.ws_url).connect()
        assert (await closed_with(extra))[0] == 1013
        for holder in holders:  # ... until the first-media timeout ends their calls
            await closed_with(holder)
        assert wait_until(lambda: len(recorder.ended) == 2)
        assert {reason for _, reason, _ in recorder.ended} == {"no_media"}
        async with TwilioCaller(srv.ws_url) as later:
            assert await later.wait_audio(0.02) and not later.closed.is_set()


async def test_300_silent_and_200_start_only_sockets_do_not_keep_a_real_caller_out() -> None:
    recorder = RecordingRecorder()
    with scripted_server(recorder, max_concurrent_calls=20, start_timeout_s=60, first_media_timeout_s=1.0) as srv:
        url = f"{srv.ws_url}/twilio/media"
        silent = await asyncio.gather(*(websockets.connect(url, open_timeout=20) for _ in range(300)))
        # Silent sockets never held a slot: a real caller is answered beside all 300 of them.
        async with TwilioCaller(srv.ws_url) as first:
            assert await first.wait_audio(0.05), f"refused beside silent sockets: {first.close_code}"
        start_only = [TwilioCaller(srv.ws_url, echo_marks=False) for _ in range(200)]
        await asyncio.gather(*(c.connect() for c in start_only))
        # The 20 that got a slot are ended by the first-media timeout; then a real caller gets in.
        real = await _caller_admitted(srv.ws_url, within_s=20)
        assert real is not None, "a real caller never got a slot"
        await real.close()
        assert all(ws.close_code is None for ws in silent)  # they are still open: they never mattered
        assert wait_until(lambda: [reason for _, reason, _ in recorder.ended].count("no_media") >= 20)
        for ws in silent:
            await ws.close()
        for caller in start_only:
            await caller.close()


async def _caller_admitted(ws_url: str, within_s: float) -> TwilioCaller | None:
    """A caller that got a call slot (a greeting) within `within_s`, retrying after each 1013."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while loop.time() < deadline:
        caller = await TwilioCaller(ws_url).connect()
        if await caller.wait_audio(0.02, timeout=within_s):
            return caller
        await caller.close()
        assert caller.close_code == 1013, f"refused for another reason: {caller.close_code} {caller.close_reason}"
        await asyncio.sleep(0.05)  # a carrier's retry back-off, not synchronisation
    return None


# --- per-source limits ---

async def test_the_per_source_limit_counts_the_client_a_trusted_proxy_names() -> None:
    with scripted_server(trusted_proxies=["127.0.0.1/32"], max_streams_per_source=3, start_timeout_s=60) as srv:
        url = f"{srv.ws_url}/twilio/media"

        def via_proxy(client: str) -> Any:
            return websockets.connect(url, additional_headers={"X-Forwarded-For": f"10.9.9.9, {client}"},
                                      open_timeout=5)

        held = [await via_proxy("203.0.113.7") for _ in range(3)]
        with pytest.raises(websockets.InvalidStatus) as refused:
            await via_proxy("203.0.113.7")
        assert refused.value.response.status_code == 403
        other = await via_proxy("198.51.100.2")  # another caller behind the same proxy is not affected
        await held.pop().close()
        assert wait_until(lambda: srv.services.sources.open("203.0.113.7") == 2)
        held.append(await via_proxy("203.0.113.7"))  # the freed place is usable again
        for ws in (*held, other):
            await ws.close()


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    with scripted_server(max_streams_per_source=2, source_limit_exempt=[], start_timeout_s=60) as srv:
        url = f"{srv.ws_url}/twilio/media"
        held = [await websockets.connect(url, additional_headers={"X-Forwarded-For": f"203.0.113.{n}"})
                for n in range(2)]
        with pytest.raises(websockets.InvalidStatus):  # all three are 127.0.0.1, whatever they claim
            await websockets.connect(url, additional_headers={"X-Forwarded-For": "203.0.113.99"})
        for ws in held:
            await ws.close()


async def test_loopback_is_exempt_by_default_so_benchmarks_can_open_many_streams() -> None:
    with scripted_server(max_streams_per_source=2, start_timeout_s=60) as srv:
        held = [await websockets.connect(f"{srv.ws_url}/twilio/media") for _ in range(5)]
        assert srv.services.sources.open("127.0.0.1") == 5
        for ws in held:
            await ws.close()


# --- caller audio faster than real time ---

async def test_a_20x_flood_is_dropped_and_closed_while_a_real_time_call_beside_it_finishes() -> None:
    recorder = RecordingRecorder()
    stt = ScriptedSTT(script=("hello there",))
    with scripted_server(recorder, stt=stt, inbound_max_speed=1.5, inbound_burst_s=2.0, flood_close_s=2.0) as srv:
        dropped_before = srv.services.telemetry.value("sutradhar_inbound_audio_dropped_seconds_total",
                                                      carrier="twilio")
        normal = asyncio.create_task(simulate(SimConfig(
            srv.url, [CallerTurn(speech_pcm("Hello there, what is my balance?"), 8000)], speed=1, timeout_s=30)))
        flooder = await TwilioCaller(srv.ws_url, call_id="CAflood").connect()
        # 20 s of caller audio at 20x real time (a 20 ms frame every millisecond); it stops sending
        # once the server has closed the socket.
        await flooder.say(speech_pcm("Hello there. " * 4) + bytes(14 * 16000), pace_s=0.001)
        assert await closed_with(flooder, 10) == (1008, "media faster than real time")
        result = await normal
    assert len(result.latencies_ms) == 1, "the real-time call beside the flood was not answered"
    assert result.summary is not None and result.summary["inbound_dropped_s"] == 0
    ended = {call_id: (reason, summary) for call_id, reason, summary in recorder.ended}
    reason, summary = ended["CAflood"]
    assert reason == "flooding" and summary["inbound_dropped_s"] > 2.0
    assert summary["barge_ins"] <= 3  # the dropped audio never reached the VAD (unlimited: 93 in 23 s)
    assert srv.services.telemetry.value("sutradhar_inbound_audio_dropped_seconds_total",
                                        carrier="twilio") - dropped_before > 2.0
