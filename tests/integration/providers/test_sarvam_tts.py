"""Sarvam TTS client against the loopback fake: model parameters, splitting, WAV header, errors."""

from __future__ import annotations

import pytest

from sutradhar.audio.codecs import rms
from sutradhar.engines.base import (
    AudioChunk,
    AuthError,
    BadRequest,
    MalformedResponse,
    ProviderError,
    QuotaExceeded,
    RateLimited,
)
from sutradhar.engines.sarvam.tts import SarvamTTS
from sutradhar.text.sentences import split_text
from tests.fakes import FakeSarvam, Fault


def client(fake: FakeSarvam, **kw: object) -> SarvamTTS:
    return SarvamTTS(base_url=fake.base_url, api_key=fake.api_key, timeout_s=2.0, **kw)  # type: ignore[arg-type]


async def collect(tts: SarvamTTS, text: str, language: str) -> list[AudioChunk]:
    chunks = [c async for c in tts.synthesize(text, language)]
    await tts.aclose()
    return chunks


async def test_bulbul_v2_sends_pitch_and_loudness_and_registry_speaker(fake_sarvam: FakeSarvam) -> None:
    chunks = await collect(client(fake_sarvam), "नमस्ते दुनिया", "hi-IN")
    body = fake_sarvam.calls("tts")[0]["json"]
    assert body["model"] == "bulbul:v2" and body["speaker"] == "anushka"
    assert {"pitch", "loudness", "pace"} <= body.keys() and "temperature" not in body
    assert body["speech_sample_rate"] == 8000 and body["language_code"] == "hi-IN"
    assert "target_language_code" not in body  # the strict fake would refuse it with a 422
    assert all(c.sample_rate == 8000 for c in chunks)


async def test_bulbul_v3_never_sends_pitch_or_loudness(fake_sarvam: FakeSarvam) -> None:
    chunks = await collect(client(fake_sarvam, model="bulbul:v3"), "Hello there.", "en-IN")
    body = fake_sarvam.calls("tts")[0]["json"]
    assert "pitch" not in body and "loudness" not in body
    assert body["speaker"] == "shubh" and "temperature" in body and "pace" in body
    assert "enable_preprocessing" not in body  # v2 only: v3 always preprocesses
    assert sum(c.duration_s for c in chunks) > 0.5


async def test_wav_header_is_stripped(fake_sarvam: FakeSarvam) -> None:
    chunks = await collect(client(fake_sarvam), "Hello there, caller.", "en-IN")
    pcm = b"".join(c.pcm for c in chunks)
    assert not pcm.startswith(b"RIFF")
    # 20 characters at 60 ms each, at 8 kHz: exactly the tone, no 44 header bytes of noise.
    assert len(pcm) == int(20 * 0.06 * 8000) * 2
    assert rms(pcm) > 1000


async def test_long_text_is_split_under_the_limit_at_sentence_ends(fake_sarvam: FakeSarvam) -> None:
    sentence = "This is one sentence of a long answer. "
    text = sentence * 60  # about 2,300 characters
    await collect(client(fake_sarvam), text, "en-IN")
    texts = [c["json"]["text"] for c in fake_sarvam.calls("tts")]
    assert len(texts) == 2 and all(len(t) <= 1500 for t in texts)
    assert all(t.endswith(".") for t in texts)
    assert " ".join(texts) == text.strip()


def test_split_text_falls_back_to_spaces_then_hard_cuts() -> None:
    assert split_text("aaa bbb ccc", 7) == ["aaa bbb", "ccc"]
    assert split_text("abcdefghij", 4) == ["abcd", "efgh", "ij"]
    assert split_text("एक। दो। तीन।", 8) == ["एक। दो।", "तीन।"]
    assert split_text("   ", 10) == []


@pytest.mark.parametrize(("fault", "error"), [
    (Fault.forbidden(), AuthError), (Fault.quota(), QuotaExceeded),
    (Fault.server_error(502), ProviderError), (Fault(malformed=True), MalformedResponse),
])
async def test_rest_errors(fake_sarvam: FakeSarvam, fault: Fault, error: type) -> None:
    fake_sarvam.inject("tts", fault)
    with pytest.raises(error) as caught:
        await collect(client(fake_sarvam), "Hello", "en-IN")
    assert caught.value.request_id == fault.request_id


async def test_streaming_sends_config_text_flush_and_reads_until_final(fake_sarvam: FakeSarvam) -> None:
    chunks = await collect(client(fake_sarvam, streaming=True, model="bulbul:v3"),
                           "నమస్కారం, మీకు ఎలా సహాయం చేయగలను?", "te-IN")
    call = fake_sarvam.calls("tts_ws")[0]
    kinds = [m["type"] for m in call["messages"]]
    assert kinds == ["config", "text", "flush"]
    config = call["messages"][0]["data"]
    assert config["output_audio_codec"] == "linear16" and "pitch" not in config
    assert config["language_code"] == "te-IN" and "target_language_code" not in config
    assert call["query"]["send_completion_event"] == "true"
    assert len(chunks) > 2 and all(c.sample_rate == 8000 for c in chunks)


@pytest.mark.parametrize(("fault", "error"), [
    (Fault(cut=True), ProviderError),
    (Fault(malformed=True), MalformedResponse),
])
async def test_streaming_errors(fake_sarvam: FakeSarvam, fault: Fault, error: type) -> None:
    fake_sarvam.inject("tts_ws", fault)
    with pytest.raises(error):
        await collect(client(fake_sarvam, streaming=True), "Hello there, how are you?", "en-IN")


@pytest.mark.parametrize(("fault", "error", "retryable"), [
    (Fault(code="rate_limit_exceeded_error", message="slow down"), RateLimited, True),  # code 429
    (Fault(code="invalid_api_key_error", message="bad key"), AuthError, False),  # code 403
    (Fault(code="unprocessable_entity_error", message="bad config"), BadRequest, False),  # 422
    (Fault(code="internal_server_error", message="boom"), ProviderError, True),  # code 500
])
async def test_streaming_integer_error_codes_map_like_http_statuses(
        fake_sarvam: FakeSarvam, fault: Fault, error: type, retryable: bool) -> None:
    # The TTS socket's error code is an integer (sarvamai ErrorResponseData.code: int).
    fake_sarvam.inject("tts_ws", fault)
    with pytest.raises(error, match=fault.message) as caught:
        await collect(client(fake_sarvam, streaming=True), "Hello there, how are you?", "en-IN")
    assert type(caught.value) is error and caught.value.retryable is retryable


async def test_streaming_config_the_fake_refuses_surfaces_as_bad_request(fake_sarvam: FakeSarvam) -> None:
    # A v2 voice on bulbul:v3 is refused in-socket with {"type": "error", "data": {"code": 422}}.
    with pytest.raises(BadRequest, match="speaker"):
        await collect(client(fake_sarvam, streaming=True, model="bulbul:v3", speaker="anushka"),
                      "Hello there.", "en-IN")


async def test_bulbul_v4_flash_gets_v3_parameters_and_its_own_default_voice(fake_sarvam: FakeSarvam) -> None:
    # sarvamai 0.1.39: v4-flash has v3's contract (no pitch/loudness) and persona voices only.
    chunks = await collect(client(fake_sarvam, model="bulbul:v4-flash"), "Hello there.", "en-IN")
    body = fake_sarvam.calls("tts")[0]["json"]
    assert "pitch" not in body and "loudness" not in body and "temperature" in body
    assert body["speaker"] == "shubh_enhi_ads" and chunks
