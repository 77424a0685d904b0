"""Outbound calls on Plivo: the real server places the call (httpx, JSON) against a strict fake;
the fake rings, answers and hangs up like Plivo, every request signed V3; the record follows the
call from its request uuid to its CallUUID, and the stream speaks the language chosen."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sutradhar.testing.scripted import ScriptedTTS
from sutradhar.testing.simulator import SimConfig, simulate
from tests.fakes.plivo_rest import FakePlivoRest
from tests.support.server import (
    free_port,
    live_server,
    make_settings,
    scripted_engines,
    wait_until,
)

ADMIN = {"Authorization": "Bearer admin-secret"}
CALLER_ID = "+918033000000"


@pytest.fixture
async def plivo() -> AsyncIterator[FakePlivoRest]:
    async with FakePlivoRest() as fake:
        yield fake


def server(plivo: FakePlivoRest, tmp_path: Any, tts: ScriptedTTS | None = None) -> Any:
    port = free_port()
    settings = make_settings(public_url=f"http://127.0.0.1:{port}", port=port, data_dir=tmp_path,
                             admin_token="admin-secret", plivo_auth_id=plivo.auth_id,
                             plivo_auth_token=plivo.auth_token, plivo_caller_id=CALLER_ID,
                             plivo_api_base=plivo.base_url)
    return live_server(settings, scripted_engines(tts=tts))


async def flush(srv: Any) -> None:
    await srv.flush_records()


async def test_plivo_call_is_placed_answered_streamed_and_its_record_follows_the_call(plivo, tmp_path) -> None:
    tts = ScriptedTTS(ms_per_char=15, chunk_ms=100)
    with server(plivo, tmp_path, tts) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
            placed = await client.post("/calls/outbound", headers=ADMIN,
                                       json={"to": "+919876543210", "language": "te-IN", "carrier": "plivo"})
            assert placed.status_code == 201, placed.text
            (call,) = plivo.placed
            assert placed.json()["call_id"] == call.request_uuid
            assert call.body == {"from": "918033000000", "to": "919876543210",
                                 "answer_url": f"{srv.url}/plivo/answer?language=te-IN", "answer_method": "POST",
                                 "ring_url": f"{srv.url}/plivo/status", "ring_method": "POST",
                                 "hangup_url": f"{srv.url}/plivo/status", "hangup_method": "POST"}
            assert await plivo.ring(call) == 204
            answer = await plivo.answer(call)
            assert answer.status_code == 200
            stream = ET.fromstring(answer.text).find("./Stream")
            assert stream is not None and "language=teIN" in stream.get("extraHeaders", "")
            result = await simulate(SimConfig(srv.url, [], carrier="plivo", call_sid=call.call_uuid,
                                              language="te-IN", reply_wait_s=3, timeout_s=10))
            assert result.frames and tts.calls[0] == ("నమస్కారం!", "te-IN")
            assert wait_until(lambda: srv.live_calls() == 0, 10)
            assert await plivo.hangup(call) == 204
            await flush(srv)
            record = (await client.get(f"/calls/{call.call_uuid}", headers=ADMIN)).json()
            before = await client.get(f"/calls/{call.request_uuid}", headers=ADMIN)
    assert before.status_code == 404  # one record, under the id the stream and the API use
    assert record["direction"] == "outbound" and record["carrier_call_id"] == call.call_uuid
    assert record["language"] == "te-IN" and record["to_number"] == "+919876543210"
    assert [e["status"] for e in record["carrier_events"]] == ["ringing", "completed"]
    assert record["end_reason"] == "disconnected"  # the session's (Plivo sends no stop), not the hang-up's


async def test_unanswered_plivo_calls_close_under_their_request_and_forgeries_are_refused(plivo, tmp_path) -> None:
    with server(plivo, tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
            for number in ("+919876543210", "+919876543211"):
                response = await client.post("/calls/outbound", headers=ADMIN, json={"to": number, "carrier": "plivo"})
                assert response.status_code == 201
            busy, timeout = plivo.placed
            forged = await plivo.hangup(busy, "failed", answered=False, token="guessed")
            assert await plivo.ring(busy) == 204
            assert await plivo.hangup(busy, "busy", answered=False) == 204
            assert await plivo.hangup(timeout, "timeout", answered=False) == 204
            await flush(srv)
            records = [(await client.get(f"/calls/{c.request_uuid}", headers=ADMIN)).json() for c in (busy, timeout)]
    assert forged == 403
    assert [(r["carrier_status"], r["end_reason"]) for r in records] == [("busy", "busy"), ("no-answer", "no-answer")]
    assert [e["status"] for e in records[0]["carrier_events"]] == ["ringing", "busy"]
