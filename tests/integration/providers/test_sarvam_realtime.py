"""Sarvam realtime STT client against the strict loopback fake: interims while sending, the final
one round trip after finish, error mapping, and the router taking over when the socket is cut."""

from __future__ import annotations

import asyncio
import time

import pytest

from sutradhar.engines.base import (
    AuthError,
    BadRequest,
    ProviderError,
    ProviderTimeout,
    QuotaExceeded,
    RateLimited,
    StreamingSTTProvider,
    Transcript,
)
from sutradhar.engines.fallback import TaskRouter
from sutradhar.engines.live_stt import open_transcription
from sutradhar.engines.sarvam.realtime import SarvamRealtimeSTT
from sutradhar.testing.scripted import ScriptedSTT
from tests.fakes import FakeSarvam, Fault
from tests.fakes._server import tone_pcm

FRAME_MS = 20


def client(fake: FakeSarvam, **kw: object) -> SarvamRealtimeSTT:
    return SarvamRealtimeSTT(base_url=fake.base_url, api_key=fake.api_key, timeout_s=2.0, **kw)  # type: ignore[arg-type]


def frames(seconds: float, rate: int) -> list[bytes]:
    """PCM16 in 20 ms frames, as LiveTranscription pushes them."""
    pcm = tone_pcm(seconds, rate)
    step = rate * FRAME_MS // 1000 * 2
    return [pcm[i:i + step] for i in range(0, len(pcm), step)]


@pytest.mark.serial  # asserts wall-clock timing
async def test_interims_arrive_while_sending_and_final_follows_finish(fake_sarvam: FakeSarvam) -> None:
    fake_sarvam.transcribe_as("मुझे कल का टिकट चाहिए", "hi-IN")
    stt = client(fake_sarvam, detect_language=False)
    assert isinstance(stt, StreamingSTTProvider)
    interims: list[tuple[int, Transcript]] = []
    stream = await stt.open_stream(8000, "hi-IN", lambda t: interims.append((sent, t)))
    sent = 0
    for frame in frames(1.2, 8000):
        await stream.send(frame)
        sent += 1
        await asyncio.sleep(0)  # let the reader hand partials over, as real frame pacing does
    await asyncio.sleep(0.05)
    assert interims, "no partial transcript while audio was being sent"
    assert all(not t.is_final and t.provider == "sarvam-realtime" for _, t in interims)
    assert interims[0][0] < sent  # the first partial came before the last frame went out
    assert [t.text for _, t in interims][-1] == "मुझे कल का टिकट चाहिए"
    assert interims[0][1].text == "मुझे"  # word by word
    started = time.perf_counter()
    result = await stream.finish()
    elapsed_ms = (time.perf_counter() - started) * 1000
    print(f"sarvam-realtime final {elapsed_ms:.1f} ms after finish (loopback)")
    assert elapsed_ms < 300
    assert (result.text, result.language, result.is_final) == ("मुझे कल का टिकट चाहिए", "hi-IN", True)
    call = fake_sarvam.calls("stt_rt")[0]
    assert call["query"] == {"language_code": "hi-IN", "model": "saaras:v3-realtime",
                             "encoding": "linear16", "sample_rate": "8000", "endpointing": "manual"}
    assert call["headers"]["api-subscription-key"] == fake_sarvam.api_key
    assert call["messages"][0] == "speech_start" and call["messages"][-1] == "speech_end"
    assert set(call["messages"][1:-1]) == {"audio_input"}
    await stream.aclose()  # idempotent after finish
    await stt.aclose()


async def test_by_default_it_detects_so_a_caller_switching_language_is_followed(
        fake_sarvam: FakeSarvam) -> None:
    fake_sarvam.transcribe_as("నాకు టికెట్ కావాలి", "te-IN")
    interims: list[Transcript] = []
    stream = await client(fake_sarvam).open_stream(8000, "hi-IN", interims.append)  # the call's language
    for frame in frames(0.5, 8000):
        await stream.send(frame)
    result = await stream.finish()
    assert fake_sarvam.calls("stt_rt")[0]["query"]["language_code"] == "auto"
    assert (result.text, result.language) == ("నాకు టికెట్ కావాలి", "te-IN")
    assert interims and {t.language for t in interims} == {"te-IN"}


