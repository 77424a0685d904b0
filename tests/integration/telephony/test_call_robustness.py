"""Calls that go wrong in small ways: they stay up, and other calls never notice."""

from __future__ import annotations

import asyncio
import json
import statistics

import pytest
import websockets

from sutradhar.engines.base import ProviderError
from sutradhar.testing.scripted import ScriptedLLM, ScriptedTTS
from sutradhar.testing.simulator import CallerTurn, SimConfig, simulate
from tests.support.audio import speech_pcm
from tests.support.server import (
    RecordingRecorder,
    wait_until,
)
from tests.support.server import (
    scripted_server as server_with,
)


def turn(text: str, barge_in_at: float | None = None) -> CallerTurn:
    return CallerTurn(speech_pcm(text), 8000, barge_in_at)



async def test_ten_concurrent_calls_each_get_answers_with_steady_pacing() -> None:
    with server_with(tts=ScriptedTTS(ms_per_char=30, chunk_ms=200)) as srv:
        results = await asyncio.gather(*(simulate(SimConfig(srv.url, [turn("Hello, what is my balance?")],
                                                            timeout_s=30)) for _ in range(10)))
        # Each call ends on the server as its socket closes, a moment after the caller hangs up.
        assert wait_until(lambda: len(srv.services.calls) == 0)
    assert all(len(r.latencies_ms) == 1 for r in results)
    jitter = [j for r in results for j in r.pacing().jitter_ms]
    assert len(jitter) > 50 and statistics.median(jitter) < 1.5  # each message one message's audio after the last
    assert all(r.summary["playout"]["underruns"] == 0 for r in results)


async def test_silero_vad_runs_a_call_too() -> None:
    with server_with(vad="silero") as srv:
        result = await simulate(SimConfig(srv.url, [turn("Hello, what is my balance?")], speed=2, timeout_s=20))
    assert len(result.latencies_ms) == 1 and result.summary["turns"][0]["text"] == "hello there"


async def test_oversized_message_closes_only_that_socket() -> None:
    with server_with(max_message_bytes=4096) as srv:
        healthy = asyncio.create_task(simulate(SimConfig(srv.url, [turn("Hello.")], speed=2, timeout_s=20)))
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/twilio/media", max_size=None) as ws:
            await ws.send(json.dumps({"event": "start", "streamSid": "MZ", "start": {
                "streamSid": "MZ", "callSid": "CAbig", "customParameters": {}}}))
            await ws.send(json.dumps({"event": "media", "media": {"payload": "A" * 10_000}}))
            with pytest.raises(websockets.ConnectionClosed) as info:
                while True:
                    await ws.recv()
            assert info.value.rcvd.code == 1009
        assert len((await healthy).latencies_ms) == 1


async def test_failing_tts_and_a_broken_call_store_do_not_end_the_call() -> None:
    class BrokenRecorder(RecordingRecorder):
        async def turn_completed(self, call_id: str, record: dict) -> None:
            raise RuntimeError("database is down")

    tts = ScriptedTTS(ms_per_char=20, failures=[None, None, ProviderError("tts down", provider="scripted-tts")])
    with server_with(tts=tts, recorder=BrokenRecorder()) as srv:
        # greeting (2 sentences) fine; the first reply's first sentence has no audio; then all is well
        result = await simulate(SimConfig(srv.url, [turn("Hello."), turn("And again.")], speed=2, timeout_s=30))
    assert [t["reply"] for t in result.summary["turns"]] == ["Sure. I can help with that."] * 2
    assert len(result.latencies_ms) == 2


async def test_speech_while_the_agent_is_still_thinking_cancels_that_reply() -> None:
    # The first LLM call is the reply the caller talks over; every later one (a reply prepared at
    # a short pause and undone is a call too) answers the second turn.
    llm = ScriptedLLM(first_token_delay_s=2.0,
                      responder=lambda messages, language: "First answer." if len(llm.calls) == 1
                      else "Second answer.")
    with server_with(llm=llm) as srv:
        second = CallerTurn(speech_pcm("Actually, wait."), 8000, after_s=1.0)  # while the LLM thinks
        result = await simulate(SimConfig(srv.url, [turn("Hello."), second], timeout_s=30))
    turns = result.summary["turns"]
    # the first reply was cancelled before any of it was spoken: no clear needed, no record of it
    assert result.clears == []
    assert [t["reply"] for t in turns] == ["Second answer."]
    assert [m["content"] for m in result.summary["context"] if m["role"] == "assistant"][-1] == "Second answer."
    assert 2000 < result.turns[1].latency_ms < 3500  # end-of-turn + the 2 s the LLM takes


async def test_a_real_espeak_voice_reaches_the_caller_as_speech() -> None:
    """Real TTS (espeak-ng, 22 kHz) through resampling, mu-law and pacing: the caller hears speech."""
    from sutradhar.audio.turns import SpeechSegment, TurnDetector
    from sutradhar.audio.vad import WebRtcVAD
    from sutradhar.engines.local.espeak import EspeakTTS

    llm = ScriptedLLM(replies=("आपका बैलेंस पाँच सौ रुपये है। और कुछ?",))
    with server_with(llm=llm, tts=EspeakTTS()) as srv:
        result = await simulate(SimConfig(srv.url, [CallerTurn(speech_pcm("mera balance batao", "hi"), 8000)],
                                          ivr_digit="2", speed=2, timeout_s=30))
    assert result.summary["turns"][0]["language"] == "hi-IN"
    audio = bytes(result.agent_audio) + bytes(16000)  # what was received, then a second of silence
    detector = TurnDetector(WebRtcVAD(8000), end_of_turn_ms=300)
    utterances = [e for i in range(0, len(audio) - 319, 320)
                  if isinstance(e := detector.push(audio[i:i + 320]), SpeechSegment)]
    assert utterances  # webrtc VAD hears speech in what came down the line
    assert sum(len(u.audio) for u in utterances) / 2 / 16000 > 2.0  # seconds of it, not a blip


async def test_a_batch_stt_chain_is_asked_to_stream_once_a_segment_not_every_frame(monkeypatch) -> None:
    from sutradhar.telephony import session as session_module

    asked: list[str | None] = []
    real = session_module.open_transcription

    def counting(router, sample_rate, language, on_interim=None, detect=False):  # noqa: ANN001, ANN202
        asked.append(language)
        return real(router, sample_rate, language, on_interim, detect=detect)

    monkeypatch.setattr(session_module, "open_transcription", counting)
    with server_with() as srv:
        result = await simulate(SimConfig(srv.url, [turn("Hello, what is my balance?")], speed=2, timeout_s=20))
    assert len(result.latencies_ms) == 1
    # the utterance is ~1.5 s (75 frames) of speech: one question per voiced segment, a handful at most
    assert 1 <= len(asked) <= 4
