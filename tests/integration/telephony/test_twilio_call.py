"""Twilio end to end: the real server (uvicorn) with scripted engines, driven over real WebSockets
by the simulator with espeak speech converted like a phone line."""

from __future__ import annotations

import asyncio
import base64
import json
import statistics
import xml.etree.ElementTree as ET

import httpx
import pytest
import websockets
from twilio.request_validator import RequestValidator

from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS
from sutradhar.testing.simulator import CallerTurn, CallResult, SimConfig, simulate
from tests.support.audio import speech_pcm
from tests.support.http import fake_api
from tests.support.server import (
    RecordingRecorder,
    wait_until,
)
from tests.support.server import (
    scripted_server as server_with,
)


def turn(text: str, voice: str = "en-us", barge_in_at: float | None = None) -> CallerTurn:
    return CallerTurn(speech_pcm(text, voice), 8000, barge_in_at)



async def test_ivr_menu_lists_languages_in_configured_order_and_repeats_once() -> None:
    with server_with(languages=["en-IN", "hi-IN", "gu-IN"], default_language="en-IN") as srv:
        async with httpx.AsyncClient(base_url=srv.url) as client:
            menu = (await client.post("/twilio/voice", data={"CallSid": "CA1"})).text
            gather = ET.fromstring(menu).find("Gather")
            assert gather.get("numDigits") == "1" and gather.get("action").startswith("/twilio/language")
            says = [(s.get("language"), s.text) for s in gather.findall("Say")]
            assert says[-3:] == [("en-IN", "For English, press 1."), ("hi-IN", "हिंदी के लिए 2 दबाएँ।"),
                                 ("gu-IN", "ગુજરાતી માટે 3 દબાવો.")]
            # a wrong key plays the menu once more ...
            again = (await client.post("/twilio/language?attempt=1", data={"CallSid": "CA1", "Digits": "9"})).text
            assert "<Gather" in again and "attempt=2" in again
            # ... and then the default language is used
            final = (await client.post("/twilio/language?attempt=2", data={"CallSid": "CA1"})).text
            stream = ET.fromstring(final).find("./Connect/Stream")
            assert stream.get("url") == f"ws://127.0.0.1:{srv.port}/twilio/media"
            params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
            assert params == {"language": "en-IN", "call_id": "CA1"}


async def test_ivr_digit_sets_the_stream_language_and_the_call_speaks_it() -> None:
    tts = ScriptedTTS(ms_per_char=15, chunk_ms=100)
    with server_with(tts=tts) as srv:  # languages te, hi, en, gu: digit 2 is Hindi
        result = await simulate(SimConfig(srv.url, [turn("namaste, mera balance kya hai", "hi")], speed=2,
                                          ivr_digit="2", timeout_s=20))
        assert result.language == "hi-IN"
        assert await srv.services.ivr_languages.get(result.call_id) == "hi-IN"
        assert tts.calls[0] == ("नमस्ते!", "hi-IN")  # the greeting, in Hindi
        assert result.summary["turns"][0]["language"] == "hi-IN"


async def test_full_two_turn_call_with_records_marks_and_paced_audio() -> None:
    recorder = RecordingRecorder()
    stt = ScriptedSTT(script=("what is my balance", "thanks a lot"))
    llm = ScriptedLLM(replies=("Your balance is five hundred rupees. Anything else?", "You are welcome."))
    with server_with(recorder, stt=stt, llm=llm) as srv:
        result = await simulate(SimConfig(srv.url, [turn("What is my account balance?"), turn("Thanks a lot.")],
                                          language="en-IN", timeout_s=30))
        assert wait_until(lambda: recorder.ended)
    assert [t["text"] for t in result.summary["turns"]] == ["what is my balance", "thanks a lot"]
    assert [t["reply"] for t in result.summary["turns"]] == list(llm.replies)
    # every turn got audio back; voice-to-voice is end-of-turn silence plus a little
    assert len(result.latencies_ms) == 2
    # a complete turn is answered at the 200 ms pause (TURN_POLICY=semantic)
    assert all(150 <= ms < 1500 for ms in result.latencies_ms), result.latencies_ms
    # marks: one per sentence, all echoed, and "played" in order
    assert [name for _, name in result.marks_echoed] == [name for _, name in result.marks]
    assert len(result.marks) >= 5  # greeting (2 sentences) + 2 + 1
    # the records: started, two turns (with the wire-level voice-to-voice), ended by the caller
    assert recorder.started[0][0] == result.call_id
    assert [r["text"] for _, r in recorder.turns] == ["what is my balance", "thanks a lot"]
    assert all(r["timings"].get("v2v_wire_ms") for _, r in recorder.turns)
    assert recorder.ended[0][1] == "caller_hangup"
    assert len(srv.services.calls) == 0


