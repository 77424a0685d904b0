"""What Sarvam accepts, per endpoint, as the official `sarvamai` SDK (0.1.39) describes it.

The allowed values come from the SDK's own Literal types, so upgrading the pinned SDK moves the
fake with it; what the SDK only says in prose (which model takes `mode`, speaker per model, sample
rates, ranges, length limits) is written out here with the SDK docstring it comes from. The fake
server (`sarvam_server.py`) runs these checks and answers the real error shapes.
"""

from __future__ import annotations

import base64
import typing
from typing import Any

from sarvamai.speech_to_text_realtime_streaming.types import (
    SpeechToTextRealtimeStreamingEncoding,
    SpeechToTextRealtimeStreamingEndpointing,
    SpeechToTextRealtimeStreamingLanguageCode,
    SpeechToTextRealtimeStreamingMode,
    SpeechToTextRealtimeStreamingModel,
    SpeechToTextRealtimeStreamingReturnTimestamps,
    SpeechToTextRealtimeStreamingStreamType,
)
from sarvamai.speech_to_text_streaming.types import (
    SpeechToTextStreamingInputAudioCodec,
    SpeechToTextStreamingLanguageCode,
    SpeechToTextStreamingMode,
    SpeechToTextStreamingModel,
)
from sarvamai.types import (
    ChatCompletionRequestAssistantMessage,
    ChatCompletionRequestToolMessage,
    ChatCompletionTool,
    ConfigureConnectionDataLanguageCode,
    ConfigureConnectionDataModel,
    ConfigureConnectionDataOutputAudioBitrate,
    ConfigureConnectionDataOutputAudioCodec,
    ConfigureConnectionDataSpeaker,
    InputAudioCodec,
    Mode,
    ReasoningEffort,
    Role,
    SarvamModelIds,
    SpeechToTextLanguage,
    SpeechToTextModel,
    TextToSpeechLanguage,
    TextToSpeechModel,
    TextToSpeechOutputAudioCodec,
    TextToSpeechSpeaker,
)
from sarvamai.types.choice_delta import (
    ChoiceDelta,  # streaming types are not re-exported
)


def literals(alias: object) -> frozenset[str]:
    """The Literal members of a Fern `Union[Literal[...], Any]` alias (the `Any` is dropped)."""
    return frozenset(value for arg in typing.get_args(alias) for value in typing.get_args(arg))


class Invalid(Exception):
    """A request Sarvam would refuse: HTTP status, Sarvam error code, message."""

    def __init__(self, message: str, status: int = 422, code: str = "unprocessable_entity_error"):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def rule(message: str) -> Invalid:
    """A cross-field rule broken (pitch on v3, mode on saarika): 400 invalid_request_error."""
    return Invalid(message, 400, "invalid_request_error")


# --- STT REST /speech-to-text (SpeechToTextClient.transcribe) ---
STT_MODELS = literals(SpeechToTextModel)  # saaras:v3 (default), saaras:v4
STT_LANGUAGES = literals(SpeechToTextLanguage)
STT_MODES = literals(Mode)
STT_INPUT_CODECS = literals(InputAudioCodec)
STT_REST_FIELDS = frozenset({"model", "mode", "language_code", "with_timestamps",
                             "input_audio_codec", "keyterms"})
STT_REST_MODE_MODELS = frozenset({"saaras:v3"})  # "mode: Only applicable when using saaras:v3"
STT_MAX_SECONDS = 30.0  # "For quick responses under 30 seconds"

# --- STT WebSocket /speech-to-text/ws (SpeechToTextStreamingClient.connect) ---
STT_WS_MODELS = literals(SpeechToTextStreamingModel)
STT_WS_LANGUAGES = literals(SpeechToTextStreamingLanguageCode)
STT_WS_MODES = literals(SpeechToTextStreamingMode)
STT_WS_CODECS = literals(SpeechToTextStreamingInputAudioCodec)
STT_WS_MODE_MODELS = frozenset({"saaras:v3", "saaras:v4"})  # "Only applicable when using saaras:v3 or saaras:v4"
STT_WS_RATES = frozenset({"8000", "16000"})  # "only 16kHz and 8kHz are supported"
STT_WS_MESSAGE_RATES = frozenset({16000, 22050, 24000})  # AudioData: "8kHz is only ... via connection parameter"
STT_WS_BOOL_PARAMS = frozenset({"high_vad_sensitivity", "vad_signals", "flush_signal"})
STT_WS_PARAMS = frozenset({
    "language-code", "model", "mode", "keyterms", "sample_rate", "positive_speech_threshold",
    "negative_speech_threshold", "min_speech_frames", "first_turn_min_speech_frames",
    "negative_frames_count", "negative_frames_window", "start_speech_volume_threshold",
    "interrupt_min_speech_frames", "pre_speech_pad_frames", "num_initial_ignored_frames",
    "input_audio_codec"}) | STT_WS_BOOL_PARAMS

