"""Background breaker probes: an open breaker is closed by a real request, not by a live turn.

When a provider's breaker opens, `BreakerProbes` starts one task for it that every `interval_s`
sends the cheapest real request of its stage (a quarter second of silence to transcribe, a
one-word completion, a one-word synthesis; its `health()` check is not enough, since a model list
can answer while transcription hangs). The first success closes the breaker, so the turns after a
recovery are not failed by a stale open breaker; a failure re-opens it until the next probe. While
a probe owns a breaker no live turn is let through as its half-open trial.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from loguru import logger

from sutradhar.engines.base import Message, Stage
from sutradhar.engines.resilience import BreakerState


class ProviderSlot(Protocol):
    """What a probe needs of the router's slot (engines/fallback.py), without importing the router
    (which owns the probes)."""

    name: str
    stage: Stage
    provider: Any
    breaker: Any
    probe: ProbeStatus

PROBE_SAMPLE_RATE = 16000
PROBE_LANGUAGE = "en-IN"  # used when the provider serves every language


async def probe_request(stage: Stage, provider: Any, language: str) -> None:
    """One cheap real request of `stage` to `provider`; raises when it fails. Any answer counts
    (silence may transcribe to nothing): the question is whether the endpoint answers at all."""
    if stage == "stt":
        silence = bytes(PROBE_SAMPLE_RATE // 4 * 2)
        await provider.transcribe(silence, PROBE_SAMPLE_RATE, language)
        return
    stream = (provider.stream([Message("user", "Say OK.")], language) if stage == "llm"
              else provider.synthesize("OK.", language))
    try:
        await anext(stream)
    except StopAsyncIteration:
        pass
    finally:
        with contextlib.suppress(Exception):
            await stream.aclose()


def probe_language(provider: Any) -> str:
    languages = getattr(provider, "languages", None)
    if not languages or PROBE_LANGUAGE in languages:
        return PROBE_LANGUAGE
    return sorted(languages)[0]


@dataclass
class ProbeStatus:
    """The probe of one provider, for /health."""

    running: bool = False
    probes: int = 0
    last_probe_at: float | None = None
    last_ok_at: float | None = None
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"running": self.running, "probes": self.probes, "last_probe_at": self.last_probe_at,
                "last_ok_at": self.last_ok_at, "last_error": self.last_error}


@dataclass
class BreakerProbes:
    """One probe task per open breaker. `interval_s` 0 turns probing off (the breaker then lets a
    live turn through as its half-open trial after its reset timeout, as before)."""

    interval_s: float = 5.0
    timeout_s: float = 5.0
    sleep: Callable[[float], Any] = asyncio.sleep
    on_result: Callable[[ProviderSlot, bool], None] | None = None
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def breaker_opened(self, slot: ProviderSlot) -> None:
        """Start probing `slot` unless a probe already runs (called from the breaker's change)."""
        key = f"{slot.stage}:{slot.name}"
        if self.interval_s <= 0 or (key in self._tasks and not self._tasks[key].done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a test poking a breaker): the reset timeout applies
            return
        slot.breaker.probing = True
        slot.probe.running = True
        self._tasks[key] = loop.create_task(self._run(slot), name=f"probe-{key}")

    async def _run(self, slot: ProviderSlot) -> None:
        breaker = slot.breaker
        log = logger.bind(stage=slot.stage)
        log.info("probing provider={} every {:g}s until it answers", slot.name, self.interval_s)
        try:
            while breaker.state is not BreakerState.CLOSED:  # another worker may have closed it
                await self.sleep(self.interval_s)
                if breaker.state is BreakerState.CLOSED:
                    break
                breaker.begin_probe()
                ok = await self._probe(slot)
                if self.on_result is not None:
                    self.on_result(slot, ok)
                if ok:
                    breaker.record_success()
                    log.info("probe succeeded provider={}: breaker closed", slot.name)
                    break
                breaker.record_failure()
        finally:
            breaker.probing = False
            slot.probe.running = False
            if breaker.state is BreakerState.HALF_OPEN:  # cancelled mid-probe: no verdict
                breaker.release()

    async def _probe(self, slot: ProviderSlot) -> bool:
        status = slot.probe
        status.probes += 1
        status.last_probe_at = time.time()
        try:
            async with asyncio.timeout(self.timeout_s):
                await probe_request(slot.stage, slot.provider, probe_language(slot.provider))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure means still down
            message = f"no answer within {self.timeout_s:g}s" if isinstance(exc, TimeoutError) else str(exc)
            status.last_error = f"{type(exc).__name__}: {message}"
            logger.bind(stage=slot.stage).info("probe failed provider={} error={}", slot.name,
                                               status.last_error)
            return False
        status.last_ok_at = time.time()
        status.last_error = None
        return True

    async def aclose(self) -> None:
        tasks = [task for task in self._tasks.values() if not task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
