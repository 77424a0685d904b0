"""The official `deepgram-sdk` (pinned in the `test` extra) against FakeDeepgram: the live
WebSocket and prerecorded REST, success and refusals.

The SDK is pointed at the fake with a custom `DeepgramClientEnvironment` (`base` is the REST
origin, `production` the WebSocket origin). What the SDK sends is what Deepgram accepts, so the
fake must take it; what the fake sends must parse as the SDK's message types.
"""

from __future__ import annotations

import io
import wave
from collections.abc import AsyncIterator

import pytest
from deepgram import AsyncDeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.environment import DeepgramClientEnvironment
from deepgram.listen.v1.types import ListenV1Metadata, ListenV1Results

from tests.fakes import Fault
from tests.fakes._server import tone_pcm
from tests.fakes.deepgram_server import FakeDeepgram

RATE = 16000


@pytest.fixture
async def fake() -> AsyncIterator[FakeDeepgram]:
    async with FakeDeepgram() as server:
        yield server


def sdk(fake: FakeDeepgram, key: str | None = None) -> AsyncDeepgramClient:
    environment = DeepgramClientEnvironment(base=fake.base_url, production=fake.ws_url,
                                            agent=fake.ws_url, agent_rest=fake.base_url)
    return AsyncDeepgramClient(api_key=key or fake.api_key, environment=environment)


def wav(seconds: float) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(RATE)
        w.writeframes(tone_pcm(seconds, RATE))
    return out.getvalue()


LIVE = {"model": "nova-3", "encoding": "linear16", "sample_rate": str(RATE), "channels": "1",
        "interim_results": "true", "endpointing": "false", "punctuate": "true",
        "smart_format": "true", "language": "en-IN"}


async def test_live_stream_interims_then_finalize_then_metadata(fake: FakeDeepgram) -> None:
    fake.transcripts.append("where is my order")
    received: list[object] = []
    async with sdk(fake).listen.v1.connect(**LIVE) as socket:
        pcm = tone_pcm(1.0, RATE)
        for i in range(0, len(pcm), 640):
            await socket.send_media(pcm[i:i + 640])
        await socket.send_finalize()
        while not getattr(message := await socket.recv(), "from_finalize", False):
            received.append(message)
        received.append(message)
        await socket.send_close_stream()
        received.append(await socket.recv())
    results = [m for m in received if isinstance(m, ListenV1Results)]
    interims = [r.channel.alternatives[0].transcript for r in results if not r.is_final]
    assert interims == ["where", "where is", "where is my", "where is my order"]
    final = results[-1]
    assert final.is_final and final.from_finalize and final.channel.alternatives[0].transcript == "where is my order"
    assert isinstance(received[-1], ListenV1Metadata) and received[-1].duration == pytest.approx(1.0)
    assert fake.streams[0].close_code == 1000
    assert fake.streams[0].headers["Authorization"] == f"Token {fake.api_key}"


async def test_live_finals_mid_stream_are_not_repeated_by_finalize(fake: FakeDeepgram) -> None:
    fake.final_every_words = 2
    fake.transcripts.append("one two three four five")
    async with sdk(fake).listen.v1.connect(**LIVE) as socket:
        await socket.send_media(tone_pcm(0.8, RATE))  # four words audible
        await socket.send_finalize()
        finals = []
        while True:
            message = await socket.recv()
            if isinstance(message, ListenV1Results) and message.is_final:
                finals.append(message.channel.alternatives[0].transcript)
                if message.from_finalize:
                    break
    assert finals == ["one two three four", "five"]


@pytest.mark.parametrize(("override", "why"), [
    ({"model": "nova-9"}, "not a model the SDK knows"),
    ({"language": "hi-IN"}, "nova-3 takes hi, not hi-IN"),
    ({"model": "nova-2", "language": "gu"}, "nova-2 has no Gujarati"),
    ({"encoding": "pcm_s16le"}, "not an encoding"),
    ({"interim_results": "yes"}, "booleans are true/false"),
    ({"sample_rate": "fast"}, "sample_rate is a number"),
])
async def test_live_handshake_refuses_bad_query_with_400(fake: FakeDeepgram, override: dict, why: str) -> None:
    with pytest.raises(ApiError) as caught:
        async with sdk(fake).listen.v1.connect(**{**LIVE, **override}):
            pass
    assert caught.value.status_code == 400, why


