"""The semantic end of turn through the real server: a complete turn is answered at the short
pause, an unfinished one waits for the caller to go on (one utterance, one answer), with a batch
STT (transcribed early, at the pause) and with a streaming STT (decided from its interim)."""

from __future__ import annotations

from typing import Any

import pytest

from sutradhar.audio.codecs import silence
from sutradhar.engines.base import Transcript
from sutradhar.testing.scripted import (
    ScriptedLLM,
    ScriptedStreamingSTT,
    ScriptedSTT,
    ScriptedTTS,
)
from sutradhar.testing.simulator import CallerTurn, SimConfig, simulate
from tests.support.audio import speech_pcm
from tests.support.server import scripted_server

COMPLETE = speech_pcm("What are your opening hours today?", "en-us", 8000)
FIRST = speech_pcm("my number is", "en-us", 8000)
SECOND = speech_pcm("nine eight four five zero one two three four five", "en-us", 8000)


def by_length(short: str, long: str, cut_s: float) -> ScriptedSTT:
    """A batch STT that says `short` for audio under `cut_s` seconds (the first half) and `long`
    for the whole utterance, after 150 ms."""
    def transcribe(audio: bytes, rate: int, language: str | None) -> Transcript:
        return Transcript(short if len(audio) / 2 / rate < cut_s else long, language, None, "by-length")

    return ScriptedSTT(name="by-length", transcriber=transcribe, delay_s=0.15)


def tts() -> ScriptedTTS:
    return ScriptedTTS(sample_rate=8000, ms_per_char=20, chunk_ms=100)


async def one_call(turns: list[CallerTurn], **settings) -> object:
    stt = settings.pop("stt")
    with scripted_server(stt=stt, llm=ScriptedLLM(replies=("We are open from nine to nine.",)), tts=tts(),
                         **settings) as srv:
        return await simulate(SimConfig(srv.url, turns, speed=1, timeout_s=30, gap_s=0.3, tail_s=0.5))


@pytest.mark.serial  # asserts wall-clock timing
async def test_a_complete_question_is_answered_sooner_than_the_silence_window():
    stt = lambda: ScriptedSTT(script=("What are your opening hours today?",), delay_s=0.15)  # noqa: E731
    plain = await one_call([CallerTurn(COMPLETE, 8000)], stt=stt(), turn_policy="silence")
    semantic = await one_call([CallerTurn(COMPLETE, 8000)], stt=stt(), turn_policy="semantic")
    [before], [after] = plain.latencies_ms, semantic.latencies_ms
    print(f"\ncaller-side voice-to-voice: silence policy {before} ms, semantic {after} ms")
    assert after < before - 250  # the 600 ms window became a 200 ms pause (+ STT started at it)
    turn = semantic.summary["turns"][0]
    assert turn["text"] == "What are your opening hours today?"


async def test_an_unfinished_phrase_waits_and_both_halves_are_one_turn():
    stt = by_length("my number is", "my number is nine eight four five zero one two three four five",
                    cut_s=len(FIRST) / 2 / 8000 + 0.45)
    pcm = FIRST + silence(700, 8000) + SECOND
    result = await one_call([CallerTurn(pcm, 8000)], stt=stt, turn_policy="semantic")
    turns = result.summary["turns"]
    assert len(turns) == 1, [t["text"] for t in turns]  # no reply to half a sentence
    assert turns[0]["text"].startswith("my number is nine eight")
    assert len(result.latencies_ms) == 1


@pytest.mark.serial  # asserts wall-clock timing
async def test_with_a_streaming_stt_the_interim_decides_and_only_the_flush_is_left():
    stt = ScriptedStreamingSTT(script=("What are your opening hours today?",), interim_every_s=0.2,
                               flush_delay_s=0.02, delay_s=1.0)
    result = await one_call([CallerTurn(COMPLETE, 8000)], stt=stt, turn_policy="semantic")
    assert len(result.latencies_ms) == 1
    assert stt.calls == []  # the batch path (1 s) never ran
    [latency] = result.latencies_ms
    print(f"\ncaller-side voice-to-voice with a streaming STT and the semantic policy: {latency} ms")
    assert latency < 900


LONG_REPLY = ("Our opening hours are from nine in the morning to nine at night on weekdays. On Saturdays we "
              "open at ten and close at six. On Sundays and public holidays the store stays closed, but our "
              "phone line is open every day.")


async def call_with_reply_and_interjection(interjection: bytes, stt: ScriptedSTT) -> object:
    with scripted_server(stt=stt, llm=ScriptedLLM(replies=(LONG_REPLY,)), tts=tts(), backchannels=True) as srv:
        turns = [CallerTurn(COMPLETE, 8000), CallerTurn(interjection, 8000, barge_in_at=1.5)]
        return await simulate(SimConfig(srv.url, turns, speed=1, timeout_s=40, gap_s=0.3, tail_s=1.0,
                                        reply_wait_s=20))


