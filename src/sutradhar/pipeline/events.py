"""What one turn is made of: the caller's `Utterance` in, the events `respond` yields out, and the
`TurnRecord` that the store, metrics and traces read."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sutradhar.engines.base import AudioChunk, Transcript
from sutradhar.engines.live_stt import LiveTranscription


@dataclass
class Utterance:
    audio: bytes  # PCM16 mono
    sample_rate: int = 16000
    ended_at: float = 0.0  # time.monotonic() when the caller stopped speaking; 0: when respond starts
    text: str | None = None  # already known (typed text, tests): STT is skipped
    # A streaming STT that heard this utterance while it was spoken: only its flush is left.
    transcription: LiveTranscription | None = None
    # A batch STT started early, at the caller's pause, on the audio so far (the caller did not go
    # on): the turn awaits it instead of starting one. `early_started` is its time.monotonic() start.
    early_stt: asyncio.Future[Transcript] | None = None  # a Task, or an answer already known
    early_started: float = 0.0

    @property
    def duration_s(self) -> float:
        return len(self.audio) / 2 / self.sample_rate if self.sample_rate else 0.0


@dataclass(frozen=True, slots=True)
class Transcribed:
    turn_id: int
    text: str
    language: str | None


@dataclass(frozen=True, slots=True)
class LanguageSwitched:
    turn_id: int
    old: str
    new: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReplyText:
    """A sentence chunk of the reply, emitted before its audio (and even when TTS fails)."""

    turn_id: int
    seq: int
    text: str


@dataclass(frozen=True, slots=True)
class ReplyAudio:
    turn_id: int
    seq: int
    text: str
    chunk: AudioChunk


@dataclass(frozen=True, slots=True)
class SentenceDone:
    """All audio of sentence `seq` has been yielded: a transport can flush its resampler now
    instead of holding the sentence's tail until the next sentence is synthesized."""

    turn_id: int
    seq: int
    text: str


@dataclass(frozen=True, slots=True)
class ActionRequested:
    """Perform after the audio yielded before it has been heard: "end_call" or "transfer" (asked by
    a keyword intent or by a built-in tool the LLM called)."""

    turn_id: int
    action: str


@dataclass(frozen=True, slots=True)
class TurnCompleted:
    turn_id: int
    record: TurnRecord


Event = (Transcribed | LanguageSwitched | ReplyText | ReplyAudio | SentenceDone | ActionRequested
         | TurnCompleted)


@dataclass
class TurnRecord:
    turn_id: int
    call_id: str = ""
    text: str = ""
    reply: str = ""
    heard: str | None = None
    interrupted: bool = False
    language: str = ""
    detected_language: str | None = None
    switched_to: str | None = None
    intent: str | None = None
    # "batch": STT after the end of the turn; "stream": it listened while the caller spoke (stt_ms is
    # its flush); "early": a batch STT started at the caller's pause (stt_ms is that call).
    stt_mode: str = "batch"
    timings: dict[str, float | None] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    providers: dict[str, str | None] = field(default_factory=dict)
    # "cached:<provider>": TTS failed (or the turn budget ran out) before the caller heard anything,
    # so the apology synthesised at start-up was played instead.
    apology: str | None = None
    # One entry per tool call: id, name, arguments (secrets redacted), result_chars, duration_ms, error,
    # prefetched (the run started with the turn, before the LLM asked: agents/prefetch.py).
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    filler: bool = False  # the tools were slow: the filler line was said while they ran
    state: str | None = None  # the flow's state when the turn ended (None: the agent has no flow)
    started_at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def error(self, stage: str, exc: BaseException) -> None:
        self.errors.append({
            "stage": stage,
            "provider": getattr(exc, "provider", "") or "",
            "kind": getattr(exc, "kind", type(exc).__name__),
            "message": str(exc)[:500],
        })
