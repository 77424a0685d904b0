"""OpenAI-compatible clients against the loopback fake: SSE streaming, cuts, errors, PCM speech."""

from __future__ import annotations

import pytest

from sutradhar.engines.base import (
    AuthError,
    BadRequest,
    EmptyResult,
    Message,
    ProviderError,
    ProviderTimeout,
    QuotaExceeded,
    RateLimited,
)
from sutradhar.engines.openai.compat import OpenAIChat, OpenAISTT, OpenAITTS
from tests.fakes import FakeOpenAI, Fault
from tests.fakes._server import tone_pcm

MESSAGES = [Message("user", "What is the capital of France?")]


def chat(fake: FakeOpenAI, timeout_s: float = 2.0) -> OpenAIChat:
    return OpenAIChat(base_url=fake.base_url, api_key=fake.api_key, timeout_s=timeout_s)


async def reply_of(llm: OpenAIChat) -> list[str]:
    try:
        return [d async for d in llm.stream(MESSAGES, "en-IN")]
    finally:
        await llm.aclose()


@pytest.mark.parametrize("write_size", [None, 1, 7, 4096])
async def test_chat_streams_deltas_whatever_the_network_split(fake_openai: FakeOpenAI,
                                                              write_size: int | None) -> None:
    # 1 and 7 bytes split every event across reads; 4096 packs many events into one read.
    fake_openai.sse_write_size = write_size
    fake_openai.reply("Paris is the capital of France.")
    deltas = await reply_of(chat(fake_openai))
    assert "".join(deltas) == "Paris is the capital of France."
    assert len(deltas) == 6


async def test_chat_streams_reuse_one_connection(fake_openai: FakeOpenAI) -> None:
    # The body's end after [DONE] is read, so the pool keeps the connection: a closed one would
    # cost every turn a new TCP (and against a real provider, TLS) connection.
    llm = chat(fake_openai)
    try:
        for _ in range(3):
            fake_openai.reply("Paris is the capital of France.")
            assert "".join([d async for d in llm.stream(MESSAGES, "en-IN")]) == "Paris is the capital of France."
    finally:
        await llm.aclose()
    peers = [r["peer"] for r in fake_openai.calls("chat")]
    assert len(peers) == 3 and len(set(peers)) == 1


async def test_chat_stream_cut_in_the_middle_raises_retryable(fake_openai: FakeOpenAI) -> None:
    fake_openai.inject("chat", Fault(cut=True))
    fake_openai.reply("one two three four five six seven eight nine ten")
    received: list[str] = []
    with pytest.raises(ProviderError) as caught:
        async for delta in chat(fake_openai).stream(MESSAGES, "en-IN"):
            received.append(delta)
    assert caught.value.retryable and received  # some text came before the cut


@pytest.mark.parametrize(("fault", "error", "retryable"), [
    (Fault(status=401, code="invalid_api_key"), AuthError, False),
    (Fault(status=429, code="insufficient_quota"), QuotaExceeded, False),
    (Fault(status=429, code="rate_limit_exceeded"), RateLimited, True),
    (Fault(status=500, code="server_error"), ProviderError, True),
    (Fault(status=400, code="invalid_request_error"), ProviderError, False),
])
async def test_chat_error_bodies(fake_openai: FakeOpenAI, fault: Fault, error: type,
                                 retryable: bool) -> None:
    fake_openai.inject("chat", fault)
    with pytest.raises(error) as caught:
        await reply_of(chat(fake_openai))
    assert caught.value.retryable is retryable and caught.value.request_id == fault.request_id


async def test_chat_hang_is_timeout_and_empty_reply_is_empty(fake_openai: FakeOpenAI) -> None:
    fake_openai.inject("chat", Fault(hang=True))
    with pytest.raises(ProviderTimeout):
        await reply_of(chat(fake_openai, timeout_s=0.3))
    fake_openai.reasoning = "only thinking"
    fake_openai.reply("")
    with pytest.raises(EmptyResult):
        await reply_of(chat(fake_openai))


async def test_transcription_sends_iso_language(fake_openai: FakeOpenAI) -> None:
    fake_openai.transcripts.append("hello world")
    stt = OpenAISTT(base_url=fake_openai.base_url, api_key=fake_openai.api_key, timeout_s=2.0)
    result = await stt.transcribe(tone_pcm(0.5, 16000), 16000, "hi-IN")
    await stt.aclose()
    assert result.text == "hello world" and result.language == "hi-IN"
    assert fake_openai.calls("stt")[0]["fields"]["language"] == "hi"


async def test_speech_streams_pcm_keeping_odd_bytes(fake_openai: FakeOpenAI) -> None:
    tts = OpenAITTS(base_url=fake_openai.base_url, api_key=fake_openai.api_key, timeout_s=2.0)
    chunks = [c async for c in tts.synthesize("Hello there, caller.", "en-IN")]
    await tts.aclose()
    assert all(len(c.pcm) % 2 == 0 and c.sample_rate == 24000 for c in chunks)
    assert b"".join(c.pcm for c in chunks) == tone_pcm(20 * 0.06, 24000)
    assert fake_openai.calls("tts")[0]["json"]["response_format"] == "pcm"


async def test_speech_cut_raises(fake_openai: FakeOpenAI) -> None:
    fake_openai.inject("tts", Fault(cut=True))
    tts = OpenAITTS(base_url=fake_openai.base_url, api_key=fake_openai.api_key, timeout_s=2.0)
    with pytest.raises(ProviderError):
        async for _ in tts.synthesize("Hello there, caller. " * 5, "en-IN"):
            pass
    await tts.aclose()


async def test_health_does_one_cheap_authenticated_get(fake_openai: FakeOpenAI) -> None:
    good = chat(fake_openai)
    await good.health()
    await good.aclose()
    bad = OpenAIChat(base_url=fake_openai.base_url, api_key="wrong", timeout_s=2.0)
    with pytest.raises(AuthError):
        await bad.health()
    await bad.aclose()


async def test_chat_limits_length_with_max_completion_tokens(fake_openai: FakeOpenAI) -> None:
    # The strict fake, like o-series models, answers 400 to the deprecated `max_tokens`.
    fake_openai.reply("Paris.")
    llm = OpenAIChat(base_url=fake_openai.base_url, api_key=fake_openai.api_key, max_tokens=120,
                     model="o4-mini", timeout_s=2.0)
    assert "".join(await reply_of(llm)) == "Paris."
    body = fake_openai.calls("chat")[0]["json"]
    assert body["max_completion_tokens"] == 120 and "max_tokens" not in body


async def test_chat_sends_no_temperature_to_reasoning_models(fake_openai: FakeOpenAI) -> None:
    # o-series and gpt-5 models answer 400 to any temperature but the default; gpt-4o keeps ours.
    for model, sent in (("o4-mini", None), ("gpt-5-mini", None), ("gpt-4o-mini", 0.4)):
        fake_openai.reply("Paris.")
        llm = OpenAIChat(base_url=fake_openai.base_url, api_key=fake_openai.api_key, model=model,
                         temperature=0.4, timeout_s=2.0)
        assert "".join(await reply_of(llm)) == "Paris.", model
        assert fake_openai.calls("chat")[-1]["json"].get("temperature") == sent, model


async def test_chat_request_the_api_rejects_is_bad_request_with_its_message(fake_openai: FakeOpenAI) -> None:
    llm = OpenAIChat(base_url=fake_openai.base_url, api_key=fake_openai.api_key, temperature=5.0,
                     timeout_s=2.0)
    with pytest.raises(BadRequest) as caught:
        await reply_of(llm)
    assert "temperature" in caught.value.message and caught.value.status == 400
