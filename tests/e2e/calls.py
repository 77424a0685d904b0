"""Helpers to place simulated calls (the telephony branch's `sutradhar.simulator`) at the server."""

from __future__ import annotations

from typing import Any

from tests.e2e.fixtures import Spoken
from tests.e2e.harness import require

FAST = 3.0  # caller audio 3x faster than real time where real time is not the point


def simulator() -> Any:
    return require("sutradhar.simulator", "the call simulator sutradhar.simulator (telephony)")


def caller_turn(spoken: Spoken, tail_ms: int = 0, **kw: Any) -> Any:
    sim = simulator()
    return sim.CallerTurn(audio=spoken.pcm(), sample_rate=8000, **kw) if not tail_ms else \
        sim.CallerTurn.from_wav(str(spoken.wav(tail_ms=tail_ms)), **kw)


async def place_call(base_url: str, turns: list[Spoken], **kw: Any) -> Any:
    """One call through the simulator; returns its CallResult."""
    sim = simulator()
    kw.setdefault("speed", FAST)
    kw.setdefault("gap_s", 0.3)
    kw.setdefault("tail_s", 0.3)
    kw.setdefault("reply_wait_s", 10.0)
    kw.setdefault("timeout_s", 60.0)
    config = sim.SimConfig(base_url=base_url, turns=[caller_turn(t) for t in turns], **kw)
    return await sim.simulate(config)


def agent_audio_rms(result: Any) -> float:
    from sutradhar.audio.codecs import rms

    return rms(bytes(result.agent_audio))
