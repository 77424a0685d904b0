"""The inbound pace limit: real-time callers pass untouched, jitter bursts are absorbed, floods are
dropped and, when they persist, flagged for closing."""

from __future__ import annotations

import pytest

from sutradhar.telephony.inbound_rate import InboundRate

FRAME_S = 0.02


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def send(rate: InboundRate, clock: Clock, seconds: float, speed: float) -> int:
    """Send `seconds` of 20 ms frames at `speed` x real time; return how many were dropped."""
    dropped = 0
    for _ in range(round(seconds / FRAME_S)):
        clock.now += FRAME_S / speed
        dropped += not rate.admit(FRAME_S)
    return dropped


def test_a_real_time_caller_is_never_dropped_even_for_an_hour() -> None:
    clock = Clock()
    rate = InboundRate(1.5, 2.0, 5.0, clock)
    assert send(rate, clock, 3600, speed=1.0) == 0
    assert rate.dropped_s == 0 and not rate.flooding


def test_a_network_stall_delivered_in_one_burst_is_absorbed() -> None:
    clock = Clock()
    rate = InboundRate(1.5, 2.0, 5.0, clock)
    send(rate, clock, 10, speed=1.0)
    clock.now += 2.0  # the carrier held 2 s of audio back, then sends it at once
    assert all(rate.admit(FRAME_S) for _ in range(100))
    assert send(rate, clock, 10, speed=1.0) == 0


def test_a_twenty_times_real_time_flood_is_mostly_dropped_then_flagged() -> None:
    clock = Clock()
    rate = InboundRate(1.5, 2.0, 5.0, clock)
    dropped = send(rate, clock, 20, speed=20.0)  # 1 s of wall time
    assert rate.flooding
    assert dropped * FRAME_S > 20 - 2.0 - 1.5 - 0.1  # only the burst and 1.5x the wall time got through
    assert rate.dropped_s == pytest.approx(dropped * FRAME_S)


def test_a_slight_overspeed_is_trimmed_but_not_closed() -> None:
    clock = Clock()
    rate = InboundRate(1.5, 2.0, 5.0, clock)
    dropped = send(rate, clock, 600, speed=1.6)
    assert dropped > 0  # held to 1.5x ...
    assert not rate.flooding  # ... but the excess drains as fast as it comes: no reason to hang up