async def test_a_backchannel_over_the_reply_does_not_stop_it():
    okay = speech_pcm("okay", "en-us", 8000)
    stt = by_length("okay", "What are your opening hours today?", cut_s=len(okay) / 2 / 8000 + 0.3)
    result = await call_with_reply_and_interjection(okay, stt)
    summary = result.summary
    assert summary["barge_ins"] == 0 and summary["backchannels"] == 1
    assert len(summary["turns"]) == 1  # "okay" was not answered as a turn
    assert not any(t.get("interrupted") for t in summary["turns"])
    # the whole reply reached the caller: about LONG_REPLY's length at 20 ms a character
    assert len(result.agent_audio) / 2 / 8000 > 0.9 * len(LONG_REPLY) * 0.020


async def test_a_real_interruption_over_the_reply_stops_it_and_is_answered():
    stop = speech_pcm("Wait, what about the prices of the premium plan for families?", "en-us", 8000)
    stt = by_length("What are your opening hours today?", "Stop. What about the prices?",
                    cut_s=len(COMPLETE) / 2 / 8000 + 0.5)
    result = await call_with_reply_and_interjection(stop, stt)
    summary = result.summary
    assert summary["barge_ins"] == 1 and summary["backchannels"] == 0
    assert summary["turns"][0].get("interrupted") is True
    assert summary["turns"][-1]["text"] == "Stop. What about the prices?"


DIGITS = speech_pcm("my order number is four five six", "en-us", 8000)
MORE = speech_pcm("seven eight nine", "en-us", 8000)


async def digits_with_and_without_speculation(make_stt: Any) -> dict[bool, Any]:
    """One call ending in digits (the policy waits 800 ms), with speculation off and on, the LLM
    taking 400 ms to its first token; `make_stt()` gives a fresh STT for each."""
    results = {}
    for speculate in (False, True):
        with scripted_server(stt=make_stt(), llm=ScriptedLLM(replies=("Let me check order four five six.",),
                                                             first_token_delay_s=0.4),
                             tts=tts(), turn_policy="semantic", end_of_turn_number_ms=800,
                             speculate=speculate) as srv:
            results[speculate] = await simulate(SimConfig(srv.url, [CallerTurn(DIGITS, 8000)], speed=1,
                                                          timeout_s=30, gap_s=0.3, tail_s=0.5))
    return results


async def test_while_the_policy_waits_after_digits_the_reply_is_prepared_and_plays_at_once():
    text = "my order number is four five six"
    results = await digits_with_and_without_speculation(lambda: ScriptedSTT(script=(text,), delay_s=0.15))
    [with_spec] = results[True].latencies_ms
    [without] = results[False].latencies_ms
    print(f"\nafter digits: {without} ms without speculation, {with_spec} ms with")
    assert with_spec < without - 250  # the LLM's 400 ms ran while the policy waited
    assert with_spec > 800  # and it still waited the policy's 800 ms
    assert results[True].summary["turns"][0]["text"] == text


async def test_a_speculation_the_caller_talks_over_leaves_no_trace():
    first_text = "my order number is four five six"
    full_text = "my order number is four five six seven eight nine"
    stt = by_length(first_text, full_text, cut_s=len(DIGITS) / 2 / 8000 + 0.45)
    # espeak leaves ~380 ms of silence after the digits: a 600 ms gap in all, past the 200 ms pause and
    # the STT (the speculation starts) and short of the 800 ms wait
    pcm = DIGITS + silence(220, 8000) + MORE
    result = await one_call([CallerTurn(pcm, 8000)], stt=stt, turn_policy="semantic",
                            end_of_turn_number_ms=800)
    summary = result.summary
    assert [t["text"] for t in summary["turns"]] == [full_text]
    users = [m["content"] for m in summary["context"] if m["role"] == "user"]
    assert users == [full_text]  # the undone speculation left nothing in the context
    assert summary["orchestrator"]["turn_count"] == 1


async def test_interim_transcripts_reach_the_browser_page_before_the_final_one():
    stt = ScriptedStreamingSTT(script=("What are your opening hours today?",), interim_every_s=0.2)
    with scripted_server(stt=stt, llm=ScriptedLLM(replies=("Nine to nine.",)), tts=tts()) as srv:
        result = await simulate(SimConfig(srv.url, [CallerTurn(COMPLETE, 8000)], carrier="browser", speed=1,
                                          timeout_s=30, gap_s=0.3, tail_s=0.5))
    kinds = [e.get("type") for e in result.events]
    interims = [e["text"] for e in result.events if e.get("type") == "interim"]
    assert interims and kinds.index("interim") < kinds.index("transcript")
    assert interims[-1] == "What are your opening hours today?"  # the last one before the final


async def test_with_a_streaming_stt_the_reply_prepared_from_the_interim_plays_when_the_final_agrees():
    text = "my order number is four five six"
    # Interims every 0.1 s of audio: every word is shown by the pause.
    results = await digits_with_and_without_speculation(
        lambda: ScriptedStreamingSTT(script=(text,), interim_every_s=0.1))
    [with_spec] = results[True].latencies_ms
    [without] = results[False].latencies_ms
    print(f"\nafter digits, streaming STT: {without} ms without speculation, {with_spec} ms with")
    assert with_spec < without - 250  # the LLM's 400 ms ran while the policy waited
    assert with_spec > 800  # and it still waited the policy's 800 ms
    turn = results[True].summary["turns"][0]
    assert turn["text"] == text


