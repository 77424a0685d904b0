"""State that several worker processes must agree on, in Redis when REDIS_URL is set.

- `IvrLanguageMap`: CallSid -> language chosen in the IVR. The IVR webhook and the media stream of
  the same call may reach different workers.
- `CallDirections`: CallSid -> "outbound" for the calls we placed, for the stream's start when its
  carrier cannot say so (Exotel): those calls are screened for answering machines.
- `CallHandoffs`: CallSid -> the number an Exotel call was transferred to, for the flow's Passthru
  applet that asks after the stream closed (telephony/exotel/control.py).
- every worker's live calls: `sutradhar.ops.live_calls.LiveCalls`, on the same Redis client.
- `BreakerStateStore` + `BreakerSync`: per stage+provider breaker state with its opened-at time, so
  when one worker finds a provider down the others stop sending it calls too.
- `sutradhar.ops.stream_tokens.StreamTokens`: single-use media-stream tokens, issued by the worker
  that answered the webhook and spent by the one the stream reaches.

Without Redis each falls back to an in-process implementation. A Redis failure is logged and the
in-process copy answers: shared state is an optimisation, never a reason to drop a call.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from typing import Any

from loguru import logger

from sutradhar.ops.periodic import Periodic
from sutradhar.ops.redis_client import FAILED, PREFIX, RedisBacked, connect_redis

log = logger.bind(stage="shared_state")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"




class CallValueMap(RedisBacked):
    """CallSid -> a short string, with a TTL (needed only until the call's stream starts)."""

    namespace = "call"

    def __init__(self, redis: Any | None = None, *, ttl_s: float = 3600, limit: int = 10_000) -> None:
        super().__init__(redis)
        self.ttl_s = ttl_s
        self.limit = limit
        self._local: dict[str, tuple[str, float]] = {}

    def _key(self, call_sid: str) -> str:
        return f"{PREFIX}:{self.namespace}:{call_sid}"

    async def set(self, call_sid: str, value: str) -> None:
        if len(self._local) >= self.limit:
            self._local.pop(next(iter(self._local)))
        self._local[call_sid] = (value, time.monotonic() + self.ttl_s)
        if self.redis is not None:
            await self._try("set", self.redis.set(self._key(call_sid), value,
                                                   ex=max(1, int(self.ttl_s))))

    async def get(self, call_sid: str) -> str | None:
        if self.redis is not None:
            value = await self._try("get", self.redis.get(self._key(call_sid)))
            if value is not FAILED:
                return value
        entry = self._local.get(call_sid)
        if entry is None:
            return None
        if entry[1] < time.monotonic():
            self._local.pop(call_sid, None)
            return None
        return entry[0]


class IvrLanguageMap(CallValueMap):
    """CallSid -> the language code chosen in the IVR (or when the call was placed)."""

    namespace = "ivr"


class CallDirections(CallValueMap):
    """CallSid -> "outbound" for the calls this deployment placed."""

    namespace = "direction"


class CallHandoffs(CallValueMap):
    """CallSid -> the number the agent handed the call to (carriers whose flow dials it: Exotel)."""

    namespace = "handoff"


@dataclass(frozen=True)
class SharedBreaker:
    stage: str
    provider: str
    state: str  # closed | open | half_open
    opened_at: float | None  # wall-clock seconds (time.time()) when it opened
    updated_at: float
    worker: str


class BreakerStateStore(RedisBacked):
    """Breaker state per stage+provider, one Redis hash for all of them."""

    def __init__(self, redis: Any | None = None, *, worker: str | None = None) -> None:
        super().__init__(redis)
        self.worker = worker or worker_id()
        self._local: dict[str, SharedBreaker] = {}
        self._hash = f"{PREFIX}:breakers"

    async def set(self, stage: str, provider: str, state: str, opened_at: float | None = None) -> SharedBreaker:
        if state == "open" and opened_at is None:
            opened_at = time.time()
        entry = SharedBreaker(stage, provider, state, opened_at, time.time(), self.worker)
        self._local[f"{stage}:{provider}"] = entry
        if self.redis is not None:
            await self._try("breaker set", self.redis.hset(self._hash, f"{stage}:{provider}",
                                                           json.dumps(asdict(entry))))
        return entry

    async def get(self, stage: str, provider: str) -> SharedBreaker | None:
        if self.redis is not None:
            raw = await self._try("breaker get", self.redis.hget(self._hash, f"{stage}:{provider}"))
            if raw is not FAILED:
                return SharedBreaker(**json.loads(raw)) if raw else None
        return self._local.get(f"{stage}:{provider}")

    async def all(self) -> list[SharedBreaker]:
        if self.redis is not None:
            raw = await self._try("breaker list", self.redis.hgetall(self._hash))
            if raw is not FAILED:
                return [SharedBreaker(**json.loads(v)) for v in raw.values()]
        return list(self._local.values())


class BreakerSync:
    """Keeps a TaskRouter's breakers in step with the shared store.

    As a router listener it publishes this worker's open/closed transitions; its poll loop adopts
    other workers' newer open/closed decisions with `CircuitBreaker.force`. Half-open is not
    shared: each worker reaches it by itself when the reset timeout has passed since opened_at.
    """

    def __init__(self, router: Any, store: BreakerStateStore, *, interval_s: float = 1.0) -> None:
        self.router = router
        self.store = store
        self.interval_s = interval_s
        self._seen: dict[str, float] = {}  # key -> updated_at of the newest entry applied or sent
        self._applying = False
        self._periodic = Periodic("breaker-sync", self.sync_once, interval_s)
        self._pending: set[asyncio.Task] = set()

    def breaker(self, stage: str, provider: str, state: Any) -> None:
        """RouterListener hook: a local breaker changed."""
        value = getattr(state, "value", state)
        if self._applying or value == "half_open":
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._publish(stage, provider, value))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _publish(self, stage: str, provider: str, state: str) -> None:
        entry = await self.store.set(stage, provider, state)
        self._seen[f"{stage}:{provider}"] = entry.updated_at

    async def sync_once(self) -> int:
        """Adopt newer shared states; return how many breakers changed."""
        from sutradhar.engines.resilience import BreakerState

        changed = 0
        slots = {f"{s.stage}:{s.name}": s for chain in self.router.chains.values() for s in chain}
        for entry in await self.store.all():
            key = f"{entry.stage}:{entry.provider}"
            slot = slots.get(key)
            if slot is None or entry.worker == self.store.worker or entry.state == "half_open":
                continue
            if entry.updated_at <= self._seen.get(key, 0.0):
                continue
            self._seen[key] = entry.updated_at
            local = slot.breaker.state.value
            if local == entry.state or (entry.state == "open" and local == "half_open"
                                        and self._expired(slot, entry)):
                continue
            opened_at = None
            if entry.state == "open" and entry.opened_at is not None:
                opened_at = slot.breaker.clock() - max(0.0, time.time() - entry.opened_at)
            self._applying = True
            try:
                slot.breaker.force(BreakerState(entry.state), opened_at=opened_at)
            finally:
                self._applying = False
            log.info("breaker {} adopted {} from worker {}", key, entry.state, entry.worker)
            changed += 1
        return changed

    @staticmethod
    def _expired(slot: Any, entry: SharedBreaker) -> bool:
        return entry.opened_at is not None and time.time() - entry.opened_at >= slot.breaker.reset_timeout

    async def start(self) -> None:
        self._periodic.start()

    async def aclose(self) -> None:
        await self._periodic.stop()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


