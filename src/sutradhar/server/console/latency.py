"""Latency at a glance: p50/p95 of voice-to-voice and of each stage over recent turns, per language
and per provider, with each provider's error rate. Input: `CallStore.turn_timings(since)` rows."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# (timing key, label, the provider column that served it; None: the whole turn)
METRICS: tuple[tuple[str, str, str | None], ...] = (
    ("v2v_wire_ms", "Voice to voice (on the wire)", None),
    ("stt_ms", "STT", "stt_provider"),
    ("llm_ttft_ms", "LLM first token", "llm_provider"),
    ("tts_ttfb_ms", "TTS first audio", "tts_provider"),
)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (a value that occurred, not an interpolation) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Stat:
    group: str  # a language code or a provider name
    count: int
    p50: float
    p95: float
    errors: int = 0  # turns in which this provider failed at its stage (providers only)


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    stats: tuple[Stat, ...]
    turns: int = 0  # turns in the window
    failed_turns: int = 0  # of those, turns with an error at this stage (any provider)

    @property
    def error_rate(self) -> float:
        return self.failed_turns / self.turns if self.turns else 0.0

    @property
    def scale_ms(self) -> float:
        """The longest bar, rounded up so the bars keep room for their numbers."""
        return max((s.p95 for s in self.stats), default=0.0) or 1.0


def _stats(groups: Mapping[str, list[float]], errors: Mapping[str, int] | None = None) -> tuple[Stat, ...]:
    return tuple(Stat(name, len(values), percentile(values, 50), percentile(values, 95),
                      (errors or {}).get(name, 0))
                 for name, values in sorted(groups.items()) if values)


def _stage_errors(turns: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str | None], int]:
    """(stage, provider) -> turns in which that provider failed at that stage; (stage, None) ->
    turns with any failure at that stage."""
    counts: dict[tuple[str, str | None], int] = defaultdict(int)
    for turn in turns:
        seen = {(str(e.get("stage")), str(e.get("provider"))) for e in turn.get("errors") or ()
                if isinstance(e, Mapping)}
        for key in seen | {(stage, None) for stage, _ in seen}:
            counts[key] += 1
    return counts


def charts(turns: list[Mapping[str, Any]]) -> list[Chart]:
    """One chart of voice-to-voice per language, then one per stage by provider."""
    out = []
    errors = _stage_errors(turns)
    for key, title, provider_column in METRICS:
        groups: dict[str, list[float]] = defaultdict(list)
        for turn in turns:
            value = turn.get(key)
            if value is None:
                continue
            group = turn.get(provider_column) if provider_column else turn.get("language")
            groups[str(group or "unknown")].append(float(value))
        if provider_column is None:
            out.append(Chart(key, f"{title}, by language", _stats(groups)))
        else:
            stage = provider_column.removesuffix("_provider")
            by_provider = {name: n for (s, name), n in errors.items() if s == stage and name}
            out.append(Chart(key, f"{title}, by provider", _stats(groups, by_provider),
                             turns=len(turns), failed_turns=errors.get((stage, None), 0)))
    return out
