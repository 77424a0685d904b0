"""The official `openai` SDK (pinned in the `test` extra) against FakeOpenAI, endpoint by endpoint.

If the SDK cannot parse what the fake answers, or the fake accepts what the real API rejects, the
fake has drifted from the wire format and the integration tests of our own clients prove nothing.
`max_retries=0`: the SDK would otherwise retry 429/5xx itself and hide the first answer.
"""

from __future__ import annotations

import io
import wave

import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.fakes import FakeOpenAI, Fault
from tests.fakes._server import tone_pcm

MESSAGES = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is the capital of France?"}]


def sdk(fake: FakeOpenAI, key: str | None = None) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=fake.base_url, api_key=key or fake.api_key, max_retries=0,
                       timeout=5.0)


def wav(seconds: float = 0.3, rate: int = 16000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(tone_pcm(seconds, rate))
    return out.getvalue()


# --- chat completions ---

async def test_streaming_chat_chunks_parse_as_sdk_chunks(fake_openai: FakeOpenAI) -> None:
    fake_openai.reply("Paris is the capital.")
    async with sdk(fake_openai) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, max_completion_tokens=50,
            stream_options={"include_usage": True})
        chunks = [c async for c in stream]
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1 and all(c.created and c.model == "gpt-4o-mini" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Paris is the capital."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None  # include_usage: last chunk


async def test_non_streaming_chat_is_one_json_completion_not_sse(fake_openai: FakeOpenAI) -> None:
    fake_openai.reply("Paris.")
    async with sdk(fake_openai) as client:
        completion = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert isinstance(completion, ChatCompletion) and completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Paris."
    assert completion.choices[0].finish_reason == "stop" and completion.usage is not None


async def test_chat_rejects_deprecated_max_tokens_like_reasoning_models(fake_openai: FakeOpenAI) -> None:
    async with sdk(fake_openai) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model="o4-mini", messages=MESSAGES, max_tokens=50)
    assert caught.value.param == "max_tokens" and caught.value.code == "unsupported_parameter"
    assert caught.value.type == "invalid_request_error"


@pytest.mark.parametrize(("extra", "param"), [
    ({"extra_body": {"max_tokenz": 5}}, "max_tokenz"),  # unknown field
    ({"temperature": 3}, "temperature"),  # out of range
    ({"reasoning_effort": "extreme"}, "reasoning_effort"),  # outside the SDK's Literal
])
async def test_chat_rejects_what_the_api_rejects(fake_openai: FakeOpenAI, extra: dict, param: str) -> None:
    async with sdk(fake_openai) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, **extra)
    assert caught.value.param == param
    assert set(caught.value.body) == {"message", "type", "param", "code"}  # type: ignore[arg-type]


async def test_chat_rejects_a_temperature_on_reasoning_models(fake_openai: FakeOpenAI) -> None:
    async with sdk(fake_openai) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model="o4-mini", messages=MESSAGES, temperature=0.4)
        await client.chat.completions.create(model="o4-mini", messages=MESSAGES)  # default is fine
    assert caught.value.param == "temperature" and caught.value.code == "unsupported_value"


async def test_chat_rejects_empty_messages(fake_openai: FakeOpenAI) -> None:
    async with sdk(fake_openai) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert caught.value.param == "messages"


@pytest.mark.parametrize(("fault", "error", "code"), [
    (Fault(status=429, code="rate_limit_exceeded"), openai.RateLimitError, "rate_limit_exceeded"),
    (Fault(status=429, code="insufficient_quota"), openai.RateLimitError, "insufficient_quota"),
    (Fault(status=400, code="invalid_request_error"), openai.BadRequestError, "invalid_request_error"),
    (Fault(status=500, code="server_error"), openai.InternalServerError, "server_error"),
])
async def test_chat_error_statuses_reach_the_sdk_as_its_classes(fake_openai: FakeOpenAI, fault: Fault,
                                                                error: type, code: str) -> None:
    fake_openai.inject("chat", fault)
    async with sdk(fake_openai) as client:
        with pytest.raises(error) as caught:
            await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert caught.value.code == code and caught.value.request_id == fault.request_id


async def test_wrong_key_is_sdk_authentication_error(fake_openai: FakeOpenAI) -> None:
    async with sdk(fake_openai, key="sk-wrong") as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        with pytest.raises(openai.AuthenticationError):
            await client.models.list()
    assert caught.value.code == "invalid_api_key"


# --- audio ---

async def test_transcription_parses_as_sdk_transcription(fake_openai: FakeOpenAI) -> None:
    fake_openai.transcripts.append("namaste duniya")
    async with sdk(fake_openai) as client:
        result = await client.audio.transcriptions.create(
            model="whisper-1", file=("audio.wav", wav(), "audio/wav"), language="hi",
            response_format="json", temperature=0)
    assert result.text == "namaste duniya"
    assert fake_openai.calls("stt")[0]["fields"]["language"] == "hi"


