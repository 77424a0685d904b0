"""How an outbound call is answered, as phone audio (8 kHz PCM16 through mu-law): recorded
machine greetings in English and Hindi followed by a beep, and people saying "hello?".

Spoken by espeak-ng when a test first asks (cached like tests/support/audio.py);
`scripts/make_voicemail_fixtures.py` writes them out as WAVs for `sutradhar call --wav`.
"""

from __future__ import annotations

import numpy as np

from sutradhar.audio.codecs import pcm16_to_ulaw, silence, ulaw_to_pcm16
from tests.support.audio import speech_pcm

RATE = 8000
GREETINGS = {
    "en-IN": ("Hello, you have reached Priya Sharma. I am not available right now. "
              "Please leave a message after the tone.", "en-us"),
    "hi-IN": ("नमस्ते, आप प्रिया शर्मा से संपर्क कर रहे हैं। मैं अभी उपलब्ध नहीं हूँ। "
              "कृपया बीप के बाद अपना संदेश छोड़ें।", "hi"),
}
HELLOS = {"en-IN": ("Hello?", "en-us"), "hi-IN": ("हेलो?", "hi")}
BEEP_HZ = 1000.0
BEEP_MS = 400
GAP_MS = 300  # between the greeting's last word and the beep


def beep(hz: float = BEEP_HZ, ms: int = BEEP_MS, rate: int = RATE, amplitude: int = 8000) -> bytes:
    """A voicemail beep: one steady sine tone, through the same mu-law line as the speech."""
    t = np.arange(rate * ms // 1000) / rate
    tone = (amplitude * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()
    return ulaw_to_pcm16(pcm16_to_ulaw(tone))


def machine_greeting(language: str, with_beep: bool = True, lead_ms: int = 400) -> tuple[bytes, int | None]:
    """A voicemail greeting (then the beep), and the stream time in ms the beep starts at."""
    text, voice = GREETINGS[language]
    pcm = silence(lead_ms, RATE) + speech_pcm(text, voice, RATE)
    if not with_beep:
        return pcm + silence(2000, RATE), None
    beep_at = len(pcm) // 2 * 1000 // RATE + GAP_MS
    return pcm + silence(GAP_MS, RATE) + beep() + silence(3000, RATE), beep_at


def human_hello(language: str, lead_ms: int = 400, wait_ms: int = 2000) -> bytes:
    """A person picking up: "hello?", then waiting `wait_ms` for the caller to speak."""
    text, voice = HELLOS[language]
    return silence(lead_ms, RATE) + speech_pcm(text, voice, RATE) + silence(wait_ms, RATE)
