"""Scripted engines with fixed delays and injected failures: test doubles and benchmark load.

They never become a default provider. Each takes a `failures` list: one entry per call, consumed in
order; an entry of None means "succeed", an exception instance is raised, "hang" sleeps forever and
"empty" returns nothing usable. After the list runs out every call succeeds.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sutradhar.engines.base import (
    AudioChunk,
    Interim,
    LLMDelta,
    Message,
    Provider,
    ProviderError,
    ToolCall,
    ToolSchema,
    Transcript,
)
from sutradhar.engines.registry import register

Failure = BaseException | str | None


def _take(failures: list[Failure]) -> Failure:
    return failures.pop(0) if failures else None


async def _apply(failure: Failure) -> bool:
    """Raise or hang for a failure entry; return True when the call must answer empty."""
    if failure is None:
        return False
    if failure == "hang":
        await asyncio.Event().wait()
    if failure == "empty":
        return True
    if isinstance(failure, BaseException):
        raise failure
    raise ValueError(f"unknown scripted failure {failure!r}")


@dataclass
class ScriptedSTT(Provider):
    """Answers with the next transcript of `script` (cycling), or `transcriber(audio)` if given."""

    name: str = "scripted-stt"
    script: Sequence[Transcript | str] = ("hello",)
    delay_s: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    transcriber: Callable[[bytes, int, str | None], Transcript] | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)

    async def transcribe(
        self, audio: bytes, sample_rate: int, language: str | None = None
    ) -> Transcript:
        index = len(self.calls)
        self.calls.append({"bytes": len(audio), "sample_rate": sample_rate, "language": language})
        empty = await _apply(_take(self.failures))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if empty:
            return Transcript(text="", language=language, provider=self.name)
        if self.transcriber is not None:
            return self.transcriber(audio, sample_rate, language)
        item = self.script[index % len(self.script)]
        if isinstance(item, str):
            return Transcript(text=item, language=language, provider=self.name)
        return Transcript(item.text, item.language, item.confidence, self.name)


@dataclass
class ScriptedStreamingSTT(ScriptedSTT):
    """A streaming STT: hears audio as it is sent, says an interim every `interim_every_s` of it,
    and answers the flush after `flush_delay_s` (a network round trip). Batch `transcribe` still
    works (with `delay_s`), as the fallback path uses it. `stream_failures` injects failures per
    stream: "open" fails to connect, "send" breaks mid-utterance, "finish" fails the flush."""

    name: str = "scripted-streaming-stt"
    flush_delay_s: float = 0.02
    interim_every_s: float = 0.5
    stream_failures: list[str | None] = field(default_factory=list)
    streams: list[ScriptedSTTStream] = field(default_factory=list)

    async def open_stream(self, sample_rate: int, language: str | None = None,
                          on_interim: Interim | None = None) -> ScriptedSTTStream:
        failure = self.stream_failures.pop(0) if self.stream_failures else None
        if failure == "open":
            raise ProviderError("stream refused", provider=self.name, stage="stt", status=503)
        stream = ScriptedSTTStream(self, sample_rate, language, on_interim, failure)
        self.streams.append(stream)
        return stream


@dataclass
class ScriptedSTTStream:
    stt: ScriptedStreamingSTT
    sample_rate: int
    language: str | None
    on_interim: Interim | None
    failure: str | None = None
    received: int = 0
    closed: bool = False
    finished: bool = False

    async def send(self, pcm: bytes) -> None:
        if self.failure == "send" and self.received > 0:
            raise ProviderError("stream cut", provider=self.stt.name, stage="stt")
        step = int(self.stt.interim_every_s * self.sample_rate) * 2
        before, self.received = self.received, self.received + len(pcm)
        if self.on_interim is not None and step and before // step != self.received // step:
            words = self._text().split()
            shown = min(len(words), self.received // step)  # a word more each `interim_every_s`
            self.on_interim(Transcript(" ".join(words[:shown]), self.language, None, self.stt.name,
                                       is_final=False))

    async def finish(self) -> Transcript:
        await asyncio.sleep(self.stt.flush_delay_s)
        if self.failure == "finish":
            raise ProviderError("flush failed", provider=self.stt.name, stage="stt", status=500)
        self.finished = True
        return Transcript(self._text(), self.language, None, self.stt.name)

    async def aclose(self) -> None:
        self.closed = True

    def _text(self) -> str:
        item = self.stt.script[(len(self.stt.streams) - 1) % len(self.stt.script)]
        return item if isinstance(item, str) else item.text


# One scripted reply: text streamed word by word, or tool calls (yielded after any text before them).
Reply = str | ToolCall | Sequence[str | ToolCall]


@dataclass
class ScriptedLLM(Provider):
    """Streams the next reply of `replies` (cycling) word by word, or `responder(messages)`.
    A reply may be tool calls; `tools_seen` records the tool names each call was offered."""

    name: str = "scripted-llm"
    replies: Sequence[Reply] = ("Hello. How can I help you today?",)
    supports_tools: bool = True
    tools_seen: list[list[str]] = field(default_factory=list)
    first_token_delay_s: float = 0.0
    token_delay_s: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    responder: Callable[[Sequence[Message], str], Reply] | None = None
    # Cut the stream after this many tokens with this exception (a stream dying mid-way).
    cut_after_tokens: int | None = None
    cut_error: BaseException | None = None
    calls: list[list[Message]] = field(default_factory=list)

    async def stream(self, messages: Sequence[Message], language: str,
                     tools: Sequence[ToolSchema] | None = None) -> AsyncIterator[LLMDelta]:
        index = len(self.calls)
        self.calls.append(list(messages))
        self.tools_seen.append([t["function"]["name"] for t in tools or ()])
        empty = await _apply(_take(self.failures))
        if self.first_token_delay_s:
            await asyncio.sleep(self.first_token_delay_s)
        if empty:
            return
        if self.responder is not None:
            reply = self.responder(messages, language)
        else:
            reply = self.replies[index % len(self.replies)]
        parts = [reply] if isinstance(reply, str | ToolCall) else list(reply)
        n = 0
        for part in parts:
            if isinstance(part, ToolCall):
                yield part
                continue
            for token in _tokens(part):
                if self.cut_after_tokens is not None and n == self.cut_after_tokens:
                    raise self.cut_error or ConnectionError("stream cut")
                if n and self.token_delay_s:
                    await asyncio.sleep(self.token_delay_s)
                n += 1
                yield token


def _tokens(text: str) -> list[str]:
    """Split into word-ish tokens that keep their leading space, like real LLM deltas."""
    tokens: list[str] = []
    for i, word in enumerate(text.split(" ")):
        tokens.append(word if i == 0 else " " + word)
    return [t for t in tokens if t]


@dataclass
class ScriptedTTS(Provider):
    """Produces a tone whose length follows the text (`ms_per_char`), in `chunk_ms` pieces."""

    name: str = "scripted-tts"
    sample_rate: int = 16000
    first_chunk_delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    ms_per_char: float = 60.0
    chunk_ms: int = 200
    frequency_hz: float = 440.0
    failures: list[Failure] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def synthesize(self, text: str, language: str) -> AsyncIterator[AudioChunk]:
        self.calls.append((text, language))
        empty = await _apply(_take(self.failures))
        if self.first_chunk_delay_s:
            await asyncio.sleep(self.first_chunk_delay_s)
        if empty:
            return
        total = max(1, int(len(text) * self.ms_per_char * self.sample_rate / 1000))
        step = max(1, self.chunk_ms * self.sample_rate // 1000)
        for n, start in enumerate(range(0, total, step)):
            if n and self.chunk_delay_s:
                await asyncio.sleep(self.chunk_delay_s)
            yield AudioChunk(tone(min(step, total - start), self.sample_rate, self.frequency_hz),
                             self.sample_rate)


def tone(samples: int, sample_rate: int, frequency_hz: float = 440.0, amplitude: int = 8000) -> bytes:
    """A sine tone as PCM16 bytes (audible, so VAD and level checks see real signal)."""
    import numpy as np

    t = np.arange(samples, dtype=np.float64) / sample_rate
    wave = (amplitude * np.sin(2 * math.pi * frequency_hz * t)).astype("<i2")
    return wave.tobytes()


# Selectable as `STT=scripted` etc. for tests and benchmarks (never a default).
register("stt", "scripted")(lambda _settings: ScriptedSTT())
register("stt", "scripted-streaming")(lambda _settings: ScriptedStreamingSTT())
register("llm", "scripted")(lambda _settings: ScriptedLLM())
register("tts", "scripted")(lambda _settings: ScriptedTTS())
