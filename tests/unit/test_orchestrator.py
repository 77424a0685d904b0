import asyncio
import time

import pytest

from sutradhar.engines.base import AuthError, ProviderError, Transcript
from sutradhar.engines.fallback import StagePolicy, TaskRouter
from sutradhar.engines.resilience import RetryPolicy
from sutradhar.pipeline.orchestrator import (
    ActionRequested,
    AgentOrchestrator,
    LanguageSwitched,
    ReplyAudio,
    ReplyText,
    TurnCompleted,
    Utterance,
)
from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS
from sutradhar.text.languages import LANGUAGES

SPEECH = b"\x10\x00" * 16000  # one second of (quiet) audio


def orchestrator(stt=None, llm=None, tts=None, language="en-IN", attempts=1, timeout=2.0, **kwargs):
    policy = StagePolicy(RetryPolicy(attempts=attempts, timeout=timeout, backoff=0))
    router = TaskRouter(stt or [ScriptedSTT()], llm or [ScriptedLLM()], tts or [ScriptedTTS()],
                        policies={"stt": policy, "llm": policy, "tts": policy})
    return AgentOrchestrator(router=router, call_id="CA-test", language=language, **kwargs)


async def run(orch, utterance=None):
    events = []
    async for event in orch.respond(utterance or Utterance(SPEECH, 16000, time.monotonic())):
        events.append((time.monotonic(), event))
    return events


async def test_first_audio_arrives_before_the_llm_finishes():
    llm = ScriptedLLM(replies=["Sure, we open at nine. We close at six. We are closed on Sundays."],
                      first_token_delay_s=0.05, token_delay_s=0.04)
    tts = ScriptedTTS(first_chunk_delay_s=0.03, chunk_ms=100)
    orch = orchestrator(stt=[ScriptedSTT(script=["when do you open"], delay_s=0.02)], llm=[llm], tts=[tts])
    start = time.monotonic()
    events = await run(orch, Utterance(SPEECH, 16000, start))
    audio_times = [t for t, e in events if isinstance(e, ReplyAudio)]
    record = events[-1][1].record
    llm_done = start + (record.timings["stt_ms"] + record.timings["llm_ms"]) / 1000
    # 14 tokens at 40 ms: the LLM needs ~0.57 s; the first sentence is spoken long before that.
    assert audio_times[0] < llm_done - 0.2
    # Critical path: STT 20 + first token 50 + 4 more tokens 160 + TTS 30 = 260 ms (plus slack).
    assert record.timings["v2v_ms"] < 450
    first_text = next(e for _, e in events if isinstance(e, ReplyText))
    assert first_text.text == "Sure, we open at nine. "
    assert [type(e).__name__ for _, e in events][:3] == ["Transcribed", "ReplyText", "ReplyAudio"]
    assert isinstance(events[-1][1], TurnCompleted)
    seqs = sorted({e.seq for _, e in events if isinstance(e, ReplyAudio)})
    assert seqs == [0, 1, 2]


async def test_cancellation_leaves_no_pending_tasks_and_a_consistent_context():
    llm = ScriptedLLM(replies=["First sentence here. " + "More words " * 50], token_delay_s=0.01)
    tts = ScriptedTTS(chunk_ms=50, chunk_delay_s=0.02)
    orch = orchestrator(stt=[ScriptedSTT(script=["tell me everything"])], llm=[llm], tts=[tts])
    before = asyncio.all_tasks()
    got_audio = asyncio.Event()
    heard = []

    async def consume():
        async for event in orch.respond(Utterance(SPEECH, 16000, time.monotonic())):
            if isinstance(event, ReplyAudio):
                heard.append(event)
                got_audio.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_audio.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert asyncio.all_tasks() - before == set()
    assert orch.state == "idle"
    record = orch.record_heard(heard[0].turn_id, heard[0].text)
    assert record["interrupted"] is True and record["heard"] == "First sentence here."
    messages = orch.context.get_context()
    assert [m.role for m in messages] == ["system", "user", "assistant"]
    assert messages[-1].content.startswith("First sentence here.")
    assert "More words" not in messages[-1].content


