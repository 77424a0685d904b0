"""Caller utterances in English, Hindi, Telugu and Gujarati, spoken by espeak-ng and carried like a
phone line carries them: resampled to 8 kHz and squeezed through G.711 mu-law (our own codec).

Generated at test time into `tests/e2e/.cache` (gitignored; override with SUTRADHAR_E2E_CACHE),
keyed by voice and text, so a second run costs nothing.

    utt = UTTERANCES["hi-IN"][0]        # Spoken("hi-IN", "hi", "मेरा ऑर्डर कहाँ है", ...)
    utt.line_bytes()                    # the mu-law bytes on the wire, 8 kHz
    utt.pcm()                           # what the server decodes from them: PCM16 at 8 kHz
    utt.wav()                           # the same as an 8 kHz PCM16 WAV file (simulator, browser)
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from sutradhar.audio.codecs import (
    pcm16_to_ulaw,
    read_wav_file,
    resample,
    silence,
    ulaw_to_pcm16,
    write_wav_file,
)
from sutradhar.testing.espeak_speech import espeak_wav

CACHE = Path(os.environ.get("SUTRADHAR_E2E_CACHE", Path(__file__).parent / ".cache"))
LINE_RATE = 8000
ESPEAK_VOICES = {"en-IN": "en-us", "hi-IN": "hi", "te-IN": "te", "gu-IN": "gu"}


@dataclass(frozen=True)
class Spoken:
    """One thing a caller says: its language, the espeak voice, and the words (the ground truth)."""

    language: str
    text: str
    key: str  # short name for ids and file names: "order", "help", ...

    @property
    def voice(self) -> str:
        return ESPEAK_VOICES[self.language]

    def _stem(self) -> str:
        digest = hashlib.sha1(f"{self.voice}|{self.text}".encode()).hexdigest()[:12]
        return f"{self.language}-{self.key}-{digest}"

    def espeak_wav(self) -> Path:
        """espeak-ng's own output (22.05 kHz PCM16)."""
        return espeak_wav(self.text, self.voice, 150, cache=CACHE)

    def line_bytes(self) -> bytes:
        """The caller's speech as G.711 mu-law at 8 kHz: exactly what a carrier sends us."""
        path = CACHE / f"{self._stem()}.ulaw"
        if not path.exists():
            pcm, rate = read_wav_file(str(self.espeak_wav()))
            ulaw = pcm16_to_ulaw(resample(pcm, rate, LINE_RATE))
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(ulaw)
            tmp.replace(path)
        return path.read_bytes()

    def pcm(self) -> bytes:
        """PCM16 at 8 kHz decoded from the line bytes (what the server's codec produces)."""
        return ulaw_to_pcm16(self.line_bytes())

    def wav(self, lead_ms: int = 0, tail_ms: int = 0) -> Path:
        """An 8 kHz PCM16 WAV of the phone-line audio, optionally padded with silence."""
        path = CACHE / f"{self._stem()}-line-{lead_ms}-{tail_ms}.wav"
        if not path.exists():
            pcm = silence(lead_ms, LINE_RATE) + self.pcm() + silence(tail_ms, LINE_RATE)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.wav")
            write_wav_file(str(tmp), pcm, LINE_RATE)
            tmp.replace(path)
        return path

    @property
    def seconds(self) -> float:
        return len(self.line_bytes()) / LINE_RATE


UTTERANCES: dict[str, list[Spoken]] = {
    "en-IN": [
        Spoken("en-IN", "I need help with my account.", "account"),
        Spoken("en-IN", "Where is my order?", "order"),
        Spoken("en-IN", "Thank you very much.", "thanks"),
    ],
    "hi-IN": [
        Spoken("hi-IN", "मेरा ऑर्डर कहाँ है", "order"),
        Spoken("hi-IN", "मुझे अपने बिल के बारे में बात करनी है", "bill"),
    ],
    "te-IN": [
        Spoken("te-IN", "నా ఆర్డర్ ఎక్కడ ఉంది", "order"),
        Spoken("te-IN", "నాకు నా బిల్లు గురించి మాట్లాడాలి", "bill"),
    ],
    "gu-IN": [
        Spoken("gu-IN", "મારો ઓર્ડર ક્યાં છે", "order"),
        Spoken("gu-IN", "મારે મારા બિલ વિશે વાત કરવી છે", "bill"),
    ],
}


def all_utterances() -> list[Spoken]:
    return [u for items in UTTERANCES.values() for u in items]
