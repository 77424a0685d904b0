"""WorkerLedger against a real SQLite store: who is dead, whose calls get closed, and how."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from sutradhar.store import CallStore
from sutradhar.store.calls import to_datetime, utcnow
from sutradhar.store.schema import WorkerRow
from sutradhar.store.workers import WorkerLedger


@pytest.fixture
async def url(tmp_path):
    return f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"


async def worker(url: str, name: str, **kwargs) -> tuple[CallStore, WorkerLedger]:
    store = CallStore(url, worker_id=name)
    await store.start()
    ledger = WorkerLedger(store, name, heartbeat_s=3600, **kwargs)  # beats only when the test says
    await ledger.start()
    return store, ledger


async def a_call(store: CallStore, call_id: str, reply: str = "One. Two. Three.", heard: str | None = None) -> None:
    await store.call_started(call_id, {"transport": "twilio", "language": "hi-IN"})
    await store.turn_completed(call_id, {"turn_id": 1, "text": "hi", "reply": reply, "heard": heard,
                                         "playing": heard is not None})
    await store.flush()


async def silence(store: CallStore, name: str, seconds: float) -> None:
    """Make `name`'s last heartbeat `seconds` old (as if it died then)."""
    async with store._session() as session, session.begin():
        await session.execute(update(WorkerRow).where(WorkerRow.id == name)
                              .values(heartbeat_at=utcnow() - timedelta(seconds=seconds)))


async def test_a_dead_workers_calls_are_closed_once_with_what_was_heard(url):
    dead_store, dead = await worker(url, "host:1")
    await a_call(dead_store, "CA1", heard="One.")
    await a_call(dead_store, "CA2")  # its reply had been heard in full
    await dead._periodic.stop()  # killed: no more beats, no clean stop
    await dead_store.aclose()

    store_a, a = await worker(url, "host:2", dead_after_s=5)
    store_b, b = await worker(url, "host:3", dead_after_s=5)
    assert await a.recover() == [] and (await store_a.get_call("CA1"))["status"] == "active"  # not yet dead

    await silence(store_a, "host:1", 10)
    first, second = await a.beat(), await b.beat()
    assert [r.calls for r in first] == [["CA1", "CA2"]] or [r.calls for r in first] == [["CA2", "CA1"]]
    assert second == []  # two workers noticing together close each call once

    call = await store_b.get_call("CA1")
    assert (call["status"], call["end_reason"]) == ("failed", "server_lost")
    assert call["summary"]["end_estimated"] is True and call["summary"]["closed_by"] == "host:2"
    assert to_datetime(call["ended_at"]) >= to_datetime(call["turns"][0]["created_at"])
    (turn,) = call["turns"]
    assert (turn["heard"], turn["interrupted"], turn["playing"]) == ("One.", True, False)
    (full,) = (await store_b.get_call("CA2"))["turns"]
    assert (full["heard"], full["interrupted"]) == (None, False)
    alive = {w["worker"] for w in await a.alive()}
    assert alive == {"host:2", "host:3"}
    for store, ledger in ((store_a, a), (store_b, b)):
        await ledger.aclose()
        await store.aclose()


async def test_a_live_peer_and_its_calls_are_left_alone(url):
    store_a, a = await worker(url, "host:10", dead_after_s=5)
    await a_call(store_a, "CAlive", heard="")
    store_b, b = await worker(url, "host:11", dead_after_s=5)  # starts while host:10 beats
    assert await b.beat() == []
    assert (await store_b.get_call("CAlive"))["status"] == "active"
    for store, ledger in ((store_a, a), (store_b, b)):
        await ledger.aclose()
        await store.aclose()


async def test_a_restart_with_the_same_identity_closes_its_predecessors_calls_at_once(url):
    store, ledger = await worker(url, "host:20", dead_after_s=60)
    await a_call(store, "CAold", heard="One. Two.")
    await ledger._periodic.stop()  # kill -9, then the new process happens to get the same pid
    await store.aclose()
    store, ledger = await worker(url, "host:20", dead_after_s=60)
    call = await store.get_call("CAold")
    assert call["end_reason"] == "server_lost" and call["turns"][0]["heard"] == "One. Two."
    await ledger.aclose()
    await store.aclose()


async def test_calls_recorded_before_workers_had_identities_are_closed_at_start(url):
    legacy = CallStore(url)  # an older version's store: calls without an owner
    await legacy.start()
    await a_call(legacy, "CAlegacy")
    await legacy.aclose()
    store, ledger = await worker(url, "host:30")
    assert (await store.get_call("CAlegacy"))["end_reason"] == "server_lost"
    await a_call(store, "CAmine")  # this worker's own call is not touched by its next beat
    await ledger.beat()
    assert (await store.get_call("CAmine"))["status"] == "active"
    await ledger.aclose()
    await store.aclose()
