"""DeepgramSTT against the strict loopback Deepgram: live stream, batch, errors, and the router's
fallback when the stream is cut."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

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
from sutradhar.engines.deepgram.stt import DeepgramSTT
from sutradhar.engines.fallback import TaskRouter
from sutradhar.engines.live_stt import open_transcription
from sutradhar.testing.scripted import ScriptedSTT
from tests.fakes import Fault
from tests.fakes._server import tone_pcm
from tests.fakes.deepgram_server import FakeDeepgram

RATE = 8000
FRAME = 320  # 20 ms of 8 kHz PCM16, what the call session pushes


@pytest.fixture
async def fake() -> AsyncIterator[FakeDeepgram]:
    async with FakeDeepgram() as server:
        yield server


def stt(fake: FakeDeepgram, **kwargs: object) -> DeepgramSTT:
    return DeepgramSTT(**{"base_url": fake.base_url, "api_key": fake.api_key, "timeout_s": 2.0, **kwargs})


async def speak(stream, seconds: float) -> None:
    pcm = tone_pcm(seconds, RATE)
    for i in range(0, len(pcm), FRAME):
        await stream.send(pcm[i:i + FRAME])
        await asyncio.sleep(0)


def test_deepgram_is_a_streaming_stt() -> None:
    assert isinstance(DeepgramSTT(api_key="k"), StreamingSTTProvider)


async def test_stream_sends_the_documented_query_and_token_auth(fake: FakeDeepgram) -> None:
    engine = stt(fake)
    stream = await engine.open_stream(RATE, "hi-IN")
    await stream.aclose()
    await engine.aclose()
    log = fake.streams[0]
    assert log.params == {"model": "nova-3", "language": "hi", "encoding": "linear16",
                          "sample_rate": "8000", "channels": "1", "interim_results": "true",
                          "endpointing": "false", "punctuate": "true", "smart_format": "true"}
    assert log.headers["Authorization"] == f"Token {fake.api_key}"


@pytest.mark.serial  # asserts wall-clock timing
async def test_interims_arrive_while_sending_and_the_final_comes_within_a_round_trip(fake: FakeDeepgram) -> None:
    fake.transcripts.append("where is my order please")
    interims: list[Transcript] = []
    engine = stt(fake)
    stream = await engine.open_stream(RATE, "en-IN", interims.append)
    await speak(stream, 0.8)
    await asyncio.sleep(0.05)  # let the reader take the last interim
    assert [t.text for t in interims] == ["where", "where is", "where is my", "where is my order"]
    assert all(not t.is_final and t.provider == "deepgram" for t in interims)
    started = time.perf_counter()
    final = await stream.finish()
    elapsed = time.perf_counter() - started
    await stream.aclose()
    await engine.aclose()
    assert final.text == "where is my order please" and final.is_final and final.language == "en-IN"
    assert elapsed < 0.05, f"finish took {elapsed * 1000:.0f} ms on loopback"
    assert [c["type"] for c in fake.streams[0].control] == ["Finalize", "CloseStream"]
    assert fake.streams[0].close_code == 1000


async def test_finals_received_mid_stream_are_kept_and_joined(fake: FakeDeepgram) -> None:
    fake.final_every_words = 2
    fake.transcripts.append("one two three four five")
    interims: list[Transcript] = []
    engine = stt(fake)
    stream = await engine.open_stream(RATE, "en-IN", interims.append)
    await speak(stream, 0.6)
    final = await stream.finish()
    await stream.aclose()
    await engine.aclose()
    assert final.text == "one two three four five"
    assert interims and interims[-1].text.startswith("one two")  # interims include earlier finals


async def test_detection_uses_nova3_multi(fake: FakeDeepgram) -> None:
    engine = stt(fake, model="nova-2")
    stream = await engine.open_stream(RATE, None)
    await stream.aclose()
    await engine.aclose()
    assert fake.streams[0].params["language"] == "multi" and fake.streams[0].params["model"] == "nova-3"


@pytest.mark.parametrize(("fault", "error"), [
    (Fault(status=402), QuotaExceeded),
    (Fault(status=403), AuthError),
    (Fault(status=429), RateLimited),
    (Fault(status=400), BadRequest),
    (Fault(status=503), ProviderError),
])
async def test_handshake_refusals_map_to_error_classes(fake: FakeDeepgram, fault: Fault, error: type) -> None:
    fake.inject("listen", fault)
    engine = stt(fake)
    with pytest.raises(error) as caught:
        await engine.open_stream(RATE, "en-IN")
    await engine.aclose()
    assert type(caught.value) is error and caught.value.status == fault.status
    assert caught.value.request_id == fault.request_id


async def test_wrong_key_is_auth_error_and_health_reports_it(fake: FakeDeepgram) -> None:
    engine = stt(fake, api_key="wrong")
    with pytest.raises(AuthError):
        await engine.open_stream(RATE, "en-IN")
    with pytest.raises(AuthError):
        await engine.health()
    await engine.aclose()
    good = stt(fake)
    await good.health()  # GET /v1/projects with the Token header
    await good.aclose()


async def test_unsupported_language_for_the_model_is_bad_request(fake: FakeDeepgram) -> None:
    engine = stt(fake, model="nova-2")
    with pytest.raises(BadRequest) as caught:
        await engine.open_stream(RATE, "gu-IN")
    await engine.aclose()
    assert "model/language" in caught.value.message


async def test_a_cut_mid_stream_raises_provider_error(fake: FakeDeepgram) -> None:
    fake.inject("listen", Fault(cut=True))
    engine = stt(fake)
    stream = await engine.open_stream(RATE, "en-IN")
    with pytest.raises(ProviderError) as caught:
        await speak(stream, 1.0)
        await stream.finish()
    await stream.aclose()
    await engine.aclose()
    assert type(caught.value) is ProviderError and caught.value.retryable


async def test_deepgram_closing_an_idle_stream_is_a_retryable_error(fake: FakeDeepgram) -> None:
    fake.idle_timeout_s = 0.1  # Deepgram's NET-0001: no audio for a while closes with 1011
    engine = stt(fake)
    stream = await engine.open_stream(RATE, "en-IN")
    await speak(stream, 0.1)
    await asyncio.sleep(0.3)
    with pytest.raises(ProviderError) as caught:
        await stream.finish()
    await stream.aclose()
    await engine.aclose()
    assert type(caught.value) is ProviderError and caught.value.retryable and "1011" in caught.value.message


async def test_a_slow_finalize_answer_is_a_timeout(fake: FakeDeepgram) -> None:
    fake.inject("listen", Fault(delay_s=0.5))
    engine = stt(fake, finalize_timeout_s=0.2)  # shorter than the fake's delay
    stream = await engine.open_stream(RATE, "en-IN")
    await speak(stream, 0.2)
    with pytest.raises(ProviderTimeout):
        await stream.finish()
    await stream.aclose()
    await engine.aclose()


async def test_batch_transcribe_posts_wav_with_token(fake: FakeDeepgram) -> None:
    fake.transcripts.append("mera order kahan hai")
    engine = stt(fake)
    result = await engine.transcribe(tone_pcm(0.5, RATE), RATE, "hi-IN")
    await engine.aclose()
    assert result.text == "mera order kahan hai" and result.language == "hi-IN"
    call = fake.calls("rest")[0]
    assert call["headers"]["Content-Type"] == "audio/wav"
    assert call["params"] == {"model": "nova-3", "language": "hi", "punctuate": "true", "smart_format": "true"}


@pytest.mark.parametrize(("fault", "error"), [
    (Fault(status=402), QuotaExceeded), (Fault(status=429), RateLimited),
    (Fault(status=500), ProviderError), (Fault(hang=True), ProviderTimeout),
])
async def test_batch_errors_map_to_error_classes(fake: FakeDeepgram, fault: Fault, error: type) -> None:
    fake.inject("rest", fault)
    engine = stt(fake, timeout_s=0.5)
    with pytest.raises(error) as caught:
        await engine.transcribe(tone_pcm(0.2, RATE), RATE, "en-IN")
    await engine.aclose()
    assert type(caught.value) is error


async def test_router_gives_the_whole_utterance_to_the_backup_when_the_stream_is_cut(fake: FakeDeepgram) -> None:
    fake.inject("listen", Fault(cut=True))
    backup = ScriptedSTT(name="backup", script=("I said all of this",))
    router = TaskRouter([stt(fake), backup])
    live = open_transcription(router, RATE, "en-IN")
    assert live is not None and live.provider == "deepgram"
    utterance = tone_pcm(1.0, RATE)
    for i in range(0, len(utterance), FRAME):
        live.push(utterance[i:i + FRAME])
        await asyncio.sleep(0.001)
    result = await live.finish(utterance, RATE, "en-IN")
    await router.aclose()
    assert result.text == "I said all of this" and result.provider == "backup"
    assert len(backup.calls) == 1 and backup.calls[0]["bytes"] == len(utterance)
    assert len(fake.streams) == 1  # the cut provider is not asked again for this utterance


async def test_router_takes_the_streamed_final_when_the_stream_holds(fake: FakeDeepgram) -> None:
    fake.transcripts.append("my order number is four two")
    backup = ScriptedSTT(name="backup", script=("never asked",))
    router = TaskRouter([stt(fake), backup])
    interims: list[Transcript] = []
    live = open_transcription(router, RATE, "en-IN", interims.append)
    assert live is not None
    utterance = tone_pcm(1.0, RATE)
    for i in range(0, len(utterance), FRAME):
        live.push(utterance[i:i + FRAME])
        await asyncio.sleep(0.001)
    result = await live.finish(utterance, RATE, "en-IN")
    await router.aclose()
    assert result.text == "my order number is four two" and result.provider == "deepgram"
    assert interims and backup.calls == []
