"""Lean scripted engines for load: fixed delays, no per-call bookkeeping, optional tracing.

The package's `ScriptedSTT/LLM/TTS` keep every request in a `calls` list (useful in tests, a slow
leak under load that would pollute memory-per-call) and synthesize a fresh tone per chunk with
numpy (engine CPU that a real remote TTS would not spend in our process). These keep the same
delays and token split but answer from precomputed data.

Tracing: when `TRACE` (a context variable) holds a list, each engine appends (label, monotonic
time) at the moments that bound its scripted delay. The orchestrator's tasks inherit the context
of the turn that created them, so one turn's trace collects every stage of that turn only.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from bench.scenario import REPLIES, TRANSCRIPTS, Delays, tokens
from sutradhar.engines.base import AudioChunk, Message, Provider, Transcript
from sutradhar.testing.scripted import tone

TRACE: contextvars.ContextVar[list[tuple[str, float]] | None] = contextvars.ContextVar("bench_trace",
                                                                                      default=None)
_now = time.monotonic


def _mark(label: str) -> None:
    trace = TRACE.get()
    if trace is not None:
        trace.append((label, _now()))


class _Engine(Provider):
    """A bench engine: every language, always healthy, nothing to release (Provider's defaults)."""

    name = "bench"


class BenchSTT(_Engine):
    name = "bench-stt"

    def __init__(self, d: Delays, trace: bool = False) -> None:
        self.delay = d.stt_ms / 1000
        self.n = 0

    async def transcribe(self, audio: bytes, sample_rate: int, language: str | None = None) -> Transcript:
        _mark("stt_start")
        text = TRANSCRIPTS[self.n % len(TRANSCRIPTS)]
        self.n += 1
        await asyncio.sleep(self.delay)
        _mark("stt_end")
        return Transcript(text=text, language=language, provider=self.name)


class BenchStreamingSTT(BenchSTT):
    """Hears the caller while they speak; at the end of the turn answers the flush after
    `stt_flush_ms` (a network round trip). Batch `transcribe` keeps the batch delay."""

    name = "bench-streaming-stt"

    def __init__(self, d: Delays, trace: bool = False) -> None:
        super().__init__(d, trace)
        self.flush = d.stt_flush_ms / 1000

    async def open_stream(self, sample_rate: int, language: str | None = None,
                          on_interim: Any = None) -> BenchSTTStream:
        text = TRANSCRIPTS[self.n % len(TRANSCRIPTS)]
        self.n += 1
        return BenchSTTStream(self, text, language)


class BenchSTTStream:
    def __init__(self, stt: BenchStreamingSTT, text: str, language: str | None) -> None:
        self.stt, self.text, self.language = stt, text, language

    async def send(self, pcm: bytes) -> None:
        return None

    async def finish(self) -> Transcript:
        _mark("stt_start")
        await asyncio.sleep(self.stt.flush)
        _mark("stt_end")
        return Transcript(text=self.text, language=self.language, provider=self.stt.name)

    async def aclose(self) -> None:
        return None


class OracleSTT(BenchStreamingSTT):
    """A perfect STT with the scripted latency, for `bench turns`: the benchmark tells it (POST
    /bench/item) the texts the current caller says and how long each prefix lasts; it answers the
    prefix whose length is nearest the audio it got. So the early STT at a pause hears "my number
    is", and the whole utterance hears the whole sentence, as a real STT would."""

    name = "oracle-stt"
    prefixes: list[tuple[float, str]] = []  # (seconds of segment audio, text); set per call
    streaming = False

    @classmethod
    def text_for(cls, seconds: float) -> str:
        if not cls.prefixes:
            return ""
        return min(cls.prefixes, key=lambda p: abs(p[0] - seconds))[1]

    async def transcribe(self, audio: bytes, sample_rate: int, language: str | None = None) -> Transcript:
        _mark("stt_start")
        await asyncio.sleep(self.delay)
        _mark("stt_end")
        return Transcript(self.text_for(len(audio) / 2 / sample_rate), language, None, self.name)

    async def open_stream(self, sample_rate: int, language: str | None = None,
                          on_interim: Any = None) -> OracleStream:
        return OracleStream(self, sample_rate, language, on_interim)


class OracleStream(BenchSTTStream):
    def __init__(self, stt: OracleSTT, rate: int, language: str | None, on_interim: Any) -> None:
        super().__init__(stt, "", language)
        self.rate, self.on_interim, self.received = rate, on_interim, 0

    async def send(self, pcm: bytes) -> None:
        before, self.received = self.received, self.received + len(pcm)
        step = self.rate * 2 // 10  # an interim every 100 ms of audio, like a live STT
        if self.on_interim is not None and before // step != self.received // step:
            self.on_interim(Transcript(OracleSTT.text_for(self.received / 2 / self.rate), self.language,
                                       None, self.stt.name, is_final=False))

    async def finish(self) -> Transcript:
        self.text = OracleSTT.text_for(self.received / 2 / self.rate)
        return await super().finish()


class BenchLLM(_Engine):
    name = "bench-llm"

    def __init__(self, d: Delays, trace: bool = False) -> None:
        self.first = d.llm_first_token_ms / 1000
        self.step = d.llm_token_ms / 1000
        self.replies = [tokens(r) for r in REPLIES]
        self.n = 0

    async def stream(self, messages: Sequence[Message], language: str) -> AsyncIterator[str]:
        _mark("llm_start")
        index = self.n % len(self.replies)
        toks = self.replies[index]
        self.n += 1
        _mark(f"reply:{index}")
        await asyncio.sleep(self.first)
        for i, tok in enumerate(toks):
            if i and self.step:
                await asyncio.sleep(self.step)
            _mark(f"tok{i}")
            yield tok
        _mark("llm_end")


class BenchTTS(_Engine):
    name = "bench-tts"

    def __init__(self, d: Delays, trace: bool = False) -> None:
        self.first = d.tts_first_chunk_ms / 1000
        self.step = d.tts_chunk_ms / 1000
        self.rate = d.tts_sample_rate
        self.ms_per_char = d.tts_ms_per_char
        self.chunk_samples = d.tts_chunk_audio_ms * self.rate // 1000
        self._tone = tone(self.chunk_samples, self.rate)

    async def synthesize(self, text: str, language: str) -> AsyncIterator[AudioChunk]:
        _mark("tts_start")
        total = max(1, int(len(text) * self.ms_per_char * self.rate / 1000))
        await asyncio.sleep(self.first)
        for n, start in enumerate(range(0, total, self.chunk_samples)):
            if n and self.step:
                await asyncio.sleep(self.step)
            samples = min(self.chunk_samples, total - start)
            if n == 0:
                _mark("tts_first")
            yield AudioChunk(self._tone[: samples * 2], self.rate)


def providers_info(d: Delays) -> dict[str, Any]:
    return {"delays_ms": d.as_dict(), "replies": list(REPLIES), "transcripts": list(TRANSCRIPTS)}
