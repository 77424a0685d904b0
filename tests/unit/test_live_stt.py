"""Streaming STT through the router: heard while spoken, flushed at the end of the turn, and the
utterance handed to the rest of the chain whenever the stream fails."""

from __future__ import annotations

import asyncio

from sutradhar.engines.fallback import StagePolicy, TaskRouter
from sutradhar.engines.live_stt import open_transcription
from sutradhar.engines.resilience import RetryPolicy
from sutradhar.testing.scripted import ScriptedStreamingSTT, ScriptedSTT, tone

SPEECH = tone(8000 * 2, 8000)  # 2 s at 8 kHz
UTTERANCE = tone(16000 * 2, 16000)  # the same, as the turn detector hands it over (16 kHz)


def router(*stt) -> TaskRouter:
    policy = StagePolicy(RetryPolicy(attempts=1, timeout=2.0, backoff=0), 3, 30)
    return TaskRouter(list(stt), policies={"stt": policy})


async def feed(live, pcm: bytes, frame: int = 320) -> None:
    for i in range(0, len(pcm), frame):
        live.push(pcm[i:i + frame])
        await asyncio.sleep(0)


async def test_the_stream_hears_every_frame_and_only_the_flush_is_left_at_the_end():
    stt = ScriptedStreamingSTT(script=("where is my order",), flush_delay_s=0.02, delay_s=1.0)
    interims = []
    live = open_transcription(router(stt), 8000, "en-IN", interims.append)
    await feed(live, SPEECH)
    loop = asyncio.get_running_loop()
    began = loop.time()
    result = await live.finish(UTTERANCE, 16000, "en-IN")
    assert result.text == "where is my order" and result.provider == stt.name
    assert loop.time() - began < 0.5  # the flush, not the 1 s batch transcription
    assert stt.streams[0].received == len(SPEECH) and stt.streams[0].closed
    assert stt.calls == []  # no batch request
    assert interims and all(not t.is_final for t in interims)
    assert interims[-1].text == "where is my order"


async def test_a_batch_first_choice_means_no_stream():
    assert open_transcription(router(ScriptedSTT(), ScriptedStreamingSTT()), 8000, "en-IN") is None


async def test_a_stream_cut_mid_utterance_sends_the_whole_utterance_to_the_next_provider():
    streaming = ScriptedStreamingSTT(stream_failures=["send"])
    backup = ScriptedSTT(name="backup", script=("I said all of this",))
    live = open_transcription(router(streaming, backup), 8000, "en-IN")
    await feed(live, SPEECH)
    result = await live.finish(UTTERANCE, 16000, "en-IN")
    assert result.text == "I said all of this" and result.provider == "backup"
    assert backup.calls == [{"bytes": len(UTTERANCE), "sample_rate": 16000, "language": None}]
    assert streaming.calls == []  # the failed provider is not asked again for this utterance
    assert router_slot(live).failures == 1


async def test_a_stream_that_cannot_open_or_flush_falls_back_too():
    for failure in ("open", "finish"):
        streaming = ScriptedStreamingSTT(stream_failures=[failure])
        backup = ScriptedSTT(name="backup", script=("fallback words",))
        live = open_transcription(router(streaming, backup), 8000, "en-IN")
        await feed(live, SPEECH[:3200])
        assert (await live.finish(UTTERANCE, 16000, "en-IN")).text == "fallback words", failure


async def test_an_empty_final_does_not_count_against_the_breaker():
    streaming = ScriptedStreamingSTT(script=("",))
    backup = ScriptedSTT(name="backup", script=("backup heard it",))
    live = open_transcription(router(streaming, backup), 8000, "en-IN")
    await feed(live, SPEECH[:3200])
    assert (await live.finish(UTTERANCE, 16000, "en-IN")).text == "backup heard it"
    assert router_slot(live).breaker.failures == 0


async def test_closing_a_stream_for_a_noise_blip_releases_it():
    stt = ScriptedStreamingSTT()
    live = open_transcription(router(stt), 8000, "en-IN")
    await feed(live, SPEECH[:640])
    await live.aclose()
    await live.aclose()  # idempotent
    assert stt.streams[0].closed and not stt.streams[0].finished
    assert router_slot(live).breaker.allow()


def router_slot(live):
    return live.slot
