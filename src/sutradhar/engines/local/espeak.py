"""Offline TTS with espeak-ng: Hindi, Telugu, Gujarati, and a last-resort voice for every language.

Two backends, same output (22.05 kHz PCM16 streamed as it is made):
- "library": libespeak-ng and its data from the `espeakng-loader` wheel, driven through ctypes on
  one dedicated thread (the library keeps global state, so calls take turns). Installed by pip,
  so it needs no system package. Preferred.
- "binary": the Debian `espeak-ng` program run as an asyncio subprocess writing WAV to stdout;
  calls run in parallel processes. Used when the wheel is missing or its library cannot load.
Neither blocks the event loop.
"""

from __future__ import annotations

import asyncio
import ctypes
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from sutradhar.engines.base import AudioChunk, EmptyResult, Provider, ProviderError
from sutradhar.engines.threaded import stream_from_thread
from sutradhar.text.sentences import sentences

log = logger.bind(stage="tts")

ESPEAK_RATE = 22050
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                   ctypes.c_void_p)


# espeak-ng's voice for each language we serve; others fall back to the bare language code.
VOICES = {"en-IN": "en-us", "hi-IN": "hi", "te-IN": "te", "gu-IN": "gu"}


def espeak_voice(language: str) -> str:
    return VOICES.get(language) or language.split("-")[0]


class EspeakLibrary:
    """libespeak-ng from the espeakng-loader wheel. Every call must come from one thread."""

    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path().encode()
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                          ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.sample_rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 200, data, 0)
        if self.sample_rate <= 0:
            raise OSError(f"espeak_Initialize failed ({self.sample_rate})")
        self._sink: list[bytes] = []
        self._stop: threading.Event | None = None
        # Kept referenced: the C side calls it for every ~200 ms of audio.
        self._callback = _SYNTH_CALLBACK(self._on_audio)
        self.lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav: Any, samples: int, events: Any) -> int:
        if samples > 0 and wav:
            self._sink.append(ctypes.string_at(wav, samples * 2))
        return 1 if self._stop is not None and self._stop.is_set() else 0  # 1 aborts synthesis

    def synthesize(self, text: str, voice: str, stop: threading.Event) -> Iterator[bytes]:
        """PCM of `text`, sentence by sentence (espeak's synchronous mode returns per call)."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ProviderError(f"espeak-ng has no voice {voice!r}", provider="espeak", stage="tts",
                                retryable=False)
        self._stop = stop
        for sentence in sentences(text):
            if stop.is_set():
                return
            self._sink = []
            data = sentence.encode()
            self.lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, _CHARS_UTF8 | _ENDPAUSE, None, None)
            pcm = b"".join(self._sink)
            if pcm:
                yield pcm


_LIBRARY: EspeakLibrary | None = None
_LIBRARY_FAILED = False
_LIBRARY_EXECUTOR = ThreadPoolExecutor(1, thread_name_prefix="espeak")


def _library() -> EspeakLibrary | None:
    """The shared library instance, loaded on the espeak thread; None if it cannot load."""
    global _LIBRARY, _LIBRARY_FAILED
    if _LIBRARY is None and not _LIBRARY_FAILED:
        try:
            _LIBRARY = EspeakLibrary()
        except (ImportError, OSError, RuntimeError, AttributeError) as exc:
            _LIBRARY_FAILED = True
            log.warning("espeak-ng library from espeakng-loader unusable ({}); using the binary", exc)
    return _LIBRARY


@dataclass
class EspeakTTS(Provider):
    """espeak-ng voice for every language in the registry (None: all languages)."""

    name: str = "espeak"
    backend: str = "auto"  # auto | library | binary
    binary: str = "espeak-ng"
    speed_wpm: int = 165
    _chosen: str = field(default="", init=False, repr=False)

    async def _backend(self) -> str:
        if not self._chosen:
            if self.backend in ("auto", "library"):
                loop = asyncio.get_running_loop()
                if await loop.run_in_executor(_LIBRARY_EXECUTOR, _library) is not None:
                    self._chosen = "library"
                elif self.backend == "library":
                    raise ProviderError("espeak-ng library unusable", provider=self.name,
                                        stage="tts", retryable=False)
            if not self._chosen:
                if shutil.which(self.binary) is None:
                    raise ProviderError("neither the espeakng-loader library nor the espeak-ng "
                                        "binary is available", provider=self.name, stage="tts",
                                        retryable=False)
                self._chosen = "binary"
        return self._chosen

    async def synthesize(self, text: str, language: str) -> AsyncIterator[AudioChunk]:
        voice = espeak_voice(language)
        produce = self._library_stream if await self._backend() == "library" else self._binary_stream
        produced = False
        async for pcm in produce(text, voice):
            produced = True
            yield AudioChunk(pcm, ESPEAK_RATE)
        if not produced:
            raise EmptyResult("espeak-ng produced no audio", provider=self.name, stage="tts")

    async def _library_stream(self, text: str, voice: str) -> AsyncIterator[bytes]:
        def produce(stop: threading.Event) -> Iterator[bytes]:
            library = _library()
            assert library is not None
            library.lib.espeak_SetParameter(1, self.speed_wpm, 0)  # espeakRATE, absolute
            yield from library.synthesize(text, voice, stop)

        async for pcm in stream_from_thread(_LIBRARY_EXECUTOR, produce):
            yield pcm

    async def _binary_stream(self, text: str, voice: str) -> AsyncIterator[bytes]:
        """Read stdout as espeak-ng writes it; the 44-byte WAV header comes first."""
        process = await asyncio.create_subprocess_exec(
            self.binary, "-v", voice, "-s", str(self.speed_wpm), "--stdout", "-b", "1", text,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert process.stdout is not None
        try:
            header = await process.stdout.readexactly(44)
            if header[:4] != b"RIFF":
                raise ProviderError("espeak-ng wrote no WAV", provider=self.name, stage="tts")
            carry = b""
            while block := await process.stdout.read(16384):
                data = carry + block
                even = len(data) - len(data) % 2
                carry = data[even:]
                if even:
                    yield data[:even]
            if await process.wait() != 0:
                err = (await process.stderr.read()).decode(errors="replace").strip() if process.stderr else ""
                raise ProviderError(f"espeak-ng failed: {err}", provider=self.name, stage="tts",
                                    retryable=False)
        except asyncio.IncompleteReadError as exc:
            await process.wait()
            err = (await process.stderr.read()).decode(errors="replace").strip() if process.stderr else ""
            raise ProviderError(f"espeak-ng produced nothing: {err}", provider=self.name,
                                stage="tts", retryable=False) from exc
        finally:
            if process.returncode is None:  # the consumer stopped early (barge-in)
                process.kill()
                await process.wait()

    async def health(self) -> None:
        await self._backend()
