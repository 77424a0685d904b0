"""The caller's audio may not arrive faster than real time (within INBOUND_MAX_SPEED and a jitter
burst): a token bucket measured in seconds of audio against the wall clock.

A carrier sends 20 ms (Exotel: 100 ms) every 20 ms; after a network stall it may deliver what it
held back in a burst, which the bucket (INBOUND_BURST_S deep, refilled at INBOUND_MAX_SPEED seconds
of audio per second) absorbs. Audio beyond that is dropped unheard: each dropped second would cost
VAD, STT and barge-ins. Dropped audio also fills a second, leaky count (draining at a tenth of real
time); past FLOOD_CLOSE_S the caller is flooding and the call is closed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

FLOOD_DRAIN = 0.1  # seconds of dropped audio forgiven per second of wall time


class InboundRate:
    def __init__(self, max_speed: float, burst_s: float, close_after_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_speed = max_speed
        self.burst_s = burst_s
        self.close_after_s = close_after_s
        self.clock = clock
        self.level = burst_s  # seconds of audio that may arrive early right now
        self.excess = 0.0  # recent dropped audio, leaking at FLOOD_DRAIN
        self.dropped_s = 0.0  # all audio dropped in this call
        self._last = clock()

    def admit(self, seconds: float) -> bool:
        """True when a chunk of `seconds` of audio arrived within the allowed pace."""
        now = self.clock()
        elapsed = now - self._last
        self._last = now
        self.level = min(self.burst_s, self.level + elapsed * self.max_speed)
        if self.excess:
            self.excess = max(0.0, self.excess - elapsed * FLOOD_DRAIN)
        if self.level >= seconds - 1e-9:  # float sums of 20 ms frames must not drop the last one
            self.level -= seconds
            return True
        self.dropped_s += seconds
        self.excess += seconds
        return False

    @property
    def flooding(self) -> bool:
        return self.excess > self.close_after_s
