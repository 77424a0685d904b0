"""Outbound calls on Twilio end to end: the real server places the call with the official SDK
against a strict fake of Twilio's REST API, the fake answers like Twilio (signed answer webhook,
then the media stream from the simulator), and its signed status callbacks land on the record."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sutradhar.cli import dial
from sutradhar.testing.scripted import ScriptedSTT, ScriptedTTS
from sutradhar.testing.simulator import CallerTurn, SimConfig, simulate
from tests.fakes.twilio_rest import FakeTwilioRest
from tests.support.audio import speech_pcm, with_silence
from tests.support.server import (
    free_port,
    live_server,
    make_settings,
    scripted_engines,
    wait_until,
)

ADMIN_TOKEN = "admin-secret"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FROM = "+918000000001"


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilioRest]:
    async with FakeTwilioRest() as fake:
        yield fake


def server(twilio: FakeTwilioRest, data_dir: Path, tts: ScriptedTTS | None = None) -> Any:
    port = free_port()
    settings = make_settings(public_url=f"http://127.0.0.1:{port}", port=port, data_dir=data_dir,
                             admin_token=ADMIN_TOKEN, twilio_account_sid=twilio.account_sid,
                             twilio_auth_token=twilio.auth_token, twilio_api_base=twilio.base_url,
                             twilio_from_number=FROM)
    return live_server(settings, scripted_engines(ScriptedSTT(script=("haan, boliye",)), tts=tts))


async def stored(srv: Any, client: httpx.AsyncClient, call_id: str) -> dict[str, Any]:
    await srv.flush_records()
    return (await client.get(f"/calls/{call_id}", headers=ADMIN)).json()


async def test_outbound_call_is_placed_answered_streamed_and_its_progress_stored(twilio, tmp_path) -> None:
    tts = ScriptedTTS(ms_per_char=15, chunk_ms=100)
    with server(twilio, tmp_path, tts) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
            placed = await client.post("/calls/outbound", headers=ADMIN,
                                       json={"to": "+91 98765-43210", "language": "hi-IN"})
            assert placed.status_code == 201, placed.text
            body = placed.json()
            (call,) = twilio.placed
            assert body == {"call_id": call.sid, "carrier": "twilio", "to": "+919876543210", "from": FROM,
                            "language": "hi-IN", "status": "queued"}
            # What the SDK sent Twilio (the fake checked Basic auth and the account in the path).
            assert call.form == {
                "To": ["+919876543210"], "From": [FROM],
                "Url": [f"{srv.url}/twilio/outbound/answer?language=hi-IN"],
                "StatusCallback": [f"{srv.url}/twilio/status"], "StatusCallbackMethod": ["POST"],
                "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
                # Twilio's own AMD beside ours (TWILIO_MACHINE_DETECTION=Enable), without delaying the answer
                "MachineDetection": ["Enable"], "AsyncAmd": ["true"],
                "AsyncAmdStatusCallback": [f"{srv.url}/twilio/amd"], "AsyncAmdStatusCallbackMethod": ["POST"]}
            assert await twilio.status(call, "initiated") == 204
            assert await twilio.status(call, "ringing") == 204
            assert await twilio.status(call, "answered") == 204
            caller = with_silence(speech_pcm("haan boliye", "hi"), 8000, 200, 300)
            result = await simulate(SimConfig(srv.url, [CallerTurn(caller, 8000)], call_sid=call.sid,
                                              answer_url=call.one("Url"), auth_token=twilio.auth_token,
                                              admin_token=ADMIN_TOKEN, speed=2, timeout_s=30))
            assert result.language == "hi-IN" and tts.calls[0] == ("नमस्ते!", "hi-IN")
            assert result.summary["turns"][0]["text"] == "haan, boliye"
            assert wait_until(lambda: srv.live_calls() == 0, 10)
            assert await twilio.status(call, "completed", CallDuration="7") == 204
            record = await stored(srv, client, call.sid)
    assert record["direction"] == "outbound" and record["transport"] == "twilio"
    assert (record["to_number"], record["from_number"]) == ("+919876543210", FROM)
    assert record["language"] == "hi-IN" and record["turn_count"] == 1
    assert record["status"] == "completed" and record["end_reason"] == "caller_hangup"  # the session's
    assert [e["status"] for e in record["carrier_events"]] == ["initiated", "ringing", "in-progress", "completed"]
    assert record["carrier_events"][-1]["duration_s"] == "7" and record["carrier_status"] == "completed"


async def test_unanswered_calls_are_closed_with_the_carriers_reason(twilio, tmp_path) -> None:
    with server(twilio, tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
            outcomes = ("busy", "no-answer", "failed")
            for n, _ in enumerate(outcomes):
                response = await client.post("/calls/outbound", headers=ADMIN, json={"to": f"+9198765432{n}0"})
                assert response.status_code == 201
            for call, outcome in zip(twilio.placed, outcomes):
                assert await twilio.status(call, "initiated") == 204
                assert await twilio.status(call, outcome) == 204
            records = [await stored(srv, client, call.sid) for call in twilio.placed]
    for record, outcome in zip(records, outcomes):
        assert record["language"] == "en-IN"  # DEFAULT_LANGUAGE when none is asked for
        assert (record["carrier_status"], record["end_reason"]) == (outcome, outcome)
        assert record["status"] == ("failed" if outcome == "failed" else "completed")
        assert record["ended_at"] is not None and record["turn_count"] == 0


async def test_a_forged_status_callback_is_refused_and_not_stored(twilio, tmp_path) -> None:
    with server(twilio, tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
            assert (await client.post("/calls/outbound", headers=ADMIN, json={"to": "+14155550100"})).status_code == 201
            (call,) = twilio.placed
            assert await twilio.status(call, "ringing") == 204
            assert await twilio.status(call, "completed", token="not-the-auth-token") == 403
            unsigned = await client.post("/twilio/status", data={"CallSid": call.sid, "CallStatus": "failed"})
            answer = await client.post("/twilio/outbound/answer?language=hi-IN", data={"CallSid": call.sid})
            record = await stored(srv, client, call.sid)
    assert unsigned.status_code == 403 and answer.status_code == 403
    assert [e["status"] for e in record["carrier_events"]] == ["ringing"] and record["status"] == "active"


async def test_bad_requests_never_reach_twilio(twilio, tmp_path) -> None:
    with server(twilio, tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
            no_token = await client.post("/calls/outbound", json={"to": "+919876543210"})
            not_e164 = await client.post("/calls/outbound", headers=ADMIN, json={"to": "09876543210"})
            language = await client.post("/calls/outbound", headers=ADMIN, json={"to": "+919876543210",
                                                                                 "language": "fr-FR"})
            carrier = await client.post("/calls/outbound", headers=ADMIN, json={"to": "+919876543210",
                                                                                "carrier": "vonage"})
            unconfigured = await client.post("/calls/outbound", headers=ADMIN, json={"to": "+919876543210",
                                                                                     "carrier": "exotel"})
            twilio.auth_token = "rotated"  # Twilio now refuses our credentials
            refused = await client.post("/calls/outbound", headers=ADMIN, json={"to": "+919876543210"})
    assert no_token.status_code == 401
    assert not_e164.status_code == 422 and "E.164" in not_e164.json()["detail"]
    assert language.status_code == 422 and carrier.status_code == 400
    assert unconfigured.status_code == 409 and "EXOTEL_SID" in unconfigured.json()["detail"]
    assert refused.status_code == 502 and "20003" in refused.json()["detail"]
    assert twilio.placed == [] and len(twilio.calls("calls")) == 1  # only the refused one was sent


async def test_sutradhar_dial_places_the_call_through_the_server(twilio, tmp_path, capsys) -> None:
    with server(twilio, tmp_path) as srv:
        code = await asyncio.to_thread(dial.main, ["+919876543210", "--language", "te-IN", "--url", srv.url,
                                                   "--admin-token", ADMIN_TOKEN])
        bad = await asyncio.to_thread(dial.main, ["98765", "--url", srv.url])
    assert code == 0 and bad == 2
    (call,) = twilio.placed
    assert call.one("To") == "+919876543210" and call.one("Url").endswith("language=te-IN")
    assert f"call {call.sid}" in capsys.readouterr().out
