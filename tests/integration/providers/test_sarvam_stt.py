"""Sarvam STT client against the loopback fake: wire format, 30 s split, errors, WebSocket."""

from __future__ import annotations

import pytest

from sutradhar.engines.base import (
    AuthError,
    BadRequest,
    EmptyResult,
    MalformedResponse,
    ProviderError,
    ProviderTimeout,
    QuotaExceeded,
    RateLimited,
)
from sutradhar.engines.sarvam.stt import SarvamSTT
from tests.fakes import FakeSarvam, Fault
from tests.fakes._server import tone_pcm


def client(fake: FakeSarvam, **kw: object) -> SarvamSTT:
    return SarvamSTT(base_url=fake.base_url, api_key=fake.api_key, timeout_s=2.0, **kw)  # type: ignore[arg-type]


AUDIO_8K = tone_pcm(1.0, 8000)


async def test_sends_unknown_language_and_returns_detected_language(fake_sarvam: FakeSarvam) -> None:
    fake_sarvam.transcribe_as("नमस्ते", "hi-IN")
    stt = client(fake_sarvam)
    result = await stt.transcribe(AUDIO_8K, 8000, None)
    await stt.aclose()
    assert (result.text, result.language, result.provider) == ("नमस्ते", "hi-IN", "sarvam")
    call = fake_sarvam.calls("stt")[0]
    assert call["fields"]["language_code"] == "unknown"
    assert call["fields"]["model"] == "saaras:v3" and call["fields"]["mode"] == "transcribe"
    assert call["sample_rate"] == 16000  # resampled from 8 kHz, as Sarvam wants
    assert call["headers"]["api-subscription-key"] == fake_sarvam.api_key


async def test_saarika_is_refused_as_the_sdk_no_longer_lists_it(fake_sarvam: FakeSarvam) -> None:
    stt = client(fake_sarvam, model="saarika:v2.5")
    with pytest.raises(BadRequest, match="model"):
        await stt.transcribe(AUDIO_8K, 8000, "hi-IN")
    await stt.aclose()


async def test_default_model_is_one_the_sdk_lists_in_config_and_client() -> None:
    from sarvamai.types import SpeechToTextModel

    from sutradhar.config import Settings
    from tests.fakes.sarvam_contract import STT_WS_MODELS, literals

    assert Settings().sarvam_stt_model == SarvamSTT().model
    assert SarvamSTT().model in literals(SpeechToTextModel) & STT_WS_MODELS


async def test_saaras_v4_gets_no_mode_over_rest_but_does_on_the_socket(fake_sarvam: FakeSarvam) -> None:
    stt = client(fake_sarvam, model="saaras:v4")
    await stt.transcribe(AUDIO_8K, 8000, "hi-IN")  # the strict fake refuses mode with v4 over REST
    await stt.aclose()
    assert "mode" not in fake_sarvam.calls("stt")[0]["fields"]
    stt = client(fake_sarvam, model="saaras:v4", streaming=True)
    await stt.transcribe(AUDIO_8K, 8000, "hi-IN")
    await stt.aclose()
    assert fake_sarvam.calls("stt_ws")[0]["query"]["mode"] == "transcribe"


async def test_saaras_v3_sends_transcribe_mode(fake_sarvam: FakeSarvam) -> None:
    stt = client(fake_sarvam, model="saaras:v3")
    await stt.transcribe(AUDIO_8K, 8000, "te-IN")
    await stt.aclose()
    fields = fake_sarvam.calls("stt")[0]["fields"]
    assert fields["mode"] == "transcribe" and fields["language_code"] == "te-IN"


async def test_audio_over_30_seconds_is_split_and_texts_joined_in_order(fake_sarvam: FakeSarvam) -> None:
    fake_sarvam.transcriber = lambda pcm, fields: (f"part{round(len(pcm) / 32000)}", "en-IN")
    stt = client(fake_sarvam)
    result = await stt.transcribe(tone_pcm(70.0, 16000), 16000, "en-IN")
    await stt.aclose()
    seconds = [c["seconds"] for c in fake_sarvam.calls("stt")]
    assert sorted(seconds) == pytest.approx([10.0, 30.0, 30.0])
    assert result.text == "part30 part30 part10"