async def test_live_handshake_needs_sample_rate_with_encoding(fake: FakeDeepgram) -> None:
    params = {k: v for k, v in LIVE.items() if k != "sample_rate"}
    with pytest.raises(ApiError) as caught:
        async with sdk(fake).listen.v1.connect(**params):
            pass
    assert caught.value.status_code == 400


@pytest.mark.parametrize("status", [401, 402, 429, 500])
async def test_live_handshake_statuses_reach_the_sdk(fake: FakeDeepgram, status: int) -> None:
    key = "wrong" if status == 401 else None
    if status != 401:
        fake.inject("listen", Fault(status=status))
    with pytest.raises(ApiError) as caught:
        async with sdk(fake, key).listen.v1.connect(**LIVE):
            pass
    assert caught.value.status_code == status


async def test_live_cut_mid_stream_ends_the_sdk_socket(fake: FakeDeepgram) -> None:
    fake.inject("listen", Fault(cut=True))
    async with sdk(fake).listen.v1.connect(**LIVE) as socket:
        await socket.send_media(tone_pcm(0.3, RATE))
        first = await socket.recv()
        assert isinstance(first, ListenV1Results) and not first.is_final
        with pytest.raises(Exception) as caught:  # websockets' ConnectionClosed: no close frame
            await socket.recv()
    assert "ConnectionClosed" in type(caught.value).__name__


async def test_prerecorded_wav_parses_as_sdk_response(fake: FakeDeepgram) -> None:
    fake.transcripts.append("namaste mera order kahan hai")
    response = await sdk(fake).listen.v1.media.transcribe_file(
        request=wav(0.5), model="nova-3", language="hi", punctuate=True, smart_format=True)
    alternative = response.results.channels[0].alternatives[0]
    assert alternative.transcript == "namaste mera order kahan hai"
    assert response.metadata.duration == pytest.approx(0.5)
    assert fake.requests[-1]["headers"]["Content-Type"] == "application/octet-stream"


async def test_prerecorded_raw_pcm_without_encoding_is_400(fake: FakeDeepgram) -> None:
    with pytest.raises(ApiError) as caught:
        await sdk(fake).listen.v1.media.transcribe_file(request=tone_pcm(0.5, RATE), model="nova-3")
    assert caught.value.status_code == 400


@pytest.mark.parametrize(("fault", "status", "err_code"), [
    (Fault(status=402), 402, "ASR_PAYMENT_REQUIRED"),
    (Fault(status=429), 429, "TOO_MANY_REQUESTS"),
    (Fault(status=503), 503, "INTERNAL_SERVER_ERROR"),
])
async def test_prerecorded_error_bodies_are_deepgrams(fake: FakeDeepgram, fault: Fault, status: int,
                                                      err_code: str) -> None:
    fake.inject("rest", fault)
    with pytest.raises(ApiError) as caught:
        # max_retries 0: the SDK retries 429 and 5xx by itself, which would hide the first answer.
        await sdk(fake).listen.v1.media.transcribe_file(request=wav(0.2), model="nova-3",
                                                        request_options={"max_retries": 0})
    assert caught.value.status_code == status
    assert caught.value.body["err_code"] == err_code and caught.value.body["request_id"] == fault.request_id


async def test_prerecorded_wrong_key_is_401_invalid_auth(fake: FakeDeepgram) -> None:
    with pytest.raises(ApiError) as caught:
        await sdk(fake, "wrong").listen.v1.media.transcribe_file(request=wav(0.2), model="nova-3")
    assert caught.value.status_code == 401 and caught.value.body["err_code"] == "INVALID_AUTH"
