"""The three engine contracts (STT, LLM, TTS) and the errors every provider raises.

A provider knows no call: it turns audio into text, messages into a text stream, or text into an
audio stream. Retries, timeouts, breakers and fallback live in `sutradhar.engines.fallback`, not here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

Stage = Literal["stt", "llm", "tts"]


@dataclass(frozen=True, slots=True)
class Transcript:
    """What an STT engine heard. `language` is a BCP-47 code such as "hi-IN", or None if unknown."""

    text: str
    language: str | None = None
    confidence: float | None = None
    provider: str = ""
    is_final: bool = True  # False for an interim transcript of a stream, which may still change


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Mono signed 16-bit little-endian PCM at `sample_rate` Hz."""

    pcm: bytes
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The LLM asks for a function: `arguments` is the JSON text it wrote (not yet validated)."""

    id: str
    name: str
    arguments: str = "{}"

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message for the LLM. `role` is system, user, assistant or tool.

    An assistant message may carry the `tool_calls` it made; a tool message answers one of them
    by `tool_call_id`, with the result as JSON text in `content`.
    """

    role: str
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        if self.tool_calls:
            return {"role": self.role, "content": self.content or None,
                    "tool_calls": [call.as_dict() for call in self.tool_calls]}
        if self.tool_call_id is not None:
            return {"role": self.role, "content": self.content, "tool_call_id": self.tool_call_id}
        return {"role": self.role, "content": self.content}


# An OpenAI-style function schema: {"type": "function", "function": {"name", "description",
# "parameters"}}. Engines pass these through; `sutradhar.agents.tools` builds them.
ToolSchema = dict[str, Any]
# A flow's offline plan for the scripted responder rides on a schema under this key
# (agents/flow.py); it never reaches a wire.
OFFLINE_PLAN_KEY = "x-sutradhar-flow"


def wire_tools(tools: Sequence[ToolSchema]) -> list[ToolSchema]:
    """The schemas as an OpenAI-style API takes them: `type` and `function` only."""
    return [{k: v for k, v in t.items() if k != OFFLINE_PLAN_KEY} for t in tools]
# What an LLM stream yields: text to speak, or a complete tool call (arguments assembled).
LLMDelta = str | ToolCall


class ProviderError(Exception):
    """A provider failed. Carries what an operator needs: stage, provider, status and request id."""

    retryable: bool = True

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        stage: Stage | None = None,
        status: int | None = None,
        request_id: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.stage = stage
        self.status = status
        self.request_id = request_id
        if retryable is not None:
            self.retryable = retryable

    @property
    def kind(self) -> str:
        """A short label for metrics and logs ("auth", "quota", "timeout", ...)."""
        return _KIND_BY_CLASS.get(type(self), "error")

    def __str__(self) -> str:
        parts = [self.message]
        if self.provider:
            parts.append(f"provider={self.provider}")
        if self.stage:
            parts.append(f"stage={self.stage}")
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)


class AuthError(ProviderError):
    """Bad or missing credentials. Retrying cannot help."""

    retryable = False


class QuotaExceeded(ProviderError):
    """Credits exhausted. Retrying cannot help."""

    retryable = False


class BadRequest(ProviderError):
    """The provider rejected our input (4xx other than auth, quota and rate limit)."""

    retryable = False


class RateLimited(ProviderError):
    """429: retry after backing off."""


class ProviderTimeout(ProviderError):
    """No answer within the per-attempt timeout."""


class EmptyResult(ProviderError):
    """The provider answered with nothing usable (no text, no audio)."""


class MalformedResponse(ProviderError):
    """The provider answered with something we could not parse."""


class LanguageNotSupported(ProviderError):
    """This provider does not serve the requested language; the router moves to the next one."""

    retryable = False


_KIND_BY_CLASS: dict[type, str] = {
    AuthError: "auth",
    QuotaExceeded: "quota",
    BadRequest: "bad_request",
    RateLimited: "rate_limit",
    ProviderTimeout: "timeout",
    EmptyResult: "empty",
    MalformedResponse: "malformed",
    LanguageNotSupported: "unsupported_language",
}


@dataclass
class Provider:
    """Common fields of every engine. `languages` None means every language."""

    name: str = ""
    languages: frozenset[str] | None = field(default=None)
    # An LLM whose first sentence tends to run long (a small local model) lets the reply's first
    # chunk go to TTS after this many words; 0: at the first sentence end or comma, as TTS
    # prosody prefers. A class attribute, not a field.
    first_chunk_words = 0
    # Lines an LLM says word for word (the local model's fallback): services.warm_up has a TTS
    # that keeps audio (Piper) make them at start-up, so the first caller who gets one hears it
    # at once. A class attribute, not a field.
    fixed_lines: ClassVar[tuple[str, ...]] = ()

    def supports(self, language: str | None) -> bool:
        return self.languages is None or language is None or language in self.languages

    async def health(self) -> None:
        """A cheap readiness check; raises ProviderError when the engine is not usable."""

    async def aclose(self) -> None:
        """Release sockets, threads or models."""


@runtime_checkable
class STTProvider(Protocol):
    name: str

    def supports(self, language: str | None) -> bool: ...

    async def transcribe(
        self, audio: bytes, sample_rate: int, language: str | None = None
    ) -> Transcript:
        """Transcribe mono PCM16 audio. `language` None asks the engine to detect it."""
        ...

    async def health(self) -> None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class LLMProvider(Protocol):
    name: str

    def supports(self, language: str | None) -> bool: ...

    def stream(self, messages: Sequence[Message], language: str) -> AsyncIterator[str]:
        """Yield text deltas of the assistant's reply as they are generated."""
        ...

    async def health(self) -> None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class ToolCallingLLM(LLMProvider, Protocol):
    """An LLM that can also call functions. The router passes `tools` only to a provider whose
    `supports_tools` is True, so an LLM without tools keeps the plain `stream` signature."""

    supports_tools: bool

    def stream(self, messages: Sequence[Message], language: str,  # type: ignore[override]
               tools: Sequence[ToolSchema] | None = None) -> AsyncIterator[LLMDelta]:
        """Yield text deltas, and each tool call once its arguments are complete."""
        ...


@runtime_checkable
class TTSProvider(Protocol):
    name: str

    def supports(self, language: str | None) -> bool: ...

    def synthesize(self, text: str, language: str) -> AsyncIterator[AudioChunk]:
        """Yield PCM chunks of `text` spoken in `language` as soon as each is ready."""
        ...

    async def health(self) -> None: ...

    async def aclose(self) -> None: ...


class STTStream(Protocol):
    """One stretch of caller speech being transcribed as it arrives."""

    async def send(self, pcm: bytes) -> None:
        """Mono PCM16 at the stream's sample rate, in any chunk size, in order."""
        ...

    async def finish(self) -> Transcript:
        """End of turn: flush, and return the final transcript of everything sent."""
        ...

    async def aclose(self) -> None:
        """Drop the stream without a result (the caller went on, or hung up). Idempotent."""
        ...


Interim = Callable[[Transcript], None]


@runtime_checkable
class StreamingSTTProvider(STTProvider, Protocol):
    """An STT that also listens while the caller speaks (it still serves batch `transcribe`)."""

    async def open_stream(self, sample_rate: int, language: str | None = None,
                          on_interim: Interim | None = None) -> STTStream:
        """Connect a stream for one speech segment. `language` None asks it to detect."""
        ...