async def test_stt_failure_says_not_heard_in_the_call_language():
    orch = orchestrator(stt=[ScriptedSTT(failures=[ProviderError("down")])], language="hi-IN")
    events = await run(orch)
    texts = [e.text for _, e in events if isinstance(e, ReplyText)]
    assert "".join(texts) == LANGUAGES["hi-IN"].not_heard
    record = events[-1][1].record
    assert record.intent == "not_heard" and record.errors[0]["stage"] == "stt"


async def test_empty_audio_is_not_sent_to_stt():
    stt = ScriptedSTT()
    orch = orchestrator(stt=[stt], language="te-IN")
    events = await run(orch, Utterance(b"", 16000))
    assert not stt.calls
    assert "".join(e.text for _, e in events if isinstance(e, ReplyText)) == LANGUAGES["te-IN"].not_heard


async def test_llm_failure_gives_a_polite_line_in_the_call_language():
    orch = orchestrator(stt=[ScriptedSTT(script=[Transcript("મારો ઓર્ડર ક્યાં છે", "gu-IN")])],
                        llm=[ScriptedLLM(failures=[AuthError("bad key")])], language="gu-IN")
    events = await run(orch)
    assert "".join(e.text for _, e in events if isinstance(e, ReplyText)) == LANGUAGES["gu-IN"].trouble
    assert any(isinstance(e, ReplyAudio) for _, e in events)
    assert events[-1][1].record.errors[0]["kind"] == "auth"


async def test_tts_falls_back_and_text_survives_when_every_tts_fails():
    broken = ScriptedTTS(name="broken", failures=[ProviderError("x")] * 10)
    backup = ScriptedTTS(name="backup")
    orch = orchestrator(tts=[broken, backup])
    events = await run(orch)
    assert events[-1][1].record.providers["tts"] == "backup"
    assert any(isinstance(e, ReplyAudio) for _, e in events)

    mute = orchestrator(tts=[ScriptedTTS(name="mute", failures=[ProviderError("x")] * 10)])
    result = await mute.process_turn(SPEECH)
    assert result["response"] == "Hello. How can I help you today?"
    assert result["audio"] == b"" and result["errors"][0]["stage"] == "tts"


async def test_auto_switch_after_two_turns_changes_the_system_prompt_instruction():
    stt = ScriptedSTT(script=[Transcript("मेरा ऑर्डर कहाँ है", "hi-IN"), Transcript("कब आएगा", "hi-IN")])
    llm = ScriptedLLM(replies=["ठीक है।"])
    orch = orchestrator(stt=[stt], llm=[llm])
    first = await run(orch)
    assert not any(isinstance(e, LanguageSwitched) for _, e in first)
    assert "English" in llm.calls[0][0].content
    second = await run(orch)
    switched = [e for _, e in second if isinstance(e, LanguageSwitched)]
    assert switched and switched[0].new == "hi-IN"
    assert LANGUAGES["hi-IN"].instruction in llm.calls[1][0].content
    assert orch.get_status()["language"] == "hi-IN"


async def test_intents_are_actions_not_llm_calls():
    llm = ScriptedLLM()
    orch = orchestrator(stt=[ScriptedSTT(script=["okay bye", "talk to a human", "repeat that",
                                                 "speak in Telugu"])], llm=[llm])
    events = await run(orch)
    assert [e.action for _, e in events if isinstance(e, ActionRequested)] == ["end_call"]
    assert "".join(e.text for _, e in events if isinstance(e, ReplyText)) == LANGUAGES["en-IN"].goodbye
    events = await run(orch)
    assert [e.action for _, e in events if isinstance(e, ActionRequested)] == ["transfer"]
    events = await run(orch)
    assert "".join(e.text for _, e in events if isinstance(e, ReplyText)) == LANGUAGES["en-IN"].transfer
    events = await run(orch)
    assert any(isinstance(e, LanguageSwitched) and e.new == "te-IN" for _, e in events)
    assert "".join(e.text for _, e in events if isinstance(e, ReplyText)) == LANGUAGES["te-IN"].switched
    assert not llm.calls


