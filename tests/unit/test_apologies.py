"""The apology lines cached as audio at start-up stand in when TTS fails or the budget is spent."""

from sutradhar.engines.base import ProviderError
from sutradhar.engines.fallback import StagePolicy, TaskRouter
from sutradhar.engines.resilience import RetryPolicy
from sutradhar.pipeline.apologies import ApologyCache
from sutradhar.pipeline.events import ReplyAudio, TurnCompleted, Utterance
from sutradhar.pipeline.orchestrator import AgentOrchestrator
from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS
from sutradhar.text.languages import LANGUAGES

SPEECH = b"\x01\x00" * 16000  # one second


async def cache_from(*voices, languages=("en-IN", "hi-IN")) -> ApologyCache:
    cache = ApologyCache()
    await cache.prepare(voices, languages, timeout_s=5.0, espeak_fallback=False)
    return cache


async def test_every_line_of_every_language_is_cached_per_voice_in_chain_order():
    first = ScriptedTTS(name="first", sample_rate=16000, ms_per_char=10)
    second = ScriptedTTS(name="second", sample_rate=8000, ms_per_char=10)
    cache = await cache_from(first, second)
    assert len(cache) == 8
    apology = cache.get("hi-IN", "not_heard")
    assert apology is not None and apology.provider == "first" and apology.audio.sample_rate == 16000
    assert apology.text == LANGUAGES["hi-IN"].not_heard
    assert abs(apology.audio.duration_s - len(apology.text) * 0.010) < 0.05


async def test_a_line_no_voice_could_make_is_missing_not_fatal():
    broken = ScriptedTTS(name="broken", failures=[ProviderError("down")] * 10)
    cache = await cache_from(broken, languages=("en-IN",))
    assert len(cache) == 0 and cache.get("en-IN", "trouble") is None


def orchestrator(tts: ScriptedTTS, llm: ScriptedLLM, cache: ApologyCache, stt=None, budget=None):
    policy = StagePolicy(RetryPolicy(attempts=1, timeout=5.0, backoff=0))
    router = TaskRouter([stt or ScriptedSTT(script=["what is my balance"])], [llm], [tts],
                        policies={"stt": policy, "llm": policy, "tts": policy})
    return AgentOrchestrator(router=router, call_id="c1", languages=("en-IN",), turn_budget_s=budget,
                             apologies=cache)


async def collect(agent: AgentOrchestrator):
    audio, record = [], None
    async for event in agent.respond(Utterance(SPEECH, 16000)):
        if isinstance(event, ReplyAudio):
            audio.append(event)
        elif isinstance(event, TurnCompleted):
            record = event.record
    return audio, record


async def test_when_every_tts_fails_the_caller_hears_the_cached_apology_and_the_record_says_so():
    tts = ScriptedTTS(name="voice", ms_per_char=10)
    cache = await cache_from(tts, languages=("en-IN",))
    tts.failures[:] = [ProviderError("tts down")] * 10
    agent = orchestrator(tts, ScriptedLLM(replies=("Your balance is ten rupees. Anything else?",)), cache)
    audio, record = await collect(agent)
    trouble = LANGUAGES["en-IN"].trouble
    assert audio and {a.text for a in audio} == {trouble}
    assert b"".join(a.chunk.pcm for a in audio) == cache.get("en-IN", "trouble").audio.pcm
    assert record.apology == "cached:voice"
    assert [e["stage"] for e in record.errors] == ["tts"]
    assert len(tts.calls) == 3  # 2 at start-up, the first sentence; the apology ended the turn
    assert record.reply == "Your balance is ten rupees. Anything else?"  # what was written stands
    assert record.timings["v2v_ms"] is not None


async def test_a_spent_budget_plays_the_cached_not_heard_line_without_calling_tts():
    tts = ScriptedTTS(name="voice", ms_per_char=10)
    cache = await cache_from(tts, languages=("en-IN",))
    warm = len(tts.calls)
    agent = orchestrator(tts, ScriptedLLM(), cache, stt=ScriptedSTT(failures=["hang"]), budget=0.3)
    audio, record = await collect(agent)
    assert record.intent == "not_heard" and record.apology == "cached:voice"
    assert {a.text for a in audio} == {LANGUAGES["en-IN"].not_heard}
    assert len(tts.calls) == warm  # the budget was spent: no live synthesis was tried
    assert [(e["stage"], e["kind"]) for e in record.errors] == [("stt", "timeout"), ("tts", "budget")]


async def test_a_healthy_turn_never_plays_the_cache():
    tts = ScriptedTTS(name="voice", ms_per_char=10)
    cache = await cache_from(tts, languages=("en-IN",))
    audio, record = await collect(orchestrator(tts, ScriptedLLM(replies=("Fine.",)), cache, budget=5.0))
    assert {a.text for a in audio} == {"Fine."} and record.apology is None and record.errors == []
