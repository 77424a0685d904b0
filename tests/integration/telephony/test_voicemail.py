"""Answering machines on outbound calls, end to end: the real server places a Twilio call (strict
REST fake), the simulator answers it as a voicemail greeting with a beep or as a person saying
"hello?", and Twilio's own AMD callback arrives beside our detector's verdict."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sutradhar.audio.codecs import silence
from sutradhar.testing.scripted import ScriptedSTT, ScriptedTTS
from sutradhar.testing.simulator import CallerTurn, CallResult, SimConfig, simulate
from tests.fakes.exotel_rest import FakeExotelRest
from tests.fakes.plivo_rest import FakePlivoRest
from tests.fakes.twilio_rest import FakeTwilioRest, PlacedCall
from tests.support.answers import BEEP_MS, human_hello, machine_greeting
from tests.support.audio import speech_pcm
from tests.support.server import (
    free_port,
    live_server,
    make_settings,
    scripted_engines,
    wait_until,
)

ADMIN_TOKEN = "admin-secret"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SPEED = 2.0  # caller audio twice as fast as real time: the detector counts stream time, not seconds
MESSAGE = "नमस्ते, आपके ऑर्डर के बारे में कॉल किया था। हम कल फिर से कॉल करेंगे।"
AGENT = f"""
name: reminders
languages: [hi-IN, en-IN]
voicemail:
  action: leave_message
  message:
    hi-IN: {MESSAGE}
"""


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilioRest]:
    async with FakeTwilioRest() as fake:
        yield fake


def server(twilio: FakeTwilioRest, data_dir: Path, tts: ScriptedTTS, agent: str | None = None,
           stt: ScriptedSTT | None = None, **overrides: Any) -> Any:
    port = free_port()
    agent_path = ""
    if agent is not None:
        (data_dir / "agent.yaml").write_text(agent, encoding="utf-8")
        agent_path = str(data_dir / "agent.yaml")
    settings = make_settings(public_url=f"http://127.0.0.1:{port}", port=port, data_dir=data_dir,
                             admin_token=ADMIN_TOKEN, twilio_account_sid=twilio.account_sid,
                             twilio_auth_token=twilio.auth_token, twilio_api_base=twilio.base_url,
                             twilio_from_number="+918000000001", agent_path=agent_path, **overrides)
    return live_server(settings, scripted_engines(stt or ScriptedSTT(script=("haan, boliye",)), tts=tts))


async def place(client: httpx.AsyncClient, twilio: FakeTwilioRest, language: str) -> PlacedCall:
    response = await client.post("/calls/outbound", headers=ADMIN, json={"to": "+919876543210",
                                                                         "language": language})
    assert response.status_code == 201, response.text
    return twilio.placed[-1]


async def answer(srv: Any, twilio: FakeTwilioRest, call: PlacedCall, audio: bytes,
                 amd_while_live: str | None = None) -> CallResult:
    """The callee answers with `audio`; Twilio's AMD says `amd_while_live` once the stream is up."""
    config = SimConfig(srv.url, [CallerTurn(audio, 8000, after_s=0.0)], call_sid=call.sid,
                       answer_url=call.one("Url"), auth_token=twilio.auth_token, admin_token=ADMIN_TOKEN,
                       speed=SPEED, hang_up=False, tail_s=1.0, reply_wait_s=30, timeout_s=40)
    call_task = asyncio.create_task(simulate(config))
    if amd_while_live is not None:
        assert await asyncio.to_thread(wait_until, lambda: srv.live_calls() == 1, 10)
        assert await twilio.amd(call, amd_while_live) == 204
    return await call_task


async def stored(srv: Any, client: httpx.AsyncClient, call_id: str) -> dict[str, Any]:
    await srv.flush_records()
    return (await client.get(f"/calls/{call_id}", headers=ADMIN)).json()


def first_agent_audio_s(result: CallResult) -> float:
    return result.frames[0][0] - result.started_at


