"""The caller hangs up at every stage of a turn: while we transcribe, think, synthesize, or play.
No exception escapes, the provider call in flight is cancelled, nothing is left running, and the
call record is written."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS
from tests.e2e.fixtures import UTTERANCES
from tests.e2e.harness import e2e_settings, free_port, live_server, scripted_engines
from tests.e2e.test_multilingual_sarvam import fetch_record
from tests.e2e.wire import TwilioCaller

REPLY = "This reply is long enough to keep the line busy for a good while."


class Gate:
    """Set (from the server's thread) when a provider call reaches the held stage, or is cancelled."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.cancelled = threading.Event()

    async def hold(self) -> None:
        self.entered.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


class HeldSTT(ScriptedSTT):
    gate: Gate

    async def transcribe(self, audio: bytes, sample_rate: int, language: str | None = None) -> Any:
        await self.gate.hold()
        return await super().transcribe(audio, sample_rate, language)


class HeldLLM(ScriptedLLM):
    gate: Gate

    async def stream(self, messages: Any, language: str, tools: Any = None) -> Any:
        await self.gate.hold()
        async for token in super().stream(messages, language, tools):
            yield token


class HeldTTS(ScriptedTTS):
    gate: Gate

    async def synthesize(self, text: str, language: str) -> Any:
        if text == REPLY:
            await self.gate.hold()
        async for chunk in super().synthesize(text, language):
            yield chunk


def engines(stage: str, gate: Gate) -> dict[str, Any]:
    tts_kw = dict(sample_rate=8000, ms_per_char=5, chunk_ms=100)
    stt, llm = ScriptedSTT(script=("tell me something",)), ScriptedLLM(replies=(REPLY,))
    tts = ScriptedTTS(**tts_kw)
    if stage == "stt":
        stt = HeldSTT(script=("tell me something",))
        stt.gate = gate
    elif stage == "llm":
        llm = HeldLLM(replies=(REPLY,))
        llm.gate = gate
    elif stage == "tts":
        tts = HeldTTS(**tts_kw)
        tts.gate = gate
    else:  # playout: the reply is long audio, paced in real time; we hang up half a second in
        tts = ScriptedTTS(sample_rate=8000, ms_per_char=150, chunk_ms=200)
    return {"stt": stt, "llm": llm, "tts": tts}


@pytest.mark.parametrize("how", ["stop", "drop"])
@pytest.mark.parametrize("stage", ["stt", "llm", "tts", "playout"])
async def test_caller_hangs_up_mid_turn_nothing_escapes_and_the_record_is_written(stage, how, logs):
    gate = Gate()
    port = free_port()
    settings = e2e_settings(public_url=f"http://127.0.0.1:{port}", port=port, admin_token="adm",
                            end_of_turn_silence_ms=300)
    parts = engines(stage, gate)
    with live_server(settings, engines=lambda s: scripted_engines(**parts)) as server:
        caller = await TwilioCaller(server.ws_url).connect()
        assert await caller.wait_audio(0.1), "no greeting"
        await asyncio.sleep(0.3)
        greeting = len(caller.audio)
        await caller.say(UTTERANCES["en-IN"][0].pcm())
        await caller.silence(600)
        if stage == "playout":
            deadline = asyncio.get_running_loop().time() + 10
            while len(caller.audio) < greeting + 8000 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.02)
            assert len(caller.audio) >= greeting + 8000, "the reply never started playing"
        else:
            assert await asyncio.to_thread(gate.entered.wait, 10), f"the turn never reached {stage}"
        if how == "stop":
            await caller.stop()
            await caller.close()
        else:
            await caller.abort()

        left = await asyncio.to_thread(server.wait_tasks_settled, 5)
        assert server.live_calls() == 0
        record = await fetch_record(server, caller.call_id)

    assert left == [], left
    if stage != "playout":
        assert gate.cancelled.is_set(), f"the {stage} call in flight was not cancelled"
    assert record["status"] == "completed", record
    # The interrupted turn is kept with what the caller said and heard (nothing: no sentence of the
    # reply finished playing); during STT there is nothing to keep yet.
    turns = [(t["text"], t["heard"], t["interrupted"]) for t in record["turns"]]
    assert turns == ([] if stage == "stt" else [("tell me something", "", True)]), turns
    assert record.get("end_reason") in ({"caller_hangup"} if how == "stop" else {"disconnected", "caller_hangup"})
    assert not logs.tracebacks(), logs.tracebacks()[:2]
    assert not [r for r in logs.records if r["level"] in ("ERROR", "CRITICAL")], \
        [r["message"] for r in logs.records if r["level"] in ("ERROR", "CRITICAL")][:3]
