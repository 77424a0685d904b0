"""LoopLagMonitor: a callback that holds the event loop shows up as lag, in the histogram and the log."""

from __future__ import annotations

import asyncio
import time

from loguru import logger

from sutradhar.ops.loop_lag import LoopLagMonitor
from sutradhar.ops.prometheus import Telemetry


def _lag_count(telemetry: Telemetry, le: str) -> float:
    return telemetry.registry.get_sample_value("sutradhar_event_loop_lag_seconds_bucket", {"le": le}) or 0.0


async def test_a_held_loop_is_measured_and_logged() -> None:
    telemetry = Telemetry()
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING")
    monitor = LoopLagMonitor(telemetry.loop_lag, interval_s=0.02)
    monitor.start()
    try:
        await asyncio.sleep(0.2)  # an idle loop: ticks on time
        on_time = _lag_count(telemetry, "0.025")
        assert on_time >= 3 and monitor.stalls == 0
        time.sleep(0.4)  # one callback holds the loop (a blocking call in a coroutine)
        await asyncio.sleep(0.1)
    finally:
        await monitor.aclose()
        logger.remove(sink)
    assert monitor.stalls == 1
    assert 0.35 < monitor.max_s < 1.0
    total = telemetry.registry.get_sample_value("sutradhar_event_loop_lag_seconds_count")
    assert total - _lag_count(telemetry, "0.25") == 1  # exactly the held tick is past 250 ms
    assert any("event loop stalled" in line for line in lines)


async def test_interval_zero_measures_nothing() -> None:
    telemetry = Telemetry()
    monitor = LoopLagMonitor(telemetry.loop_lag, interval_s=0)
    monitor.start()
    await asyncio.sleep(0.05)
    await monitor.aclose()
    assert telemetry.registry.get_sample_value("sutradhar_event_loop_lag_seconds_count") == 0