async def test_a_machine_is_left_the_agents_message_after_the_beep_then_hung_up(twilio, tmp_path) -> None:
    tts = ScriptedTTS(ms_per_char=2, chunk_ms=100)
    greeting, beep_at_ms = machine_greeting("hi-IN")
    assert beep_at_ms is not None
    with server(twilio, tmp_path, tts, AGENT) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
            call = await place(client, twilio, "hi-IN")
            result = await answer(srv, twilio, call, greeting, amd_while_live="machine_start")
            assert wait_until(lambda: srv.live_calls() == 0, 10)
            record = await stored(srv, client, call.sid)
    beep_end_s = (beep_at_ms + BEEP_MS) / 1000 / SPEED
    # Nothing was said over the greeting: the first agent audio is the message, after the beep.
    assert result.frames and first_agent_audio_s(result) >= beep_end_s
    assert " ".join(text for text, _ in tts.calls) == MESSAGE  # the greeting was never synthesised
    # Hung up once the message had played (its action mark came back), not before.
    assert any(name.endswith(".voicemail_left") for _, name in result.marks_echoed)
    assert result.closed_by_server and twilio.hung_up(call)
    assert record["end_reason"] == "voicemail_left" and record["answered_by"] == "machine"
    assert set(record["amd"]) == {"detector", "twilio"}
    assert record["amd"]["detector"]["answered_by"] == "machine"
    assert record["amd"]["twilio"]["carrier_answered_by"] == "machine_start"
    answering = record["summary"]["answering"]
    assert answering["message"]["cue"] == "beep" and answering["message"]["language"] == "hi-IN"
    assert abs(answering["message"]["beep"]["start_ms"] - beep_at_ms) <= 40
    assert srv.services.telemetry.value("sutradhar_answering_verdicts_total", source="twilio",
                                        answered_by="machine") >= 1


async def test_twilios_detect_message_end_starts_the_message_when_the_greeting_has_no_beep(twilio, tmp_path) -> None:
    tts = ScriptedTTS(ms_per_char=2, chunk_ms=100)
    greeting, _ = machine_greeting("hi-IN", with_beep=False)
    # Our own cues are out of reach here: only Twilio's machine_end_silence can start the message.
    with server(twilio, tmp_path, tts, AGENT, twilio_machine_detection="DetectMessageEnd",
                amd_message_silence_ms=10000, amd_beep_wait_s=120) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
            call = await place(client, twilio, "hi-IN")
            assert call.one("MachineDetection") == "DetectMessageEnd"
            config = SimConfig(srv.url, [CallerTurn(greeting, 8000, after_s=0.0)], call_sid=call.sid,
                               answer_url=call.one("Url"), auth_token=twilio.auth_token, speed=SPEED,
                               hang_up=False, tail_s=1.0, reply_wait_s=30, timeout_s=40)
            call_task = asyncio.create_task(simulate(config))

            def awaiting_the_end() -> bool:
                async def phase() -> str | None:
                    session = srv.services.calls.get(call.sid)
                    return session.screen.phase if session is not None and session.screen else None
                return srv.run(phase()) == "awaiting_beep"

            assert await asyncio.to_thread(wait_until, awaiting_the_end, 20)
            assert not tts.calls  # decided "machine", still silent
            assert await twilio.amd(call, "machine_end_silence") == 204
            result = await call_task
            assert wait_until(lambda: srv.live_calls() == 0, 10)  # the caller's side may stop first
            record = await stored(srv, client, call.sid)
    assert result.frames and " ".join(text for text, _ in tts.calls) == MESSAGE
    assert record["end_reason"] == "voicemail_left"
    assert record["summary"]["answering"]["message"]["cue"] == "carrier"
    assert record["summary"]["answering"]["decided_by"] == "detector"


async def test_a_machine_is_hung_up_on_without_a_word_by_default(twilio, tmp_path) -> None:
    tts = ScriptedTTS(ms_per_char=2, chunk_ms=100)
    greeting, _ = machine_greeting("en-IN")
    with server(twilio, tmp_path, tts) as srv:  # no agent file: VOICEMAIL_ACTION=hang_up
        async with httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
            call = await place(client, twilio, "en-IN")
            result = await answer(srv, twilio, call, greeting)
            assert wait_until(lambda: srv.live_calls() == 0, 10)
            record = await stored(srv, client, call.sid)
    assert result.frames == [] and tts.calls == [] and twilio.hung_up(call)
    assert record["end_reason"] == "voicemail" and record["answered_by"] == "machine"
    assert record["amd"]["detector"]["reason"] == "long_greeting"


