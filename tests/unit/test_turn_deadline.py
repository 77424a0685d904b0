"""The turn budget: deadline math, and the router moving on early instead of waiting out timeouts."""

import asyncio
import time

import pytest

from sutradhar.engines.base import ProviderError
from sutradhar.engines.deadline import (
    FALLBACK_RESERVE_S,
    LATE_SPEECH_S,
    MIN_ATTEMPT_S,
    STREAM_STALL_S,
    TurnDeadline,
)
from sutradhar.engines.fallback import AllProvidersFailed, StagePolicy, TaskRouter
from sutradhar.engines.resilience import BreakerState, RetryPolicy
from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS

AUDIO = b"\0" * 3200


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _no_sleep(_: float) -> None:
    return None


def router(stt=(), llm=(), tts=(), attempts=2, timeout=15.0, threshold=3):
    policy = StagePolicy(RetryPolicy(attempts=attempts, timeout=timeout, backoff=0), threshold, 30)
    return TaskRouter(stt, llm, tts, policies={"stt": policy, "llm": policy, "tts": policy},
                      sleep=_no_sleep)


def test_an_attempt_gets_the_stage_timeout_or_its_share_of_what_is_left_whichever_is_shorter():
    clock = FakeClock()
    deadline = TurnDeadline.starting(2.5, started_at=clock.now, clock=clock)
    assert deadline.attempt_timeout(15.0) == pytest.approx(2.5)
    assert deadline.attempt_timeout(1.0) == pytest.approx(1.0)
    # The first of two providers keeps all but the fallback's reserve; of four, never below a
    # quarter.
    assert deadline.attempt_timeout(15.0, share=2) == pytest.approx(2.5 - FALLBACK_RESERVE_S)
    assert deadline.attempt_timeout(15.0, share=4) == pytest.approx(max(2.5 - 3 * FALLBACK_RESERVE_S, 2.5 / 4))
    assert deadline.attempt_timeout(15.0, share=8) == pytest.approx(2.5 / 8)
    clock.now += 2.0
    assert deadline.remaining() == pytest.approx(0.5)
    assert deadline.attempt_timeout(15.0) == pytest.approx(0.5)
    assert not deadline.spent
    clock.now += 0.5 - MIN_ATTEMPT_S / 2
    assert deadline.spent


def test_the_budget_counts_from_the_end_of_speech_not_from_when_the_turn_started():
    clock = FakeClock()
    deadline = TurnDeadline.starting(2.5, started_at=clock.now - 0.6, clock=clock)  # 600 ms of silence
    assert deadline.remaining() == pytest.approx(1.9)


def test_once_the_first_audio_played_attempts_get_their_stage_timeout_again():
    clock = FakeClock()
    deadline = TurnDeadline.starting(2.5, started_at=clock.now, clock=clock)
    clock.now += 10.0
    assert deadline.spent
    deadline.meet()
    assert not deadline.spent and deadline.remaining() is None
    assert deadline.attempt_timeout(15.0, share=3) == 15.0


def test_no_budget_is_a_deadline_already_met():
    for budget in (None, 0.0):
        deadline = TurnDeadline.starting(budget)
        assert deadline.met and deadline.attempt_timeout(15.0) == 15.0


async def test_a_hung_primary_gets_its_share_of_the_budget_and_the_fallback_answers():
    hung = ScriptedSTT(name="hung", failures=["hang"] * 5)
    backup = ScriptedSTT(name="backup", script=["hello"])
    r = router(stt=[hung, backup])
    began = time.monotonic()
    result = await r.route_transcription(AUDIO, 16000, deadline=TurnDeadline.starting(1.0))
    elapsed = time.monotonic() - began
    assert result.provider == "backup"
    assert len(hung.calls) == 1  # a budget-cut timeout is not retried on the same provider
    assert elapsed < 5.0  # not 2 x 15 s: the hung one was cut, leaving the backup its reserve
    hung_slot = r.chains["stt"][0]
    assert hung_slot.outcomes.stats()["timeouts"] == 1
    assert "no answer within 0.5s" in (hung_slot.last_error or "")


async def test_without_a_deadline_the_stage_timeout_and_retries_apply_as_before():
    flaky = ScriptedSTT(name="flaky", failures=["hang"], script=["second try"])
    r = router(stt=[flaky], timeout=0.2)
    result = await r.route_transcription(AUDIO, 16000)
    assert result.text == "second try" and len(flaky.calls) == 2


