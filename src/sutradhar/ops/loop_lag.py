"""Event-loop lag: how late this worker's loop runs what is due, which every call's audio waits for.

One worker's loop carries all its calls: when it falls behind (the core is full, or one callback
holds it), caller audio queues in the sockets and the agent answers later, however fast the
providers are. A ticker every `interval_s` measures how late it wakes; the lateness goes to the
`sutradhar_event_loop_lag_seconds` histogram (per worker; summed across workers in multiprocess
mode) and a stall of STALL_S or more is logged, at most once per LOG_EVERY_S.

Cost: `1 / interval_s` wakeups a second (20 at the default), against 50 a second per live call.
"""

from __future__ import annotations

import time

from loguru import logger
from prometheus_client import Histogram

from sutradhar.ops.periodic import Periodic

log = logger.bind(stage="loop")

STALL_S = 0.25  # a caller hears a quarter of a second of the agent's silence added
LOG_EVERY_S = 10.0


class LoopLagMonitor:
    def __init__(self, histogram: Histogram, interval_s: float) -> None:
        self.histogram = histogram
        self.interval_s = interval_s
        self.max_s = 0.0  # the worst lateness seen since start (tests, /status)
        self.stalls = 0
        self._periodic = Periodic("loop-lag", self._tick, interval_s)
        self._last: float | None = None  # when the previous tick ran
        self._logged_at = float("-inf")
        self._unlogged = 0

    def start(self) -> None:
        if self.interval_s > 0:
            self._periodic.start()

    async def _tick(self) -> None:
        # Periodic sleeps `interval_s` between ticks: any time beyond that, the loop was late.
        now = time.perf_counter()
        last, self._last = self._last, now
        if last is None:
            return
        late = max(0.0, now - last - self.interval_s)
        self.histogram.observe(late)
        self.max_s = max(self.max_s, late)
        if late >= STALL_S:
            self._stalled(late)

    def _stalled(self, late: float) -> None:
        self.stalls += 1
        self._unlogged += 1
        now = time.monotonic()
        if now - self._logged_at < LOG_EVERY_S:
            return
        log.warning("event loop stalled {:.0f} ms ({} stalls of {:.0f} ms or more since the last line): "
                    "every call on this worker waited", late * 1000, self._unlogged, STALL_S * 1000)
        self._logged_at, self._unlogged = now, 0

    async def aclose(self) -> None:
        await self._periodic.stop()
