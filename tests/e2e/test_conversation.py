"""A conversation over the real server: the LLM sees the right history every turn, and each turn's
latencies are recorded where operators look (the call record and /metrics)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from sutradhar.text.languages import LANGUAGES
from tests.e2e.calls import place_call
from tests.e2e.fixtures import UTTERANCES
from tests.e2e.harness import (
    configured_engines,
    e2e_settings,
    fast_voice,
    free_port,
    live_server,
)

EN = UTTERANCES["en-IN"]
ASKED = ["My name is Asha.", "I ordered a blue kettle.", "It has not arrived.", "The order number is 42.",
         "Please check again."]
ANSWERS = ["Hello Asha.", "A blue kettle, noted.", "Sorry about the delay.", "Order 42, thank you.",
           "It arrives tomorrow."]
STAGES = ("stt_ms", "llm_ttft_ms", "tts_ttfb_ms", "v2v_ms", "v2v_wire_ms")


def conversation(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in messages if m["role"] != "system"]


async def test_five_turn_call_the_llm_sees_the_whole_history_each_turn(fake_sarvam, fake_openai):
    port = free_port()
    settings = e2e_settings(stt=["sarvam"], llm=["openai"], tts=["sarvam"], sarvam_base_url=fake_sarvam.base_url,
                            sarvam_api_key=fake_sarvam.api_key, openai_base_url=fake_openai.base_url,
                            openai_api_key=fake_openai.api_key, public_url=f"http://127.0.0.1:{port}",
                            port=port, max_history=20)
    for text in ASKED:
        fake_sarvam.transcribe_as(text, "en-IN")
    fake_openai.reply(*ANSWERS)
    turns = [EN[i % len(EN)] for i in range(5)]
    with live_server(settings, engines=lambda s: configured_engines(s, tts=fast_voice())) as server:
        result = await place_call(server.url, turns, language="en-IN")

    chats = fake_openai.calls("chat")
    assert len(chats) == 5
    greeting = LANGUAGES["en-IN"].greeting
    for n, chat in enumerate(chats):
        expected = [("assistant", greeting)]
        for asked, answered in zip(ASKED[:n], ANSWERS[:n]):
            expected += [("user", asked), ("assistant", answered)]
        expected.append(("user", ASKED[n]))
        assert conversation(chat["json"]["messages"]) == expected, f"turn {n + 1}"
        assert chat["json"]["stream"] is True
    assert len(result.latencies_ms) == 5


def histogram_counts(body: str) -> dict[str, float]:
    """Sum of every `<histogram>_count` sample in a Prometheus exposition, by histogram name."""
    counts: dict[str, float] = {}
    for name, value in re.findall(r"^(sutradhar_\w+)_count(?:\{[^}]*\})? (\S+)$", body, re.M):
        counts[name] = counts.get(name, 0.0) + float(value)
    return counts


LATENCY_HISTOGRAMS = ("sutradhar_stt_latency_seconds", "sutradhar_llm_ttft_seconds",
                      "sutradhar_tts_ttfb_seconds", "sutradhar_reply_audio_ready_seconds",
                      "sutradhar_voice_to_voice_seconds")


async def test_per_turn_latencies_are_recorded_in_the_call_record_and_in_metrics():
    from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS
    from tests.e2e.harness import scripted_engines
    from tests.e2e.test_multilingual_sarvam import fetch_record

    port = free_port()
    settings = e2e_settings(public_url=f"http://127.0.0.1:{port}", port=port, admin_token="e2e-admin")

    def services(s: Any) -> Any:
        return scripted_engines(ScriptedSTT(script=("hello there", "and again"), delay_s=0.05),
                                 ScriptedLLM(replies=("Fine. Thanks.",), first_token_delay_s=0.05),
                                 ScriptedTTS(sample_rate=8000, first_chunk_delay_s=0.03, ms_per_char=20,
                                             chunk_ms=100))

    with live_server(settings, engines=services) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
            before = histogram_counts((await client.get("/metrics")).text)
            result = await place_call(server.url, EN[:2], language="en-IN")
            after = histogram_counts((await client.get("/metrics")).text)
        record = await fetch_record(server, result.call_id)

    # The stored call record (GET /calls/{id}) keeps every turn's timings.
    assert len(record["turns"]) == 2
    for turn in record["turns"]:
        timings = turn["timings"]
        for stage in STAGES:
            assert isinstance(timings.get(stage), (int, float)) and timings[stage] >= 0, (stage, timings)
        assert timings["stt_ms"] >= 40 and timings["llm_ttft_ms"] >= 40
        assert timings["v2v_ms"] >= timings["stt_ms"]
        # on the wire is after ready from TTS (pacing), and stored as such
        assert timings["v2v_wire_ms"] >= timings["v2v_ms"]
    # The caller measured the same thing from its side of the line.
    assert len(result.latencies_ms) == 2 and all(0 < ms < 5000 for ms in result.latencies_ms)
    # Prometheus saw exactly these two turns in every latency histogram.
    for name in LATENCY_HISTOGRAMS:
        assert after.get(name, 0) - before.get(name, 0) == 2, (name, before.get(name), after.get(name))