@pytest.mark.parametrize(("extra", "param"), [
    ({"language": "hi-IN"}, "language"),  # BCP-47 is not ISO-639-1
    ({"model": "whisper-2"}, "model"),
    ({"extra_body": {"beam_size": "5"}}, "beam_size"),
])
async def test_transcription_rejects_what_the_api_rejects(fake_openai: FakeOpenAI, extra: dict,
                                                          param: str) -> None:
    kwargs = {"model": "whisper-1", "file": ("audio.wav", wav(), "audio/wav"), **extra}
    async with sdk(fake_openai) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.audio.transcriptions.create(**kwargs)
    assert caught.value.param == param


async def test_transcription_quota_is_429_insufficient_quota(fake_openai: FakeOpenAI) -> None:
    fake_openai.inject("stt", Fault(status=429, code="insufficient_quota"))
    async with sdk(fake_openai) as client:
        with pytest.raises(openai.RateLimitError) as caught:
            await client.audio.transcriptions.create(model="whisper-1", file=("a.wav", wav(), "audio/wav"))
    assert caught.value.code == "insufficient_quota" and caught.value.type == "insufficient_quota"


async def test_speech_pcm_streams_bytes_through_the_sdk(fake_openai: FakeOpenAI) -> None:
    async with sdk(fake_openai) as client, client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input="Hello there.", response_format="pcm") as response:
        audio = b"".join([piece async for piece in response.iter_bytes()])
    assert audio == tone_pcm(len("Hello there.") * 0.06, 24000)


@pytest.mark.parametrize(("extra", "param"), [
    ({"response_format": "pcm16"}, "response_format"),
    ({"speed": 9.0}, "speed"),
    ({"model": "tts-2"}, "model"),
])
async def test_speech_rejects_what_the_api_rejects(fake_openai: FakeOpenAI, extra: dict, param: str) -> None:
    kwargs = {"model": "tts-1", "voice": "alloy", "input": "Hi.", **extra}
    async with sdk(fake_openai) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.audio.speech.create(**kwargs)
    assert caught.value.param == param


async def test_speech_server_error_is_sdk_internal_server_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.inject("tts", Fault(status=500, code="server_error"))
    async with sdk(fake_openai) as client:
        with pytest.raises(openai.InternalServerError):
            await client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.")


# --- models (our health check) ---

async def test_models_list_parses_as_sdk_models(fake_openai: FakeOpenAI) -> None:
    async with sdk(fake_openai) as client:
        page = await client.models.list()
    assert [m.id for m in page.data][:1] == ["gpt-4o-mini"]
    assert all(m.object == "model" and m.owned_by for m in page.data)


# --- tool calls ---

async def test_streamed_tool_calls_assemble_into_the_sdks_final_message(fake_openai: FakeOpenAI) -> None:
    from openai.lib.streaming.chat import ChatCompletionStreamState

    from tests.fakes import ToolCalls

    reply = ToolCalls((("order_status", {"order_id": "4567"}), ("store_hours", {"city": "Pune"})),
                      piece_chars=3)
    fake_openai.reply(reply)
    tools = [{"type": "function", "function": {"name": name, "parameters": {
        "type": "object", "properties": {key: {"type": "string"}}}}}
        for name, key in (("order_status", "order_id"), ("store_hours", "city"))]
    async with sdk(fake_openai) as client:
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                                      stream=True, tools=tools)
        state = ChatCompletionStreamState()
        chunks = [c async for c in stream]
    for chunk in chunks:
        state.handle_chunk(chunk)
    choice = state.get_final_completion().choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls] == [
        (reply.call_id(0), "order_status", '{"order_id": "4567"}'),
        (reply.call_id(1), "store_hours", '{"city": "Pune"}')]
    # As the API: the first call's delta carries the role; later deltas only index and arguments.
    first = chunks[0].choices[0].delta
    assert first.role == "assistant" and first.tool_calls[0].function.arguments == ""
    assert all(c.choices[0].delta.tool_calls[0].id is None for c in chunks[1:4])


async def test_a_tool_message_without_its_call_is_refused_like_the_api(fake_openai: FakeOpenAI) -> None:
    orphan = [*MESSAGES, {"role": "tool", "tool_call_id": "call_x", "content": "{}"}]
    unanswered = [*MESSAGES, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_y", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "user", "content": "and?"}]
    async with sdk(fake_openai) as client:
        for messages in (orphan, unanswered):
            with pytest.raises(openai.BadRequestError) as caught:
                await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            assert "tool" in caught.value.message
