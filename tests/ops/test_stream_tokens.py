"""Stream tokens: single use, bound to a call, expiring; shared by every worker through Redis."""

from __future__ import annotations

import asyncio

import pytest

from sutradhar.ops.redis_client import connect_redis
from sutradhar.ops.stream_tokens import StreamGrant, StreamTokens


async def test_a_token_is_spent_once_in_process() -> None:
    tokens = StreamTokens()
    token = await tokens.issue("twilio", "CA1")
    assert token.isalnum() and len(token) == 32  # Plivo's extraHeaders allow [A-Za-z0-9] only
    assert await tokens.spend(token) == StreamGrant("twilio", "CA1")
    assert await tokens.spend(token) is None
    assert await tokens.spend("0" * 32) is None and await tokens.spend("") is None


async def test_an_expired_token_is_refused() -> None:
    tokens = StreamTokens(ttl_s=0.05)
    token = await tokens.issue("plivo", "uuid-1")
    await asyncio.sleep(0.1)  # the TTL itself is under test: there is no event to wait for
    assert await tokens.spend(token) is None


async def test_the_in_process_store_stays_bounded_under_a_webhook_flood() -> None:
    tokens = StreamTokens(limit=100)
    first = await tokens.issue("twilio", "CA0")
    for n in range(1, 500):
        await tokens.issue("twilio", f"CA{n}")
    assert len(tokens._local) <= 100
    assert await tokens.spend(first) is None  # the oldest made room


@pytest.fixture
async def two_workers(redis_url):
    clients = [connect_redis(redis_url), connect_redis(redis_url)]
    await clients[0].flushdb()
    yield StreamTokens(clients[0]), StreamTokens(clients[1])
    for client in clients:
        await client.aclose()


async def test_a_token_issued_by_one_worker_is_accepted_once_by_another(two_workers) -> None:
    a, b = two_workers
    token = await a.issue("twilio", "CAshared")
    assert await b.spend(token) == StreamGrant("twilio", "CAshared")
    # Neither worker takes it again, not even the one that issued it and still holds a copy.
    assert await a.spend(token) is None and await b.spend(token) is None


async def test_racing_workers_spend_a_token_exactly_once(two_workers) -> None:
    a, b = two_workers
    token = await a.issue("exotel", "CArace")
    results = await asyncio.gather(*(worker.spend(token) for worker in (a, b, a, b)))
    assert [r for r in results if r is not None] == [StreamGrant("exotel", "CArace")]


async def test_with_redis_down_the_issuing_worker_still_admits_its_own_stream() -> None:
    tokens = StreamTokens(connect_redis("redis://127.0.0.1:9/0"))  # nothing listens on port 9
    token = await tokens.issue("twilio", "CAlocal")
    assert await tokens.spend(token) == StreamGrant("twilio", "CAlocal")
    assert await tokens.spend(token) is None
    await tokens.redis.aclose()