@pytest.mark.parametrize("message_ms", [20, 100])
async def test_outbound_audio_is_paced_in_real_time_not_burst(message_ms: int) -> None:
    llm = ScriptedLLM(replies=("This reply is long enough to take a few seconds to say out loud.",))
    with server_with(llm=llm, tts=ScriptedTTS(ms_per_char=40, chunk_ms=500), playout_message_ms=message_ms) as srv:
        result = await simulate(SimConfig(srv.url, [turn("Tell me something.")], timeout_s=30))
    times = [t for t, _ in result.frames]
    seconds = result.frame_seconds()
    # Whole 20 ms frames (160 mu-law bytes each), at most PLAYOUT_MESSAGE_MS in one message; the
    # TTS's 500 ms chunks fill messages to the limit, only a sentence's last one is shorter.
    assert all(size % 320 == 0 and size <= message_ms * 16 for _, size in result.frames)
    assert statistics.median(seconds) == pytest.approx(message_ms / 1000)
    pacing = result.pacing()
    assert pacing.paced > 20 and statistics.median(pacing.jitter_ms) < 1.5
    # no burst: by any moment, at most the audio due by then + a message + the 40 ms lead has come
    start = times[0]
    for i, t in enumerate(times):
        assert sum(seconds[:i]) <= (t - start) + message_ms / 1000 + 0.04 + 0.01
    # a 500 ms TTS chunk is not sent at once: the reply takes as long to arrive as it lasts
    reply = [(t, d) for t, d in zip(times, seconds) if t > result.turns[0].speech_end]
    assert reply[-1][0] - reply[0][0] == pytest.approx(sum(d for _, d in reply[:-1]) - 0.04, abs=0.15)


LONG_REPLY = "We have three plans. The basic plan is cheap. The premium plan has everything you need."


async def barged_in_call(tts: ScriptedTTS) -> tuple[CallResult, RecordingRecorder]:
    """A caller who asks about plans, then cuts into the long reply 1.0 s in with another question."""
    stt = ScriptedSTT(script=("tell me about your plans", "stop, what about prices"))
    llm = ScriptedLLM(replies=(LONG_REPLY, "Prices start at one hundred rupees."))
    recorder = RecordingRecorder()
    with server_with(recorder, stt=stt, llm=llm, tts=tts) as srv:
        result = await simulate(SimConfig(
            srv.url, [turn("Tell me about your plans."), turn("Stop, what about prices?", barge_in_at=1.0)],
            timeout_s=30))
        assert wait_until(lambda: recorder.ended)
    return result, recorder


async def test_barge_in_clears_stops_audio_and_context_keeps_only_what_was_heard() -> None:
    long_reply = LONG_REPLY
    # first sentence ~0.6 s, the whole reply ~2.6 s
    result, recorder = await barged_in_call(ScriptedTTS(ms_per_char=30, chunk_ms=100))
    assert len(result.clears) == 1
    clear_at = result.clears[0]
    # the caller's barge-in speech started 1.0 s into the reply: the reply paused ~barge_in_min_speech
    # later (a backchannel could still resume it), and the clear came once it was an interruption
    barge_start = result.turns[1].speech_end - len(speech_pcm("Stop, what about prices?")) / 16000
    stale = [t for t, _ in result.frames if barge_start + 0.6 < t < result.turns[1].speech_end]
    assert not stale, [round(t - barge_start, 2) for t in stale]
    assert barge_start < clear_at < result.turns[1].speech_end
    # the context holds only the sentence(s) whose marks came back before the clear
    context = result.summary["context"]
    interrupted = [m for m in context if m["interrupted"]]
    assert len(interrupted) == 1
    heard = interrupted[0]["content"]
    assert heard.startswith("We have three plans.") and "premium" not in heard
    assert result.summary["turns"][0]["reply"] == long_reply  # the record keeps what was written
    # ... and the stored turn says it was interrupted, with what the caller heard
    first = [r for _, r in recorder.turns if r["text"] == "tell me about your plans"]
    assert first[-1]["interrupted"] is True and first[-1]["reply"] == long_reply
    assert first[-1]["heard"].startswith("We have three plans.") and "premium" not in first[-1]["heard"]
    assert result.summary["barge_ins"] == 1
    assert len(result.latencies_ms) == 2  # and the barge-in turn was answered
    # While it played, the stored turn said so and held what the marks had confirmed (crash safety);
    # the second reply, heard to its end, was then marked complete.
    assert first[0]["playing"] is True and long_reply.startswith(first[0]["heard"])
    progress = [(turn, heard, playing) for _, turn, heard, playing in recorder.heard]
    assert (first[0]["turn_id"], "We have three plans.", True) in progress
    second = [r for _, r in recorder.turns if r["text"] == "stop, what about prices"][0]
    assert progress[-1] == (second["turn_id"], None, False)


