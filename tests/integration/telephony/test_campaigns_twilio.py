"""A campaign end to end on Twilio: `sutradhar campaign run FILE` creates it on the real server, the
runner dials through the official SDK against the strict Twilio REST fake, the fake answers each
call as scripted (busy, no-answer, failed, answered) with signed status callbacks, and busy and
unanswered numbers are dialled again until answered or out of attempts."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from sutradhar.cli import campaign as campaign_cli
from sutradhar.testing.scripted import ScriptedSTT, ScriptedTTS
from tests.fakes.twilio_rest import FakeTwilioRest
from tests.support.callees import Callees
from tests.support.server import free_port, live_server, make_settings, scripted_engines

ADMIN_TOKEN = "admin-secret"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FROM = "+918000000001"
CONCURRENCY = 2
# What the callee does on each attempt; "talk": answers and speaks to the agent over the stream.
SCRIPT = {
    "+919800000001": ["busy", "answered"],
    "+919800000002": ["no-answer", "no-answer", "answered"],
    "+919800000003": ["talk"],
    "+919800000004": ["failed", "answered"],
    "+919800000005": ["busy", "busy", "busy"],  # three attempts, all busy: given up
    "+919800000006": ["answered"],
}
CSV = """number,name,due_amount
+91 98000 00001,Ravi,500
+919800000002,Meena,750
+919800000003,Asha,1200
+919800000004,Kiran,300
+919800000005,Farah,900
+919800000006,John,100
"""
AGENT = """name: collections
languages: [en-IN]
prompts:
  en-IN:
    greeting: Hello {name}. Your payment of {due_amount} rupees is due.
    system: You remind {name} politely about {due_amount} rupees.