async def test_a_spent_budget_fails_the_stage_at_once_without_blaming_the_provider():
    clock = FakeClock()
    stt = ScriptedSTT(name="fine")
    r = router(stt=[stt], threshold=1)
    spent = TurnDeadline.starting(1.0, started_at=clock.now - 5.0, clock=clock)
    with pytest.raises(AllProvidersFailed) as info:
        await r.route_transcription(AUDIO, 16000, deadline=spent)
    assert info.value.kind == "budget"
    assert stt.calls == []
    slot = r.chains["stt"][0]
    assert slot.breaker.state is BreakerState.CLOSED and slot.failures == 0


async def test_a_slow_llm_stream_goes_on_past_the_budget_and_only_a_stall_is_cut():
    slow = ScriptedLLM(replies=("one two three",), token_delay_s=0.3)
    r = router(llm=[slow])
    # A token every 0.3 s is slow, not hung: past a spent budget the answer still comes.
    assert [d async for d in r.route_generation([], "en-IN", deadline=TurnDeadline.starting(0.2))] == [
        "one", " two", " three"]
    stalled = ScriptedLLM(replies=("one two",), token_delay_s=STREAM_STALL_S + 1.0)
    r = router(llm=[stalled])
    got = []
    with pytest.raises(ProviderError):
        async for delta in r.route_generation([], "en-IN", deadline=TurnDeadline.starting(0.2)):
            got.append(delta)
    assert got == ["one"]  # silent for longer than STREAM_STALL_S before the first audio: cut
    met = TurnDeadline.starting(0.2)
    met.meet()  # the caller is already hearing the reply: the stream keeps its stage timeout
    assert [d async for d in r.route_generation([], "en-IN", deadline=met)] == ["one", " two"]


async def test_with_the_budget_spent_an_answer_is_still_spoken_a_little_late():
    late = ScriptedTTS(name="late", first_chunk_delay_s=0.3)
    r = router(tts=[late])
    clock = FakeClock()
    spent = TurnDeadline.starting(1.0, started_at=clock.now - 5.0, clock=clock)
    assert spent.spent
    chunks = [c async for c in r.route_synthesis("Your order ships today.", "en-IN", [], spent)]
    assert chunks  # not an apology: the text exists, so TTS gets LATE_SPEECH_S
    hung = ScriptedTTS(name="hung", first_chunk_delay_s=LATE_SPEECH_S + 5.0)
    began = time.monotonic()
    with pytest.raises(ProviderError):
        [c async for c in router(tts=[hung]).route_synthesis("Hello.", "en-IN", [], spent)]
    assert time.monotonic() - began < LATE_SPEECH_S + 1.0


async def test_tts_first_audio_is_bounded_by_the_budget_and_falls_back():
    stuck = ScriptedTTS(name="stuck", first_chunk_delay_s=30.0)
    voice = ScriptedTTS(name="voice", ms_per_char=10)
    r = router(tts=[stuck, voice])
    served: list[str] = []
    chunks = [c async for c in r.route_synthesis("Hello.", "en-IN", served, TurnDeadline.starting(1.0))]
    assert chunks and served == ["voice"]


async def test_providers_ahead_skip_open_breakers_and_other_languages():
    a, b, c = ScriptedSTT(name="a"), ScriptedSTT(name="b"), ScriptedSTT(name="c", languages=frozenset({"hi-IN"}))
    r = router(stt=[a, b, c])
    first = r.chains["stt"][0]
    assert r.providers_ahead(first, "en-IN", frozenset()) == 2
    assert r.providers_ahead(first, "hi-IN", frozenset()) == 3
    r.chains["stt"][1].breaker.force(BreakerState.OPEN)
    assert r.providers_ahead(first, "en-IN", frozenset()) == 1


async def test_cancelling_a_budgeted_turn_leaves_no_verdict():
    hung = ScriptedSTT(name="hung", failures=["hang"])
    r = router(stt=[hung], threshold=1)
    task = asyncio.create_task(r.route_transcription(AUDIO, 16000, deadline=TurnDeadline.starting(5.0)))
    while not hung.calls:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert r.chains["stt"][0].breaker.state is BreakerState.CLOSED


async def test_a_stream_cut_by_the_budget_after_answering_in_time_is_not_blamed_on_the_provider():
    slow = ScriptedLLM(replies=("one two",), token_delay_s=STREAM_STALL_S + 0.5)
    r = router(llm=[slow], threshold=1)
    with pytest.raises(ProviderError):
        async for _ in r.route_generation([], "en-IN", deadline=TurnDeadline.starting(0.2)):
            pass
    slot = r.chains["llm"][0]
    assert slot.breaker.state is BreakerState.CLOSED
    assert slot.outcomes.stats()["errors"] == 0
