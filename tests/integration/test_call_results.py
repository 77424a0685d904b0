"""Post-call results: made after the call without holding up its end, stored with the call record,
and sent to the agent's webhook signed with HMAC-SHA256; a webhook that is down is retried with
backoff from the stored pending row, also by the next process after a restart."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections import deque

from sutradhar.agents.result_delivery import SIGNATURE_HEADER, CallResults
from sutradhar.agents.results import CallTranscript, ResultsSpec
from sutradhar.ops.prometheus import Telemetry
from sutradhar.store import CallStore
from tests.support.results_webhook import ResultsReceiver

SECRET = "s3cret-for-tests"


def spec(url: str) -> ResultsSpec:
    return ResultsSpec.model_validate({"summary": True,
                                       "extract": {"schema": {"order_id": "str", "resolved": "bool"}},
                                       "webhook": {"url": url, "secret_env": "RESULTS_SECRET"}})


def transcript(call_id: str = "call-r1") -> CallTranscript:
    turns = [{"text": "where is order 4567", "reply": "Order 4567 has been shipped.",
              "tool_calls": [{"name": "order_status", "error": None}]}]
    return CallTranscript(call_id, "en-IN", "hangup", turns, {"order_id": "4567", "status": "shipped"})


def signed(headers: dict[str, str], body: bytes) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get(SIGNATURE_HEADER, ""), expected)


async def open_store(tmp_path) -> CallStore:
    store = CallStore(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}")
    await store.start()
    return store


async def test_a_failing_webhook_is_retried_with_backoff_until_it_answers(tmp_path) -> None:
    async with ResultsReceiver(deque([500, 503])) as receiver:
        store = await open_store(tmp_path)
        telemetry = Telemetry()
        results = CallResults(spec(receiver.url), "order-status", None, store, retry_interval_s=0.02,
                              backoff_s=0.01, secret=SECRET, telemetry=telemetry)
        results.start()
        results.submit(transcript())
        await asyncio.wait_for(receiver.delivered.wait(), 10)
        await results.aclose()
        stored = await store.get_call("call-r1")
        await store.aclose()
    assert len(receiver.requests) == 3
    assert [h["X-Sutradhar-Attempt"] for h, _ in receiver.requests] == ["1", "2", "3"]
    assert all(signed(h, body) for h, body in receiver.requests)
    bodies = {body for _, body in receiver.requests}
    assert len(bodies) == 1  # every attempt sends the same results
    payload = json.loads(bodies.pop())
    assert payload["extracted"] == {"order_id": "4567", "resolved": None}  # what the call established
    assert payload["source"] == "slots" and "order_status" in payload["summary"]
    webhook = stored["results"]["webhook"]
    assert (webhook["delivery"], webhook["attempts"], webhook["last_error"]) == ("sent", 3, None)
    assert stored["results"]["extracted"] == payload["extracted"]
    assert [telemetry.value("sutradhar_results_webhook_total", outcome=o) for o in ("retry", "sent")] == [2, 1]


async def test_a_wrong_secret_is_caught_by_the_receivers_check(tmp_path) -> None:
    async with ResultsReceiver() as receiver:
        results = CallResults(spec(receiver.url), "a", None, None, secret="another-secret")
        results.submit(transcript())
        await asyncio.wait_for(receiver.delivered.wait(), 10)
        await results.aclose()
    [(headers, body)] = receiver.requests
    assert headers[SIGNATURE_HEADER].startswith("sha256=") and not signed(headers, body)


async def test_pending_results_survive_a_restart_and_the_next_process_sends_them(tmp_path) -> None:
    async with ResultsReceiver(deque([503])) as receiver:
        store = await open_store(tmp_path)
        # The first process tries once (its periodic retry is an hour away) and stops.
        first = CallResults(spec(receiver.url), "order-status", None, store, retry_interval_s=3600,
                            backoff_s=0.01, secret=SECRET)
        first.start()
        first.submit(transcript("call-restart"))
        await first.drain()
        await first.aclose()
        pending = (await store.get_call("call-restart"))["results"]["webhook"]
        await store.aclose()
        assert (pending["delivery"], pending["attempts"], pending["last_error"]) == ("pending", 1, "HTTP 503")
        assert not receiver.delivered.is_set()

        store = await open_store(tmp_path)  # a new process on the same database
        second = CallResults(spec(receiver.url), "order-status", None, store, retry_interval_s=0.05,
                             backoff_s=0.01, secret=SECRET)
        second.start()
        await asyncio.wait_for(receiver.delivered.wait(), 10)
        await second.aclose()
        sent = (await store.get_call("call-restart"))["results"]["webhook"]
        await store.aclose()
    assert (sent["delivery"], sent["attempts"]) == ("sent", 2)
    assert [json.loads(b)["call_id"] for _, b in receiver.requests] == ["call-restart"] * 2
    assert all(signed(h, b) for h, b in receiver.requests)


async def test_after_the_last_attempt_the_row_is_failed_but_kept(tmp_path) -> None:
    async with ResultsReceiver(deque([500] * 10)) as receiver:
        store = await open_store(tmp_path)
        results = CallResults(spec(receiver.url), "a", None, store, retry_interval_s=0.02,
                              backoff_s=0.01, max_attempts=2, secret=SECRET)
        results.start()
        results.submit(transcript("call-failed"))
        await receiver.wait_for_requests(2)
        await results.aclose()  # waits for the second attempt to be recorded
        stored = await store.get_call("call-failed")
        await store.aclose()
    assert stored["results"]["webhook"]["delivery"] == "failed"
    assert stored["results"]["webhook"]["attempts"] == 2 and len(receiver.requests) == 2
    assert stored["results"]["summary"]  # the results themselves are not lost
