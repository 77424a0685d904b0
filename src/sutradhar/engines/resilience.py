"""Circuit breaker and retry policy: how one provider call is protected.

The breaker stops hammering a provider that keeps failing; the retry policy decides how often and
how long one request may try. Both take an injectable clock so tests control time.
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from sutradhar.engines.base import ProviderError

Clock = Callable[[], float]


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    @property
    def gauge(self) -> int:
        return {"closed": 0, "half_open": 1, "open": 2}[self.value]


class CircuitOpen(ProviderError):
    """The provider's breaker is open; the call was not attempted."""


@dataclass
class CircuitBreaker:
    """Closed -> open after `failure_threshold` consecutive failures; open -> half-open after
    `reset_timeout`; half-open lets one trial call through, which closes or re-opens it.

    While a background probe owns the breaker (`probing`), it stays open until the probe's own
    trial (`begin_probe`): a live turn is never the one to find out that a provider is still down."""

    failure_threshold: int = 3
    reset_timeout: float = 30.0
    clock: Clock = time.monotonic
    name: str = ""
    on_change: Callable[[BreakerState], None] | None = None
    _state: BreakerState = BreakerState.CLOSED
    _failures: int = 0
    _opened_at: float = 0.0
    _trial_in_flight: bool = False
    probing: bool = False

    @property
    def state(self) -> BreakerState:
        if (self._state is BreakerState.OPEN and not self.probing
                and self.clock() - self._opened_at >= self.reset_timeout):
            self._set(BreakerState.HALF_OPEN)
        return self._state

    @property
    def failures(self) -> int:
        return self._failures

    def allow(self) -> bool:
        """Whether a call may go through now. In half-open only one trial runs at a time."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._trial_in_flight = False
        if self._state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._failures += 1
        self._trial_in_flight = False
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
            self._opened_at = self.clock()
            self._set(BreakerState.OPEN)

    def begin_probe(self) -> None:
        """The background probe's trial: half-open, with the one trial slot taken by the probe."""
        self._trial_in_flight = True
        self._set(BreakerState.HALF_OPEN)

    def release(self) -> None:
        """A trial call ended without a verdict (cancelled by barge-in): let another one try."""
        self._trial_in_flight = False

    def force(self, state: BreakerState, opened_at: float | None = None) -> None:
        """Adopt a state decided elsewhere (another worker sharing breaker state)."""
        if state is BreakerState.OPEN:
            self._opened_at = self.clock() if opened_at is None else opened_at
        self._set(state)

    def _set(self, state: BreakerState) -> None:
        if state is self._state:
            return
        self._state = state
        if self.on_change is not None:
            self.on_change(state)


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all, each bounded by `timeout`; exponential backoff with jitter between."""

    attempts: int = 2
    timeout: float = 15.0
    backoff: float = 0.2
    max_backoff: float = 2.0
    jitter: float = 0.1

    def delay(self, attempt: int) -> float:
        """Pause before retry number `attempt` (1 for the first retry)."""
        base = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        return base + random.uniform(0, self.jitter * base)


def is_retryable(error: BaseException) -> bool:
    if isinstance(error, ProviderError):
        return error.retryable
    # Network trouble and unexpected exceptions from a provider are worth one more try.
    return isinstance(error, (OSError, ConnectionError, asyncio.TimeoutError, ValueError, RuntimeError))