async def test_a_network_announcement_is_known_by_what_it_says(twilio, tmp_path) -> None:
    """Too short to be a greeting by its length alone (2.2 s): the STT hears a machine's phrase."""
    text = "The number you are calling is switched off."
    announcement = silence(300, 8000) + speech_pcm(text) + silence(300, 8000)
    stt = ScriptedSTT(script=(text,))
    tts = ScriptedTTS(ms_per_char=2, chunk_ms=100)
    with server(twilio, tmp_path, tts, stt=stt) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
            call = await place(client, twilio, "en-IN")
            result = await answer(srv, twilio, call, announcement)
            assert wait_until(lambda: srv.live_calls() == 0, 10)
            record = await stored(srv, client, call.sid)
    assert result.frames == [] and tts.calls == [] and twilio.hung_up(call)
    detector = record["amd"]["detector"]
    assert (detector["answered_by"], detector["reason"], detector["phrase"]) == ("machine", "phrase", "switched off")
    assert record["end_reason"] == "voicemail"


async def test_a_person_saying_hello_is_greeted_at_once(twilio, tmp_path) -> None:
    tts = ScriptedTTS(ms_per_char=2, chunk_ms=100)
    with server(twilio, tmp_path, tts, AGENT) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
            call = await place(client, twilio, "en-IN")
            # wait_ms=0: the simulator's own silence follows, and it listens for the greeting from there
            config = SimConfig(srv.url, [CallerTurn(human_hello("en-IN", wait_ms=0), 8000, after_s=0.0)],
                               call_sid=call.sid, answer_url=call.one("Url"), auth_token=twilio.auth_token,
                               admin_token=ADMIN_TOKEN, speed=SPEED, reply_wait_s=30, timeout_s=40)
            result = await simulate(config)
            assert wait_until(lambda: srv.live_calls() == 0, 10)
            # Twilio's verdict comes after the call: stored on the record all the same.
            assert await twilio.amd(call, "human") == 204
            record = await stored(srv, client, call.sid)
    assert " ".join(text for text, _ in tts.calls) == "Hello! How can I help you today?"
    assert result.frames and record["answered_by"] == "human" and record["end_reason"] == "caller_hangup"
    # Greeted on the short answer's pause (stream time), well before the 3 s silent-answer fallback.
    assert record["amd"]["detector"]["reason"] == "short_answer" and record["amd"]["detector"]["at_ms"] < 2000
    assert record["amd"]["twilio"]["carrier_answered_by"] == "human"
    assert not twilio.hung_up(call)


async def test_a_key_pressed_while_screening_is_a_person(twilio, tmp_path) -> None:
    tts = ScriptedTTS(ms_per_char=2, chunk_ms=100)
    with server(twilio, tmp_path, tts) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
            call = await place(client, twilio, "en-IN")
            result = await simulate(SimConfig(srv.url, [], call_sid=call.sid, answer_url=call.one("Url"),
                                              auth_token=twilio.auth_token, dtmf=[("5", 0.4)], speed=SPEED,
                                              reply_wait_s=10, timeout_s=20))
            assert wait_until(lambda: srv.live_calls() == 0, 10)
            record = await stored(srv, client, call.sid)
    assert result.frames and tts.calls  # greeted
    detector = record["amd"]["detector"]
    assert (detector["answered_by"], detector["reason"], detector["digit"]) == ("human", "dtmf", "5")
    assert detector["at_ms"] < 3000  # the key decided, not the silent-answer timeout


async def test_a_forged_amd_callback_is_refused(twilio, tmp_path) -> None:
    with server(twilio, tmp_path, ScriptedTTS()) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
            call = await place(client, twilio, "en-IN")
            forged = await twilio.amd(call, "machine_start", token="not-the-auth-token")
            unsigned = await client.post("/twilio/amd", data={"CallSid": call.sid, "AnsweredBy": "human"})
            record = await stored(srv, client, call.sid)
    assert forged == 403 and unsigned.status_code == 403
    assert record["answered_by"] is None and record["amd"] == {}


