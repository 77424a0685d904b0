"""One turn's waterfall: where its voice-to-voice time went, from the stored timings.

All of it is measured from the end of the caller's speech. First the end-of-turn wait (the silence
or semantic window before the turn was taken), then STT, the LLM until its first token and TTS
until its first audio, one after another (the layout of the turn's tracing spans,
`sutradhar.ops.tracing.record_turn`). The wait is not stored: it is what voice-to-voice (v2v_ms,
end of speech to first audio ready) leaves after the stages, so the TTS bar ends at v2v_ms; it is
zero when an early STT overlapped the wait. Two markers close it: first audio ready (v2v_ms) and
first frame on the wire (v2v_wire_ms), which is what the caller feels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

WAIT = ("wait_ms", "End-of-turn wait")
STAGES = (("stt_ms", "STT"), ("llm_ttft_ms", "LLM first token"), ("tts_ttfb_ms", "TTS first audio"))
MARKERS = (("v2v_ms", "Audio ready"), ("v2v_wire_ms", "First frame on the wire"))


@dataclass(frozen=True)
class Bar:
    key: str
    label: str
    start_ms: float
    length_ms: float


@dataclass(frozen=True)
class Marker:
    key: str
    label: str
    at_ms: float


@dataclass(frozen=True)
class Waterfall:
    bars: tuple[Bar, ...]
    markers: tuple[Marker, ...]

    @property
    def span_ms(self) -> float:
        ends = [b.start_ms + b.length_ms for b in self.bars] + [m.at_ms for m in self.markers]
        return max(ends, default=0.0) or 1.0

    def x(self, ms: float, width: float) -> float:
        """Where `ms` falls on a chart `width` wide (SVG user units)."""
        return round(ms / self.span_ms * width, 2)


def _ms(timings: Mapping[str, Any], key: str) -> float | None:
    value = timings.get(key)
    try:
        return None if value is None else max(0.0, float(value))
    except (TypeError, ValueError):
        return None


def waterfall(timings: Mapping[str, Any]) -> Waterfall | None:
    """The turn's bars and markers, or None when it has no timing at all (e.g. a typed turn)."""
    stages = [(key, label, length) for key, label in STAGES if (length := _ms(timings, key)) is not None]
    bars, start = [], 0.0
    if (v2v := _ms(timings, "v2v_ms")) is not None:
        wait = round(max(0.0, v2v - sum(length for _, _, length in stages)), 1)
        bars.append(Bar(*WAIT, 0.0, wait))
        start = wait
    for key, label, length in stages:
        bars.append(Bar(key, label, start, length))
        start = round(start + length, 1)
    markers = tuple(Marker(key, label, at) for key, label in MARKERS
                    if (at := _ms(timings, key)) is not None)
    if not bars and not markers:
        return None
    return Waterfall(tuple(bars), markers)
