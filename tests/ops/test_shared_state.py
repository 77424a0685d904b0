"""Cross-worker state: in-process by default, shared through a real redis-server when configured."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import pytest

from sutradhar.engines.fallback import StagePolicy, TaskRouter
from sutradhar.engines.resilience import BreakerState
from sutradhar.ops.live_calls import SUMMARY_WAIT_S, LiveCalls
from sutradhar.ops.prometheus import Telemetry
from sutradhar.ops.redis_client import connect_redis
from sutradhar.ops.shared_state import (
    BreakerStateStore,
    BreakerSync,
    IvrLanguageMap,
    SharedState,
)


@dataclass
class Call:
    """The live-call shape the registry reads (a CallSession gives the same strings)."""

    call_id: str
    transport: str = "twilio"

    def live_info(self) -> dict[str, str]:
        return {"transport": self.transport, "language": "en-IN", "state": "listening"}


def registry(redis=None, **kw) -> LiveCalls:
    return LiveCalls(limit=100, telemetry=Telemetry(), redis=redis, **kw)


@dataclass
class Engine:
    name: str

    def supports(self, language):
        return True

    async def aclose(self):
        pass


@pytest.fixture
async def redis(redis_url):
    client = connect_redis(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


async def test_in_process_defaults_work_without_redis():
    ivr = IvrLanguageMap()
    await ivr.set("CA1", "te-IN")
    assert await ivr.get("CA1") == "te-IN" and await ivr.get("CA2") is None
    calls = registry()
    calls.register(Call("c1"))
    calls.register(Call("c2", "exotel"))
    calls.unregister("c1")
    assert await calls.count_all() == 1 and [c["call_id"] for c in await calls.list_all()] == ["c2"]
    assert (await calls.list_all())[0]["transport"] == "exotel"
    breakers = BreakerStateStore()
    await breakers.set("stt", "sarvam", "open")
    assert (await breakers.get("stt", "sarvam")).state == "open"


async def test_ivr_language_chosen_on_one_worker_is_read_on_another(redis):
    webhook_worker, media_worker = IvrLanguageMap(redis), IvrLanguageMap(redis)
    await webhook_worker.set("CA-ivr", "gu-IN")
    assert await media_worker.get("CA-ivr") == "gu-IN"
    assert 0 < await redis.ttl("sutradhar:ivr:CA-ivr") <= 3600


async def test_live_calls_are_counted_across_workers_and_a_dead_worker_expires(redis):
    a = registry(redis, worker="a", stale_s=0.5)
    b = registry(redis, worker="b", stale_s=0.5)
    a.register(Call("call-a1"))
    a.register(Call("call-a2"))
    b.register(Call("call-b1", "plivo"))
    await asyncio.sleep(0.05)  # mirroring into Redis is fire-and-forget
    assert await a.count_all() == 3 and await b.count_all() == 3
    assert {c["worker"] for c in await b.list_all()} == {"a", "b"}
    assert {c["call_id"]: c["transport"] for c in await a.list_all()}["call-b1"] == "plivo"
    a.unregister("call-a2")
    await asyncio.sleep(0.05)
    assert await b.count_all() == 2
    await asyncio.sleep(0.7)
    await b.heartbeat()  # b is alive, a stopped beating
    assert [c["call_id"] for c in await b.list_all()] == ["call-b1"]


@dataclass
class SummedCall(Call):
    def summary(self) -> dict:
        return {"call_id": self.call_id, "turns": [{"text": "where is my order", "v2v_ms": 612.5}]}


async def test_a_calls_whole_summary_comes_from_its_own_worker_through_redis(redis):
    a, b = registry(redis, worker="a"), registry(redis, worker="b")
    await a.start()
    await b.start()
    try:
        a.register(SummedCall("call-a1"))
        for _ in range(100):  # a's listener subscribes, its call is mirrored (fire-and-forget)
            if (await redis.pubsub_numsub("sutradhar:summary:a"))[0][1] and await b.find_elsewhere("call-a1"):
                break
            await asyncio.sleep(0.05)
        assert (await b.find_elsewhere("call-a1"))["worker"] == "a"
        assert await b.summary_elsewhere("call-a1", "a") == SummedCall("call-a1").summary()
        assert await b.summary_elsewhere("call-ended", "a") is None  # a answers: not live here
        assert await b.summary_elsewhere("call-a1", "nobody") is None  # no such worker listens
        # a worker that listens but does not answer: the asker gives up after SUMMARY_WAIT_S
        silent = redis.pubsub()
        await silent.subscribe("sutradhar:summary:silent")
        while not (await redis.pubsub_numsub("sutradhar:summary:silent"))[0][1]:
            await asyncio.sleep(0.02)
        started = time.monotonic()
        assert await b.summary_elsewhere("call-a1", "silent") is None
        assert SUMMARY_WAIT_S - 0.05 <= time.monotonic() - started < SUMMARY_WAIT_S + 2.0
        await silent.aclose()
        assert not await redis.keys("sutradhar:summary-reply:*") or all(
            0 < await redis.ttl(k) <= 10 for k in await redis.keys("sutradhar:summary-reply:*"))
    finally:
        await a.aclose()
        await b.aclose()
    assert await b.summary_elsewhere("call-a1", "a") is None  # a stopped listening


async def test_redis_going_away_falls_back_to_this_workers_copy(redis_url):
    client = connect_redis("redis://127.0.0.1:1/0")  # nothing listens on port 1
    state = SharedState(client)
    await state.languages.set("CA", "hi-IN")
    assert await state.languages.get("CA") == "hi-IN"
    calls = registry(client)
    calls.register(Call("c"))
    assert await calls.count_all() == 1
    with pytest.raises(Exception):
        await state.ping()
    await calls.aclose()
    await state.aclose()


def router(*names: str) -> TaskRouter:
    return TaskRouter([Engine(n) for n in names], policies={"stt": StagePolicy(failure_threshold=1,
                                                                                reset_timeout=30.0)})


async def test_a_breaker_opened_on_one_worker_opens_on_the_others(redis):
    first, second = router("sarvam", "local"), router("sarvam", "local")
    sync_a = BreakerSync(first, BreakerStateStore(redis, worker="a"))
    sync_b = BreakerSync(second, BreakerStateStore(redis, worker="b"))
    first.listeners.append(sync_a)
    second.listeners.append(sync_b)

    first.chains["stt"][0].breaker.record_failure()  # worker a finds Sarvam down
    await asyncio.sleep(0.05)  # the publish task
    assert await sync_b.sync_once() == 1
    assert second.chains["stt"][0].breaker.state is BreakerState.OPEN
    assert second.chains["stt"][1].breaker.state is BreakerState.CLOSED
    shared = await BreakerStateStore(redis).get("stt", "sarvam")
    assert shared.state == "open" and shared.worker == "a" and shared.opened_at is not None
    assert await sync_b.sync_once() == 0  # nothing new; adopting did not echo back

    second.chains["stt"][0].breaker.force(BreakerState.CLOSED)  # b's trial call succeeded
    await asyncio.sleep(0.05)
    assert await sync_a.sync_once() == 1
    assert first.chains["stt"][0].breaker.state is BreakerState.CLOSED
