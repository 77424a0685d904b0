"""Clients for any OpenAI-compatible server: streaming chat, transcription and speech.

Used for OpenAI itself, for Sarvam's `/v1` chat route, and for local servers (llama.cpp server,
vLLM, Ollama) that speak the same wire format.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from sutradhar.audio.codecs import pcm16_to_wav
from sutradhar.engines.base import (
    AudioChunk,
    EmptyResult,
    LLMDelta,
    MalformedResponse,
    Message,
    ProviderError,
    Stage,
    ToolSchema,
    Transcript,
    wire_tools,
)
from sutradhar.engines.http import (
    HTTPProvider,
    SSEParser,
    error_for,
    finish_stream,
    parse_json,
    raise_for_status,
)
from sutradhar.engines.openai.tool_deltas import ToolCallAssembler

OPENAI_TTS_RATE = 24000  # response_format=pcm is 24 kHz mono PCM16, little-endian
# OpenAI's reasoning models (o1, o3, o4-mini, gpt-5...) answer 400 to any temperature but 1.
REASONING_MODEL = re.compile(r"^(o\d|gpt-5)")


@dataclass
class OpenAIChat(HTTPProvider):
    """Streaming chat completions over SSE. Yields `content` deltas (never reasoning), then the
    reply's tool calls, assembled, when `tools` were offered."""

    name: str = "openai"
    model: str = "gpt-4o-mini"
    health_path: str | None = "/models"
    max_tokens: int | None = None
    # OpenAI deprecated `max_tokens` for `max_completion_tokens` and its reasoning models reject
    # the old name; servers that only know the old one (Sarvam) override this.
    max_tokens_param: str = "max_completion_tokens"
    temperature: float | None = 0.4
    extra_body: dict[str, Any] = field(default_factory=dict)
    supports_tools: bool = True  # OpenAI-style `tools`; a server without them ignores or refuses

    async def stream(self, messages: Sequence[Message], language: str,
                     tools: Sequence[ToolSchema] | None = None) -> AsyncIterator[LLMDelta]:
        body: dict[str, Any] = {"model": self.model, "stream": True,
                                "messages": [m.as_dict() for m in messages], **self.extra_body}
        if tools:
            body["tools"] = wire_tools(tools)
        calls = ToolCallAssembler(self.name)
        if self.max_tokens:
            body[self.max_tokens_param] = self.max_tokens
        if self.temperature is not None and not REASONING_MODEL.match(self.model):
            body["temperature"] = self.temperature
        produced = False
        try:
            async with self.client.stream("POST", self.url("/chat/completions"), json=body) as response:
                await raise_for_status(response, provider=self.name, stage="llm")
                request_id = response.headers.get("x-request-id")
                parser = SSEParser()
                finished = done = False
                chunks = response.aiter_bytes()
                async for chunk in chunks:
                    for data in parser.feed(chunk):
                        if data.strip() == "[DONE]":
                            done = True
                            break
                        delta, stop = self._delta(data, request_id, calls)
                        finished = finished or stop
                        if delta:
                            produced = True
                            yield delta
                    if done:
                        break
                if done:
                    await finish_stream(chunks)
                else:
                    # A server that closes without the last blank line may leave one event pending.
                    for data in parser.close():
                        if data.strip() == "[DONE]":
                            done = True
                        elif (delta := self._delta(data, request_id, calls))[0] or delta[1]:
                            finished = finished or delta[1]
                            if delta[0]:
                                produced = True
                                yield delta[0]
                finished = finished or done
                if not finished:
                    # The connection closed cleanly but mid-answer: the reply is truncated.
                    raise ProviderError("chat stream ended before [DONE]", provider=self.name,
                                        stage="llm", request_id=request_id)
                # Arguments are only whole at the end of the reply: the calls follow its text.
                for call in calls.finish():
                    produced = True
                    yield call
        except ProviderError as exc:
            self._record(exc)
            raise
        except (httpx.HTTPError, OSError) as exc:
            raise self._fail(exc) from exc
        if not produced:
            raise EmptyResult("chat stream produced no text", provider=self.name, stage="llm")
        self._record(None)

    def _delta(self, data: str, request_id: str | None,
               calls: ToolCallAssembler) -> tuple[str, bool]:
        """(content text, finished) of one SSE event, feeding its tool-call pieces to `calls`;
        raises on an in-stream error object."""
        event = parse_json(data, provider=self.name, stage="llm", request_id=request_id)
        if not isinstance(event, dict):
            raise MalformedResponse(f"chat event is not an object: {data[:80]!r}",
                                    provider=self.name, stage="llm", request_id=request_id)
        if "error" in event:
            error = event["error"] if isinstance(event["error"], dict) else {"message": event["error"]}
            raise error_for(None, error.get("code") or error.get("type"),
                            str(error.get("message") or "error in chat stream"), provider=self.name,
                            stage="llm", request_id=error.get("request_id") or request_id)
        choices = event.get("choices") or []  # the usage chunk has an empty list
        if not choices:
            return "", False
        choice = choices[0]
        delta = choice.get("delta") or {}
        if delta.get("tool_calls"):
            calls.feed(delta["tool_calls"])
        # `content` is null while a reasoning model thinks (`reasoning_content`): never spoken.
        return delta.get("content") or "", choice.get("finish_reason") is not None