async def test_caller_audio_reaches_the_call_through_the_protocols_sink(monkeypatch: pytest.MonkeyPatch) -> None:
    """Most frames are taken straight from the socket (server/websocket_protocol.py's sink, not
    the receive queue); a frame whose handling must wait (the barge-in) goes to the stream's task;
    the call comes out as it always did. The simulator's client asks for permessage-deflate, as
    browsers do; the server declines it, so its frames take the short path too."""
    from sutradhar.telephony import media

    outcomes = {"taken": 0, "awaited": 0, "queued": 0}
    make = media._frame_sink

    def counting(*args, **kwargs):
        sink = make(*args, **kwargs)

        def take(message):
            out = sink(message)
            outcomes["taken" if out is None else "awaited" if media.THEN in out else "queued"] += 1
            return out
        return take

    monkeypatch.setattr(media, "_frame_sink", counting)
    result, recorder = await barged_in_call(ScriptedTTS(ms_per_char=30, chunk_ms=100))
    assert len(result.clears) == 1 and len(result.latencies_ms) == 2
    assert [r["text"] for _, r in recorder.turns][-1] == "stop, what about prices"
    sent = sum(len(speech_pcm(t)) for t in ("Tell me about your plans.", "Stop, what about prices?")) // 320
    assert outcomes["taken"] > sent, outcomes
    assert outcomes["awaited"] >= 1, outcomes  # the barge-in's hold / interrupt, awaited in order
    assert outcomes["queued"] >= 1, outcomes  # marks and the stop still go through the loop


async def test_agent_audio_is_written_by_the_protocol_not_through_asgi(monkeypatch: pytest.MonkeyPatch) -> None:
    """Media, marks and the clear go to the socket from the protocol (`send_now`); the call
    comes out as it always did, heard by a real WebSocket client."""
    from sutradhar.server.websocket_protocol import MediaWebSocketProtocol

    written: list[tuple[bool, bool]] = []  # (taken by the direct write, the socket open then)
    send_now = MediaWebSocketProtocol.send_now

    def counting(self, message):
        taken = send_now(self, message)
        written.append((taken, not (self.close_sent or self.disconnected)))
        return taken

    monkeypatch.setattr(MediaWebSocketProtocol, "send_now", counting)
    result, recorder = await barged_in_call(ScriptedTTS(ms_per_char=30, chunk_ms=100))
    assert len(result.clears) == 1 and len(result.latencies_ms) == 2 and result.marks
    assert [r["text"] for _, r in recorder.turns][-1] == "stop, what about prices"
    # every media message, mark and clear the caller got was a direct write (and any sent as it hung up)
    direct = sum(taken for taken, _ in written)
    assert direct >= len(result.frames) + len(result.marks) + len(result.clears), written
    assert all(taken for taken, open_ in written if open_), written  # declined only once closing


async def test_a_reply_cut_off_while_still_being_made_is_a_turn_of_the_call() -> None:
    # made in real time, as a streaming TTS does: the caller cuts in while the reply is still coming
    result, recorder = await barged_in_call(ScriptedTTS(ms_per_char=30, chunk_ms=100, chunk_delay_s=0.1))
    assert len(result.clears) == 1 and result.summary["barge_ins"] == 1
    # the live summary (and the post-call transcript, made from the same turns) has both turns
    turns = result.summary["turns"]
    assert [t["text"] for t in turns] == ["tell me about your plans", "stop, what about prices"]
    assert turns[0]["interrupted"] is True and turns[0]["reply"] == LONG_REPLY
    assert turns[0]["heard"].startswith("We have three plans.") and "premium" not in turns[0]["heard"]
    # the interrupted turn keeps its voice-to-voice on the wire, in the record as in the summary
    first = [r for _, r in recorder.turns if r["text"] == "tell me about your plans"][-1]
    assert first["interrupted"] is True
    assert first["timings"]["v2v_wire_ms"] == turns[0]["timings"]["v2v_wire_ms"] > 0


