"""LiveCalls: the calls this process is serving, and (with Redis) every worker's.

One registry. Locally it maps call id -> the live call object (a `CallSession`); it owns the
admission check (MAX_CONCURRENT_CALLS), keeps the `active_calls` gauge, and mirrors each call's
carrier, language and state into Redis (a sorted set scored by heartbeat, so a dead worker's calls
disappear within `stale_s`), with the worker's own heartbeat beside them. Mirroring is fire-and-forget: registering never waits on Redis, and a
Redis failure falls back to this worker's own view.

A call's whole summary (turns, context) lives only in its worker's memory, so another worker asks
for it through Redis: it publishes the call id and a reply key on the owner's channel, and the
owner, which listens there, pushes the summary onto that key; the asker waits SUMMARY_WAIT_S at
most and otherwise makes do with the mirror.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Coroutine
from typing import Any, Protocol

from loguru import logger

from sutradhar.ops.periodic import Periodic
from sutradhar.ops.prometheus import Telemetry
from sutradhar.ops.redis_client import FAILED, PREFIX, RedisBacked
from sutradhar.ops.shared_state import worker_id
from sutradhar.pipeline.orchestrator import AgentOrchestrator

SUMMARY_WAIT_S = 0.5  # how long a worker waits for another's summary of its call before the mirror
REPLY_TTL_S = 10  # a reply nobody took (its asker gave up) leaves Redis after this
LISTEN_POLL_S = 0.5  # the summary listener's read timeout (under the client's 1 s socket timeout)
log = logger.bind(call_id="-", stage="shared_state")


class LiveCall(Protocol):
    """What the registry and the admin API need of a live call (a `CallSession`)."""

    call_id: str
    orchestrator: AgentOrchestrator

    def live_info(self) -> dict[str, Any]:
        """transport (carrier), language, state, turns and last_v2v_ms (JSON for Redis, /status)."""
        ...

    def summary(self) -> dict[str, Any]: ...


class LiveCalls(RedisBacked):
    def __init__(self, *, limit: int, telemetry: Telemetry, redis: Any | None = None,
                 worker: str | None = None, heartbeat_s: float = 5.0, stale_s: float = 20.0) -> None:
        super().__init__(redis)
        self.limit = limit
        self.telemetry = telemetry
        self.worker = worker or worker_id()
        self.heartbeat_s = heartbeat_s
        self.stale_s = stale_s
        self._calls: dict[str, LiveCall] = {}
        self.draining = False  # SIGTERM: no new calls; the live ones finish
        self._since: dict[str, float] = {}
        self._pending: set[asyncio.Task[Any]] = set()
        self._periodic = Periodic("live-call-heartbeat", self.heartbeat, heartbeat_s)
        self._listener: asyncio.Task[None] | None = None
        self._zset = f"{PREFIX}:calls"
        self._info = f"{PREFIX}:calls:info"
        self._workers = f"{PREFIX}:workers"

    # --- this process -------------------------------------------------------------------------

    @property
    def at_capacity(self) -> bool:
        """The one admission check: webhooks answer "busy" and media sockets are refused past it
        (and while the worker drains)."""
        return self.draining or len(self._calls) >= self.limit

    @property
    def refusal(self) -> str:
        """Why at_capacity refuses a call, for logs and close reasons."""
        return "server draining" if self.draining else "server at capacity"

    def register(self, call: LiveCall) -> None:
        call_id = call.call_id
        if call_id not in self._calls:
            self.telemetry.call_started()
            self._since[call_id] = time.time()
        self._calls[call_id] = call
        if self.redis is not None:
            self._spawn(self._publish(call_id, self._entry(call_id, call)))

    def unregister(self, call_id: str) -> None:
        if self._calls.pop(call_id, None) is not None:
            self.telemetry.call_ended()
        self._since.pop(call_id, None)
        if self.redis is not None:
            self._spawn(self._withdraw(call_id))

    def get(self, call_id: str) -> LiveCall | None:
        return self._calls.get(call_id)

    def items(self) -> list[tuple[str, LiveCall]]:
        return list(self._calls.items())

    def __len__(self) -> int:
        return len(self._calls)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._calls

    # --- every worker -------------------------------------------------------------------------

    async def count_all(self) -> int:
        if self.redis is not None:
            await self._prune()
            value = await self._try("count", self.redis.zcard(self._zset))
            if value is not FAILED:
                return int(value)
        return len(self._calls)

    async def list_all(self) -> list[dict[str, Any]]:
        if self.redis is not None:
            await self._prune()
            ids = await self._try("list", self.redis.zrange(self._zset, 0, -1))
            if ids is not FAILED:
                if not ids:
                    return []
                infos = await self._try("list", self.redis.hmget(self._info, ids))
                if infos is not FAILED:
                    return [json.loads(i) if i else {"call_id": c} for c, i in zip(ids, infos)]
        return [self._entry(call_id, call) for call_id, call in self._calls.items()]

    async def find_elsewhere(self, call_id: str) -> dict[str, Any] | None:
        """Another worker's live call as it mirrors it into Redis (carrier, language, state, turns,
        last_v2v_ms, its worker), or None: not live anywhere else, or no Redis to ask."""
        if self.redis is None or call_id in self._calls:
            return None
        scored = await self._try("find", self.redis.zscore(self._zset, call_id))
        if scored is FAILED or scored is None or scored < time.time() - self.stale_s:
            return None  # unknown, or its worker stopped refreshing it (died)
        info = await self._try("find", self.redis.hget(self._info, call_id))
        if info is FAILED:
            return None
        return json.loads(info) if info else {"call_id": call_id}

    async def summary_elsewhere(self, call_id: str, worker: str) -> dict[str, Any] | None:
        """The whole summary of a call `worker` serves, from that worker through Redis, or None
        when it does not answer within SUMMARY_WAIT_S (busy, gone, or no Redis)."""
        if self.redis is None:
            return None
        reply = f"{PREFIX}:summary-reply:{uuid.uuid4().hex}"
        request = json.dumps({"call_id": call_id, "reply": reply})
        listeners = await self._try("summary", self.redis.publish(self._channel(worker), request))
        if listeners is FAILED or not listeners:
            return None
        got = await self._try("summary", self.redis.blpop([reply], timeout=SUMMARY_WAIT_S))
        if got is FAILED or got is None:
            return None
        summary = json.loads(got[1])
        return summary if isinstance(summary, dict) else None  # null: the call ended meanwhile

    async def _listen(self) -> None:
        """Answer other workers' requests for the summaries of this worker's calls."""
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel(self.worker))
                while True:
                    message = await pubsub.get_message(timeout=LISTEN_POLL_S)
                    if message is not None:
                        await self._answer(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis went away: listen again once it is back
                log.debug("summary listener: {}: {}", type(exc).__name__, exc)
                await asyncio.sleep(1.0)
            finally:
                await pubsub.aclose()

    async def _answer(self, data: str) -> None:
        try:
            request = json.loads(data)
            call_id, reply = str(request["call_id"]), str(request["reply"])
        except (ValueError, KeyError, TypeError):
            return  # not a request of ours
        if not reply.startswith(f"{PREFIX}:summary-reply:"):
            return
        call = self._calls.get(call_id)
        summary = json.dumps(call.summary() if call is not None else None, default=str)
        pipe = self.redis.pipeline(transaction=True)
        pipe.rpush(reply, summary)
        pipe.expire(reply, REPLY_TTL_S)
        await self._try("summary", pipe.execute())

    def _channel(self, worker: str) -> str:
        return f"{PREFIX}:summary:{worker}"

    async def workers_alive(self) -> list[str]:
        """Workers whose heartbeat reached Redis within `stale_s` (this one alone without Redis)."""
        if self.redis is not None:
            found = await self._try("workers", self.redis.zrangebyscore(
                self._workers, time.time() - self.stale_s, "+inf"))
            if found is not FAILED:
                return sorted(found)
        return [self.worker]

    async def heartbeat(self) -> None:
        """Refresh this worker's presence and its calls (and their state), so other workers keep
        counting them."""
        if self.redis is None:
            return
        now = time.time()
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(self._workers, {self.worker: now})
        pipe.zremrangebyscore(self._workers, "-inf", now - 10 * self.stale_s)
        if not self._calls:
            await self._try("heartbeat", pipe.execute())
            return
        pipe.zadd(self._zset, {c: now for c in self._calls})
        pipe.hset(self._info, mapping={c: json.dumps(self._entry(c, call), default=str)
                                       for c, call in self._calls.items()})
        await self._try("heartbeat", pipe.execute())

    async def start(self) -> None:
        if self.redis is not None:
            self._periodic.start()
            self._listener = asyncio.create_task(self._listen(), name="live-call-summaries")

    async def aclose(self) -> None:
        await self._periodic.stop()
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        if self.redis is not None:
            for call_id in list(self._calls):
                await self._withdraw(call_id)
            await self._try("unregister", self.redis.zrem(self._workers, self.worker))
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    # --- internals ----------------------------------------------------------------------------

    def _entry(self, call_id: str, call: LiveCall) -> dict[str, Any]:
        return {"call_id": call_id, "worker": self.worker, "since": self._since.get(call_id),
                **call.live_info()}

    async def _publish(self, call_id: str, entry: dict[str, Any]) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(self._zset, {call_id: time.time()})
        pipe.hset(self._info, call_id, json.dumps(entry, default=str))
        await self._try("register", pipe.execute())

    async def _withdraw(self, call_id: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(self._zset, call_id)
        pipe.hdel(self._info, call_id)
        await self._try("unregister", pipe.execute())

    async def _prune(self) -> None:
        cutoff = time.time() - self.stale_s
        stale = await self._try("prune", self.redis.zrangebyscore(self._zset, "-inf", cutoff))
        if stale and stale is not FAILED:
            pipe = self.redis.pipeline(transaction=True)
            pipe.zremrangebyscore(self._zset, "-inf", cutoff)
            pipe.hdel(self._info, *stale)
            await self._try("prune", pipe.execute())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # no loop (a synchronous test): nothing to mirror to
            coro.close()
            return
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
