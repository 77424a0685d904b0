"""The official Sarvam SDK (sarvamai 0.1.39) against our fake: the fake must speak the real wire.

Every Sarvam endpoint the project uses (the realtime STT socket included) is driven by the SDK's async client with its environment
pointed at the loopback fake. Success answers must parse into the SDK's own response types; error
answers must raise the SDK's error classes with Sarvam's error body. Where the fake is stricter
than the SDK (our clients are tested against it), a raw request shows what it refuses and how.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import httpx
import pytest
from sarvamai import AsyncSarvamAI, SarvamAIEnvironment
from sarvamai.core.api_error import ApiError
from sarvamai.errors import (
    BadRequestError,
    ForbiddenError,
    TooManyRequestsError,
    UnprocessableEntityError,
)
from sarvamai.types import (
    AudioOutput,
    CreateChatCompletionResponse,
    ErrorMessage,
    ErrorResponse,
    EventResponse,
    RealtimeAudioInput,
    RealtimeConfigUpdate,
    RealtimeConfigUpdated,
    RealtimeEnd,
    RealtimeError,
    RealtimeFlush,
    RealtimePing,
    RealtimePong,
    RealtimeSessionBegin,
    RealtimeSessionEnd,
    RealtimeSpeechEnd,
    RealtimeSpeechStart,
    RealtimeTranscriptFinal,
    RealtimeTranscriptPartial,
    RealtimeVadSpeechEnd,
    RealtimeVadSpeechStart,
    SpeechToTextResponse,
    SpeechToTextStreamingResponse,
    SpeechToTextTranscriptionData,
    TextToSpeechResponse,
)
from sarvamai.types import ErrorData as SttErrorData
from sarvamai.types.chat_completion_chunk import ChatCompletionChunk  # not re-exported
from websockets.exceptions import ConnectionClosed

from sutradhar.audio.codecs import pcm16_to_wav, wav_to_pcm16
from tests.fakes import FakeSarvam, Fault
from tests.fakes._server import tone_pcm

WAV_16K = pcm16_to_wav(tone_pcm(1.0, 16000), 16000)
# The SDK retries 429 and 5xx itself (twice by default); one injected fault needs no retry.
NO_RETRY = {"max_retries": 0}
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "नमस्ते"}]


def sdk(fake: FakeSarvam, key: str | None = None) -> AsyncSarvamAI:
    # The SDK's one knob for where it talks to: REST under `base`, sockets under `production`.
    environment = SarvamAIEnvironment(base=fake.base_url, creative=f"{fake.base_url}/dubbing",
                                      production=fake.ws_url)
    return AsyncSarvamAI(api_subscription_key=key or fake.api_key, environment=environment,
                         timeout=5.0)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSarvam]:
    async with FakeSarvam() as server:
        yield server


def sarvam_error(body: object) -> ErrorMessage:
    """The HTTP error body in the SDK's canonical envelope type (validates its shape)."""
    return ErrorMessage.model_validate(body)


# --- REST /speech-to-text ---

async def test_stt_rest_transcribes_into_the_sdk_response_type(fake: FakeSarvam) -> None:
    fake.transcribe_as("नमस्ते", "hi-IN")
    answer = await sdk(fake).speech_to_text.transcribe(
        file=("a.wav", WAV_16K, "audio/wav"), model="saaras:v3", mode="transcribe",
        language_code="unknown")
    assert isinstance(answer, SpeechToTextResponse)
    assert (answer.transcript, answer.language_code) == ("नमस्ते", "hi-IN")
    call = fake.calls("stt")[0]
    assert call["fields"]["model"] == "saaras:v3" and call["headers"]["api-subscription-key"]