async def test_dtmf_changes_language_repeats_and_transfers_via_rest() -> None:
    tts = ScriptedTTS(ms_per_char=10, chunk_ms=100)
    with fake_api() as api, server_with(tts=tts, transfer_number="+911234567890", twilio_account_sid="ACtest",
                                        twilio_auth_token="secret", twilio_api_base=api.url) as srv:
        result = await simulate(SimConfig(srv.url, [], auth_token="secret", call_sid="CAdtmf",
                                          dtmf=[("2", 1.0), ("*", 2.0), ("0", 3.0)], reply_wait_s=1,
                                          tail_s=5, hang_up=False, timeout_s=15))
    spoken = [text for text, _ in tts.calls]
    assert ("ठीक है, अब मैं हिंदी में बात करूँगा।", "hi-IN") in tts.calls  # digit 2: Hindi
    assert spoken.count("ठीक है, अब मैं हिंदी में बात करूँगा।") == 2  # "*": said again
    assert tts.calls[-1] == ("कृपया रुकिए, मैं आपको एक सहायक से जोड़ रहा हूँ।", "hi-IN")  # "0": transfer line
    assert len(api.requests) == 1
    request = api.requests[0]
    assert request.method == "POST" and request.path == "/2010-04-01/Accounts/ACtest/Calls/CAdtmf.json"
    assert request.form["Twiml"].endswith("<Response><Dial>+911234567890</Dial></Response>")
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"ACtest:secret").decode()
    # the transfer happened after its line was heard, then the stream was closed
    assert result.closed_by_server
    # the transfer was requested only after the transfer line's marks came back (it was heard)
    assert request.at >= result.marks_echoed[-1][0]


async def test_goodbye_is_heard_before_the_call_is_hung_up_via_rest() -> None:
    recorder = RecordingRecorder()
    stt = ScriptedSTT(script=("okay goodbye",))
    with fake_api() as api, server_with(recorder, stt=stt, twilio_account_sid="ACtest", twilio_auth_token="tok",
                                        twilio_api_base=api.url) as srv:
        result = await simulate(SimConfig(srv.url, [turn("Okay, goodbye.")], auth_token="tok", speed=2,
                                          hang_up=False, timeout_s=20))
        assert wait_until(lambda: recorder.ended)
    assert [r.form for r in api.requests] == [{"Status": "completed"}]
    assert result.closed_by_server
    goodbye = [(t, s) for (t, _), s in zip(result.frames, result.frame_seconds()) if t > result.turns[0].speech_end]
    goodbye_frames = [t for t, _ in goodbye]
    # "Thank you for calling. Goodbye!" (31 characters at 25 ms each) was sent in full ...
    assert sum(s for _, s in goodbye) >= 0.7
    # ... and the hang-up came only after its last mark was echoed (the caller heard it)
    assert api.requests[0].at >= result.marks_echoed[-1][0] >= goodbye_frames[-1]
    assert recorder.ended[0][1] == "agent_hangup"


async def test_forged_signatures_are_rejected_on_webhooks_and_the_stream() -> None:
    with server_with(twilio_account_sid="ACtest", twilio_auth_token="right-token") as srv:
        async with httpx.AsyncClient(base_url=srv.url) as client:
            form = {"CallSid": "CAx", "Digits": "1"}
            assert (await client.post("/twilio/voice", data=form)).status_code == 403
            forged = RequestValidator("wrong-token").compute_signature(srv.url + "/twilio/language", form)
            response = await client.post("/twilio/language", data=form, headers={"X-Twilio-Signature": forged})
            assert response.status_code == 403
            good = RequestValidator("right-token").compute_signature(srv.url + "/twilio/voice", form)
            assert (await client.post("/twilio/voice", data=form, headers={"X-Twilio-Signature": good})).status_code == 200
        ws_url = f"ws://127.0.0.1:{srv.port}/twilio/media"
        for headers in ({}, {"X-Twilio-Signature": RequestValidator("wrong").compute_signature(
                "wss://127.0.0.1:%d/twilio/media" % srv.port, {})}):
            with pytest.raises(websockets.InvalidStatus) as info:
                async with websockets.connect(ws_url, additional_headers=headers):
                    pass
            assert info.value.response.status_code == 403
        # the real Twilio (right token, wss URL, empty params) gets through, IVR included
        result = await simulate(SimConfig(srv.url, [], auth_token="right-token", ivr_digit="3", reply_wait_s=3,
                                          timeout_s=10))
        assert result.frames  # the greeting played