"""


@pytest.fixture
async def twilio() -> Any:
    async with FakeTwilioRest() as fake:
        yield fake


async def test_a_campaign_retries_busy_and_unanswered_numbers_until_done(twilio, tmp_path: Path, capsys) -> None:
    port = free_port()
    settings = make_settings(public_url=f"http://127.0.0.1:{port}", port=port, data_dir=tmp_path,
                             admin_token=ADMIN_TOKEN, twilio_account_sid=twilio.account_sid,
                             twilio_auth_token=twilio.auth_token, twilio_api_base=twilio.base_url,
                             twilio_from_number=FROM, languages=["en-IN"], default_language="en-IN",
                             campaign_poll_s=0.2)
    tts = ScriptedTTS(ms_per_char=5, chunk_ms=100)
    (tmp_path / "numbers.csv").write_text(CSV)
    (tmp_path / "agent.yaml").write_text(AGENT)
    with live_server(settings, scripted_engines(ScriptedSTT(script=("yes I will pay on friday",)), tts=tts)) as srv:
        callees = Callees(twilio, SCRIPT, base_url=srv.url, admin_token=ADMIN_TOKEN)
        playing = asyncio.create_task(callees.run())
        try:
            # The CLI follows until the campaign completes (its thread ends with the server otherwise).
            code = await asyncio.wait_for(asyncio.to_thread(campaign_cli.main, [
                "run", str(tmp_path / "numbers.csv"), "--url", srv.url, "--admin-token", ADMIN_TOKEN,
                "--concurrency", str(CONCURRENCY), "--agent", str(tmp_path / "agent.yaml"),
                "--max-attempts", "3", "--retry-delay", "0.1", "--hours", "00:00-24:00", "--poll", "0.2"]), 90)
        finally:
            playing.cancel()
        out = capsys.readouterr().out
        campaign_id = out.split()[1].rstrip(":")
        async with httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
            campaign = (await client.get(f"/campaigns/{campaign_id}?contacts=true", headers=ADMIN)).json()
            (talk,) = callees.talked
            record = (await client.get(f"/calls/{talk.call_id}", headers=ADMIN)).json()
    assert code == 0, out
    assert campaign["status"] == "completed" and campaign["counts"] == {"busy": 1, "completed": 5}
    assert "6/6 done" in out and "\r[" in out  # the progress line, redrawn in place
    # Each number was dialled exactly as often as its script has attempts, never more.
    assert Counter(call.one("To") for call in twilio.placed) == {n: len(s) for n, s in SCRIPT.items()}
    assert campaign["dials"] == sum(len(s) for s in SCRIPT.values())
    assert callees.most_open <= CONCURRENCY and not callees.errors
    by_number = {c["number"]: c for c in campaign["contacts"]}
    assert by_number["+919800000005"]["attempts"] == 3 and by_number["+919800000005"]["next_attempt_at"] is None
    assert by_number["+919800000002"]["attempts"] == 3 and by_number["+919800000002"]["status"] == "completed"
    # The answered caller heard their own name and amount, and the LLM was prompted with them.
    assert tts.calls[0] == ("Hello Asha.", "en-IN")
    assert ("Your payment of 1200 rupees is due.", "en-IN") in tts.calls
    assert record["summary"]["context"][0]["content"].startswith("Hello Asha.")
    assert record["turn_count"] == 1


async def test_a_campaign_is_refused_when_the_carrier_is_not_configured(tmp_path: Path) -> None:
    settings = make_settings(data_dir=tmp_path, admin_token=ADMIN_TOKEN)
    with live_server(settings, scripted_engines()) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
            body = {"contacts": [{"number": "+919800000001"}]}
            no_token = await client.post("/campaigns", json=body)
            refused = await client.post("/campaigns", json=body, headers=ADMIN)
            twice = await client.post("/campaigns", headers=ADMIN,
                                      json={"contacts": [{"number": "+919800000001"}, {"number": "+91 98000 00001"}]})
            missing = await client.get("/campaigns/cmp_nope", headers=ADMIN)
    assert no_token.status_code == 401
    assert refused.status_code == 422 and "TWILIO_ACCOUNT_SID" in refused.json()["detail"]
    assert twice.status_code == 422 and "also contact 1" in twice.text
    assert missing.status_code == 404


async def test_a_paused_campaign_dials_nobody_until_resumed_and_skips_do_not_call_numbers(
        twilio, tmp_path: Path, capsys) -> None:
    port = free_port()
    settings = make_settings(public_url=f"http://127.0.0.1:{port}", port=port, data_dir=tmp_path,
                             admin_token=ADMIN_TOKEN, twilio_account_sid=twilio.account_sid,
                             twilio_auth_token=twilio.auth_token, twilio_api_base=twilio.base_url,
                             twilio_from_number=FROM, campaign_poll_s=0.2)
    first, listed, last = "+919800000001", "+919800000002", "+919800000003"
    callees = Callees(twilio, {first: ["ring"], last: ["answered"]})
    with live_server(settings, scripted_engines()) as srv:
        playing = asyncio.create_task(callees.run())
        try:
            async with asyncio.timeout(60), httpx.AsyncClient(base_url=srv.url, headers=ADMIN, timeout=20) as client:
                created = (await client.post("/campaigns", json={
                    "contacts": [{"number": n} for n in (first, listed, last)], "concurrency": 1,
                    "calling_hours": "00:00-24:00"})).json()
                campaign_id = created["id"]
                dnc = await client.post("/do-not-call", json={"numbers": ["+91 98000 00002"], "reason": "asked"})
                while first not in callees.ringing:  # the first number rings
                    await asyncio.sleep(0.02)
                paused = await client.post(f"/campaigns/{campaign_id}/pause")
                again = await client.post(f"/campaigns/{campaign_id}/pause")
                await twilio.status(callees.ringing[first], "answered")
                await callees.finish(first, "completed")

                async def contact(number: str) -> dict[str, Any]:
                    contacts = (await client.get(f"/campaigns/{campaign_id}?contacts=true")).json()["contacts"]
                    return next(c for c in contacts if c["number"] == number)

                while (await contact(first))["status"] != "completed":
                    await asyncio.sleep(0.05)
                dialled_while_paused = len(twilio.placed)  # settled in a tick that could not claim
                resumed = await client.post(f"/campaigns/{campaign_id}/resume")
                while (await client.get(f"/campaigns/{campaign_id}")).json()["status"] != "completed":
                    await asyncio.sleep(0.05)
                listed = (await client.get("/campaigns")).json()["campaigns"]
                code = await asyncio.to_thread(campaign_cli.main, ["status", campaign_id, "--url", srv.url,
                                                                   "--admin-token", ADMIN_TOKEN])
        finally:
            playing.cancel()
    assert dnc.json() == {"added": 1, "numbers": 1}
    assert [(c["id"], c["counts"]) for c in listed] == [(campaign_id, {"completed": 2, "skipped_dnc": 1})]
    assert paused.json()["status"] == "paused" and again.status_code == 409
    assert dialled_while_paused == 1 and resumed.json()["status"] == "running"
    assert [call.one("To") for call in twilio.placed] == [first, last]
    out = capsys.readouterr().out
    assert code == 0 and "3/3 done  completed=2 skipped_dnc=1  completed" in out


async def test_a_call_twilio_refuses_is_failed_and_retried_and_one_it_may_have_placed_is_not(
        twilio, tmp_path: Path) -> None:
    port, closed = free_port(), free_port()  # nothing listens on `closed`
    common = dict(public_url=f"http://127.0.0.1:{port}", port=port, admin_token=ADMIN_TOKEN,
                  twilio_account_sid=twilio.account_sid, twilio_auth_token=twilio.auth_token,
                  twilio_from_number=FROM, campaign_poll_s=0.2)
    body = {"contacts": [{"number": "+919800000001"}], "max_attempts": 2, "retry_delay_s": 0.1,
            "calling_hours": "00:00-24:00"}
    results = []
    bases = ((twilio.base_url, tmp_path / "refused"), (f"http://127.0.0.1:{closed}", tmp_path / "lost"))
    for api_base, data_dir in bases:
        settings = make_settings(twilio_api_base=api_base, data_dir=data_dir, **common)
        with live_server(settings, scripted_engines()) as srv:
            twilio.auth_token = "rotated"  # Twilio now answers 401 (code 20003) to our credentials
            async with asyncio.timeout(30), httpx.AsyncClient(base_url=srv.url, headers=ADMIN,
                                                              timeout=20) as client:
                campaign_id = (await client.post("/campaigns", json=body)).json()["id"]
                url = f"/campaigns/{campaign_id}?contacts=true"
                while (campaign := (await client.get(url)).json())["status"] != "completed":
                    await asyncio.sleep(0.05)
                results.append(campaign)
            twilio.auth_token = FakeTwilioRest.auth_token
    refused, lost = results
    # Refused outright: it never rang, so it was tried again until its attempts ran out.
    assert refused["counts"] == {"failed": 1} and refused["dials"] == 2
    assert len(twilio.calls("calls")) == 2 and "20003" in refused["contacts"][0]["last_error"]
    # No answer from Twilio at all: the call may exist, so the number is not dialled again.
    assert lost["counts"] == {"unknown": 1} and lost["dials"] == 1
    assert "did not answer" in lost["contacts"][0]["last_error"]
