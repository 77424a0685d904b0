"""Wires the operational parts into a running server's Services, and takes them down again.

    await operations.start(services)   # in the server's lifespan, after the services are built

starts, from the settings: the call store (recorder hooks + /calls), shared state in Redis with
breaker sync (REDIS_URL), Prometheus metrics on the router and on every finished turn, optional
tracing, and the background health monitor behind /health. Each part lands in
`services.extras` ("health", "breaker_sync", "shared", "store"), in the order Services.aclose()
should close them. A part that fails to start is logged and reported by /health; the server keeps
taking calls.
"""

from __future__ import annotations

import asyncio
from typing import Any

from loguru import logger

from sutradhar import telemetry, tracing
from sutradhar.readiness import HealthMonitor
from sutradhar.services import LiveCalls
from sutradhar.shared_state import BreakerSync, LiveCallRegistry, SharedState
from sutradhar.store import CallStore

log = logger.bind(stage="operations")


class TrackedLiveCalls(LiveCalls):
    """The process's live calls, mirrored into the cross-worker registry and the active_calls
    gauge. Registration is fire-and-forget: it never waits on Redis."""

    def __init__(self, registry: LiveCallRegistry, sink: telemetry.Telemetry | None = None) -> None:
        super().__init__()
        self.registry = registry
        self.sink = sink or telemetry.default
        self._pending: set[asyncio.Task] = set()

    def register(self, call_id: str, session: Any) -> None:
        if call_id not in self:
            self.sink.call_started()
        super().register(call_id, session)
        info = {k: getattr(session, k) for k in ("transport", "language") if
                isinstance(getattr(session, k, None), str)}
        self._spawn(self.registry.register(call_id, info))

    def unregister(self, call_id: str) -> None:
        if call_id in self:
            self.sink.call_ended()
        super().unregister(call_id)
        self._spawn(self.registry.unregister(call_id))

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            coro.close()
            return
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


async def start(services: Any) -> None:
    settings = services.settings
    extras = services.extras
    monitor = HealthMonitor(services.router, interval_s=settings.health_interval_s,
                            timeout_s=settings.health_timeout_s)
    extras["health"] = monitor

    shared = SharedState.from_settings(settings)
    await shared.start()
    services.ivr_languages = shared.languages
    if shared.shared:
        sync = BreakerSync(services.router, shared.breakers)
        services.router.listeners.append(sync)
        await sync.start()
        extras["breaker_sync"] = sync
    extras["shared"] = shared
    previous = services.calls
    services.calls = TrackedLiveCalls(shared.calls)
    for call_id, session in previous.items():
        services.calls.register(call_id, session)

    store = CallStore.from_settings(settings)
    try:
        await store.start()
        services.recorder = store
        extras["store"] = store
    except Exception as exc:  # noqa: BLE001 - records are worth less than calls
        log.error("call records are off: the database did not start: {}: {}", type(exc).__name__, exc)
        monitor.store_error = f"{type(exc).__name__}: {exc}"
        extras["store_unavailable"] = store

    telemetry.attach(services.router, services.metrics)
    if tracing.setup_tracing(settings) and tracing.record_turn not in services.metrics.listeners:
        services.metrics.listeners.append(tracing.record_turn)

    monitor.store = extras.get("store")
    monitor.shared = shared if shared.shared else None
    await monitor.start()


def store_of(services: Any) -> CallStore | None:
    store = services.extras.get("store") if hasattr(services, "extras") else None
    if store is None and isinstance(getattr(services, "recorder", None), CallStore):
        store = services.recorder
    return store
