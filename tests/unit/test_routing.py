import asyncio

import pytest

from sutradhar.engines.base import (
    AuthError,
    Message,
    ProviderError,
    ProviderTimeout,
    QuotaExceeded,
    RateLimited,
    Transcript,
)
from sutradhar.engines.fallback import (
    AllProvidersFailed,
    StagePolicy,
    StreamInterrupted,
    TaskRouter,
)
from sutradhar.engines.resilience import BreakerState, RetryPolicy
from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS


async def _no_sleep(_: float) -> None:
    return None


def make_router(stt=(), llm=(), tts=(), attempts=2, timeout=1.0, threshold=3, clock=None):
    policy = StagePolicy(RetryPolicy(attempts=attempts, timeout=timeout, backoff=0), threshold, 30)
    kwargs = {"clock": clock} if clock else {}
    return TaskRouter(stt, llm, tts, policies={"stt": policy, "llm": policy, "tts": policy},
                      sleep=_no_sleep, **kwargs)


class Events:
    def __init__(self):
        self.log = []

    def retry(self, stage, provider, error):
        self.log.append(("retry", stage, provider))

    def fallback(self, stage, provider, error):
        self.log.append(("fallback", stage, provider))

    def breaker(self, stage, provider, state):
        self.log.append(("breaker", stage, provider, state.value))


async def test_fallback_order_is_the_configured_order():
    first = ScriptedSTT(name="first", failures=[ProviderError("boom")] * 2)
    second = ScriptedSTT(name="second", failures=[ProviderError("boom")] * 2)
    third = ScriptedSTT(name="third", script=["hello"])
    router = make_router(stt=[first, second, third])
    events = Events()
    router.listeners.append(events)
    result = await router.route_transcription(b"\0" * 3200, 16000)
    assert result.text == "hello" and result.provider == "third"
    assert len(first.calls) == 2 and len(second.calls) == 2 and len(third.calls) == 1
    assert [e for e in events.log if e[0] == "fallback"] == [("fallback", "stt", "first"),
                                                           ("fallback", "stt", "second")]


async def test_auth_error_is_not_retried_and_falls_back():
    bad = ScriptedSTT(name="bad", failures=[AuthError("invalid key", status=403)] * 5)
    good = ScriptedSTT(name="good", script=["ok"])
    router = make_router(stt=[bad, good], attempts=3)
    assert (await router.route_transcription(b"\0" * 3200, 16000)).text == "ok"
    assert len(bad.calls) == 1


async def test_empty_transcript_counts_as_failure():
    empty = ScriptedSTT(name="empty", failures=["empty", "empty"])
    good = ScriptedSTT(name="good", script=["real words"])
    router = make_router(stt=[empty, good])
    assert (await router.route_transcription(b"\0" * 3200, 16000)).text == "real words"
    assert len(empty.calls) == 2


async def test_all_failed_reports_every_error():
    router = make_router(stt=[ScriptedSTT(name="a", failures=[AuthError("no")]),
                              ScriptedSTT(name="b", failures=[RateLimited("slow")] * 2)])
    with pytest.raises(AllProvidersFailed) as info:
        await router.route_transcription(b"\0" * 3200, 16000)
    assert [e.provider for e in info.value.errors] == ["a", "b"]


async def test_breaker_opens_then_provider_is_skipped():
    clock_now = [0.0]
    flaky = ScriptedSTT(name="flaky", failures=[ProviderError("down")] * 10)
    backup = ScriptedSTT(name="backup", script=["fine"])
    router = make_router(stt=[flaky, backup], attempts=1, threshold=2, clock=lambda: clock_now[0])
    for _ in range(2):
        await router.route_transcription(b"\0" * 3200, 16000)
    assert router.chains["stt"][0].breaker.state is BreakerState.OPEN
    await router.route_transcription(b"\0" * 3200, 16000)
    assert len(flaky.calls) == 2  # skipped while open
    clock_now[0] += 31
    flaky.failures.clear()
    await router.route_transcription(b"\0" * 3200, 16000)
    assert len(flaky.calls) == 3 and router.chains["stt"][0].breaker.state is BreakerState.CLOSED