@pytest.mark.parametrize(("kwargs", "status"), [
    ({"model": "saarika:v2.5"}, 422),  # not in SpeechToTextModel any more
    ({"model": "saaras:v4", "mode": "transcribe"}, 400),  # mode: "Only applicable ... saaras:v3"
    ({"language_code": "xx-IN"}, 422),
])
async def test_stt_rest_refuses_what_the_sdk_does_not_list(
        fake: FakeSarvam, kwargs: dict[str, str], status: int) -> None:
    with pytest.raises((BadRequestError, UnprocessableEntityError)) as caught:
        await sdk(fake).speech_to_text.transcribe(file=("a.wav", WAV_16K, "audio/wav"), **kwargs)
    assert caught.value.status_code == status
    assert sarvam_error(caught.value.body).error.code in ("invalid_request_error",
                                                          "unprocessable_entity_error")


async def test_stt_rest_bad_key_is_403_and_quota_is_429(fake: FakeSarvam) -> None:
    with pytest.raises(ForbiddenError) as forbidden:
        await sdk(fake, key="wrong").speech_to_text.transcribe(file=("a.wav", WAV_16K, "audio/wav"))
    assert sarvam_error(forbidden.value.body).error.code == "invalid_api_key_error"
    fake.inject("stt", Fault.quota())
    with pytest.raises(TooManyRequestsError) as quota:
        await sdk(fake).speech_to_text.transcribe(file=("a.wav", WAV_16K, "audio/wav"),
                                                  request_options=NO_RETRY)
    assert sarvam_error(quota.value.body).error.code == "insufficient_quota_error"


# --- STT WebSocket /speech-to-text/ws ---

async def test_stt_socket_answers_a_transcript_the_sdk_parses(fake: FakeSarvam) -> None:
    fake.transcribe_as("వెంటనే", "te-IN")
    async with sdk(fake).speech_to_text_streaming.connect(
            language_code="te-IN", model="saaras:v3", mode="transcribe", sample_rate="16000",
            flush_signal="true") as socket:
        await socket.transcribe(base64.b64encode(WAV_16K).decode(), sample_rate=16000)
        await socket.flush()
        answer = await socket.recv()
    assert isinstance(answer, SpeechToTextStreamingResponse) and answer.type == "data"
    assert isinstance(answer.data, SpeechToTextTranscriptionData)
    assert (answer.data.transcript, answer.data.language_code) == ("వెంటనే", "te-IN")
    assert answer.data.metrics.audio_duration == pytest.approx(1.0)
    assert fake.calls("stt_ws")[0]["query"]["language-code"] == "te-IN"


async def test_stt_socket_error_is_the_sdk_error_data_shape(fake: FakeSarvam) -> None:
    fake.inject("stt_ws", Fault(code="insufficient_quota_error", message="no credits left"))
    async with sdk(fake).speech_to_text_streaming.connect(language_code="hi-IN",
                                                          model="saaras:v3") as socket:
        await socket.transcribe(base64.b64encode(WAV_16K).decode())
        await socket.flush()
        answer = await socket.recv()
    assert answer.type == "error" and isinstance(answer.data, SttErrorData)
    assert (answer.data.error, answer.data.code) == ("no credits left", "insufficient_quota_error")


async def test_stt_socket_bad_key_and_bad_model_refuse_the_handshake(fake: FakeSarvam) -> None:
    with pytest.raises(ApiError) as forbidden:
        async with sdk(fake, key="wrong").speech_to_text_streaming.connect(language_code="hi-IN"):
            pass
    assert forbidden.value.status_code == 403
    with pytest.raises(ApiError) as invalid:
        async with sdk(fake).speech_to_text_streaming.connect(language_code="hi-IN",
                                                              model="saarika:v2.5"):
            pass
    assert invalid.value.status_code == 422


# --- STT realtime WebSocket /speech-to-text-realtime/ws ---

def audio_input(seconds: float, rate: int) -> list[RealtimeAudioInput]:
    """100 ms audio_input messages of a tone, base64 PCM16 as the SDK's type describes."""
    pcm = tone_pcm(seconds, rate)
    step = rate // 10 * 2
    return [RealtimeAudioInput(audio=base64.b64encode(pcm[i:i + step]).decode())
            for i in range(0, len(pcm), step)]


