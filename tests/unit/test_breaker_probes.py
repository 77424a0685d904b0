"""Open breakers are closed by a background probe, never by a live turn."""

import asyncio

from sutradhar.engines.base import ProviderError
from sutradhar.engines.fallback import AllProvidersFailed, StagePolicy, TaskRouter
from sutradhar.engines.probes import BreakerProbes, probe_request
from sutradhar.engines.resilience import BreakerState, RetryPolicy
from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS

AUDIO = b"\0" * 3200


class BreakerWatch:
    """Router listener: breaker states in order, and an event per state reached."""

    def __init__(self) -> None:
        self.states: list[str] = []
        self.reached: dict[str, asyncio.Event] = {s.value: asyncio.Event() for s in BreakerState}
        self.probes: list[bool] = []

    def breaker(self, stage, provider, state) -> None:
        self.states.append(state.value)
        self.reached[state.value].set()

    def probe(self, stage, provider, ok) -> None:
        self.probes.append(ok)


def probed_router(stt, interval=0.05, reset=0.01):
    policy = StagePolicy(RetryPolicy(attempts=1, timeout=1.0, backoff=0), failure_threshold=1,
                         reset_timeout=reset)
    r = TaskRouter(stt, policies={"stt": policy}, probes=BreakerProbes(interval, timeout_s=0.5))
    watch = BreakerWatch()
    r.listeners.append(watch)
    return r, watch


async def test_a_probe_closes_the_breaker_once_the_provider_answers_again():
    boom = ProviderError("503", status=503)
    primary = ScriptedSTT(name="primary", failures=[boom, boom], script=["primary heard"])
    backup = ScriptedSTT(name="backup", script=["backup heard"])
    r, watch = probed_router([primary, backup])
    assert (await r.route_transcription(AUDIO, 16000)).provider == "backup"  # opens the breaker
    await asyncio.wait_for(watch.reached["closed"].wait(), 5)
    # open -> the probe's trial fails (still down) -> open -> the next probe answers -> closed
    assert watch.states == ["open", "half_open", "open", "half_open", "closed"]
    assert watch.probes == [False, True]
    slot = r.chains["stt"][0]
    assert slot.probe.probes == 2 and slot.probe.last_ok_at is not None and not slot.probe.running
    assert (await r.route_transcription(AUDIO, 16000)).provider == "primary"
    await r.aclose()


async def test_live_requests_are_not_the_half_open_trial_while_a_probe_runs():
    primary = ScriptedSTT(name="primary", failures=[ProviderError("down")] + ["hang"] * 3)
    r, watch = probed_router([primary], interval=0.02, reset=0.0)
    try:
        try:
            await r.route_transcription(AUDIO, 16000)
        except AllProvidersFailed:
            pass
        await asyncio.wait_for(watch.reached["half_open"].wait(), 5)  # the probe is the trial
        calls = len(primary.calls)
        for _ in range(3):  # the reset timeout has long passed; still no live request goes through
            try:
                await r.route_transcription(AUDIO, 16000)
            except AllProvidersFailed as exc:
                assert exc.kind == "error"  # CircuitOpen
        assert len(primary.calls) == calls
    finally:
        await r.aclose()
    assert not r.chains["stt"][0].breaker.probing


async def test_probes_are_off_by_default_and_the_reset_timeout_applies():
    primary = ScriptedSTT(name="primary", failures=[ProviderError("down")])
    policy = StagePolicy(RetryPolicy(attempts=1, timeout=1.0, backoff=0), 1, reset_timeout=0.0)
    r = TaskRouter([primary], policies={"stt": policy})
    try:
        await r.route_transcription(AUDIO, 16000)
    except AllProvidersFailed:
        pass
    assert (await r.route_transcription(AUDIO, 16000)).provider == "primary"  # the live trial
    assert r.chains["stt"][0].probe.probes == 0


async def test_each_stage_is_probed_with_a_real_request():
    stt, llm, tts = ScriptedSTT(), ScriptedLLM(), ScriptedTTS()
    await probe_request("stt", stt, "en-IN")
    await probe_request("llm", llm, "en-IN")
    await probe_request("tts", tts, "en-IN")
    assert len(stt.calls) == 1 and len(llm.calls) == 1 and tts.calls == [("OK.", "en-IN")]