def iso639(language: str | None) -> str | None:
    """"hi-IN" -> "hi", the form OpenAI's transcription endpoint takes (Odia od-IN is "or")."""
    if not language:
        return None
    base = language.split("-")[0]
    return "or" if base == "od" else base


@dataclass
class OpenAISTT(HTTPProvider):
    """`POST /audio/transcriptions` with a WAV of the utterance."""

    name: str = "openai"
    model: str = "whisper-1"
    health_path: str | None = "/models"
    stage: Stage = "stt"

    async def transcribe(self, audio: bytes, sample_rate: int,
                         language: str | None = None) -> Transcript:
        data = {"model": self.model, "response_format": "json", "temperature": "0"}
        if language:
            data["language"] = iso639(language) or ""
        files = {"file": ("audio.wav", pcm16_to_wav(audio, sample_rate), "audio/wav")}
        # The multipart body encoded into one buffer: streamed, httpx writes every part's boundary,
        # headers and value to the socket apart (about 16 sends an upload).
        form = httpx.Request("POST", "http://form.invalid", data=data, files=files)
        response = await self._post("/audio/transcriptions", content=form.read(),
                                    headers={"Content-Type": form.headers["Content-Type"]})
        request_id = response.headers.get("x-request-id")
        body = parse_json(response.content, provider=self.name, stage="stt", request_id=request_id)
        text = (body.get("text") or "").strip() if isinstance(body, dict) else ""
        if not text:
            raise EmptyResult("empty transcript", provider=self.name, stage="stt",
                              request_id=request_id)
        self._record(None)
        return Transcript(text=text, language=language, provider=self.name)


@dataclass
class OpenAITTS(HTTPProvider):
    """`POST /audio/speech` with `response_format=pcm`, streamed as 24 kHz PCM16 chunks."""

    name: str = "openai"
    model: str = "tts-1"
    health_path: str | None = "/models"
    voice: str = "alloy"
    stage: Stage = "tts"

    async def synthesize(self, text: str, language: str) -> AsyncIterator[AudioChunk]:
        body = {"model": self.model, "voice": self.voice, "input": text, "response_format": "pcm"}
        produced = False
        try:
            async with self.client.stream("POST", self.url("/audio/speech"), json=body) as response:
                await raise_for_status(response, provider=self.name, stage="tts")
                carry = b""
                async for chunk in response.aiter_bytes():
                    # A read may end mid-sample; keep the odd byte for the next chunk.
                    data = carry + chunk
                    even = len(data) - len(data) % 2
                    carry = data[even:]
                    if even:
                        produced = True
                        yield AudioChunk(data[:even], OPENAI_TTS_RATE)
        except ProviderError as exc:
            self._record(exc)
            raise
        except httpx.HTTPError as exc:
            raise self._fail(exc) from exc
        if not produced:
            raise EmptyResult("speech response had no audio", provider=self.name, stage="tts")
        self._record(None)
