"""A strict loopback server speaking the OpenAI wire format (chat, transcriptions, speech, models).

    async with FakeOpenAI() as fake:          # base_url ends in /v1, like the real one
        fake.reply("Paris is the capital.")
        fake.inject("chat", Fault(cut=True))

Endpoints (fault queue names): `chat` POST /v1/chat/completions (SSE when `stream` is true, one
JSON `chat.completion` otherwise), `stt` POST /v1/audio/transcriptions, `tts` POST
/v1/audio/speech (24 kHz PCM16 streamed in odd-sized pieces, so clients must carry half samples
across reads), GET /v1/models.

Strict like the real API: request fields are checked against the official SDK's own parameter
types (`openai.types...*_create_params`), so a field the SDK does not know, a value outside its
Literal, or a parameter the API deprecated is a 400 with OpenAI's error body
`{"error": {"message", "type", "param", "code"}}`. Responses are built with the SDK's models
(`ChatCompletionChunk`, `ChatCompletion`, `Transcription`, `Model`), so a field the SDK would not
parse cannot slip in. tests/contract/test_openai_sdk.py drives this fake with the SDK itself.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import typing
import uuid
import wave
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import web
from openai.types import AudioModel, Model
from openai.types.audio import (
    Transcription,
    speech_create_params,
    transcription_create_params,
)
from openai.types.audio.speech_model import SpeechModel
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    completion_create_params,
)
from openai.types.shared.reasoning_effort import ReasoningEffort

from tests.fakes._server import FakeServer, Fault, ToolCalls, tone_pcm

MS_PER_CHAR = 60
CREATED = 1_700_000_000

CHAT_FIELDS = frozenset(completion_create_params.CompletionCreateParamsStreaming.__annotations__)
STT_FIELDS = frozenset(transcription_create_params.TranscriptionCreateParamsBase.__annotations__)
TTS_FIELDS = frozenset(speech_create_params.SpeechCreateParams.__annotations__)
STT_MODELS = frozenset(typing.get_args(AudioModel))
TTS_MODELS = frozenset(typing.get_args(SpeechModel))
REASONING_EFFORTS = frozenset(typing.get_args(typing.get_args(ReasoningEffort)[0]))
TTS_FORMATS = frozenset({"mp3", "opus", "aac", "flac", "wav", "pcm"})
STT_FORMATS = frozenset({"json", "text", "srt", "verbose_json", "vtt", "diarized_json"})
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# Reasoning models refuse the deprecated `max_tokens`; the fake refuses it for every model, so a
# client still sending it fails here before it fails against o-series models in production.
DEPRECATED_CHAT_FIELDS = {"max_tokens": "max_completion_tokens"}
# Reasoning models (o1, o3, o4-mini, gpt-5...) take only the default sampling temperature.
REASONING_MODEL = re.compile(r"^(o\d|gpt-5)")
# Status -> OpenAI's `error.type` when the injected fault does not say.
TYPE_BY_STATUS = {400: "invalid_request_error", 401: "invalid_request_error",
                  403: "invalid_request_error", 404: "invalid_request_error",
                  429: "requests", 500: "server_error", 503: "server_error"}


class InvalidRequest(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None,
                 status: int = 400) -> None:
        super().__init__(message)
        self.message, self.param, self.code, self.status = message, param, code, status


def openai_error(status: int, message: str, *, type_: str | None = None, param: str | None = None,
                 code: str | None = None, request_id: str | None = None) -> web.Response:
    """The real error body: all four keys always present (null when not applicable)."""
    request_id = request_id or f"req_{uuid.uuid4().hex[:12]}"
    body = {"error": {"message": message, "type": type_ or TYPE_BY_STATUS.get(status, "api_error"),
                      "param": param, "code": code}}
    return web.json_response(body, status=status, headers={"x-request-id": request_id})


def _check_number(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"Invalid type for '{name}': expected a decimal, but got a "
                             f"{type(value).__name__} instead.", name, "invalid_type")
    if not low <= value <= high:
        raise InvalidRequest(f"Invalid '{name}': decimal above maximum value. Expected a value "
                             f"<= {high}, but got {value} instead." if value > high else
                             f"Invalid '{name}': decimal below minimum value. Expected a value "
                             f">= {low}, but got {value} instead.", name, "invalid_value")


def _check_unknown(body: dict[str, Any], allowed: frozenset[str]) -> None:
    for name in body:
        if name not in allowed:
            raise InvalidRequest(f"Unrecognized request argument supplied: {name}", name,
                                 "unknown_parameter")


def validate_chat(body: Any) -> None:
    if not isinstance(body, dict):
        raise InvalidRequest("We could not parse the JSON body of your request.")
    _check_unknown(body, CHAT_FIELDS | {"stream"})
    for old, new in DEPRECATED_CHAT_FIELDS.items():
        if old in body:
            raise InvalidRequest(f"Unsupported parameter: '{old}' is not supported with this "
                                 f"model. Use '{new}' instead.", old, "unsupported_parameter")
    for required in ("model", "messages"):
        if required not in body:
            raise InvalidRequest(f"Missing required parameter: '{required}'.", required,
                                 "missing_required_parameter")
    if not isinstance(body["model"], str) or not body["model"]:
        raise InvalidRequest("Invalid type for 'model': expected a string.", "model", "invalid_type")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("Invalid 'messages': empty array. Expected an array with minimum "
                             "length 1, but got an empty array instead.", "messages",
                             "empty_array")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise InvalidRequest(f"Invalid value: '{message.get('role') if isinstance(message, dict) else message}'."
                                 f" Supported values are: {', '.join(sorted(ROLES))}.",
                                 f"messages[{i}].role", "invalid_value")
        content = message.get("content")
        if message["role"] != "assistant" and not isinstance(content, str | list):
            raise InvalidRequest(f"Invalid type for 'messages[{i}].content'.",
                                 f"messages[{i}].content", "invalid_type")
    _check_tool_messages(messages)
    if "tools" in body:
        _check_tools(body["tools"])
    if "stream" in body and not isinstance(body["stream"], bool):
        raise InvalidRequest("Invalid type for 'stream': expected a boolean.", "stream", "invalid_type")
    _check_number(body, "temperature", 0, 2)
    _check_number(body, "top_p", 0, 1)
    if REASONING_MODEL.match(body["model"]):
        for name in ("temperature", "top_p"):
            if body.get(name) not in (None, 1):
                raise InvalidRequest(f"Unsupported value: '{name}' does not support {body[name]} "
                                     "with this model. Only the default (1) value is supported.",
                                     name, "unsupported_value")
    limit = body.get("max_completion_tokens")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidRequest("Invalid 'max_completion_tokens': expected an integer >= 1.",
                             "max_completion_tokens", "invalid_value")
    if body.get("reasoning_effort") is not None and body["reasoning_effort"] not in REASONING_EFFORTS:
        raise InvalidRequest(f"Invalid value: '{body['reasoning_effort']}'. Supported values are: "
                             f"{', '.join(sorted(REASONING_EFFORTS))}.", "reasoning_effort",
                             "invalid_value")
    if "stream_options" in body and not body.get("stream"):
        raise InvalidRequest("The 'stream_options' parameter is only allowed when 'stream' is "
                             "enabled.", "stream_options", "invalid_value")


def _check_tools(tools: Any) -> None:
    if not isinstance(tools, list) or not tools:
        raise InvalidRequest("Invalid 'tools': empty array. Expected an array with minimum length 1.",
                             "tools", "empty_array")
    for i, item in enumerate(tools):
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(item, dict) or item.get("type") != "function" or not isinstance(function, dict):
            raise InvalidRequest(f"Missing required parameter: 'tools[{i}].function'.",
                                 f"tools[{i}].function", "missing_required_parameter")
        if not FUNCTION_NAME.match(str(function.get("name") or "")):
            raise InvalidRequest(f"Invalid 'tools[{i}].function.name': string does not match pattern. "
                                 "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                                 f"tools[{i}].function.name", "invalid_value")
        parameters = function.get("parameters")
        if parameters is not None and (not isinstance(parameters, dict) or parameters.get("type") != "object"):
            raise InvalidRequest(f"Invalid schema for function '{function['name']}': schema must be a "
                                 "JSON Schema of 'type: \"object\"'.", f"tools[{i}].function.parameters",
                                 "invalid_function_parameters")


def _check_tool_messages(messages: list[Any]) -> None:
    """As the API: a tool message answers a call of an earlier assistant message, and every call
    of an assistant message is answered before the next non-tool message."""
    pending: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            if message.get("tool_call_id") not in pending:
                raise InvalidRequest("Invalid parameter: messages with role 'tool' must be a response "
                                     "to a preceeding message with 'tool_calls'.",
                                     f"messages.[{i}].role", None)
            pending.discard(message["tool_call_id"])
            continue
        if pending:
            raise InvalidRequest("An assistant message with 'tool_calls' must be followed by tool "
                                 "messages responding to each 'tool_call_id'. The following "
                                 f"tool_call_ids did not have response messages: {', '.join(sorted(pending))}",
                                 f"messages.[{i}].role", None)
        if role == "assistant" and message.get("tool_calls"):
            for call in message["tool_calls"]:
                if not isinstance(call, dict) or call.get("type") != "function" or not call.get("id") \
                        or not isinstance(call.get("function", {}).get("arguments"), str):
                    raise InvalidRequest(f"Invalid 'messages[{i}].tool_calls'.",
                                         f"messages[{i}].tool_calls", "invalid_value")
                pending.add(call["id"])
    if pending:
        raise InvalidRequest("An assistant message with 'tool_calls' must be followed by tool "
                             "messages responding to each 'tool_call_id'.", "messages", None)


def validate_speech(body: Any) -> None:
    if not isinstance(body, dict):
        raise InvalidRequest("We could not parse the JSON body of your request.")
    _check_unknown(body, TTS_FIELDS)
    for required in ("model", "input", "voice"):
        if required not in body:
            raise InvalidRequest(f"Missing required parameter: '{required}'.", required,
                                 "missing_required_parameter")
    if body["model"] not in TTS_MODELS:
        raise InvalidRequest(f"Invalid value: '{body['model']}'. Supported values are: "
                             f"{', '.join(sorted(TTS_MODELS))}.", "model", "invalid_value")
    if not isinstance(body["input"], str) or not body["input"]:
        raise InvalidRequest("Invalid 'input': expected a non-empty string.", "input", "invalid_value")
    if len(body["input"]) > 4096:
        raise InvalidRequest("Invalid 'input': string too long. Expected a string with maximum "
                             f"length 4096, but got a string with length {len(body['input'])} "
                             "instead.", "input", "string_above_max_length")
    if "response_format" in body and body["response_format"] not in TTS_FORMATS:
        raise InvalidRequest(f"Invalid value: '{body['response_format']}'. Supported values are: "
                             f"{', '.join(sorted(TTS_FORMATS))}.", "response_format", "invalid_value")
    _check_number(body, "speed", 0.25, 4.0)


def validate_transcription(fields: dict[str, str], has_file: bool) -> None:
    _check_unknown({**fields, **({"file": ""} if has_file else {})},
                   STT_FIELDS | {"timestamp_granularities[]", "include[]"})
    if not has_file:
        raise InvalidRequest("Missing required parameter: 'file'.", "file", "missing_required_parameter")
    model = fields.get("model")
    if model is None:
        raise InvalidRequest("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    if model not in STT_MODELS:
        raise InvalidRequest(f"Invalid value: '{model}'. Supported values are: "
                             f"{', '.join(sorted(STT_MODELS))}.", "model", "invalid_value")
    if fields.get("response_format", "json") not in STT_FORMATS:
        raise InvalidRequest(f"Invalid value: '{fields['response_format']}'.", "response_format",
                             "invalid_value")
    language = fields.get("language")
    if language is not None and not (len(language) == 2 and language.isalpha() and language.islower()):
        # The API takes ISO-639-1 ("hi"), not BCP-47 ("hi-IN").
        raise InvalidRequest(f"Invalid language '{language}'. Language parameter must be specified "
                             "in ISO-639-1 format.", "language", "invalid_language_format")
    if "temperature" in fields:
        try:
            _check_number({"temperature": float(fields["temperature"])}, "temperature", 0, 1)
        except ValueError:
            raise InvalidRequest("Invalid type for 'temperature'.", "temperature", "invalid_type") from None


class FakeOpenAI(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.transcripts: deque[str] = deque()
        self.transcriber: Callable[[bytes, dict[str, Any]], str] | None = None
        self.default_transcript = "hello"
        self.speech_piece_bytes = 1001  # odd on purpose

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/audio/transcriptions", self.stt)
        app.router.add_post("/v1/audio/speech", self.tts)
        app.router.add_get("/v1/models", self.models)

    def check_auth(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return openai_error(401, "Incorrect API key provided.", code="invalid_api_key")
        return None

    async def before(self, fault: Fault | None) -> web.StreamResponse | None:
        """The shared fault behaviour, but errors in OpenAI's own body shape."""
        if fault is not None and fault.status is not None:
            if fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            code = fault.code or None
            # OpenAI reports a missing quota with type and code both `insufficient_quota`.
            type_ = code if code in ("insufficient_quota", "invalid_request_error") else None
            return openai_error(fault.status, fault.message, type_=type_, code=code,
                                request_id=fault.request_id)
        return await super().before(fault)

    async def models(self, request: web.Request) -> web.StreamResponse:
        if (denied := self.check_auth(request)) is not None:
            return denied
        data = [Model(id=name, created=CREATED, object="model", owned_by="system").model_dump()
                for name in ("gpt-4o-mini", "whisper-1", "tts-1")]
        return web.json_response({"object": "list", "data": data})

    async def chat(self, request: web.Request, endpoint: str = "chat") -> web.StreamResponse:
        fault = self.take_fault(endpoint)
        try:
            body = await request.json()
        except ValueError:
            body = None
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        # peer: the client's (host, port), so a test can tell one reused connection from several
        self.requests.append({"endpoint": endpoint, "headers": dict(request.headers), "json": body, "peer": peer})
        if (denied := self.check_auth(request)) is not None:
            return denied
        try:
            validate_chat(body)
        except InvalidRequest as exc:
            return openai_error(exc.status, exc.message, param=exc.param, code=exc.code)
        if (early := await self.before(fault)) is not None:
            return early
        text = self.next_reply(body["messages"])
        request_id = fault.request_id if fault else f"req_{uuid.uuid4().hex[:12]}"
        if not body.get("stream"):
            return web.json_response(self.completion(body["model"], text).model_dump(mode="json"),
                                     headers={"x-request-id": request_id})
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return await self.write_sse(request, self.sse_events(text, body["model"], include_usage),
                                    request_id, fault)

    @staticmethod
    def completion(model: str, reply: str | ToolCalls) -> ChatCompletion:
        message: dict[str, Any] = {"role": "assistant", "content": reply, "refusal": None}
        finish, text = "stop", reply
        if isinstance(reply, ToolCalls):
            finish, text = "tool_calls", reply.text
            message = {"role": "assistant", "content": reply.text or None, "refusal": None,
                       "tool_calls": [{"id": reply.call_id(i), "type": "function",
                                       "function": {"name": name, "arguments": json.dumps(args)}}
                                      for i, (name, args) in enumerate(reply.calls)]}
        words = len(text.split())
        return ChatCompletion.model_validate({
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion",
            "created": CREATED, "model": model,
            "choices": [{"index": 0, "finish_reason": finish, "logprobs": None, "message": message}],
            "usage": {"prompt_tokens": 10, "completion_tokens": words, "total_tokens": 10 + words},
        })

    def sse_events(self, text: str | ToolCalls, model: str = "gpt-4o-mini",  # type: ignore[override]
                   include_usage: bool = False) -> list[bytes]:
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"

        def event(delta: dict[str, Any] | None, finish: str | None = None,
                  usage: dict[str, int] | None = None) -> bytes:
            choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish,
                                                 "logprobs": None}]
            chunk = ChatCompletionChunk.model_validate({
                "id": completion_id, "object": "chat.completion.chunk", "created": CREATED,
                "model": model, "choices": choices, "usage": usage})
            # exclude_unset: a later tool-call delta must not carry `"id": null, "type": null`
            # (the API omits them, and the SDK merging deltas would overwrite the first ones).
            return f"data: {chunk.model_dump_json(exclude_unset=True)}\n\n".encode()

        if isinstance(text, ToolCalls):
            # As the API: content null, and the role rides on the first call's delta when no text
            # comes before it.
            deltas = text.deltas()
            role = {"role": "assistant", "content": None if not text.text else "", "refusal": None}
            if text.text:
                events = [event(role)]
            else:
                events, deltas = [event({**role, **deltas[0][0]})], deltas[1:]
            events += [event(delta, finish) for delta, finish in deltas]
            if include_usage:
                events.append(event(None, usage={"prompt_tokens": 10, "completion_tokens": 5,
                                                 "total_tokens": 15}))
            events.append(b"data: [DONE]\n\n")
            return events
        events = [event({"role": "assistant", "content": "", "refusal": None})]
        for word in self.reasoning.split(" ") if self.reasoning else []:
            # Not an OpenAI field (reasoning servers such as Sarvam and vLLM add it); the SDK keeps
            # unknown fields as extras, so it still parses.
            events.append(event({"content": None, "reasoning_content": word + " "}))
        words = text.split(" ")
        for i, word in enumerate(words):
            events.append(event({"content": word if i == 0 else " " + word}))
        events.append(event({}, "stop"))
        if include_usage:
            events.append(event(None, usage={"prompt_tokens": 10, "completion_tokens": len(words),
                                             "total_tokens": 10 + len(words)}))
        events.append(b"data: [DONE]\n\n")
        return events

    async def stt(self, request: web.Request) -> web.StreamResponse:
        fault = self.take_fault("stt")
        form = await request.post()
        upload = form.get("file")
        fields = {k: str(v) for k, v in form.items() if k != "file"}
        self.requests.append({"endpoint": "stt", "headers": dict(request.headers), "fields": fields})
        if (denied := self.check_auth(request)) is not None:
            return denied
        try:
            validate_transcription(fields, has_file=isinstance(upload, web.FileField))
            with wave.open(io.BytesIO(upload.file.read()), "rb") as src:  # type: ignore[union-attr]
                pcm = src.readframes(src.getnframes())
        except InvalidRequest as exc:
            return openai_error(exc.status, exc.message, param=exc.param, code=exc.code)
        except (wave.Error, EOFError):
            return openai_error(400, "Invalid file format. Supported formats: ['flac', 'm4a', "
                                "'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm']",
                                param="file", code="invalid_value")
        if (early := await self.before(fault)) is not None:
            return early
        if self.transcriber is not None:
            text = self.transcriber(pcm, fields)
        else:
            text = self.transcripts.popleft() if self.transcripts else self.default_transcript
        if fields.get("response_format") == "text":
            return web.Response(text=text + "\n", content_type="text/plain")
        return web.json_response(Transcription(text=text).model_dump(exclude_none=True))

    async def tts(self, request: web.Request) -> web.StreamResponse:
        fault = self.take_fault("tts")
        try:
            body = await request.json()
        except ValueError:
            body = None
        self.requests.append({"endpoint": "tts", "headers": dict(request.headers), "json": body})
        if (denied := self.check_auth(request)) is not None:
            return denied
        try:
            validate_speech(body)
        except InvalidRequest as exc:
            return openai_error(exc.status, exc.message, param=exc.param, code=exc.code)
        if (early := await self.before(fault)) is not None:
            return early
        pcm = tone_pcm(len(body["input"]) * MS_PER_CHAR / 1000, 24000)
        response = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
        await response.prepare(request)
        step = self.speech_piece_bytes
        for n, i in enumerate(range(0, len(pcm), step)):
            if fault is not None and fault.cut and i >= len(pcm) // 2:
                request.transport.close()  # type: ignore[union-attr]
                return response
            await response.write(pcm[i:i + step])
            if n % 8 == 0:
                await asyncio.sleep(0)
        await response.write_eof()
        return response

