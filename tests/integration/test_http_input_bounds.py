"""Inputs that once answered HTTP 500 (issue #13): each now gets a 4xx with a JSON body, or, where
a carrier's call would otherwise drop, a tolerant answer. All against the real server."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET

import httpx
import pytest
import websockets

from tests.support.server import (
    RecordingRecorder,
    live_server,
    scripted_server,
    wait_until,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # With a call store (SQLite under a temporary DATA_DIR): the paging overflow was the database's.
    with live_server(data_dir=tmp_path_factory.mktemp("bounds"), browser_token="page-token") as srv:
        yield srv


@pytest.fixture
async def client(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
        yield c


def field_errors(response: httpx.Response) -> list[str]:
    """The fields a 422 names (FastAPI's detail form), e.g. ["body.Digits"]."""
    assert response.status_code == 422, (response.status_code, response.text[:200])
    return [".".join(map(str, e["loc"])) for e in response.json()["detail"]]


async def test_an_unreadable_menu_attempt_plays_the_first_menu_instead_of_a_500(client):
    menu = await client.post("/twilio/voice?attempt=abc", data={"CallSid": "CAattempt"})
    assert menu.status_code == 200
    assert ET.fromstring(menu.text).find("Gather").get("action") == "/twilio/language?attempt=1"
    # No key pressed on a garbled attempt: the menu once more, as after a real first attempt.
    again = await client.post("/twilio/language?attempt=%C2%B2", data={"CallSid": "CAattempt"})
    assert again.status_code == 200 and "attempt=2" in again.text


@pytest.mark.parametrize("digits", ["²", "１", "1" * 5000, "12 ", "A"], ids=["superscript-two",
                         "fullwidth-one", "5000-digits", "trailing-space", "letter"])
async def test_digits_no_keypad_sends_are_a_422_naming_the_field(client, digits):
    response = await client.post("/twilio/language", data={"CallSid": "CAdigits", "Digits": digits})
    assert field_errors(response) == ["body.Digits"]
    assert len(response.text) < 500  # names the rule, does not echo the input back


async def test_a_keypad_digit_still_connects_the_call(client):
    response = await client.post("/twilio/language?attempt=1", data={"CallSid": "CAkey", "Digits": "2"})
    assert response.status_code == 200 and ET.fromstring(response.text).find("./Connect/Stream") is not None


async def test_an_unsigned_webhook_is_refused_before_its_fields_are_checked():
    with scripted_server(twilio_auth_token="tw-token") as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=10) as c:
            response = await c.post("/twilio/language", data={"CallSid": "CA x", "Digits": "²"})
    assert response.status_code == 403 and response.json() == {"detail": "forbidden"}


@pytest.mark.parametrize("query", ["page=99999999999999999999", "page=1000001", "page_size=501",
                                   "page=0", "language=" + "x" * 17])
async def test_call_list_parameters_beyond_their_bounds_are_a_422(client, query):
    assert len(field_errors(await client.get(f"/calls?{query}"))) == 1


async def test_the_last_page_allowed_is_an_empty_page_not_an_overflow(client):
    response = await client.get("/calls", params={"page": 1_000_000, "page_size": 500})
    assert response.status_code == 200
    assert response.json()["calls"] == [] and response.json()["page"] == 1_000_000


@pytest.mark.parametrize("name,value", [("since", "0001-01-01T00:00:00+01:00"),
                                        ("until", "9999-12-31T23:59:59-01:00")])
async def test_dates_a_timezone_pushes_off_the_calendar_are_a_400(client, name, value):
    response = await client.get("/calls", params={name: value})
    assert response.status_code == 400 and response.json()["detail"].startswith(f"{name}:")


@pytest.mark.parametrize("path", ["/calls", "/telephony/calls"])
async def test_call_ids_longer_than_128_or_with_spaces_are_a_422(client, path):
    assert field_errors(await client.get(f"{path}/{'C' * 129}")) == ["path.call_id"]
    assert field_errors(await client.get(f"{path}/CA%20one")) == ["path.call_id"]
    assert (await client.get(f"{path}/{'C' * 128}")).status_code == 404


async def test_a_non_ascii_browser_token_is_refused_not_a_500(client):
    refused = await client.get("/", params={"token": "²"})
    assert refused.status_code == 403 and refused.json() == {"detail": "a valid ?token= is required"}
    assert (await client.get("/", params={"token": "page-token"})).status_code == 200


def twilio_start(call_sid: str) -> str:
    return json.dumps({"event": "start", "streamSid": "MZbounds", "start": {
        "accountSid": "ACbounds", "streamSid": "MZbounds", "callSid": call_sid, "customParameters": {}}})


async def test_a_media_stream_naming_its_call_with_200_kb_is_refused_and_nothing_is_stored():
    recorder = RecordingRecorder()
    with scripted_server(recorder) as srv:
        async with websockets.connect(f"{srv.ws_url}/twilio/media", max_size=None) as ws:
            await ws.send(twilio_start("CA" + "x" * 200_000))
            # The same socket then starts properly: the greeting proves the first start was read.
            await ws.send(twilio_start("CAbounded"))
            while json.loads(await asyncio.wait_for(ws.recv(), 10)).get("event") != "media":
                pass
        assert wait_until(lambda: recorder.ended)
    assert [call_id for call_id, _ in recorder.started] == ["CAbounded"]
    assert all(len(call_id) <= 128 for call_id, *_ in recorder.ended)