# --- STT realtime WebSocket /speech-to-text-realtime/ws (SpeechToTextRealtimeStreamingClient) ---
RT_MODELS = literals(SpeechToTextRealtimeStreamingModel)  # saaras:v3-realtime (default), saaras:v4
RT_DEFAULT_MODEL = "saaras:v3-realtime"  # "`saaras:v3-realtime` (default) or `saaras:v4`"
RT_LANGUAGES = literals(SpeechToTextRealtimeStreamingLanguageCode)  # Odia is or-IN here, "auto" detects
RT_MODES = literals(SpeechToTextRealtimeStreamingMode)
RT_STREAM_TYPES = literals(SpeechToTextRealtimeStreamingStreamType)
RT_ENDPOINTING = literals(SpeechToTextRealtimeStreamingEndpointing)
RT_ENCODINGS = literals(SpeechToTextRealtimeStreamingEncoding)
RT_TIMESTAMPS = literals(SpeechToTextRealtimeStreamingReturnTimestamps)
RT_RATES = frozenset({"8000", "16000"})  # "Any other value closes the connection with code 4000"
RT_PARAMS = frozenset({"language_code", "model", "stream_type", "mode", "prompt", "keyterms",
                       "endpointing", "encoding", "sample_rate", "return_timestamps", "threshold",
                       "prefix_padding_ms", "silence_duration_ms", "min_speech_duration_ms"})
RT_VAD_PARAMS = frozenset({"threshold", "prefix_padding_ms", "silence_duration_ms",
                           "min_speech_duration_ms"})  # "Only applies when `endpointing=vad`"
# Client messages by `event` (RealtimeAudioInput, RealtimeSpeechStart, ...): the fields each may carry.
RT_CLIENT_EVENTS = {"audio_input": frozenset({"event", "audio"}),
                    "speech_start": frozenset({"event"}), "speech_end": frozenset({"event"}),
                    "flush": frozenset({"event"}), "end": frozenset({"event"}),
                    "ping": frozenset({"event"}),
                    "config.update": frozenset({"event", "language_code", "prompt", "mode",
                                                "stream_type", "endpointing", "threshold",
                                                "silence_duration_ms", "min_speech_duration_ms"})}
RT_MANUAL_ONLY = frozenset({"speech_start", "speech_end", "flush"})  # "(endpointing=manual only)"
# Close codes (RealtimeError docstring): rate/quota/key, inactivity, internal, application rejection.
RT_CLOSE_RATE, RT_CLOSE_IDLE, RT_CLOSE_INTERNAL, RT_CLOSE_REJECTED = 1003, 1008, 1011, 4000

# --- TTS REST /text-to-speech (TextToSpeechClient.convert) ---
TTS_MODELS = literals(TextToSpeechModel)
TTS_LANGUAGES = literals(TextToSpeechLanguage)
TTS_CODECS = literals(TextToSpeechOutputAudioCodec)
TTS_REST_FIELDS = frozenset({"text", "language_code", "speaker", "pitch", "pace", "loudness",
                             "speech_sample_rate", "enable_preprocessing", "model",
                             "output_audio_codec", "temperature", "dict_id",
                             "enable_cached_responses"})
TTS_DEFAULT_MODEL = "bulbul:v3"  # "bulbul:v3: Stable model (API default when `model` is omitted)"
TTS_MAX_CHARS = {"bulbul:v2": 1500, "bulbul:v3": 2500, "bulbul:v4-flash": 2500}
TTS_PACE = {"bulbul:v2": (0.3, 3.0), "bulbul:v3": (0.5, 2.0), "bulbul:v4-flash": (0.5, 2.0)}
TTS_RATES = frozenset({8000, 16000, 22050, 24000})
TTS_REST_HIGH_RATES = frozenset({32000, 44100, 48000})  # "only available with bulbul:v3 and bulbul:v4-flash via the REST API"
_ALL_SPEAKERS = literals(TextToSpeechSpeaker) | literals(ConfigureConnectionDataSpeaker)
TTS_V2_SPEAKERS = frozenset({"anushka", "manisha", "vidya", "arya", "abhilash", "karun", "hitesh"})
TTS_V4_SPEAKERS = frozenset(s for s in _ALL_SPEAKERS if "_" in s)  # "<name>_<language>_<style>"
TTS_V3_SPEAKERS = _ALL_SPEAKERS - TTS_V2_SPEAKERS - TTS_V4_SPEAKERS
TTS_SPEAKERS = {"bulbul:v2": TTS_V2_SPEAKERS, "bulbul:v3": TTS_V3_SPEAKERS,
                "bulbul:v4-flash": TTS_V4_SPEAKERS}

