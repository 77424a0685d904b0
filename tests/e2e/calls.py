"""Helpers to place simulated calls (`sutradhar.testing.simulator`) at the server."""

from __future__ import annotations

from typing import Any

from sutradhar.testing import simulator as sim_module
from tests.e2e.fixtures import Spoken

FAST = 3.0  # caller audio 3x faster than real time where real time is not the point


def simulator() -> Any:
    return sim_module


def caller_turn(spoken: Spoken, lead_ms: int = 0, **kw: Any) -> Any:
    """A simulator turn of `spoken`, optionally after `lead_ms` of caller silence."""
    from sutradhar.audio.codecs import silence

    return simulator().CallerTurn(audio=silence(lead_ms, 8000) + spoken.pcm(), sample_rate=8000, **kw)


async def place_call(base_url: str, turns: list[Any], **kw: Any) -> Any:
    """One call through the simulator; returns its CallResult."""
    sim = simulator()
    kw.setdefault("speed", FAST)
    kw.setdefault("gap_s", 0.3)
    kw.setdefault("tail_s", 0.3)
    kw.setdefault("reply_wait_s", 10.0)
    kw.setdefault("timeout_s", 60.0)
    items = [caller_turn(t) if isinstance(t, Spoken) else t for t in turns]
    config = sim.SimConfig(base_url=base_url, turns=items, **kw)
    return await sim.simulate(config)


def agent_audio_rms(result: Any) -> float:
    from sutradhar.audio.codecs import rms

    return rms(bytes(result.agent_audio))
