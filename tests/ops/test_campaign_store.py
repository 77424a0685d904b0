"""CampaignStore on a real SQLite call store: claims under concurrency, settling from the call
record, the dead-worker rule, the do-not-call list and calling hours at claim time."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from sutradhar.campaigns.spec import CampaignSpec, ContactSpec
from sutradhar.campaigns.store import CampaignStore, Rules
from sutradhar.store import CallStore
from sutradhar.store.calls import utcnow
from sutradhar.store.workers import WorkerLedger

ALWAYS = Rules(concurrency=3, max_attempts=2, retry_delay_s=60, retry_backoff=2.0,
               calling_hours="00:00-24:00", timezone="Asia/Kolkata")


def spec(count: int, **contact: object) -> CampaignSpec:
    return CampaignSpec(contacts=[ContactSpec(number=f"+9198765{n:05d}", **contact) for n in range(count)])


@pytest.fixture
async def calls(tmp_path):
    store = CallStore(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}", worker_id="host:1")
    await store.start()
    yield store
    await store.aclose()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_concurrent_claims_never_win_a_contact_twice_nor_exceed_the_limit(database, request,
                                                                                 tmp_path) -> None:
    url = (request.getfixturevalue("postgres_url") if database == "postgresql"
           else f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}")
    # Two processes on one database: each its own engine and connections.
    stores = [CallStore(url, worker_id=f"host:{n}") for n in (1, 2)]
    for store in stores:
        await store.start()
    try:
        runners = [CampaignStore(store) for store in stores]
        campaign_id = await runners[0].create(spec(20), ALWAYS, "twilio", None)
        won: list = []
        for _ in range(3):  # rounds: later ones find the slots taken
            claims = await asyncio.gather(*(r.claim(campaign_id) for r in runners * 10))
            won += [c for c in claims if c is not None]
        counts = (await runners[0].get(campaign_id))["counts"]
    finally:
        for store in stores:
            await store.aclose()
    assert len(won) == ALWAYS.concurrency  # every slot filled, none twice
    assert len({c.contact_id for c in won}) == len(won)
    assert counts == {"dialing": len(won), "pending": 20 - len(won)}


async def test_a_busy_call_is_retried_after_the_backoff_and_an_answered_one_completes(calls) -> None:
    campaigns = CampaignStore(calls)
    campaign_id = await campaigns.create(spec(2), ALWAYS, "twilio", None)
    first, second = await campaigns.claim(campaign_id), await campaigns.claim(campaign_id)
    for claim, sid in ((first, "CAbusy"), (second, "CAanswered")):
        await calls.write_call_placed(sid, {"carrier": "twilio", "to_number": claim.number})
        await campaigns.placed(claim, sid)
    await calls.write_carrier_status("CAbusy", "busy", {})
    await calls.write_carrier_status("CAanswered", "in-progress", {})
    settled = await campaigns.settle(campaign_id, call_timeout_s=3600, dead_after_s=20)
    assert sorted(settled) == [(1, "dialing", "busy"), (2, "dialing", "answered")]
    assert await campaigns.claim(campaign_id) is None  # the busy one waits for its retry
    later = utcnow() + timedelta(seconds=61)
    retry = await campaigns.claim(campaign_id, now=later)
    assert retry is not None and retry.contact_id == first.contact_id and retry.attempt == 2
    await calls.write_carrier_status("CAanswered", "completed", {})
    await calls.write_call_placed("CAbusy2", {"carrier": "twilio"})
    await campaigns.placed(retry, "CAbusy2")
    await calls.write_carrier_status("CAbusy2", "no-answer", {})
    await campaigns.settle(campaign_id, call_timeout_s=3600, dead_after_s=20)
    campaign = await campaigns.get(campaign_id)
    # Two attempts were all it had: no_answer is final, and the campaign is done.
    assert campaign["counts"] == {"completed": 1, "no_answer": 1} and campaign["retrying"] == 0
    assert await campaigns.finish_if_done(campaign_id)
    assert (await campaigns.get(campaign_id))["status"] == "completed" and campaign["dials"] == 3


async def test_a_dead_workers_claim_without_a_call_id_is_unknown_never_redialled(calls) -> None:
    dead = CampaignStore(calls, worker_id="host:dead")
    campaign_id = await dead.create(spec(1), ALWAYS, "twilio", None)
    assert await dead.claim(campaign_id) is not None  # killed before the carrier answered
    alive = CampaignStore(calls, worker_id="host:1")
    assert await alive.settle(campaign_id, call_timeout_s=3600, dead_after_s=20) == [(1, "dialing", "unknown")]
    assert await alive.claim(campaign_id, now=utcnow() + timedelta(days=2)) is None
    assert await alive.finish_if_done(campaign_id)


async def test_a_claim_left_by_a_predecessor_with_the_same_worker_id_is_unknown(calls) -> None:
    campaigns = CampaignStore(calls, worker_id="host:1")  # a restart that got the same pid
    campaign_id = await campaigns.create(spec(2), ALWAYS, "twilio", None)
    old, ours = await campaigns.claim(campaign_id), await campaigns.claim(campaign_id)
    ledger = WorkerLedger(calls, "host:1")  # this process, alive and beating
    await ledger.start()
    try:
        settled = await campaigns.settle(campaign_id, call_timeout_s=3600, dead_after_s=20,
                                         dialing_here={ours.contact_id})
    finally:
        await ledger.aclose()
    assert settled == [(old.seq, "dialing", "unknown")]


async def test_a_dialled_number_whose_carrier_never_reports_is_unknown_after_the_timeout(calls) -> None:
    campaigns = CampaignStore(calls)
    campaign_id = await campaigns.create(spec(1), ALWAYS, "twilio", None)
    claim = await campaigns.claim(campaign_id)
    await calls.write_call_placed("CAsilent", {"carrier": "twilio"})
    await calls.write_carrier_status("CAsilent", "ringing", {})
    await campaigns.placed(claim, "CAsilent")
    assert await campaigns.settle(campaign_id, call_timeout_s=60, dead_after_s=20) == []
    later = utcnow() + timedelta(seconds=61)
    assert await campaigns.settle(campaign_id, call_timeout_s=60, dead_after_s=20, now=later) == [
        (1, "dialing", "unknown")]


async def test_numbers_on_the_do_not_call_list_are_skipped_at_creation_and_before_dialling(calls) -> None:
    campaigns = CampaignStore(calls)
    await campaigns.add_dnc(["+919876500000"], "asked")
    campaign_id = await campaigns.create(spec(3), ALWAYS, "twilio", None)
    assert (await campaigns.get(campaign_id))["counts"] == {"pending": 2, "skipped_dnc": 1}
    await campaigns.add_dnc(["+919876500001"])  # listed after the campaign was created
    claim = await campaigns.claim(campaign_id)
    assert claim is not None and claim.number == "+919876500002"
    assert (await campaigns.get(campaign_id))["counts"] == {"dialing": 1, "skipped_dnc": 2}


async def test_a_number_outside_its_calling_hours_waits_for_them_to_open(calls) -> None:
    campaigns = CampaignStore(calls)
    rules = Rules(**{**ALWAYS.__dict__, "calling_hours": "09:00-21:00"})
    campaign_id = await campaigns.create(spec(1, timezone="Asia/Dubai"), rules, "twilio", None)
    # Tomorrow (a contact is due from its creation, so the night must come after it) at 19:00 UTC:
    # 23:00 in Dubai, 00:30 in India.
    night = (datetime.now(timezone.utc) + timedelta(days=1)).replace(hour=19, minute=0, second=0, microsecond=0)
    assert await campaigns.claim(campaign_id, now=night) is None
    (contact,) = await campaigns.contacts(campaign_id)
    opens = (night + timedelta(hours=10)).isoformat()  # 09:00 in Dubai the next morning
    assert contact["status"] == "pending" and contact["next_attempt_at"] == opens
    assert await campaigns.claim(campaign_id, now=night + timedelta(hours=9, minutes=59)) is None
    assert await campaigns.claim(campaign_id, now=night + timedelta(hours=10)) is not None


async def test_a_paused_campaign_dials_nobody_until_resumed(calls) -> None:
    campaigns = CampaignStore(calls)
    campaign_id = await campaigns.create(spec(1), ALWAYS, "twilio", None)
    assert await campaigns.set_status(campaign_id, "paused", ("running",))
    assert await campaigns.claim(campaign_id) is None
    assert not await campaigns.set_status(campaign_id, "paused", ("running",))
    assert await campaigns.set_status(campaign_id, "running", ("paused",))
    assert await campaigns.claim(campaign_id) is not None


async def test_a_plivo_contact_follows_its_call_to_the_answered_id(calls) -> None:
    campaigns = CampaignStore(calls)
    campaign_id = await campaigns.create(
        CampaignSpec(contacts=[ContactSpec(number="+919876500000", variables={"name": "Asha"})],
                     prompts={"en-IN": {"greeting": "Hello {name}"}}), ALWAYS, "plivo", None)
    claim = await campaigns.claim(campaign_id)
    await calls.write_call_placed("request-uuid", {"carrier": "plivo"})
    await campaigns.placed(claim, "request-uuid")
    await calls.write_call_answered("request-uuid", "call-uuid")
    script = await campaigns.script_for(["call-uuid"])
    assert script is not None and script.variables == {"name": "Asha"}
    assert script.greetings == {"en-IN": "Hello {name}"}
    assert await campaigns.script_for(["request-uuid"]) is None
