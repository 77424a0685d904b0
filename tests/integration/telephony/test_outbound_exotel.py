"""Outbound calls on Exotel: the real server places the call through Calls/connect (httpx) against
a strict fake; the flow's Voicebot applet then streams it (the simulator) in the language chosen
when it was placed, and the status callbacks, authenticated by their URL's HMAC, land on the record."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sutradhar.testing.scripted import ScriptedTTS
from sutradhar.testing.simulator import SimConfig, simulate
from tests.fakes.exotel_rest import FakeExotelRest
from tests.support.server import (
    free_port,
    live_server,
    make_settings,
    scripted_engines,
    wait_until,
)

ADMIN = {"Authorization": "Bearer admin-secret"}
EXOPHONE = "+918044000000"


@pytest.fixture
async def exotel() -> AsyncIterator[FakeExotelRest]:
    async with FakeExotelRest() as fake:
        yield fake


def server(exotel: FakeExotelRest, tmp_path: Any, tts: ScriptedTTS | None = None) -> Any:
    port = free_port()
    settings = make_settings(public_url=f"http://127.0.0.1:{port}", port=port, data_dir=tmp_path,
                             admin_token="admin-secret", exotel_sid=exotel.sid, exotel_api_key=exotel.api_key,
                             exotel_api_token=exotel.api_token, exotel_caller_id=EXOPHONE,
                             exotel_app_id=exotel.app_id, exotel_api_base=exotel.base_url)
    return live_server(settings, scripted_engines(tts=tts))


async def stored(srv: Any, client: httpx.AsyncClient, call_id: str) -> dict[str, Any]:
    await srv.flush_records()
    return (await client.get(f"/calls/{call_id}", headers=ADMIN)).json()


async def test_exotel_call_is_placed_streamed_in_its_language_and_its_status_stored(exotel, tmp_path) -> None:
    tts = ScriptedTTS(ms_per_char=15, chunk_ms=100)
    with server(exotel, tmp_path, tts) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
            placed = await client.post("/calls/outbound", headers=ADMIN,
                                       json={"to": "+919876543210", "language": "gu-IN", "carrier": "exotel"})
            assert placed.status_code == 201, placed.text
            (call,) = exotel.placed
            assert placed.json()["call_id"] == call.sid and placed.json()["from"] == EXOPHONE
            callback = urlsplit(call.form.pop("StatusCallback"))
            assert f"{callback.scheme}://{callback.netloc}{callback.path}" == f"{srv.url}/exotel/status"
            assert set(parse_qs(callback.query)) == {"ref", "sig"}
            assert call.form == {"From": "+919876543210", "CallerId": EXOPHONE, "CallType": "trans",
                                 "Url": f"http://my.exotel.com/{exotel.sid}/exoml/start_voice/{exotel.app_id}",
                                 "StatusCallbackEvents[0]": "terminal", "StatusCallbackEvents[1]": "answered",
                                 "CustomField": "language=gu-IN"}
            call.form["StatusCallback"] = callback.geturl()
            assert await exotel.status(call, "in-progress", event="answered") == 204
            # The flow's Voicebot applet streams the call; nothing on the wire names its language.
            result = await simulate(SimConfig(srv.url, [], carrier="exotel", webhook=True, call_sid=call.sid,
                                              basic_auth=(exotel.api_key, exotel.api_token), reply_wait_s=3, timeout_s=10, admin_token="admin-secret"))
            assert result.frames and tts.calls[0] == ("નમસ્તે!", "gu-IN")
            assert wait_until(lambda: srv.live_calls() == 0, 10)
            assert await exotel.status(call, "completed") == 204
            record = await stored(srv, client, call.sid)
    assert record["direction"] == "outbound" and record["transport"] == "exotel"
    assert record["language"] == "gu-IN" and record["to_number"] == "+919876543210"
    assert [e["status"] for e in record["carrier_events"]] == ["in-progress", "completed"]
    assert record["carrier_events"][-1]["duration_s"] == "12"


async def test_exotel_callbacks_without_our_url_hmac_are_refused(exotel, tmp_path) -> None:
    with server(exotel, tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
            assert (await client.post("/calls/outbound", headers=ADMIN,
                                      json={"to": "+919876543210", "carrier": "exotel"})).status_code == 201
            (call,) = exotel.placed
            forged = await exotel.status(call, "completed", url=f"{srv.url}/exotel/status?ref=abc&sig=00")
            bare = await exotel.status(call, "completed", url=f"{srv.url}/exotel/status")
            busy = await exotel.status(call, "busy")
            record = await stored(srv, client, call.sid)
    assert (forged, bare, busy) == (403, 403, 204)
    assert (record["carrier_status"], record["end_reason"], record["status"]) == ("busy", "busy", "completed")
    assert [e["status"] for e in record["carrier_events"]] == ["busy"]