class SharedState:
    """The IVR map, the breaker store and the stream tokens, on one Redis connection (or none);
    the live-call registry uses the same connection (`LiveCalls(redis=shared.redis)`)."""

    def __init__(self, redis: Any | None = None, *, worker: str | None = None,
                 stream_token_ttl_s: float = 60.0) -> None:
        # Imported here: stream_tokens builds on RedisBacked, defined in this module.
        from sutradhar.ops.stream_tokens import StreamTokens

        self.redis = redis
        self.worker = worker or worker_id()
        self.languages = IvrLanguageMap(redis)
        self.directions = CallDirections(redis)
        self.handoffs = CallHandoffs(redis)
        self.breakers = BreakerStateStore(redis, worker=self.worker)
        self.stream_tokens = StreamTokens(redis, ttl_s=stream_token_ttl_s)

    @classmethod
    def from_settings(cls, settings: Any) -> SharedState:
        url = getattr(settings, "redis_url", "")
        return cls(connect_redis(url) if url else None,
                   stream_token_ttl_s=getattr(settings, "stream_token_ttl_s", 60.0))

    @property
    def shared(self) -> bool:
        return self.redis is not None

    async def ping(self) -> None:
        """Raise when Redis is configured and does not answer."""
        if self.redis is not None:
            await self.redis.ping()

    async def aclose(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
