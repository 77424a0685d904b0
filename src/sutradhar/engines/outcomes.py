"""OutcomeWindow: how one provider's live calls went lately, for an honest /health.

A provider's own health check (GET /models) can answer while its real endpoint hangs; only the
outcomes of live calls tell. The window keeps the last `max_calls` outcomes no older than
`window_s` and summarises them: error rate, timeouts, p95 latency of the answers.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from sutradhar.engines.resilience import Clock


@dataclass(frozen=True, slots=True)
class Outcome:
    at: float
    ok: bool
    kind: str | None = None  # the error's kind ("timeout", "rate_limit", ...) when not ok
    latency_s: float | None = None  # to the answer (first item of a stream), when known


class OutcomeWindow:
    def __init__(self, window_s: float = 300.0, max_calls: int = 100, clock: Clock = time.monotonic) -> None:
        self.window_s = window_s
        self.clock = clock
        self._outcomes: deque[Outcome] = deque(maxlen=max_calls)

    def add(self, ok: bool, kind: str | None = None, latency_s: float | None = None) -> None:
        self._outcomes.append(Outcome(self.clock(), ok, kind, latency_s))

    def recent(self) -> list[Outcome]:
        horizon = self.clock() - self.window_s
        while self._outcomes and self._outcomes[0].at < horizon:
            self._outcomes.popleft()
        return list(self._outcomes)

    def stats(self) -> dict[str, Any]:
        recent = self.recent()
        errors = [o for o in recent if not o.ok]
        latencies = sorted(o.latency_s for o in recent if o.ok and o.latency_s is not None)
        return {
            "window_s": self.window_s,
            "calls": len(recent),
            "errors": len(errors),
            "timeouts": sum(1 for o in errors if o.kind == "timeout"),
            "error_rate": round(len(errors) / len(recent), 3) if recent else None,
            "p95_ms": round(_percentile(latencies, 0.95) * 1000, 1) if latencies else None,
            "last_ok": recent[-1].ok if recent else None,
        }


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]