async def test_odia_is_or_in_on_this_socket_and_od_in_to_us(fake_sarvam: FakeSarvam) -> None:
    fake_sarvam.transcribe_as("ନମସ୍କାର", "od-IN")
    result = await client(fake_sarvam).transcribe(tone_pcm(0.5, 16000), 16000, None)
    assert (result.text, result.language) == ("ନମସ୍କାର", "od-IN")
    await client(fake_sarvam, detect_language=False).transcribe(tone_pcm(0.5, 16000), 16000, "od-IN")
    assert fake_sarvam.calls("stt_rt")[1]["query"]["language_code"] == "or-IN"  # the socket's code


async def test_batch_transcribe_resamples_rates_the_socket_does_not_take(fake_sarvam: FakeSarvam) -> None:
    fake_sarvam.transcribe_as("hello there", "en-IN")
    result = await client(fake_sarvam).transcribe(tone_pcm(1.0, 24000), 24000, "en-IN")
    assert result.text == "hello there"
    assert fake_sarvam.calls("stt_rt")[0]["query"]["sample_rate"] == "16000"


async def test_saaras_v4_is_accepted_and_an_unlisted_model_is_bad_request(fake_sarvam: FakeSarvam) -> None:
    assert (await client(fake_sarvam, model="saaras:v4").transcribe(tone_pcm(0.5, 8000), 8000,
                                                                     "en-IN")).text == "hello"
    with pytest.raises(BadRequest, match="model"):
        await client(fake_sarvam, model="saaras:v3").open_stream(8000, "en-IN")


@pytest.mark.parametrize(("fault", "error"), [
    (Fault.forbidden(), AuthError),
    (Fault.rate_limited(), RateLimited),
    (Fault.quota(), QuotaExceeded),
])
async def test_handshake_refusal_maps_like_http(fake_sarvam: FakeSarvam, fault: Fault,
                                                error: type[ProviderError]) -> None:
    fake_sarvam.inject("stt_rt", fault)
    with pytest.raises(error) as caught:
        await client(fake_sarvam).open_stream(8000, "hi-IN")
    assert caught.value.status == fault.status and caught.value.request_id == fault.request_id


async def test_wrong_key_rejected_in_band_is_auth_error(fake_sarvam: FakeSarvam) -> None:
    stt = SarvamRealtimeSTT(base_url=fake_sarvam.base_url, api_key="wrong", timeout_s=2.0)
    with pytest.raises(AuthError) as caught:
        await stt.open_stream(8000, "hi-IN")
    assert caught.value.status == 403
    with pytest.raises(AuthError):  # health reports the cached auth failure
        await stt.health()


@pytest.mark.parametrize(("fault", "error"), [
    (Fault(code="rate_limit_exceeded_error", message="slow down"), RateLimited),
    (Fault(code="insufficient_quota_error", message="no credits"), QuotaExceeded),
    (Fault(code="internal_server_error", message="boom"), ProviderError),
])
async def test_error_event_mid_stream_raises_its_class(fake_sarvam: FakeSarvam, fault: Fault,
                                                      error: type[ProviderError]) -> None:
    fake_sarvam.inject("stt_rt", fault)
    stream = await client(fake_sarvam).open_stream(16000, "hi-IN")
    with pytest.raises(error, match=fault.message):
        for frame in frames(0.5, 16000):
            await stream.send(frame)
            await asyncio.sleep(0)
        await stream.finish()
    await stream.aclose()


async def test_socket_cut_mid_stream_is_a_retryable_provider_error(fake_sarvam: FakeSarvam) -> None:
    fake_sarvam.inject("stt_rt", Fault(cut=True))
    fake_sarvam.transcribe_as("one two three four", "en-IN")
    interims: list[Transcript] = []
    stream = await client(fake_sarvam).open_stream(16000, "en-IN", interims.append)
    with pytest.raises(ProviderError) as caught:
        for frame in frames(1.0, 16000):
            await stream.send(frame)
            await asyncio.sleep(0)
        await stream.finish()
    assert caught.value.retryable and "closed before the final" in str(caught.value)
    assert [t.text for t in interims] == ["one"]  # it was cut after the first partial
    await stream.aclose()