async def test_silent_stream_is_closed_after_the_inactivity_timeout() -> None:
    recorder = RecordingRecorder()
    with server_with(recorder, inactivity_timeout_s=1.0) as srv:
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/twilio/media") as ws:
            await ws.send(json.dumps({"event": "start", "streamSid": "MZ1",
                                      "start": {"streamSid": "MZ1", "callSid": "CAidle", "customParameters": {}}}))
            started = asyncio.get_running_loop().time()
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    message = json.loads(await ws.recv())  # the greeting plays, marks never come back
                    assert message["event"] in ("media", "mark")
            assert 0.9 < asyncio.get_running_loop().time() - started < 2.5
        assert wait_until(lambda: recorder.ended)
        assert recorder.ended[0][:2] == ("CAidle", "inactivity")
        assert len(srv.services.calls) == 0


async def test_malformed_and_out_of_order_messages_leave_this_call_and_another_running() -> None:
    stt = ScriptedSTT(script=("hello",))
    with server_with(stt=stt, tts=ScriptedTTS(ms_per_char=10, chunk_ms=100)) as srv:
        healthy = asyncio.create_task(simulate(SimConfig(srv.url, [turn("Hello there."), turn("How are you?")], speed=2,
                                                         timeout_s=30)))
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/twilio/media") as ws:
            garbage = [
                "not json at all", "[1, 2]", json.dumps({"event": "media", "media": {"payload": "AAAA"}}),  # before start
                json.dumps({"event": "mark", "mark": {"name": "1.0"}}),  # mark before start
                json.dumps({"event": "start", "streamSid": "MZ2",
                            "start": {"streamSid": "MZ2", "callSid": "CAbad", "customParameters": {}}}),
                json.dumps({"event": "media", "media": {"payload": "!!not base64!!"}}),
                json.dumps({"event": "media"}), json.dumps({"event": "bogus"}),
                json.dumps({"event": "mark", "mark": {"name": "never-sent"}}),
                json.dumps({"event": "start", "streamSid": "MZ3", "start": {"streamSid": "MZ3", "callSid": "CAother"}}),
                json.dumps({"event": "dtmf", "dtmf": {}}), b"\x00\x01binary",
            ]
            for message in garbage:
                await ws.send(message)
            await asyncio.sleep(0.3)
            assert "CAbad" in srv.services.calls  # still alive after all that
            # and it still works: caller speech gets an answer
            frame = speech_pcm("Are you still there?")
            from sutradhar.audio.codecs import pcm16_to_ulaw
            pcm = bytes(8000) + frame + bytes(16000)
            got_audio_after = False
            for i in range(0, len(pcm), 320):
                payload = base64.b64encode(pcm16_to_ulaw(pcm[i:i + 320].ljust(320, b"\0"))).decode()
                await ws.send(json.dumps({"event": "media", "streamSid": "MZ2", "media": {"payload": payload}}))
                await asyncio.sleep(0.005)
            deadline = asyncio.get_running_loop().time() + 5
            while asyncio.get_running_loop().time() < deadline:
                message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if message["event"] == "mark" and message["mark"]["name"].startswith("2."):
                    got_audio_after = True
                    break
            assert got_audio_after
            assert srv.services.calls.get("CAbad").malformed >= 5
        result = await healthy
        assert len(result.latencies_ms) == 2


async def test_calls_beyond_the_limit_are_refused_politely() -> None:
    with server_with(max_concurrent_calls=1) as srv:
        first = asyncio.create_task(simulate(SimConfig(srv.url, [], reply_wait_s=1, tail_s=2, timeout_s=10)))
        assert await asyncio.to_thread(wait_until, lambda: len(srv.services.calls) == 1)
        async with httpx.AsyncClient(base_url=srv.url) as client:
            busy = (await client.post("/twilio/voice", data={"CallSid": "CAbusy"})).text
        assert "<Hangup" in busy and "busy" in busy
        second = await simulate(SimConfig(srv.url, [], reply_wait_s=1, timeout_s=5))
        assert second.close_code == 1013 and "capacity" in second.close_reason
        await first
        assert (await simulate(SimConfig(srv.url, [], reply_wait_s=1, timeout_s=5))).frames  # server still fine