async def received_until(socket: object, kind: type) -> list[object]:
    """Messages up to one of `kind` (or an error). The SDK hands back a message it cannot parse as
    a plain dict and reads on, so a wrong shape would wait forever: the timeout fails it instead."""
    async with asyncio.timeout(5):
        messages = [await socket.recv()]  # type: ignore[attr-defined]
        while not isinstance(messages[-1], kind | RealtimeError):
            messages.append(await socket.recv())  # type: ignore[attr-defined]
    return messages


async def test_realtime_manual_turn_gives_partials_then_final_after_speech_end(fake: FakeSarvam) -> None:
    fake.transcribe_as("मुझे कल का टिकट चाहिए", "hi-IN")
    async with sdk(fake).speech_to_text_realtime_streaming.connect(
            language_code="hi-IN", model="saaras:v3-realtime", endpointing="manual",
            encoding="linear16", sample_rate="8000", mode="transcribe") as socket:
        begin = await socket.recv()
        await socket.send_realtime_speech_start(RealtimeSpeechStart())
        for message in audio_input(1.0, 8000):
            await socket.send_realtime_audio_input(message)
        await socket.send_realtime_speech_end(RealtimeSpeechEnd())
        messages = await received_until(socket, RealtimeTranscriptFinal)
    assert isinstance(begin, RealtimeSessionBegin) and begin.config is not None
    assert (begin.config.sample_rate, begin.config.turn_detection) == (8000, "manual")
    partials, final = messages[:-1], messages[-1]
    assert partials and all(isinstance(m, RealtimeTranscriptPartial) for m in partials)
    assert [m.text for m in partials] == ["मुझे", "मुझे कल", "मुझे कल का", "मुझे कल का टिकट",
                                          "मुझे कल का टिकट चाहिए"]
    assert isinstance(final, RealtimeTranscriptFinal)
    assert (final.text, final.utterance_idx, final.language) == ("मुझे कल का टिकट चाहिए", 0, None)


async def test_realtime_vad_turn_ends_with_end_and_reports_language_for_auto(fake: FakeSarvam) -> None:
    fake.transcribe_as("ନମସ୍କାର", "od-IN")
    async with sdk(fake).speech_to_text_realtime_streaming.connect(language_code="auto") as socket:
        await socket.recv()
        for message in audio_input(0.5, 16000):
            await socket.send_realtime_audio_input(message)
        await socket.send_realtime_end(RealtimeEnd())
        messages = await received_until(socket, RealtimeSessionEnd)
    kinds = [type(m) for m in messages]
    assert kinds[0] is RealtimeVadSpeechStart and RealtimeVadSpeechEnd in kinds
    final = next(m for m in messages if isinstance(m, RealtimeTranscriptFinal))
    assert (final.text, final.language, final.language_confidence) == ("ନମସ୍କାର", "or-IN", 0.9)
    assert isinstance(messages[-1], RealtimeSessionEnd) and messages[-1].total_utterances == 1


async def test_realtime_flush_in_vad_mode_is_a_fatal_error_and_close_4000(fake: FakeSarvam) -> None:
    async with sdk(fake).speech_to_text_realtime_streaming.connect(language_code="en-IN") as socket:
        await socket.recv()
        await socket.send_realtime_flush(RealtimeFlush())
        error = await socket.recv()
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
    assert isinstance(error, RealtimeError) and error.is_fatal and error.status_code == 400
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000


@pytest.mark.parametrize(("kwargs", "status"), [
    ({"sample_rate": "22050"}, 422),  # "Any other value closes the connection with code 4000"
    ({"model": "saaras:v3"}, 422),  # the batch model is not a realtime one
    ({"keyterms": '["Sarvam"]'}, 400),  # "only supported with model=saaras:v4"
])
async def test_realtime_bad_query_is_refused_in_band_with_close_4000(
        fake: FakeSarvam, kwargs: dict[str, str], status: int) -> None:
    async with sdk(fake).speech_to_text_realtime_streaming.connect(
            language_code="hi-IN", **kwargs) as socket:  # type: ignore[arg-type]
        error = await socket.recv()
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
    assert isinstance(error, RealtimeError) and (error.is_fatal, error.status_code) == (True, status)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000


