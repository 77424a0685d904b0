"""Process-wide services shared by every call: settings, engines (behind one router), metrics,
call records, the live-call registry and the IVR's CallSid -> language map.

Calls never share per-call state; they share only these, so one call's failure stays its own.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from sutradhar.config import Settings
from sutradhar.metrics import MetricsCollector
from sutradhar.orchestrator import AgentOrchestrator
from sutradhar.resilience import RetryPolicy
from sutradhar.routing import StagePolicy, TaskRouter


class CallRecorder(Protocol):
    """Where call records go. Implementations must never raise into a call or block audio."""

    async def call_started(self, call_id: str, info: dict[str, Any]) -> None: ...
    async def turn_completed(self, call_id: str, record: dict[str, Any]) -> None: ...
    async def call_ended(self, call_id: str, reason: str, summary: dict[str, Any]) -> None: ...


class NullRecorder:
    async def call_started(self, call_id: str, info: dict[str, Any]) -> None:
        return None

    async def turn_completed(self, call_id: str, record: dict[str, Any]) -> None:
        return None

    async def call_ended(self, call_id: str, reason: str, summary: dict[str, Any]) -> None:
        return None


class LocalIvrLanguages:
    """CallSid -> language chosen in the IVR, for this process only (Redis shares it across workers)."""

    def __init__(self, limit: int = 10_000) -> None:
        self._map: dict[str, str] = {}
        self._limit = limit

    async def get(self, call_sid: str) -> str | None:
        return self._map.get(call_sid)

    async def set(self, call_sid: str, code: str) -> None:
        if len(self._map) >= self._limit:
            self._map.pop(next(iter(self._map)))  # oldest first: IVR answers are short-lived
        self._map[call_sid] = code


class LiveCalls:
    """The calls this process is serving now."""

    def __init__(self) -> None:
        self._calls: dict[str, Any] = {}

    def register(self, call_id: str, session: Any) -> None:
        self._calls[call_id] = session

    def unregister(self, call_id: str) -> None:
        self._calls.pop(call_id, None)

    def get(self, call_id: str) -> Any | None:
        return self._calls.get(call_id)

    def items(self) -> list[tuple[str, Any]]:
        return list(self._calls.items())

    def __len__(self) -> int:
        return len(self._calls)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._calls


def router_from_settings(settings: Settings, stt: list[Any], llm: list[Any], tts: list[Any]) -> TaskRouter:
    def policy(timeout: float) -> StagePolicy:
        return StagePolicy(RetryPolicy(settings.retry_attempts, timeout, settings.retry_backoff_s),
                           settings.breaker_failure_threshold, settings.breaker_reset_s)

    return TaskRouter(stt, llm, tts, policies={"stt": policy(settings.stt_timeout_s),
                                               "llm": policy(settings.llm_timeout_s),
                                               "tts": policy(settings.tts_timeout_s)})


@dataclass
class Services:
    settings: Settings
    router: TaskRouter
    metrics: MetricsCollector = field(default_factory=MetricsCollector)
    recorder: Any = field(default_factory=NullRecorder)
    calls: LiveCalls = field(default_factory=LiveCalls)
    ivr_languages: Any = field(default_factory=LocalIvrLanguages)
    extras: dict[str, Any] = field(default_factory=dict)  # optional parts: store, redis, telemetry

    def new_orchestrator(self, call_id: str, language: str | None = None) -> AgentOrchestrator:
        s = self.settings
        return AgentOrchestrator(
            router=self.router, call_id=call_id, language=language or s.default_language,
            languages=tuple(s.languages), system_prompt=s.system_prompt, max_history=s.max_history,
            max_context_chars=s.max_context_chars, switch_threshold=s.switch_threshold,
            min_turns_before_switch=s.min_turns_before_switch, metrics=self.metrics,
        )

    async def warm_up(self) -> None:
        """Load local models before the first caller needs them (failures are logged, not fatal)."""
        from loguru import logger

        async def one(provider: Any) -> None:
            try:
                await provider.warm_up()
            except Exception as exc:  # noqa: BLE001 - the router falls back if it stays broken
                logger.bind(stage="startup").warning("warm-up failed provider={} error={}", provider.name, exc)

        providers = [p for stage in ("stt", "llm", "tts") for p in self.router.providers(stage)
                     if hasattr(p, "warm_up")]
        await asyncio.gather(*(one(p) for p in providers))

    async def close_extras(self) -> None:
        """Stop the operational parts (store, shared state, monitors) in the order they were added."""
        for part in list(self.extras.values()):
            close = getattr(part, "aclose", None)
            if close is not None:
                result = close()
                if asyncio.iscoroutine(result):
                    await result
        self.extras.clear()

    async def aclose(self) -> None:
        await self.close_extras()
        await self.router.aclose()


def build_services(settings: Settings) -> Services:
    """Services with the configured engines (the offline local ones by default)."""
    from sutradhar.providers.factory import build_providers

    engines = build_providers(settings)
    return Services(settings, router_from_settings(settings, engines.stt, engines.llm, engines.tts))