# --- TTS WebSocket /text-to-speech/ws (TextToSpeechStreamingClient.connect, ConfigureConnection) ---
TTS_WS_MODELS = literals(ConfigureConnectionDataModel)
TTS_WS_LANGUAGES = literals(ConfigureConnectionDataLanguageCode)
TTS_WS_CODECS = literals(ConfigureConnectionDataOutputAudioCodec)
TTS_WS_BITRATES = literals(ConfigureConnectionDataOutputAudioBitrate)
TTS_WS_PARAMS = frozenset({"model", "send_completion_event"})
TTS_WS_CONFIG_FIELDS = frozenset({"model", "language_code", "speaker", "pitch", "pace", "loudness",
                                  "temperature", "speech_sample_rate", "enable_preprocessing",
                                  "output_audio_codec", "output_audio_bitrate", "dict_id",
                                  "min_buffer_size", "max_chunk_length"})
TTS_WS_MAX_CHARS = 2500  # SendText: "Text length should be 1-2500 characters"

# --- Chat /v1/chat/completions (ChatClient.completions) ---
CHAT_MODELS = literals(SarvamModelIds)
CHAT_ROLES = literals(Role) | {"tool"}  # ChatCompletionRequestToolMessage
CHAT_REASONING = literals(ReasoningEffort)
CHAT_FIELDS = frozenset({"messages", "model", "temperature", "top_p", "reasoning_effort",
                         "max_tokens", "stream", "stop", "n", "seed", "frequency_penalty",
                         "presence_penalty", "tools", "tool_choice", "response_format",
                         # not in v1's signature but in the same SDK's v2 body; OpenAI clients send it
                         "stream_options"})


def one_of(name: str, value: object, allowed: frozenset[Any]) -> None:
    if value not in allowed:
        raise Invalid(f"{name}: {value!r} is not one of {sorted(map(str, allowed))}")


def no_unknown(where: str, keys: typing.Iterable[str], allowed: frozenset[str]) -> None:
    unknown = sorted(set(keys) - allowed)
    if unknown:
        raise Invalid(f"{where}: unknown field(s) {unknown}")


