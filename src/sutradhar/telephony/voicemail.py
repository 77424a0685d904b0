"""Answering-machine detection from the first seconds of an outbound call, on any carrier.

Three kinds of evidence, judged in stream time (ms of caller audio, not wall-clock, so a loaded
box or a fast simulator decides the same way):

- the greeting's shape: a person answers with a short "hello?" and waits; a machine talks on.
  Speech is one greeting while its pauses stay under `max_gap_ms`; a greeting longer than
  `long_greeting_ms` is a machine, one shorter than `short_answer_ms` followed by silence is a
  person, anything between is settled by its transcript;
- a beep (audio/tone.py): a steady 400-2000 Hz tone of 200 ms or more;
- the transcript: phrases machines and network announcements say (data/voicemail.yaml).

`MachineDetector` is pure (frames and transcripts in, a `Verdict` out); `telephony/screening.py`
runs it inside a call. After a machine verdict it keeps listening, to say when a message can be
left: after the beep, or once the greeting has ended and the line stayed silent.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import yaml

from sutradhar.audio.tone import Beep, ToneDetector
from sutradhar.audio.vad import FRAME_MS, VAD

HUMAN, MACHINE, UNKNOWN = "human", "machine", "unknown"


@dataclass(frozen=True, slots=True)
class Verdict:
    answered_by: str  # human | machine | unknown
    reason: str  # short_answer | long_greeting | beep | phrase | silence | timeout | carrier | dtmf
    at_ms: int  # stream time of the decision
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"answered_by": self.answered_by, "reason": self.reason, "at_ms": self.at_ms, **self.evidence}


@dataclass(frozen=True, slots=True)
class Thresholds:
    long_greeting_ms: int = 3500  # continuous speech this long is a recorded greeting
    short_answer_ms: int = 1500  # speech this short, then silence, is a person waiting for us
    max_gap_ms: int = 700  # a pause shorter than this is inside one greeting
    decision_ms: int = 5000  # undecided this long after the answer: unknown (the agent greets)
    silent_answer_ms: int = 3000  # nothing said this long: unknown (some people answer silently)
    message_silence_ms: int = 1200  # no beep: the greeting ended and the line stayed this quiet
    energy_floor: float = 150.0  # RMS below which a frame is silence whatever the VAD says


@dataclass(frozen=True, slots=True)
class Pending:
    """An ambiguous greeting closed: its transcript decides (`MachineDetector.heard`)."""

    audio: bytes  # PCM16 at the detector's rate
    sample_rate: int
    greeting_ms: int


class MachineDetector:
    def __init__(self, vad: VAD, thresholds: Thresholds = Thresholds(),
                 phrases: MachinePhrases | None = None) -> None:
        self.vad = vad
        self.rate = vad.sample_rate
        self.t = thresholds
        self.phrases = phrases or default_phrases()
        self.tones = ToneDetector(self.rate)
        self._floor_sq = thresholds.energy_floor ** 2 * (self.rate * FRAME_MS // 1000)
        self.verdict: Verdict | None = None
        self.beep: Beep | None = None
        self._frames = 0
        self._speech_frames = 0  # voiced frames of every greeting so far
        self._greeting_start: int | None = None  # frame index of the open greeting's first voiced frame
        self._last_voiced = -1  # frame index of the last voiced frame
        self._audio = bytearray()  # the open greeting's audio, for its transcript
        self._awaiting_transcript = False

    @property
    def now_ms(self) -> int:
        return self._frames * FRAME_MS

    @property
    def silence_ms(self) -> int:
        """Quiet since the last voiced frame (since the answer when nothing was said)."""
        return (self._frames - 1 - self._last_voiced) * FRAME_MS

    @property
    def spoke(self) -> bool:
        return self._last_voiced >= 0

    def push(self, frame: bytes) -> Verdict | Pending | None:
        """One 20 ms frame. The first verdict is returned once; a `Pending` asks for a transcript."""
        beep = self.tones.push(frame)
        voiced = not self.tones.tonal and self._voiced(frame)
        index = self._frames
        self._frames += 1
        if beep is not None and self.beep is None:
            self.beep = beep
            if self.verdict is None:
                return self._decide(MACHINE, "beep", beep=beep.as_dict())
        if voiced:
            if self._greeting_start is None:
                self._greeting_start = index
            self._last_voiced = index
            self._speech_frames += 1
        if self._greeting_start is not None:
            self._audio += frame
        if self.verdict is not None:
            if self._greeting_start is not None and self.silence_ms >= self.t.max_gap_ms:
                self._close_greeting()
            return None
        return self._judge()

    def heard(self, text: str) -> Verdict | None:
        """A transcript of the caller's first words: a machine's phrase decides at once; without
        one, the ambiguous greeting it was asked for is a person."""
        phrase = self.phrases.find(text)
        if self.verdict is not None:
            return None
        if phrase is not None:
            return self._decide(MACHINE, "phrase", phrase=phrase, transcript=text[:200])
        if self._awaiting_transcript:
            self._awaiting_transcript = False
            return self._decide(HUMAN, "short_answer", transcript=text[:200])
        return None

    def message_cue(self) -> str | None:
        """After a machine verdict: "beep" once the beep has ended, "silence" once the greeting is
        over and the line is quiet (no beep coming), else None (keep waiting)."""
        if self.beep is not None:
            return "beep"
        if self.spoke and self._greeting_start is None and self.silence_ms >= self.t.message_silence_ms:
            return "silence"
        return None

    def _voiced(self, frame: bytes) -> bool:
        if not self.vad.is_speech(frame):
            return False
        samples = np.frombuffer(frame, "<i2").astype(np.int32)
        return int(np.dot(samples, samples)) >= self._floor_sq

    def _judge(self) -> Verdict | Pending | None:
        t = self.t
        now = self.now_ms
        if self._greeting_start is not None:
            greeting = self._greeting_ms()
            if greeting >= t.long_greeting_ms:
                return self._decide(MACHINE, "long_greeting", greeting_ms=greeting)
            if self.silence_ms >= t.max_gap_ms:  # the greeting is over
                audio = self._close_greeting()
                if greeting < t.short_answer_ms:
                    return self._decide(HUMAN, "short_answer", greeting_ms=greeting)
                if not self._awaiting_transcript:
                    self._awaiting_transcript = True
                    return Pending(audio, self.rate, greeting)
        elif not self.spoke and now >= t.silent_answer_ms:
            return self._decide(UNKNOWN, "silence")
        if now >= t.decision_ms:
            return self._decide(UNKNOWN, "timeout", speech_ms=self._speech_frames * FRAME_MS)
        return None

    def _greeting_ms(self) -> int:
        assert self._greeting_start is not None
        return (self._last_voiced + 1 - self._greeting_start) * FRAME_MS

    def _close_greeting(self) -> bytes:
        audio = bytes(self._audio)
        self._audio.clear()
        self._greeting_start = None
        return audio

    def _decide(self, answered_by: str, reason: str, **evidence: Any) -> Verdict:
        evidence.setdefault("speech_ms", self._speech_frames * FRAME_MS)
        self.verdict = Verdict(answered_by, reason, self.now_ms, evidence)
        return self.verdict


# --- phrases ---

@dataclass(frozen=True)
class MachinePhrases:
    """What machines say, every language together: a Hindi call can reach an English voicemail."""

    by_language: dict[str, tuple[str, ...]]

    @classmethod
    def load(cls, text: str | None = None) -> MachinePhrases:
        raw = yaml.safe_load(text if text is not None else resources.files("sutradhar").joinpath(
            "data/voicemail.yaml").read_text(encoding="utf-8")) or {}
        return cls({code: tuple(normalize(p) for p in phrases or ()) for code, phrases in raw.items()})

    def find(self, text: str) -> str | None:
        """The first phrase `text` contains, or None."""
        heard = f" {normalize(text)} "
        for phrases in self.by_language.values():
            for phrase in phrases:
                if f" {phrase} " in heard:
                    return phrase
        return None


def normalize(text: str) -> str:
    """Lower case, NFC, punctuation as spaces (apostrophes dropped: "can't" = "cant"), one space.
    Devanagari/Telugu/Gujarati vowel signs are marks (category M) and are kept."""
    text = unicodedata.normalize("NFC", str(text)).casefold().replace("'", "").replace("\u2019", "")
    kept = "".join(ch if ch.isalnum() or unicodedata.category(ch).startswith("M") else " " for ch in text)
    return " ".join(kept.split())


@lru_cache(maxsize=1)
def default_phrases() -> MachinePhrases:
    return MachinePhrases.load()


# Twilio's AnsweredBy values (AsyncAmd callback) in our three words.
TWILIO_ANSWERED_BY = {"human": HUMAN, "machine_start": MACHINE, "machine_end_beep": MACHINE,
                      "machine_end_silence": MACHINE, "machine_end_other": MACHINE, "fax": MACHINE,
                      "unknown": UNKNOWN}


def carrier_verdict(answered_by: str, at_ms: int, info: dict[str, Any]) -> Verdict:
    """A carrier AMD's answer (Twilio's AnsweredBy) as a Verdict, its own word kept as evidence."""
    return Verdict(TWILIO_ANSWERED_BY.get(answered_by, UNKNOWN), "carrier", at_ms,
                   {"carrier_answered_by": answered_by, **info})