async def test_realtime_bad_key_is_a_fatal_403_then_close_1003(fake: FakeSarvam) -> None:
    async with sdk(fake, key="wrong").speech_to_text_realtime_streaming.connect(
            language_code="hi-IN") as socket:
        error = await socket.recv()
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
    assert isinstance(error, RealtimeError) and error.status_code == 403
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003


@pytest.mark.parametrize("fault", [Fault.forbidden(), Fault.rate_limited()])
async def test_realtime_handshake_refusal_is_an_sdk_api_error(fake: FakeSarvam, fault: Fault) -> None:
    fake.inject("stt_rt", fault)
    with pytest.raises(ApiError) as caught:
        async with sdk(fake).speech_to_text_realtime_streaming.connect(language_code="hi-IN"):
            pass
    assert caught.value.status_code == fault.status


async def test_realtime_error_event_mid_stream_parses_as_realtime_error(fake: FakeSarvam) -> None:
    fake.inject("stt_rt", Fault(code="insufficient_quota_error", message="no credits left"))
    async with sdk(fake).speech_to_text_realtime_streaming.connect(language_code="hi-IN") as socket:
        await socket.recv()
        await socket.send_realtime_audio_input(audio_input(0.1, 16000)[0])
        error = await socket.recv()
    assert isinstance(error, RealtimeError)
    assert (error.code, error.message, error.is_fatal, error.status_code) == (
        "insufficient_quota_error", "no credits left", True, 429)


async def test_realtime_config_update_to_simulated_is_a_non_fatal_invalid_config(fake: FakeSarvam) -> None:
    async with sdk(fake).speech_to_text_realtime_streaming.connect(language_code="hi-IN") as socket:
        await socket.recv()
        await socket.send_realtime_config_update(RealtimeConfigUpdate(stream_type="simulated"))
        error = await socket.recv()
        await socket.send_realtime_config_update(RealtimeConfigUpdate(stream_type="fast"))
        updated = await socket.recv()
        await socket.send_realtime_ping(RealtimePing())
        pong = await socket.recv()
    assert isinstance(error, RealtimeError) and (error.code, error.is_fatal) == ("invalid_config", False)
    assert isinstance(updated, RealtimeConfigUpdated) and updated.applied == ["stream_type"]
    assert isinstance(pong, RealtimePong)


# --- REST /text-to-speech ---

async def test_tts_rest_answers_wav_the_sdk_parses(fake: FakeSarvam) -> None:
    answer = await sdk(fake).text_to_speech.convert(
        text="नमस्ते", language_code="hi-IN", model="bulbul:v2", speaker="anushka", pitch=0.0,
        loudness=1.0, pace=1.0, speech_sample_rate=8000, enable_preprocessing=True)
    assert isinstance(answer, TextToSpeechResponse) and len(answer.audios) == 1
    pcm, rate = wav_to_pcm16(base64.b64decode(answer.audios[0]))
    assert rate == 8000 and len(pcm) > 0
    assert fake.calls("tts")[0]["json"]["language_code"] == "hi-IN"  # the SDK's name for it