async def test_process_turn_batch_api_and_status():
    orch = orchestrator(stt=[ScriptedSTT(script=["hi"])], llm=[ScriptedLLM(replies=["Hello! Nice day."])])
    result = await orch.process_turn(SPEECH, language="en-IN", system_prompt="Be brief.")
    assert result["text"] == "hi" and result["response"] == "Hello! Nice day."
    assert result["language"] == "en-IN" and result["sample_rate"] == 16000 and len(result["audio"]) > 0
    status = orch.get_status()
    assert status["turn_count"] == 1 and status["history_length"] == 2 and status["state"] == "idle"
    assert orch.context.get_context()[0].content.startswith("Be brief.")


async def test_llm_sees_the_conversation_history():
    llm = ScriptedLLM(replies=["One.", "Two.", "Three."])
    orch = orchestrator(stt=[ScriptedSTT(script=["a", "b", "c"])], llm=[llm])
    for _ in range(3):
        await run(orch)
    assert [m.content for m in llm.calls[2][1:]] == ["a", "One.", "b", "Two.", "c"]


async def test_stream_cut_keeps_the_spoken_part():
    llm = ScriptedLLM(replies=["The answer is simple. And then more words follow here."], cut_after_tokens=5)
    orch = orchestrator(llm=[llm])
    events = await run(orch)
    record = events[-1][1].record
    assert record.reply == "The answer is simple. And"
    assert record.errors[0]["stage"] == "llm"


async def test_metrics_record_every_turn():
    orch = orchestrator()
    await run(orch)
    await run(orch)
    assert orch.metrics.turns == 2
    assert orch.metrics.summary()["v2v_ms"]["count"] == 2
    assert "Voice-to-voice" in orch.metrics.generate_report()


async def test_an_llm_yielding_garbage_ends_the_turn_politely_instead_of_hanging():
    class Garbage(ScriptedLLM):
        async def stream(self, messages, language, tools=None):
            yield "Hello"
            yield 42  # a provider bug: not text

    orch = orchestrator(llm=[Garbage(name="garbage")])
    events = await asyncio.wait_for(run(orch, Utterance(b"", text="hi")), 3)
    record = events[-1][1].record
    assert record.errors and record.errors[0]["stage"] == "llm"
    assert record.reply == "Hello"
    assert any(isinstance(e, ReplyAudio) for _, e in events)


async def test_sentence_done_follows_each_spoken_sentence():
    from sutradhar.pipeline.orchestrator import SentenceDone

    orch = orchestrator(llm=[ScriptedLLM(replies=["One here. Two there."])])
    events = [e for _, e in await run(orch)]
    done = [e.seq for e in events if isinstance(e, SentenceDone)]
    assert done == [0, 1]
    last_audio_of_first = max(i for i, e in enumerate(events) if isinstance(e, ReplyAudio) and e.seq == 0)
    assert isinstance(events[last_audio_of_first + 1], SentenceDone)


async def test_an_llm_that_asks_for_it_has_its_long_first_sentence_spoken_from_its_first_words():
    long = "Our shop on the main road is open from nine in the morning until nine at night every day."

    class LongWinded(ScriptedLLM):
        first_chunk_words = 6  # like the small local model (engines/local/llama.py)

    texts = {}
    for llm in (ScriptedLLM(replies=[long]), LongWinded(replies=[long])):
        events = await run(orchestrator(stt=[ScriptedSTT(script=["when do you open"])], llm=[llm]))
        texts[type(llm).__name__] = [e.text for _, e in events if isinstance(e, ReplyText)]
    assert texts["ScriptedLLM"] == [long]  # a cloud LLM's sentence goes to TTS whole
    assert texts["LongWinded"][0] == "Our shop on the main road " and "".join(texts["LongWinded"]) == long
