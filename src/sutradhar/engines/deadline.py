"""TurnDeadline: what is left of a turn's budget, so a hung provider cannot keep the caller waiting.

A turn's budget (TURN_BUDGET_S) runs from the end of the caller's speech to the first audio the
caller hears. Until that audio plays, every provider attempt (STT, the LLM's first token, the TTS's
first audio) is bounded by what is left of the budget, shared among the providers still ahead in
the chain, so a hung primary leaves time for its fallback. Once the first audio has played the
caller is hearing us and later attempts get their stage's normal timeout again.

A provider cut off by the budget before its first answer counts as timed out (a hung provider
must open its breaker and show in /health); a stream cut by the budget after it answered in time
does not. A spent budget fails a stage without trying it (`BudgetSpent`), blaming no provider.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sutradhar.engines.base import ProviderTimeout, Stage
from sutradhar.engines.resilience import Clock

# Below this an attempt cannot answer; starting it only blames a provider for the budget.
MIN_ATTEMPT_S = 0.05
# What an attempt leaves for each provider behind it in the chain (a responder, a fast second
# vendor). The first provider is the likeliest to answer, so it gets the rest, not an equal share:
# with a CPU LLM and the responder behind it, an equal split would hand most turns to the responder.
FALLBACK_RESERVE_S = 0.5
# A stream that already answered is slow, not hung, while it sends something this often: the
# budget no longer cuts it shorter (a CPU LLM writing its first sentence would be cut mid-word).
STREAM_STALL_S = 2.0
# The answer's text exists but the budget is spent: speaking it a little late beats apologising,
# so TTS still gets this long per provider before the cached apology plays.
LATE_SPEECH_S = 1.5


class BudgetSpent(ProviderTimeout):
    """The turn's budget ran out before this stage could be tried; no provider is to blame."""

    retryable = False

    @property
    def kind(self) -> str:
        return "budget"


@dataclass
class TurnDeadline:
    """A turn's deadline on `clock` (the clock the caller's end of speech was measured on)."""

    expires_at: float
    budget_s: float
    clock: Clock = time.monotonic
    met: bool = False  # the first audio reached the caller: no budget from here on

    @classmethod
    def starting(cls, budget_s: float | None, started_at: float | None = None,
                 clock: Clock = time.monotonic) -> TurnDeadline:
        """A deadline `budget_s` after `started_at` (now by default); no budget (None or 0) gives
        one that is already met, so every attempt keeps its stage's timeout."""
        start = clock() if started_at is None else started_at
        return cls(start + (budget_s or 0.0), budget_s or 0.0, clock, met=not budget_s)

    def remaining(self) -> float | None:
        """Seconds left, or None once met (the budget no longer applies)."""
        if self.met:
            return None
        return max(0.0, self.expires_at - self.clock())

    @property
    def spent(self) -> bool:
        left = self.remaining()
        return left is not None and left < MIN_ATTEMPT_S

    def attempt_timeout(self, stage_timeout: float, share: int = 1) -> float:
        """The timeout of one attempt: the stage's own, or what is left after keeping
        FALLBACK_RESERVE_S for each of the other `share - 1` providers still ahead, when that is
        shorter; never less than an equal share."""
        left = self.remaining()
        if left is None:
            return stage_timeout
        behind = max(1, share) - 1
        return min(stage_timeout, max(left - behind * FALLBACK_RESERVE_S, left / (behind + 1)))

    def stream_timeout(self, stage_timeout: float) -> float:
        """The wait for a started stream's next item: bounded by the budget, never below
        STREAM_STALL_S."""
        left = self.remaining()
        if left is None:
            return stage_timeout
        return min(stage_timeout, max(left, STREAM_STALL_S))

    def meet(self) -> None:
        """The caller hears audio now: later sentences use the normal per-stage timeouts."""
        self.met = True

    def spent_error(self, stage: Stage) -> BudgetSpent:
        return BudgetSpent(f"turn budget of {self.budget_s:g}s spent", stage=stage)