@pytest.mark.parametrize(("kwargs", "status"), [
    ({"model": "bulbul:v3", "pitch": 0.2}, 400),  # v3 has no pitch
    ({"model": "bulbul:v3", "speaker": "anushka"}, 422),  # a bulbul:v2 voice
    ({"model": "bulbul:v2", "speech_sample_rate": 44100}, 422),  # high rates are v3/v4 only
    ({"language_code": "or-IN"}, 422),  # Odia is od-IN
])
async def test_tts_rest_refuses_parameters_of_another_model(
        fake: FakeSarvam, kwargs: dict[str, object], status: int) -> None:
    arguments: dict[str, object] = {"text": "Hello", "language_code": "en-IN", **kwargs}
    with pytest.raises((BadRequestError, UnprocessableEntityError)) as caught:
        await sdk(fake).text_to_speech.convert(**arguments)  # type: ignore[arg-type]
    assert caught.value.status_code == status
    sarvam_error(caught.value.body)


async def test_tts_rest_refuses_the_old_target_language_code_field(fake: FakeSarvam) -> None:
    # The SDK cannot send it any more; a raw request shows what an old client gets.
    async with httpx.AsyncClient(base_url=fake.base_url) as client:
        response = await client.post("/text-to-speech", headers={"api-subscription-key": fake.api_key},
                                     json={"text": "Hello", "target_language_code": "en-IN"})
    assert response.status_code == 422
    assert "target_language_code" in sarvam_error(response.json()).error.message


async def test_tts_rest_rate_limit_is_429_with_sarvam_body(fake: FakeSarvam) -> None:
    fault = Fault.rate_limited()
    fake.inject("tts", fault)
    with pytest.raises(TooManyRequestsError) as caught:
        await sdk(fake).text_to_speech.convert(text="Hello", language_code="en-IN",
                                               request_options=NO_RETRY)
    body = sarvam_error(caught.value.body)
    assert (body.error.code, body.error.request_id) == ("rate_limit_exceeded_error", fault.request_id)


# --- TTS WebSocket /text-to-speech/ws ---

async def test_tts_socket_streams_audio_then_final_event_the_sdk_parses(fake: FakeSarvam) -> None:
    async with sdk(fake).text_to_speech_streaming.connect(model="bulbul:v2",
                                                          send_completion_event="true") as socket:
        await socket.configure(target_language_code="te-IN", speaker="anushka",
                               speech_sample_rate=8000, output_audio_codec="linear16")
        await socket.convert("నమస్కారం, మీకు ఎలా సహాయం చేయగలను?")
        await socket.flush()
        messages = [await socket.recv()]
        while not isinstance(messages[-1], EventResponse):
            messages.append(await socket.recv())
    audio = [m for m in messages if isinstance(m, AudioOutput)]
    assert len(audio) == len(messages) - 1 > 1
    assert all(m.data.content_type and base64.b64decode(m.data.audio) for m in audio)
    assert messages[-1].data.event_type == "final"
    config = fake.calls("tts_ws")[0]["messages"][0]["data"]
    assert config["language_code"] == "te-IN" and "target_language_code" not in config


@pytest.mark.parametrize(("fault", "code"), [
    (Fault(code="rate_limit_exceeded_error", message="slow down"), 429),
    (Fault(code="invalid_api_key_error", message="key revoked"), 403),
])
async def test_tts_socket_error_is_the_sdk_error_response_with_integer_code(
        fake: FakeSarvam, fault: Fault, code: int) -> None:
    fake.inject("tts_ws", fault)
    async with sdk(fake).text_to_speech_streaming.connect(model="bulbul:v3") as socket:
        await socket.configure(target_language_code="hi-IN", speaker="shubh")
        await socket.convert("नमस्ते")
        await socket.flush()
        answer = await socket.recv()
    assert isinstance(answer, ErrorResponse)
    assert (answer.data.message, answer.data.code) == (fault.message, code)


async def test_tts_socket_refuses_a_voice_of_another_model_in_band(fake: FakeSarvam) -> None:
    async with sdk(fake).text_to_speech_streaming.connect(model="bulbul:v3") as socket:
        await socket.configure(target_language_code="hi-IN")  # the SDK's default voice is v2's
        answer = await socket.recv()
    assert isinstance(answer, ErrorResponse) and answer.data.code == 422
    assert "speaker" in answer.data.message


