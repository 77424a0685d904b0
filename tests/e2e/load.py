"""Short, complete calls for load: used by the leak test and the soak benchmark (tests/e2e/soak.py)."""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

from tests.e2e.fixtures import UTTERANCES
from tests.e2e.wire import TwilioCaller


@dataclass
class CallOutcome:
    call_id: str
    turns: int = 0
    answered: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.answered == self.turns


async def short_call(ws_url: str, turns: int = 2, pace_s: float = 0.0, reply_timeout_s: float = 10.0) -> CallOutcome:
    """Greeting, `turns` caller turns each answered with audio, then a clean hang-up."""
    caller = TwilioCaller(ws_url)
    outcome = CallOutcome(caller.call_id, turns)
    speech = UTTERANCES["en-IN"][1].pcm()
    try:
        await caller.connect()
        if not await caller.wait_audio(0.05, reply_timeout_s):
            outcome.error = f"no greeting (closed={caller.close_code})"
            return outcome
        for _ in range(turns):
            if await caller.turn(speech, pace_s, reply_timeout_s):
                outcome.answered += 1
            elif caller.closed.is_set():
                outcome.error = f"closed by server ({caller.close_code} {caller.close_reason})"
                return outcome
        await caller.wait_quiet(timeout=reply_timeout_s)  # hear the last reply out
        await caller.stop()
    except Exception as exc:  # noqa: BLE001 - a load run reports every failure, it does not stop
        outcome.error = f"{type(exc).__name__}: {exc}"
    finally:
        try:
            await caller.close()
        except Exception as exc:  # noqa: BLE001
            outcome.error = outcome.error or f"close: {type(exc).__name__}: {exc}"
    return outcome


def rss_mb() -> float:
    """Resident memory of this process (the in-process server included), after a full collection."""
    import psutil

    gc.collect()
    return psutil.Process(os.getpid()).memory_info().rss / 2**20
