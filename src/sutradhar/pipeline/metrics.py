"""MetricsCollector: per-stage latency of every turn, with averages and percentiles.

The figure callers feel is voice-to-voice latency: end of their speech to the first audio of the
reply. Everything else explains where that time went. Listeners (Prometheus, the call store)
receive every turn's timings as they are recorded.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

STAGES = ("stt_ms", "llm_ttft_ms", "llm_ms", "tts_ttfb_ms", "tts_ms", "v2v_ms")

_LABELS = {
    "stt_ms": "STT latency",
    "llm_ttft_ms": "LLM time to first token",
    "llm_ms": "LLM total",
    "tts_ttfb_ms": "TTS time to first byte",
    "tts_ms": "TTS total",
    "v2v_ms": "Voice-to-voice",
}


def percentile(values: Iterable[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of `values`; NaN when empty."""
    data = sorted(values)
    if not data:
        return math.nan
    if len(data) == 1:
        return data[0]
    rank = (len(data) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)


@dataclass
class MetricsCollector:
    """Keeps the last `window` values of each stage (bounded memory for a long-running server)."""

    window: int = 10_000
    samples: dict[str, deque[float]] = field(default_factory=dict)
    turns: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    listeners: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for stage in STAGES:
            self.samples.setdefault(stage, deque(maxlen=self.window))

    def record_turn(self, timings: dict[str, float | None], record: dict[str, Any] | None = None) -> None:
        self.turns += 1
        for stage, value in timings.items():
            if value is not None and stage in self.samples:
                self.samples[stage].append(float(value))
        for error in (record or {}).get("errors", []):
            key = f"{error.get('stage', '?')}:{error.get('kind', 'error')}"
            self.errors[key] = self.errors.get(key, 0) + 1
        for listener in self.listeners:
            listener({"timings": timings, **(record or {})})

    def record(self, stage: str, value_ms: float) -> None:
        self.samples.setdefault(stage, deque(maxlen=self.window)).append(float(value_ms))

    def average(self, stage: str) -> float:
        data = self.samples.get(stage) or ()
        return sum(data) / len(data) if data else math.nan

    def summary(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for stage, data in self.samples.items():
            if not data:
                continue
            out[stage] = {
                "count": len(data),
                "avg": round(self.average(stage), 2),
                "p50": round(percentile(data, 50), 2),
                "p95": round(percentile(data, 95), 2),
                "max": round(max(data), 2),
            }
        return out

    def generate_report(self) -> str:
        lines = [f"Turns: {self.turns}"]
        summary = self.summary()
        for stage in STAGES:
            if stage in summary:
                s = summary[stage]
                lines.append(f"{_LABELS[stage]:<26} avg {s['avg']:8.1f} ms   p50 {s['p50']:8.1f} ms   "
                             f"p95 {s['p95']:8.1f} ms   n={int(s['count'])}")
        if self.errors:
            lines.append("Errors: " + ", ".join(f"{k}={v}" for k, v in sorted(self.errors.items())))
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"turns": self.turns, "stages": self.summary(), "errors": dict(self.errors)}

    def reset(self) -> None:
        for data in self.samples.values():
            data.clear()
        self.turns = 0
        self.errors.clear()