async def test_a_reply_prepared_from_an_interim_the_final_contradicts_is_undone():
    final = "my order number is four five six"
    # Interims lag a word per 0.35 s of audio: at the pause the stream has shown only part of it.
    stt = ScriptedStreamingSTT(script=(final,), interim_every_s=0.35)
    llm = ScriptedLLM(responder=lambda messages, language: f"You said {messages[-1].content}.")
    with scripted_server(stt=stt, llm=llm, tts=tts(), turn_policy="semantic", end_of_turn_number_ms=800) as srv:
        telemetry = srv.services.telemetry
        undone = telemetry.value("sutradhar_speculations_total", outcome="reply_undone")
        result = await simulate(SimConfig(srv.url, [CallerTurn(DIGITS, 8000)], speed=1, timeout_s=30,
                                          gap_s=0.3, tail_s=0.5))
        assert telemetry.value("sutradhar_speculations_total", outcome="reply_undone") == undone + 1
    summary = result.summary
    assert [t["text"] for t in summary["turns"]] == [final]
    assert [m["content"] for m in summary["context"] if m["role"] == "user"] == [final]
    assert summary["turns"][0]["reply"] == f"You said {final}."  # answered what was finally said
    assert summary["orchestrator"]["turn_count"] == 1


async def used_speculations(stt: ScriptedSTT) -> tuple[float, Any]:
    """One complete question under the semantic policy: how many held-back replies played."""
    llm = ScriptedLLM(replies=("We are open from nine to nine.",), first_token_delay_s=0.4)
    with scripted_server(stt=stt, llm=llm, tts=tts(), turn_policy="semantic") as srv:
        telemetry = srv.services.telemetry
        before = telemetry.value("sutradhar_speculations_total", outcome="reply_used")
        result = await simulate(SimConfig(srv.url, [CallerTurn(COMPLETE, 8000)], speed=1, timeout_s=30,
                                          gap_s=0.3, tail_s=0.5))
        return telemetry.value("sutradhar_speculations_total", outcome="reply_used") - before, result


async def test_a_complete_turn_is_prepared_at_the_first_short_pause_and_played_when_it_ends():
    # The batch STT starts at SPECULATE_PAUSE_MS (100) and answers before the turn ends at
    # PAUSE_MS (200): the reply is prepared from then on and is the one that plays.
    used, result = await used_speculations(ScriptedSTT(script=("What are your opening hours today?",),
                                                       delay_s=0.05))
    assert used == 1
    assert [t["text"] for t in result.summary["turns"]] == ["What are your opening hours today?"]
    assert result.summary["turns"][0]["reply"] == "We are open from nine to nine."


async def test_with_a_streaming_stt_a_complete_turn_is_prepared_from_the_interim_at_the_first_pause():
    used, result = await used_speculations(ScriptedStreamingSTT(script=("What are your opening hours today?",),
                                                                interim_every_s=0.1))
    assert used == 1
    [latency] = result.latencies_ms
    # the LLM's 400 ms began at the 100 ms pause, not after the 200 ms one and the flush
    print(f"\ncomplete turn, streaming STT, prepared at the first pause: {latency} ms")
    assert len(result.summary["turns"]) == 1


TRAILING_OFF = speech_pcm("I would like to check the status of my", "en-us", 8000)
REST = speech_pcm("order from last week, please.", "en-us", 8000)


@pytest.mark.local_models
@pytest.mark.slow
async def test_smart_turn_keeps_a_sentence_that_reads_complete_but_sounds_unfinished_in_one_turn():
    """The STT drops the swallowed last word ("...the status"), so the text reads complete; the
    acoustic model hears the voice trail off mid-phrase and the turn waits for the rest."""
    first, full = ("I would like to check the status",
                   "I would like to check the status of my order from last week, please.")
    # espeak leaves ~380 ms of silence after the phrase: ~680 ms in all, past the 200 ms pause and
    # the 150 ms STT, short of TURN_ACOUSTIC_WAIT_MS (1000)
    pcm = TRAILING_OFF + silence(300, 8000) + REST
    texts = {}
    for model in ("none", "smart-turn"):
        stt = by_length(first, full, cut_s=len(TRAILING_OFF) / 2 / 8000 + 0.45)
        # END_OF_TURN_SILENCE_MS holds while the model runs: raised so a loaded box cannot time it out
        result = await one_call([CallerTurn(pcm, 8000)], stt=stt, turn_policy="semantic",
                                turn_acoustic_model=model, end_of_turn_silence_ms=1200)
        texts[model] = [t["text"] for t in result.summary["turns"]]
    assert texts["none"][0] == first  # the text rules alone answered half a sentence
    assert texts["smart-turn"] == [full]