async def test_a_machine_answering_a_plivo_call_is_detected_by_our_own_detector(tmp_path) -> None:
    """Plivo has no AMD of its own here: the stream its answer XML opens is marked outbound, and our
    detector alone hears the Hindi greeting and hangs up."""
    tts = ScriptedTTS(ms_per_char=2, chunk_ms=100)
    greeting, _ = machine_greeting("hi-IN")
    port = free_port()
    async with FakePlivoRest() as plivo:
        settings = make_settings(public_url=f"http://127.0.0.1:{port}", port=port, data_dir=tmp_path,
                                 admin_token=ADMIN_TOKEN, plivo_auth_id=plivo.auth_id,
                                 plivo_auth_token=plivo.auth_token, plivo_caller_id="+918033000000",
                                 plivo_api_base=plivo.base_url)
        with live_server(settings, scripted_engines(tts=tts)) as srv:
            async with httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
                placed = await client.post("/calls/outbound", headers=ADMIN, json={
                    "to": "+919876543210", "language": "hi-IN", "carrier": "plivo"})
                assert placed.status_code == 201, placed.text
                (call,) = plivo.placed
                answer = await plivo.answer(call)
                stream = ET.fromstring(answer.text).find("./Stream")
                assert stream is not None
                extra = dict(part.split("=", 1) for part in stream.get("extraHeaders", "").split(","))
                assert extra["direction"] == "outbound"
                result = await simulate(SimConfig(srv.url, [CallerTurn(greeting, 8000, after_s=0.0)],
                                                  carrier="plivo", call_sid=call.call_uuid, stream_params=extra,
                                                  speed=SPEED, hang_up=False, reply_wait_s=30, timeout_s=40))
                assert wait_until(lambda: srv.live_calls() == 0, 10)
                record = await stored(srv, client, call.call_uuid)
    assert result.frames == [] and result.closed_by_server and call.hung_up
    assert record["end_reason"] == "voicemail" and record["answered_by"] == "machine"
    assert list(record["amd"]) == ["detector"]


async def test_an_exotel_call_we_placed_is_screened_though_its_stream_cannot_say_so(tmp_path) -> None:
    """Exotel's Voicebot stream carries nothing of the placement: the call id placed is what marks
    it outbound. An inbound Exotel call is not screened."""
    tts = ScriptedTTS(ms_per_char=2, chunk_ms=100)
    greeting, _ = machine_greeting("en-IN")
    port = free_port()
    async with FakeExotelRest() as exotel:
        settings = make_settings(public_url=f"http://127.0.0.1:{port}", port=port, data_dir=tmp_path,
                                 admin_token=ADMIN_TOKEN, exotel_sid=exotel.sid, exotel_api_key=exotel.api_key,
                                 exotel_api_token=exotel.api_token, exotel_caller_id="+918044000000",
                                 exotel_app_id=exotel.app_id, exotel_api_base=exotel.base_url)
        with live_server(settings, scripted_engines(tts=tts)) as srv:
            async with httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
                placed = await client.post("/calls/outbound", headers=ADMIN, json={
                    "to": "+919876543210", "language": "en-IN", "carrier": "exotel"})
                assert placed.status_code == 201, placed.text
                (call,) = exotel.placed
                machine = await simulate(SimConfig(
                    srv.url, [CallerTurn(greeting, 8000, after_s=0.0)], carrier="exotel", webhook=True,
                    call_sid=call.sid, basic_auth=(exotel.api_key, exotel.api_token), speed=SPEED,
                    hang_up=False, reply_wait_s=30, timeout_s=40))
                assert wait_until(lambda: srv.live_calls() == 0, 10)
                record = await stored(srv, client, call.sid)
                inbound = await simulate(SimConfig(srv.url, [], carrier="exotel", webhook=True,
                                                   basic_auth=(exotel.api_key, exotel.api_token),
                                                   reply_wait_s=3, timeout_s=10))
                assert wait_until(lambda: srv.live_calls() == 0, 10)
                inbound_record = await stored(srv, client, inbound.call_id)
    assert machine.frames == [] and machine.closed_by_server  # hung up (Exotel: the socket closes)
    assert record["end_reason"] == "voicemail" and record["answered_by"] == "machine"
    assert inbound.frames and inbound_record["answered_by"] is None  # greeted at once, never screened
    assert "answering" not in inbound_record["summary"]