@pytest.mark.parametrize(("fault", "error", "retryable"), [
    (Fault.forbidden(), AuthError, False),
    (Fault.quota(), QuotaExceeded, False),
    (Fault.rate_limited(), RateLimited, True),
    (Fault.server_error(503), ProviderError, True),
    (Fault(status=422, code="unprocessable_entity_error", message="bad audio"), BadRequest, False),
])
async def test_http_errors_map_to_error_classes_with_request_id(
        fake_sarvam: FakeSarvam, fault: Fault, error: type, retryable: bool) -> None:
    fake_sarvam.inject("stt", fault)
    stt = client(fake_sarvam)
    with pytest.raises(error) as caught:
        await stt.transcribe(AUDIO_8K, 8000, "hi-IN")
    await stt.aclose()
    assert caught.value.retryable is retryable
    assert caught.value.request_id == fault.request_id
    assert caught.value.status == fault.status
    assert fault.message in str(caught.value)
    assert caught.value.stage == "stt" and caught.value.provider == "sarvam"


async def test_wrong_key_is_auth_error(fake_sarvam: FakeSarvam) -> None:
    stt = SarvamSTT(base_url=fake_sarvam.base_url, api_key="wrong", timeout_s=2.0)
    with pytest.raises(AuthError):
        await stt.transcribe(AUDIO_8K, 8000)
    with pytest.raises(AuthError):  # health reports the cached auth failure without a request
        await stt.health()
    await stt.aclose()


async def test_malformed_json_and_empty_transcript(fake_sarvam: FakeSarvam) -> None:
    fake_sarvam.inject("stt", Fault(malformed=True))
    fake_sarvam.transcribe_as("", None)
    stt = client(fake_sarvam)
    with pytest.raises(MalformedResponse):
        await stt.transcribe(AUDIO_8K, 8000)
    with pytest.raises(EmptyResult):
        await stt.transcribe(AUDIO_8K, 8000)
    await stt.aclose()


async def test_hang_becomes_provider_timeout(fake_sarvam: FakeSarvam) -> None:
    fake_sarvam.inject("stt", Fault(hang=True))
    stt = SarvamSTT(base_url=fake_sarvam.base_url, api_key=fake_sarvam.api_key, timeout_s=0.3)
    with pytest.raises(ProviderTimeout):
        await stt.transcribe(AUDIO_8K, 8000)
    await stt.aclose()


async def test_streaming_websocket_sends_audio_then_flush(fake_sarvam: FakeSarvam) -> None:
    fake_sarvam.transcribe_as("వెంటనే", "te-IN")
    stt = client(fake_sarvam, streaming=True)
    result = await stt.transcribe(AUDIO_8K, 8000, "te-IN")
    await stt.aclose()
    assert (result.text, result.language) == ("వెంటనే", "te-IN")
    call = fake_sarvam.calls("stt_ws")[0]
    assert call["messages"] == ["audio", "flush"]
    assert call["query"]["language-code"] == "te-IN" and call["query"]["model"] == "saaras:v3"
    assert call["headers"]["api-subscription-key"] == fake_sarvam.api_key


@pytest.mark.parametrize(("fault", "error"), [
    (Fault(code="insufficient_quota_error", message="no credits"), QuotaExceeded),
    (Fault(code="authentication_error", message="key revoked"), AuthError),
    (Fault(code="rate_limit_exceeded_error", message="slow down"), RateLimited),
    (Fault(code="internal_server_error", message="boom"), ProviderError),
    (Fault(cut=True), ProviderError),
    (Fault(status=403, code="invalid_api_key_error", message="bad key"), AuthError),
])
async def test_streaming_errors_become_provider_errors(
        fake_sarvam: FakeSarvam, fault: Fault, error: type) -> None:
    fake_sarvam.inject("stt_ws", fault)
    stt = client(fake_sarvam, streaming=True)
    with pytest.raises(error):
        await stt.transcribe(AUDIO_8K, 8000, "hi-IN")
    await stt.aclose()


@pytest.mark.parametrize(("fault", "error"), [
    (Fault(code="insufficient_quota_error", message="no credits left"), QuotaExceeded),
    (Fault(code="unprocessable_entity_error", message="audio too short"), BadRequest),
])
async def test_streaming_error_keeps_the_text_sarvam_sends_under_error(
        fake_sarvam: FakeSarvam, fault: Fault, error: type) -> None:
    # The STT socket's error is {"data": {"error": "<text>", "code": "<code>"}} (sarvamai ErrorData).
    fake_sarvam.inject("stt_ws", fault)
    stt = client(fake_sarvam, streaming=True)
    with pytest.raises(error, match=fault.message):
        await stt.transcribe(AUDIO_8K, 8000, "hi-IN")
    await stt.aclose()
