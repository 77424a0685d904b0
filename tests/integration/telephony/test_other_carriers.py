"""Exotel, Plivo and the browser end to end, against the real server with scripted engines."""

from __future__ import annotations

import json
import statistics
import xml.etree.ElementTree as ET

import httpx
import pytest
import websockets

from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS
from sutradhar.testing.simulator import CallerTurn, SimConfig, simulate
from tests.support.audio import speech_pcm
from tests.support.http import fake_api
from tests.support.server import (
    RecordingRecorder,
    wait_until,
)
from tests.support.server import (
    scripted_server as server_with,
)


def turn(text: str, voice: str = "en-us", rate: int = 8000, barge_in_at: float | None = None) -> CallerTurn:
    return CallerTurn(speech_pcm(text, voice, rate), rate, barge_in_at)



LONG = "We have three plans. The basic plan is cheap. The premium plan has everything you need."


@pytest.mark.parametrize("rate", [8000, 16000])
async def test_exotel_call_in_telugu_with_100ms_chunks(rate: int) -> None:
    stt = ScriptedSTT(script=("నా బ్యాలెన్స్ ఎంత", "ధన్యవాదాలు"))
    llm = ScriptedLLM(replies=("మీ బ్యాలెన్స్ ఐదు వందల రూపాయలు.", "సంతోషం."))
    with server_with(stt=stt, llm=llm) as srv:
        result = await simulate(SimConfig(srv.url, [turn("నా బ్యాలెన్స్ ఎంత", "te"), turn("ధన్యవాదాలు", "te")],
                                          carrier="exotel", sample_rate=rate, language="te-IN", speed=2, timeout_s=30))
    assert result.summary["language"] == "te-IN"
    assert [t["reply"] for t in result.summary["turns"]] == list(llm.replies)
    assert len(result.latencies_ms) == 2
    # every outbound chunk is 100 ms (a multiple of 320 bytes), paced ~100 ms apart
    assert {size for _, size in result.frames} == {rate // 10 * 2}
    assert statistics.median(result.frame_gaps_ms()) == pytest.approx(100, abs=5)
    assert [n for _, n in result.marks_echoed] == [n for _, n in result.marks]


async def test_exotel_barge_in_sends_clear() -> None:
    llm = ScriptedLLM(replies=(LONG, "Okay."))
    with server_with(llm=llm, tts=ScriptedTTS(ms_per_char=30, chunk_ms=100)) as srv:
        result = await simulate(SimConfig(srv.url, [turn("Tell me about plans."), turn("Stop please.", barge_in_at=1.0)],
                                          carrier="exotel", timeout_s=30))
    assert len(result.clears) == 1
    assert [m for m in result.summary["context"] if m["interrupted"]][0]["content"].startswith("We have three plans.")


async def test_exotel_rejects_an_unsupported_rate() -> None:
    with server_with() as srv:
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(f"ws://127.0.0.1:{srv.port}/exotel/media?sample-rate=44100"):
                pass


async def test_plivo_answer_xml_streams_bidirectional_mulaw_with_language_header() -> None:
    with server_with() as srv:
        async with httpx.AsyncClient(base_url=srv.url) as client:
            xml = (await client.post("/plivo/answer?language=hi-IN", data={"CallUUID": "u-1"})).text
    stream = ET.fromstring(xml).find("Stream")
    assert stream.get("bidirectional") == "true" and stream.get("keepCallAlive") == "true"
    assert stream.get("contentType") == "audio/x-mulaw;rate=8000"
    assert stream.get("extraHeaders") == "language=hiIN"
    assert stream.text == f"ws://127.0.0.1:{srv.port}/plivo/media"


async def test_plivo_call_barge_in_then_goodbye_hangs_up_with_delete() -> None:
    recorder = RecordingRecorder()
    stt = ScriptedSTT(script=("tell me about plans", "stop", "bye"))
    llm = ScriptedLLM(replies=(LONG, "Sure, stopping."))
    with fake_api(status=204) as api, server_with(recorder, stt=stt, llm=llm, tts=ScriptedTTS(ms_per_char=30, chunk_ms=100),
                                                  plivo_auth_id="MAid", plivo_auth_token="ptok",
                                                  plivo_api_base=api.url) as srv:
        result = await simulate(SimConfig(
            srv.url, [turn("Tell me about plans."), turn("Stop.", barge_in_at=1.0), turn("Bye.")],
            carrier="plivo", call_sid="11111111-2222-3333-4444-555555555555", language="en-IN",
            hang_up=False, timeout_s=30))
        assert wait_until(lambda: recorder.ended)
    assert len(result.clears) == 1  # clearAudio
    assert [(r.method, r.path) for r in api.requests] == [
        ("DELETE", "/v1/Account/MAid/Call/11111111-2222-3333-4444-555555555555/")]
    assert api.requests[0].at >= result.marks_echoed[-1][0]  # after the goodbye was heard
    assert recorder.ended[0][1] == "agent_hangup" and result.closed_by_server


async def test_browser_page_and_socket_require_the_token() -> None:
    with server_with(browser_token="s3cret") as srv:
        async with httpx.AsyncClient(base_url=srv.url) as client:
            assert (await client.get("/")).status_code == 403
            page = await client.get("/?token=s3cret")
        assert page.status_code == 200 and "getUserMedia" in page.text and 'value="te-IN"' in page.text
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(f"ws://127.0.0.1:{srv.port}/browser/media?token=wrong"):
                pass
        result = await simulate(SimConfig(srv.url, [], carrier="browser", token="s3cret", reply_wait_s=2, timeout_s=10))
        assert any(e.get("type") == "started" for e in result.events)


async def test_browser_call_with_speech_and_typed_turns_reports_transcripts_and_latency() -> None:
    stt = ScriptedSTT(script=("hello from the browser",))
    llm = ScriptedLLM(replies=("Hi! Nice to hear you.", "Typed reply."))
    with server_with(stt=stt, llm=llm) as srv:
        result = await simulate(SimConfig(srv.url, [turn("Hello from the browser.", rate=16000),
                                                    CallerTurn(text="this one I typed")],
                                          carrier="browser", language="en-IN", speed=2, timeout_s=30))
    transcripts = [e["text"] for e in result.events if e.get("type") == "transcript"]
    assert transcripts == ["hello from the browser", "this one I typed"]
    turns = [e for e in result.events if e.get("type") == "turn"]
    assert [t["reply"] for t in turns] == list(llm.replies)
    assert turns[0]["timings"]["v2v_wire_ms"] > 0 and turns[0]["language"] == "en-IN"
    # whole 20 ms frames of 16 kHz PCM16, up to PLAYOUT_MESSAGE_MS (100) in one binary message
    assert all(size % 640 == 0 and size <= 3200 for _, size in result.frames)
    assert len(result.latencies_ms) == 2


async def test_exotel_media_socket_requires_the_configured_basic_auth() -> None:
    import base64

    def auth(creds: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(creds.encode()).decode()}

    url_path = "/exotel/media?sample-rate=8000"
    with server_with(exotel_api_key="KEY", exotel_api_token="TOKEN") as srv:
        url = f"ws://127.0.0.1:{srv.port}{url_path}"
        for headers in ({}, auth("KEY:WRONG"), {"Authorization": "Bearer KEY:TOKEN"}):
            with pytest.raises(websockets.InvalidStatus) as info:
                async with websockets.connect(url, additional_headers=headers):
                    pass
            assert info.value.response.status_code == 403
        async with websockets.connect(url, additional_headers=auth("KEY:TOKEN")) as ws:
            await ws.send(json.dumps({"event": "connected"}))  # accepted: the handshake passed
