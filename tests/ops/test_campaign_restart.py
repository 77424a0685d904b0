"""A campaign survives kill -9: the real server process (tests.support.scripted_process) dials
through the strict Twilio REST fake, is killed with one call ringing and one create request
unanswered, restarts on the same data directory and port, and finishes the campaign with no number
dialled more often than its script says (the fake counts every Calls.json POST per number)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.twilio_rest import FakeTwilioRest
from tests.support.callees import Callees
from tests.support.server import free_port

from .test_lifecycle import rows, start_server

pytestmark = pytest.mark.slow
ADMIN_TOKEN = "admin-secret"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
RING, HOLD = "+919800000004", "+919800000003"
# Dialled in list order, two at a time: 1 busy, 2 answered, 3 and 4 then fill both slots (3's create
# request never answered, 4 ringing) and the server is killed there.
SCRIPT = {
    "+919800000001": ["busy", "answered"],
    "+919800000002": ["answered"],
    HOLD: ["hold"],
    RING: ["ring", "answered"],  # busy, reported to the restarted server: dialled again
    "+919800000005": ["no-answer", "answered"],
    "+919800000006": ["answered"],
}


async def eventually(check: Any, timeout_s: float = 30.0) -> Any:
    """Poll another process's state (no event crosses the process boundary)."""
    deadline = time.monotonic() + timeout_s
    while not (result := await check()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)
    return result


async def test_a_campaign_killed_mid_way_resumes_and_dials_nobody_twice(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with FakeTwilioRest() as twilio:
        env = dict(ADMIN_TOKEN=ADMIN_TOKEN, PUBLIC_URL=base, TWILIO_ACCOUNT_SID=twilio.account_sid,
                   TWILIO_AUTH_TOKEN=twilio.auth_token, TWILIO_API_BASE=twilio.base_url,
                   TWILIO_FROM_NUMBER="+918000000001", CAMPAIGN_POLL_S="0.2")
        callees = Callees(twilio, SCRIPT)
        playing = asyncio.create_task(callees.run())
        first = await asyncio.to_thread(start_server, tmp_path, port, tmp_path / "first.log", **env)
        try:
            async with httpx.AsyncClient(base_url=base, headers=ADMIN, timeout=20) as client:
                created = await client.post("/campaigns", json={
                    "contacts": [{"number": n} for n in SCRIPT], "concurrency": 2, "max_attempts": 3,
                    "retry_delay_s": 0.2, "calling_hours": "00:00-24:00"})
                assert created.status_code == 201, created.text
                campaign_id = created.json()["id"]

                async def stuck() -> bool:  # both slots held: nothing can move until the kill
                    contacts = {c["number"]: c for c in (await client.get(
                        f"/campaigns/{campaign_id}?contacts=true")).json()["contacts"]}
                    return (RING in callees.ringing and contacts[RING]["call_id"] is not None
                            and contacts[HOLD]["status"] == "dialing")

                await eventually(stuck)
        finally:
            first.send_signal(signal.SIGKILL)
            await asyncio.to_thread(first.wait, 10)
        before = Counter(call.one("To") for call in twilio.placed)

        second = await asyncio.to_thread(start_server, tmp_path, port, tmp_path / "second.log", **env)
        try:
            async with httpx.AsyncClient(base_url=base, headers=ADMIN, timeout=20) as client:
                await callees.finish(RING, "busy")  # the ringing call's end reaches the new process

                async def completed() -> dict[str, Any] | None:
                    campaign = (await client.get(f"/campaigns/{campaign_id}?contacts=true")).json()
                    return campaign if campaign["status"] == "completed" else None

                campaign = await eventually(completed)
        finally:
            second.send_signal(signal.SIGTERM)
            await asyncio.to_thread(second.wait, 30)
            playing.cancel()
            twilio.release.set()
    assert before == {"+919800000001": 1, "+919800000002": 1, HOLD: 1, RING: 1}
    after = Counter(call.one("To") for call in twilio.placed)
    assert after == {"+919800000001": 2, "+919800000002": 1, HOLD: 1, RING: 2, "+919800000005": 2,
                     "+919800000006": 1}
    assert not callees.errors
    assert campaign["counts"] == {"completed": 5, "unknown": 1}
    by_number = {c["number"]: c for c in campaign["contacts"]}
    # Killed between the claim and Twilio's answer: the call may have been placed, so never again.
    assert by_number[HOLD]["status"] == "unknown" and by_number[HOLD]["attempts"] == 1
    assert by_number[RING]["status"] == "completed" and by_number[RING]["attempts"] == 2
    assert [w["status"] for w in rows(tmp_path, "SELECT * FROM workers")].count("lost") == 1
    log = (tmp_path / "second.log").read_text()
    assert f"campaign {campaign_id} contact 3 dialing -> unknown" in log
    assert f"campaign {campaign_id} completed" in log