async def test_providers_that_do_not_serve_the_language_are_skipped():
    english = ScriptedSTT(name="tiny-en", languages=frozenset({"en-IN"}), script=["hello"])
    indic = ScriptedSTT(name="indic", script=[Transcript("नमस्ते", "hi-IN")])
    router = make_router(stt=[english, indic])
    result = await router.route_transcription(b"\0" * 3200, 16000, "hi-IN", detect=True)
    assert result.provider == "indic" and not english.calls
    assert indic.calls[0]["language"] is None  # asked to detect


async def collect(agen):
    return [item async for item in agen]


async def test_generation_falls_back_before_the_first_token():
    hanging = ScriptedLLM(name="hangs", failures=["hang", "hang"])
    good = ScriptedLLM(name="good", replies=["Hello there."])
    router = make_router(llm=[hanging, good], timeout=0.05)
    served = []
    tokens = await collect(router.route_generation([Message("user", "hi")], "en-IN", served))
    assert "".join(tokens) == "Hello there." and served == ["good"]


async def test_stream_cut_after_start_is_not_replayed():
    cut = ScriptedLLM(name="cut", replies=["one two three four"], cut_after_tokens=2)
    other = ScriptedLLM(name="other", replies=["never used"])
    router = make_router(llm=[cut, other])
    tokens = []
    with pytest.raises(StreamInterrupted):
        async for token in router.route_generation([Message("user", "hi")], "en-IN"):
            tokens.append(token)
    assert tokens == ["one", " two"] and not other.calls


async def test_tts_hang_mid_stream_is_bounded_by_the_idle_timeout():
    class SlowSecondChunk(ScriptedTTS):
        async def synthesize(self, text, language):
            async for i, chunk in _enumerate(super().synthesize(text, language)):
                if i == 1:
                    await asyncio.sleep(10)
                yield chunk

    router = make_router(tts=[SlowSecondChunk(chunk_ms=20)], timeout=0.05)
    with pytest.raises(StreamInterrupted):
        await collect(router.route_synthesis("a long sentence to speak", "en-IN"))


async def _enumerate(agen):
    i = 0
    async for item in agen:
        yield i, item
        i += 1


async def test_empty_tts_stream_falls_back():
    silent = ScriptedTTS(name="silent", failures=["empty", "empty"])
    loud = ScriptedTTS(name="loud")
    router = make_router(tts=[silent, loud])
    served = []
    chunks = await collect(router.route_synthesis("Hi.", "en-IN", served))
    assert chunks and served == ["loud"]


def test_provider_status_lists_every_provider():
    router = make_router(stt=[ScriptedSTT()], llm=[ScriptedLLM()], tts=[ScriptedTTS()])
    status = router.provider_status()
    assert [(s["stage"], s["breaker"]) for s in status] == [("stt", "closed"), ("llm", "closed"),
                                                           ("tts", "closed")]


# --- the one retry loop (every stage goes through TaskRouter._first) ---

async def test_retries_until_success():
    flaky = ScriptedSTT(name="flaky", script=["ok"], failures=[RateLimited("slow down")] * 2)
    router = make_router(stt=[flaky], attempts=3)
    assert (await router.route_transcription(b"\0" * 3200, 16000)).text == "ok"
    assert len(flaky.calls) == 3


@pytest.mark.parametrize("error", [AuthError("bad key"), QuotaExceeded("no credits")])
async def test_retries_stop_on_non_retryable_errors(error):
    failing = ScriptedLLM(name="failing", failures=[error] * 5)
    router = make_router(llm=[failing], attempts=5)
    with pytest.raises(AllProvidersFailed) as caught:
        async for _ in router.route_generation([Message("user", "hi")], "en-IN"):
            pass
    assert isinstance(caught.value.errors[0], type(error))
    assert len(failing.calls) == 1


async def test_per_attempt_timeout_raises_provider_timeout():
    hangs = ScriptedSTT(name="hangs", failures=["hang", "hang"])
    router = make_router(stt=[hangs], attempts=2, timeout=0.05)
    with pytest.raises(AllProvidersFailed) as caught:
        await router.route_transcription(b"\0" * 3200, 16000)
    assert isinstance(caught.value.errors[0], ProviderTimeout) and len(hangs.calls) == 2
