"""Caller speech as a telephone line delivers it: espeak-ng English through a simulated phone channel.

The channel is what a PSTN call does to a voice before Twilio hands it to us: 8 kHz, the 300-3400 Hz
telephone band, a little line noise, and G.711 mu-law. `sutradhar bench stt` scores STT settings on
this, and the local-model tests check the default's word error rate on it.

    clip = PhoneClip.make(CALLER_SENTENCES[1], PHONE_VOICES[0], cache_dir)
    clip.ulaw          # the bytes on the wire, 8 kHz mu-law
    clip.pcm()         # what the server decodes from them: PCM16 at 8 kHz

espeak-ng 1.51 has no Indian English voice (`en-in` falls back to `en`), so the accents are
American, British (RP, Scottish), New York and Caribbean, at several rates and pitches.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sutradhar.audio.codecs import pcm16_to_ulaw, resample, ulaw_to_pcm16
from sutradhar.testing.espeak_speech import espeak_pcm
from sutradhar.testing.questions import load_questions

LINE_RATE = 8000
BAND_HZ = (300.0, 3400.0)  # the telephone voice band (ITU-T G.712)
NOISE_DBFS = -50.0  # light line hiss: ~25-30 dB below espeak's speech level

# What callers of a shop's line say (order status, refunds, appointments, hours), order numbers
# read as digits: the ten phone questions of data/offline_questions.yaml, whose replies the
# offline-answer tests check.
CALLER_SENTENCES: tuple[str, ...] = tuple(q.text for q in load_questions("call"))


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice (with an optional +variant) at a rate in words per minute and a pitch 0-99."""

    name: str
    wpm: int = 160
    pitch: int = 50

    @property
    def label(self) -> str:
        return f"{self.name} {self.wpm}wpm p{self.pitch}"


# Accents x rates (slow to brisk) x pitches (low to high, male and female variants).
PHONE_VOICES: tuple[Voice, ...] = (
    Voice("en-us", 160, 50),
    Voice("en-gb-x-rp", 135, 40),
    Voice("en-us+f3", 185, 70),
    Voice("en-gb-scotland", 160, 30),
    Voice("en-us-nyc", 190, 45),
    Voice("en-029+f2", 140, 60),
)


def default_cache_dir() -> Path:
    return Path(os.environ.get("SUTRADHAR_SPEECH_CACHE",
                               Path(tempfile.gettempdir()) / "sutradhar-phone-speech"))


def espeak(text: str, voice: Voice) -> tuple[bytes, int]:
    """espeak-ng's own output for `text`: PCM16 and its rate (22.05 kHz)."""
    return espeak_pcm(text, voice.name, voice.wpm, voice.pitch)


def band_limit(samples: np.ndarray, rate: int, band: tuple[float, float] = BAND_HZ) -> np.ndarray:
    """Keep the telephone band, with 100 Hz raised-cosine edges so the cut does not ring."""
    spectrum = np.fft.rfft(samples)
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    low, high = band
    edge = 100.0
    gain = np.clip((freqs - (low - edge)) / edge, 0, 1) * np.clip(((high + edge) - freqs) / edge, 0, 1)
    gain = 0.5 - 0.5 * np.cos(np.pi * gain)
    return np.fft.irfft(spectrum * gain, n=len(samples))


def telephone_channel(pcm: bytes, rate: int, noise_dbfs: float = NOISE_DBFS, seed: int = 0) -> bytes:
    """PCM16 at any rate -> the mu-law bytes a phone call would carry: 8 kHz, band-limited, hiss."""
    line = np.frombuffer(resample(pcm, rate, LINE_RATE), dtype="<i2").astype(np.float64)
    line = band_limit(line, LINE_RATE)
    noise = np.random.default_rng(seed).standard_normal(len(line)) * 32768 * 10 ** (noise_dbfs / 20)
    line = np.clip(np.round(line + noise), -32768, 32767).astype("<i2")
    return pcm16_to_ulaw(line.tobytes())


@dataclass(frozen=True)
class PhoneClip:
    """One sentence as a caller's phone line delivered it."""

    text: str
    voice: Voice
    ulaw: bytes

    @classmethod
    def make(cls, text: str, voice: Voice, cache_dir: Path | None = None) -> PhoneClip:
        """Synthesised and passed through the channel once, then read from `cache_dir`."""
        cache = cache_dir or default_cache_dir()
        key = hashlib.sha1(f"{voice.label}|{text}|{NOISE_DBFS}|{BAND_HZ}".encode()).hexdigest()[:16]
        path = cache / f"{key}.ulaw"
        if not path.exists():
            cache.mkdir(parents=True, exist_ok=True)
            pcm, rate = espeak(text, voice)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(telephone_channel(pcm, rate, seed=int(key[:8], 16)))
            tmp.replace(path)  # atomic: parallel test workers never read half a file
        return cls(text, voice, path.read_bytes())

    def pcm(self) -> bytes:
        """PCM16 at 8 kHz, as the server's codec decodes the line."""
        return ulaw_to_pcm16(self.ulaw)

    @property
    def seconds(self) -> float:
        return len(self.ulaw) / LINE_RATE


def phone_corpus(sentences: tuple[str, ...] = CALLER_SENTENCES,
                 voices: tuple[Voice, ...] = PHONE_VOICES,
                 cache_dir: Path | None = None) -> list[PhoneClip]:
    """Every sentence in every voice."""
    return [PhoneClip.make(text, voice, cache_dir) for voice in voices for text in sentences]