async def test_no_final_in_time_is_provider_timeout(fake_sarvam: FakeSarvam) -> None:
    fake_sarvam.inject("stt_rt", Fault(hang=True))
    stt = SarvamRealtimeSTT(base_url=fake_sarvam.base_url, api_key=fake_sarvam.api_key, timeout_s=0.3)
    stream = await stt.open_stream(8000, "en-IN")
    await stream.send(tone_pcm(0.1, 8000))
    with pytest.raises(ProviderTimeout):
        await stream.finish()


async def test_latency_on_the_final_is_waited_for(fake_sarvam: FakeSarvam) -> None:
    fake_sarvam.inject("stt_rt", Fault(delay_s=0.15))
    stream = await client(fake_sarvam).open_stream(8000, "en-IN")
    await stream.send(tone_pcm(0.1, 8000))
    started = time.perf_counter()
    assert (await stream.finish()).text == "hello"
    assert time.perf_counter() - started >= 0.15


async def test_aclose_drops_the_stream_without_asking_for_a_final(fake_sarvam: FakeSarvam) -> None:
    stream = await client(fake_sarvam).open_stream(8000, "en-IN")
    await stream.send(tone_pcm(0.3, 8000))
    await stream.aclose()
    await stream.aclose()
    await asyncio.sleep(0.05)
    call = fake_sarvam.calls("stt_rt")[0]
    assert "speech_end" not in call["messages"] and "end" not in call["messages"]
    assert "transcript.final" not in call["sent"]


async def test_cut_stream_through_the_router_falls_back_with_the_whole_utterance(
        fake_sarvam: FakeSarvam) -> None:
    fake_sarvam.inject("stt_rt", Fault(cut=True))
    fake_sarvam.transcribe_as("लंबा वाक्य जो कट जाएगा", "hi-IN")
    backup = ScriptedSTT(name="backup", script=("मुझे कल का टिकट चाहिए",))
    router = TaskRouter([client(fake_sarvam), backup])
    interims: list[Transcript] = []
    live = open_transcription(router, 8000, "hi-IN", interims.append)
    assert live is not None and live.provider == "sarvam-realtime"
    for frame in frames(1.0, 8000):
        live.push(frame)
        await asyncio.sleep(0.001)
    utterance_16k = tone_pcm(1.0, 16000)
    result = await live.finish(utterance_16k, 16000, "hi-IN")
    assert (result.text, result.provider) == ("मुझे कल का टिकट चाहिए", "backup")
    assert interims and interims[0].text == "लंबा"  # it did stream before the cut
    # The backup got the whole utterance the turn detector kept, at its 16 kHz.
    assert [(c["bytes"], c["sample_rate"]) for c in backup.calls] == [(len(utterance_16k), 16000)]


def test_stt_sarvam_realtime_builds_a_streaming_engine_on_an_sdk_listed_model() -> None:
    from sutradhar.config import load_settings
    from sutradhar.engines.registry import build_engines
    from tests.fakes.sarvam_contract import RT_MODELS

    settings = load_settings(stt="sarvam-realtime,sarvam", llm="responder", tts="espeak",
                             sarvam_api_key="k", sarvam_ws_url="ws://127.0.0.1:9")
    realtime, rest = build_engines(settings).stt
    assert isinstance(realtime, SarvamRealtimeSTT) and isinstance(realtime, StreamingSTTProvider)
    assert not isinstance(rest, StreamingSTTProvider)  # REST sarvam stays the batch fallback
    assert realtime.model == settings.sarvam_stt_realtime_model == SarvamRealtimeSTT().model
    assert realtime.model in RT_MODELS and realtime.detect_language
    assert realtime.url() == "ws://127.0.0.1:9/speech-to-text-realtime/ws"