async def test_tts_socket_bad_key_refuses_the_handshake(fake: FakeSarvam) -> None:
    with pytest.raises(ApiError) as caught:
        async with sdk(fake, key="wrong").text_to_speech_streaming.connect(model="bulbul:v3"):
            pass
    assert caught.value.status_code == 403


# --- chat /v1/chat/completions ---

async def test_chat_without_stream_is_one_json_completion(fake: FakeSarvam) -> None:
    fake.reply("नमस्ते! बताइए?")
    answer = await sdk(fake).chat.completions(messages=MESSAGES, model="sarvam-105b-conversations")
    assert isinstance(answer, CreateChatCompletionResponse)
    assert answer.choices[0].message.content == "नमस्ते! बताइए?"
    assert answer.model == "sarvam-105b-conversations" and answer.usage is not None
    assert "stream" not in fake.calls("chat")[0]["json"]


async def test_chat_stream_chunks_parse_as_sdk_chunks(fake: FakeSarvam) -> None:
    fake.reasoning = "thinking first"
    fake.reply("नमस्ते! बताइए?")
    stream = await sdk(fake).chat.completions(messages=MESSAGES, model="sarvam-105b",
                                              reasoning_effort="low", stream=True)
    chunks = [chunk async for chunk in stream]
    assert chunks and all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert all(c.model == "sarvam-105b" and c.created > 0 for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "नमस्ते! बताइए?"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 2


async def test_chat_tools_and_streamed_tool_call_deltas_are_the_sdks_types(fake: FakeSarvam) -> None:
    from tests.fakes import ToolCalls

    reply = ToolCalls((("order_status", {"order_id": "4567"}),), piece_chars=5)
    fake.reply(reply, "ऑर्डर भेज दिया गया है।")
    tools = [{"type": "function", "function": {"name": "order_status", "description": "Look up an order",
                                               "parameters": {"type": "object", "properties": {
                                                   "order_id": {"type": "string"}}}}}]
    stream = await sdk(fake).chat.completions(messages=MESSAGES, model="sarvam-105b", stream=True,
                                              tools=tools)
    chunks = [chunk async for chunk in stream]
    pieces = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or ()]
    assert pieces[0].id == reply.call_id(0) and pieces[0].function.name == "order_status"
    assert "".join(p.function.arguments or "" for p in pieces) == '{"order_id": "4567"}'
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    answered = [*MESSAGES,
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": reply.call_id(0), "type": "function",
                     "function": {"name": "order_status", "arguments": '{"order_id": "4567"}'}}]},
                {"role": "tool", "tool_call_id": reply.call_id(0), "content": '{"status": "shipped"}'}]
    answer = await sdk(fake).chat.completions(messages=answered, model="sarvam-105b", tools=tools)
    assert answer.choices[0].message.content == "ऑर्डर भेज दिया गया है।"
    with pytest.raises(UnprocessableEntityError):  # a tool message must answer an earlier call
        await sdk(fake).chat.completions(messages=[*MESSAGES, answered[-1]], model="sarvam-105b")


@pytest.mark.parametrize(("fault", "error"), [
    (Fault.forbidden(), ForbiddenError), (Fault.quota(), TooManyRequestsError),
])
async def test_chat_errors_are_sdk_errors_with_sarvam_body(
        fake: FakeSarvam, fault: Fault, error: type[ApiError]) -> None:
    fake.inject("chat", fault)
    with pytest.raises(error) as caught:
        await sdk(fake).chat.completions(messages=MESSAGES, model="sarvam-105b",
                                         request_options=NO_RETRY)
    assert sarvam_error(caught.value.body).error.code == fault.code


async def test_chat_refuses_a_model_the_sdk_does_not_list(fake: FakeSarvam) -> None:
    with pytest.raises(UnprocessableEntityError) as caught:
        await sdk(fake).chat.completions(messages=MESSAGES, model="gpt-4o")
    assert "model" in sarvam_error(caught.value.body).error.message