def number(name: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise Invalid(f"{name}: {value!r} is not a number in [{low}, {high}]")


def given(body: dict[str, Any]) -> dict[str, Any]:
    """JSON null means "not given" to Sarvam, as to the SDK (which omits unset fields)."""
    return {k: v for k, v in body.items() if v is not None}


def check_stt_fields(fields: dict[str, str]) -> str:
    """The multipart fields of POST /speech-to-text; returns the model."""
    no_unknown("speech-to-text", fields, STT_REST_FIELDS)
    model = fields.get("model", "saaras:v3")
    one_of("model", model, STT_MODELS)
    if "language_code" in fields:
        one_of("language_code", fields["language_code"], STT_LANGUAGES)
    if "mode" in fields:
        one_of("mode", fields["mode"], STT_MODES)
        if model not in STT_REST_MODE_MODELS:
            raise rule(f"mode is only supported for {sorted(STT_REST_MODE_MODELS)}, not {model}")
    if "input_audio_codec" in fields:
        one_of("input_audio_codec", fields["input_audio_codec"], STT_INPUT_CODECS)
    if fields.get("keyterms", "null") != "null" and model != "saaras:v4":
        raise rule("keyterms are only supported with saaras:v4")
    return model


def check_stt_query(query: dict[str, str]) -> None:
    """The query of the /speech-to-text/ws handshake."""
    no_unknown("speech-to-text/ws", query, STT_WS_PARAMS)
    model = query.get("model", "saaras:v4")
    one_of("model", model, STT_WS_MODELS)
    if "language-code" in query:
        one_of("language-code", query["language-code"], STT_WS_LANGUAGES)
    if "mode" in query:
        one_of("mode", query["mode"], STT_WS_MODES)
        if model not in STT_WS_MODE_MODELS:
            raise rule(f"mode is only supported for {sorted(STT_WS_MODE_MODELS)}")
    if "sample_rate" in query:
        one_of("sample_rate", query["sample_rate"], STT_WS_RATES)
    if "input_audio_codec" in query:
        one_of("input_audio_codec", query["input_audio_codec"], STT_WS_CODECS)
    for name in STT_WS_BOOL_PARAMS & query.keys():
        one_of(name, query[name], frozenset({"true", "false"}))


def check_realtime_query(query: dict[str, str]) -> dict[str, str]:
    """The query of the /speech-to-text-realtime/ws handshake; returns it with defaults filled."""
    no_unknown("speech-to-text-realtime/ws", query, RT_PARAMS)
    if "language_code" not in query:  # "BCP-47 language code of the input audio. **Required.**"
        raise Invalid("language_code: query parameter required")
    one_of("language_code", query["language_code"], RT_LANGUAGES)
    resolved = {"model": RT_DEFAULT_MODEL, "stream_type": "balanced", "mode": "transcribe",
                "endpointing": "vad", "encoding": "linear16", "sample_rate": "16000",
                "return_timestamps": "false", **query}
    one_of("model", resolved["model"], RT_MODELS)
    one_of("stream_type", resolved["stream_type"], RT_STREAM_TYPES)
    one_of("mode", resolved["mode"], RT_MODES)
    one_of("endpointing", resolved["endpointing"], RT_ENDPOINTING)
    one_of("encoding", resolved["encoding"], RT_ENCODINGS)
    one_of("sample_rate", resolved["sample_rate"], RT_RATES)
    one_of("return_timestamps", resolved["return_timestamps"], RT_TIMESTAMPS)
    if "keyterms" in query and resolved["model"] != "saaras:v4":
        raise rule("keyterms are only supported with saaras:v4")
    if resolved["endpointing"] == "manual" and RT_VAD_PARAMS & query.keys():
        raise rule(f"{sorted(RT_VAD_PARAMS & query.keys())} only apply when endpointing=vad")
    return resolved


def check_realtime_message(message: object, endpointing: str, encoding: str) -> dict[str, Any]:
    """One client message on the realtime socket; returns it (audio checked to decode)."""
    if not isinstance(message, dict):
        raise Invalid("message: a JSON object is required")
    event = message.get("event")
    if event not in RT_CLIENT_EVENTS:
        raise Invalid(f"event: {event!r} is not one of {sorted(RT_CLIENT_EVENTS)}")
    no_unknown(str(event), message, RT_CLIENT_EVENTS[event])
    if event in RT_MANUAL_ONLY and endpointing != "manual":
        raise rule(f"{event} is only accepted with endpointing=manual")
    if event == "audio_input":
        audio = message.get("audio")
        if not isinstance(audio, str):
            raise Invalid("audio: a base64 string is required")
        try:
            raw = base64.b64decode(audio, validate=True)
        except ValueError:
            raise Invalid("audio: not valid base64") from None
        width = {"linear16": 2, "linear32": 4}.get(encoding, 1)
        if len(raw) % width:
            raise Invalid(f"audio: {len(raw)} bytes is not whole {encoding} samples")
    return message


def check_stt_audio(audio: object, connection_rate: int) -> None:
    """One `{"audio": {"data", "sample_rate", "encoding"}}` message (AudioData)."""
    if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
        raise Invalid("audio.data: a base64 string is required")
    no_unknown("audio", audio, frozenset({"data", "sample_rate", "encoding"}))
    one_of("audio.encoding", audio.get("encoding"), frozenset({"audio/wav"}))
    one_of("audio.sample_rate", audio.get("sample_rate"), STT_WS_MESSAGE_RATES | {connection_rate})


def _check_voice(body: dict[str, Any], model: str, *, rest: bool) -> None:
    """What REST bodies and socket configs share: language, speaker, pace, rates, v2/v3 params."""
    languages = TTS_LANGUAGES if rest else TTS_WS_LANGUAGES
    if "language_code" not in body:
        raise Invalid("language_code: field required")
    one_of("language_code", body["language_code"], languages)
    if "speaker" in body:
        one_of(f"speaker for {model}", body["speaker"], TTS_SPEAKERS[model])
    if "pace" in body:
        number("pace", body["pace"], *TTS_PACE[model])
    if "pitch" in body:
        number("pitch", body["pitch"], -0.75, 0.75)
    if "loudness" in body:
        number("loudness", body["loudness"], 0.3, 3.0)
    if "temperature" in body:
        number("temperature", body["temperature"], 0.01, 1.0)
    if "speech_sample_rate" in body:
        rates = TTS_RATES | (TTS_REST_HIGH_RATES if rest and model != "bulbul:v2" else frozenset())
        one_of("speech_sample_rate", body["speech_sample_rate"], rates)


def check_tts_body(raw: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The JSON of POST /text-to-speech; returns (given fields, model)."""
    body = given(raw)
    no_unknown("text-to-speech", body, TTS_REST_FIELDS)
    model = body.get("model", TTS_DEFAULT_MODEL)
    one_of("model", model, TTS_MODELS)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise Invalid("text: a non-empty string is required")
    if len(text) > TTS_MAX_CHARS[model]:
        raise rule(f"text longer than {TTS_MAX_CHARS[model]} characters for {model}")
    if model != "bulbul:v2" and {"pitch", "loudness"} & body.keys():
        raise rule(f"pitch and loudness are not supported for {model}")
    _check_voice(body, model, rest=True)
    if "output_audio_codec" in body:
        one_of("output_audio_codec", body["output_audio_codec"], TTS_CODECS)
    return body, model


def check_tts_query(query: dict[str, str]) -> str:
    """The query of the /text-to-speech/ws handshake; returns the model."""
    no_unknown("text-to-speech/ws", query, TTS_WS_PARAMS)
    model = query.get("model", TTS_DEFAULT_MODEL)
    one_of("model", model, TTS_WS_MODELS)
    if "send_completion_event" in query:
        one_of("send_completion_event", query["send_completion_event"], frozenset({"true", "false"}))
    return model


def check_tts_config(raw: object, model: str) -> dict[str, Any]:
    """The data of the first `{"type": "config"}` message (ConfigureConnectionData)."""
    if not isinstance(raw, dict):
        raise Invalid("config.data: an object is required")
    config = given(raw)
    no_unknown("config", config, TTS_WS_CONFIG_FIELDS)
    model = config.get("model", model)
    one_of("model", model, TTS_WS_MODELS)
    if "speaker" not in config:  # ConfigureConnectionData.speaker has no default
        raise Invalid("speaker: field required")
    # On the socket v3 "Will be ignored if provided" for pitch/loudness: not an error, unlike REST.
    _check_voice(config, model, rest=False)
    if "output_audio_codec" in config:
        one_of("output_audio_codec", config["output_audio_codec"], TTS_WS_CODECS)
    if "output_audio_bitrate" in config:
        one_of("output_audio_bitrate", config["output_audio_bitrate"], TTS_WS_BITRATES)
    return config


def check_chat(raw: object) -> dict[str, Any]:
    """The JSON of POST /v1/chat/completions."""
    if not isinstance(raw, dict):
        raise Invalid("body: an object is required")
    body = given(raw)
    no_unknown("chat/completions", body, CHAT_FIELDS)
    if "model" not in body:
        raise Invalid("model: field required")
    one_of("model", body["model"], CHAT_MODELS)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Invalid("messages: a non-empty list is required")
    for n, message in enumerate(messages):
        if not isinstance(message, dict):
            raise Invalid(f"messages[{n}]: an object is required")
        one_of(f"messages[{n}].role", message.get("role"), CHAT_ROLES)
    _check_tool_messages(messages)
    for n, item in enumerate(body.get("tools") or ()):
        _sdk_model(ChatCompletionTool, item, f"tools[{n}]")
    if "reasoning_effort" in body:
        one_of("reasoning_effort", body["reasoning_effort"], CHAT_REASONING)
    if "temperature" in body:
        number("temperature", body["temperature"], 0.0, 2.0)
    if "max_tokens" in body and (not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1):
        raise Invalid("max_tokens: a positive integer is required")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise Invalid("stream: a boolean is required")
    return body


def _sdk_model(model: Any, value: object, where: str) -> None:
    """Validate against the SDK's own pydantic type (extra keys allowed, as it allows them)."""
    try:
        model.model_validate(value)
    except Exception as exc:  # noqa: BLE001 - pydantic's ValidationError, reported as Sarvam does
        raise Invalid(f"{where}: {exc}".splitlines()[0]) from None


def _check_tool_messages(messages: list[Any]) -> None:
    """Tool messages (ChatCompletionRequestToolMessage) answer a call of an earlier assistant message."""
    called: set[str] = set()
    for n, message in enumerate(messages):
        if message.get("role") == "assistant" and message.get("tool_calls"):
            _sdk_model(ChatCompletionRequestAssistantMessage, message, f"messages[{n}]")
            called |= {call["id"] for call in message["tool_calls"]}
        elif message.get("role") == "tool":
            _sdk_model(ChatCompletionRequestToolMessage, message, f"messages[{n}]")
            if message["tool_call_id"] not in called:
                raise Invalid(f"messages[{n}].tool_call_id: no earlier assistant tool call has id "
                              f"{message['tool_call_id']!r}")


def check_chunk_delta(delta: dict[str, Any]) -> dict[str, Any]:
    """A streamed delta the fake sends must parse as the SDK's ChoiceDelta."""
    ChoiceDelta.model_validate(delta)
    return delta
