"""HealthMonitor: background health checks of providers, database and Redis for GET /health.

Checks run every `interval_s` in one background task, each under `timeout_s`; GET /health only
reads the cached results, so a slow provider never delays a health probe or a call.

A provider's own check (GET /models) can pass while its real endpoint hangs, so each provider is
also judged by its live calls (the router's outcome window): at `max_error_rate` or more errors
and timeouts over at least `min_calls` recent calls it is degraded, and not usable for readiness,
until a live call or its background probe answers again.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from loguru import logger

from sutradhar.engines.fallback import TaskRouter
from sutradhar.ops.periodic import Periodic
from sutradhar.ops.shared_state import SharedState
from sutradhar.store import CallStore

log = logger.bind(stage="health")


class HealthMonitor:
    def __init__(self, router: TaskRouter, *, store: CallStore | None = None,
                 store_error: str | None = None, shared: SharedState | None = None,
                 interval_s: float = 30.0, timeout_s: float = 5.0, max_error_rate: float = 0.5,
                 min_calls: int = 3) -> None:
        self.router = router
        self.store = store
        self.shared = shared
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.max_error_rate = max_error_rate
        self.min_calls = min_calls
        self.providers: dict[tuple[str, str], dict[str, Any]] = {}
        self.database: dict[str, Any] | None = None
        self.redis: dict[str, Any] | None = None
        self.store_error = store_error  # the store failed to start
        self._periodic = Periodic("health-monitor", self.check_once, interval_s)
        self.checked = asyncio.Event()

    async def _check(self, probe: Any) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                await probe()
            result: dict[str, Any] = {"ok": True, "error": None}
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure is a failed check
            message = str(exc) or type(exc).__name__
            if isinstance(exc, TimeoutError):
                message = f"no answer within {self.timeout_s:g}s"
            result = {"ok": False, "error": f"{type(exc).__name__}: {message}"}
        result["checked_at"] = time.time()
        result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
        return result

    async def check_once(self) -> None:
        jobs: dict[Any, Any] = {}
        for stage, chain in self.router.chains.items():
            for slot in chain:
                jobs[(stage, slot.name)] = self._check(slot.provider.health)
        if self.store is not None and self.store_error is None:
            jobs["database"] = self._check(self.store.ping)
        if self.shared is not None:
            jobs["redis"] = self._check(self.shared.ping)
        results = await asyncio.gather(*jobs.values())
        for key, result in zip(jobs, results):
            if key == "database":
                self.database = result
            elif key == "redis":
                self.redis = result
            else:
                previous = self.providers.get(key)
                if previous and previous["ok"] and not result["ok"]:
                    log.warning("health check failed stage={} provider={} error={}", key[0], key[1],
                                result["error"])
                self.providers[key] = result
        if self.store_error is not None:
            self.database = {"ok": False, "error": self.store_error, "checked_at": time.time()}
        self.checked.set()

    async def start(self) -> None:
        self._periodic.start()

    async def aclose(self) -> None:
        await self._periodic.stop()

    async def first_round(self) -> None:
        """Wait briefly for the first round of checks (a probe right after start)."""
        if not self.checked.is_set():
            try:
                async with asyncio.timeout(self.timeout_s + 0.5):
                    await self.checked.wait()
            except TimeoutError:
                pass

    def _problem(self, status: dict[str, Any], health: dict[str, Any] | None) -> str | None:
        """Why this provider is not usable now, or None when it is."""
        if status["breaker"] == "open":
            return "breaker open"
        live = status.get("live") or {}
        calls, errors = live.get("calls", 0), live.get("errors", 0)
        probe_ok_at = (status.get("probe") or {}).get("last_ok_at")
        recovered = live.get("last_ok") or (probe_ok_at is not None
                                            and probe_ok_at >= (status.get("last_error_at") or 0))
        if calls >= self.min_calls and errors / calls >= self.max_error_rate and not recovered:
            return (f"{errors} of its last {calls} live calls failed ({live.get('timeouts', 0)} timed "
                    f"out) in {live.get('window_s', 0):g}s")
        if health is not None and not health["ok"]:
            return health["error"]
        return None

    def report(self) -> tuple[bool, dict[str, Any]]:
        """(ready, body): ready when every stage has a usable provider and the stores answer."""
        reasons: list[str] = []
        warnings: list[str] = []
        providers = []
        usable: dict[str, int] = {}
        for status in self.router.provider_status():
            key = (status["stage"], status["provider"])
            health = self.providers.get(key)
            why = self._problem(status, health)
            providers.append({**status, "health": health, "ok": why is None,
                              "status": "ok" if why is None else "degraded"})
            usable[status["stage"]] = usable.get(status["stage"], 0) + int(why is None)
            if why is not None:
                warnings.append(f"{status['stage']} provider {status['provider']}: {why}")
        for stage, count in usable.items():
            if count == 0:
                reasons.append(f"no usable {stage} provider")
        for name, result in (("database", self.database), ("redis", self.redis)):
            if result is not None and not result["ok"]:
                reasons.append(f"{name}: {result['error']}")
        ready = not reasons
        status = "unavailable" if not ready else ("degraded" if warnings else "ok")
        body = {"status": status, "reasons": reasons + warnings, "providers": providers,
                "database": self.database, "redis": self.redis}
        return ready, body
