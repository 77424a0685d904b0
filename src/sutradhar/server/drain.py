"""Graceful drain: how a worker stops without cutting a caller off.

On SIGTERM (a deploy, a restart, a scale-in) the worker stops admitting calls at once (webhooks
answer "busy", new media streams get close code 1012, `/health` answers 503 `draining` so the load
balancer sends new calls elsewhere) and lets the live calls go on for up to DRAIN_TIMEOUT_S. Calls
still live then hear the `drained` line in their own language and are hung up; their records say
`drained`. Only then does the server stop.
"""

from __future__ import annotations

import asyncio
import time

from loguru import logger

from sutradhar.services import Services
from sutradhar.text.languages import LANGUAGES

log = logger.bind(stage="drain")


async def drain(services: Services, timeout_s: float | None = None, goodbye_s: float | None = None) -> int:
    """Drain this worker; return how many calls had to be ended by it (the rest finished)."""
    s = services.settings
    timeout_s = s.drain_timeout_s if timeout_s is None else timeout_s
    goodbye_s = s.drain_goodbye_s if goodbye_s is None else goodbye_s
    calls = services.calls
    calls.draining = True
    if services.workers is not None:
        try:
            await services.workers.set_status("draining")
        except Exception as exc:  # noqa: BLE001 - the drain goes on without the store
            log.warning("could not record the drain in the store: {}", exc)
    began = time.monotonic()
    log.info("draining: {} live calls may go on for up to {:g}s; new calls are refused", len(calls), timeout_s)
    while len(calls) and time.monotonic() - began < timeout_s:
        await asyncio.sleep(0.1)
    remaining = calls.items()
    if remaining:
        log.info("drain time is up: ending {} calls politely", len(remaining))

        async def say_goodbye(call: object) -> None:
            end_politely = getattr(call, "end_politely", None)
            if end_politely is None:  # not a CallSession (a test double): nothing to say
                return
            line = LANGUAGES[call.orchestrator.language.current].drained  # type: ignore[attr-defined]
            try:
                await end_politely("drained", line, goodbye_s)
            except Exception as exc:  # noqa: BLE001 - one call's failure must not stop the others' goodbyes
                log.bind(call_id=getattr(call, "call_id", "-")).error("drain goodbye failed: {}", exc)

        await asyncio.gather(*(say_goodbye(call) for _, call in remaining))
    if services.store is not None:
        await services.store.flush()
    log.info("drained in {:.1f}s ({} calls ended by the drain)", time.monotonic() - began, len(remaining))
    return len(remaining)
