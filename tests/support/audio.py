"""Real speech for tests: espeak-ng phrases, converted like a phone line (8 kHz mu-law)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from sutradhar.audio.codecs import (
    pcm16_to_ulaw,
    read_wav_file,
    resample,
    silence,
    ulaw_to_pcm16,
)
from sutradhar.testing.espeak_speech import default_cache
from sutradhar.testing.espeak_speech import espeak_wav as speech_wav

VOICES = {"en-IN": "en-us", "hi-IN": "hi", "te-IN": "te", "gu-IN": "gu"}
CACHE = default_cache()  # SUTRADHAR_TEST_AUDIO, else under the temp directory


@lru_cache(maxsize=64)
def espeak_wav(text: str, voice: str = "en-us") -> Path:
    """Path of a WAV of `text` spoken by espeak-ng (cached on disk across test runs)."""
    return speech_wav(text, voice, cache=CACHE)


def speech_pcm(text: str, voice: str = "en-us", rate: int = 8000) -> bytes:
    """espeak speech as PCM16 at `rate`, passed through a mu-law phone line when rate is 8 kHz."""
    pcm, source_rate = read_wav_file(str(espeak_wav(text, voice)))
    pcm = resample(pcm, source_rate, rate)
    if rate == 8000:
        pcm = ulaw_to_pcm16(pcm16_to_ulaw(pcm))
    return pcm


def phone_wav(text: str, voice: str = "en-us", tmpdir: Path | None = None) -> Path:
    """A WAV file at 8 kHz PCM16 that sounds like a phone caller (for the simulator's --wav)."""
    from sutradhar.audio.codecs import write_wav_file

    src = espeak_wav(text, voice)
    path = (tmpdir or CACHE) / (src.stem + "-8k.wav")
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp.wav")
        write_wav_file(str(tmp), speech_pcm(text, voice, 8000), 8000)
        tmp.replace(path)
    return path


def frames(pcm: bytes, rate: int = 8000, frame_ms: int = 20) -> list[bytes]:
    size = rate * frame_ms // 1000 * 2
    pcm += bytes(-len(pcm) % size)
    return [pcm[i:i + size] for i in range(0, len(pcm), size)]


def with_silence(pcm: bytes, rate: int, before_ms: int = 300, after_ms: int = 1000) -> bytes:
    return silence(before_ms, rate) + pcm + silence(after_ms, rate)
