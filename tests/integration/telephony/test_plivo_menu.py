"""Plivo's DTMF language menu on the real server, every request signed V3 like Plivo's: the menu
(<GetInput>), a key streams the call in that language, no key or a wrong one plays it once more,
then the default language; forged requests get 403."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

import httpx

from sutradhar.telephony.plivo.signature import signature_v3
from sutradhar.testing.scripted import ScriptedTTS
from sutradhar.testing.simulator import SimConfig, simulate
from tests.support.server import RecordingRecorder
from tests.support.server import scripted_server as server_with

TOKEN = "plivo-token"
CALL = "11111111-2222-3333-4444-555555555555"


async def post_signed(client: httpx.AsyncClient, url: str, form: dict[str, str], token: str = TOKEN) -> httpx.Response:
    nonce = uuid.uuid4().hex
    return await client.post(url, data=form, headers={
        "X-Plivo-Signature-V3-Nonce": nonce, "X-Plivo-Signature-V3": signature_v3(token, "POST", url, form, nonce)})


def menu_of(xml: str) -> tuple[ET.Element, list[tuple[str | None, str]], str]:
    root = ET.fromstring(xml)
    get_input = root.find("./GetInput")
    assert get_input is not None, xml
    redirect = root.find("./Redirect")
    assert redirect is not None and redirect.text == get_input.get("action")
    return get_input, [(s.get("language"), s.text or "") for s in get_input.findall("Speak")], redirect.text or ""


def stream_of(xml: str) -> dict[str, str]:
    stream = ET.fromstring(xml).find("./Stream")
    assert stream is not None, xml
    return dict(part.split("=", 1) for part in (stream.get("extraHeaders") or "").split(","))


async def test_the_menu_offers_each_language_and_a_key_streams_the_call_in_it() -> None:
    recorder = RecordingRecorder()
    tts = ScriptedTTS(ms_per_char=2, chunk_ms=100)
    with server_with(recorder, tts=tts, plivo_auth_id="MAid", plivo_auth_token=TOKEN) as srv:
        async with httpx.AsyncClient(timeout=10) as client:
            menu = await post_signed(client, f"{srv.url}/plivo/voice", {"CallUUID": CALL})
            get_input, lines, action = menu_of(menu.text)
            chosen = await post_signed(client, action, {"CallUUID": CALL, "Digits": "2", "InputType": "dtmf"})
        extra = stream_of(chosen.text)
        stored = srv.run(srv.services.ivr_languages.get(CALL))
        result = await simulate(SimConfig(srv.url, [], carrier="plivo", call_sid=CALL, stream_params=extra,
                                          reply_wait_s=3, timeout_s=10))
    assert menu.status_code == 200
    assert (get_input.get("inputType"), get_input.get("numDigits"), get_input.get("method")) == ("dtmf", "1", "POST")
    assert action == f"{srv.url}/plivo/language?attempt=1"
    # LANGUAGES' order (te, hi, en, gu); Telugu and Gujarati are said in English (no Plivo voice reads them)
    assert lines == [("en-IN", "Welcome."), ("en-IN", "For Telugu, press 1."), ("hi-IN", "हिंदी के लिए 2 दबाएँ।"),
                     ("en-IN", "For English, press 3."), ("en-IN", "For Gujarati, press 4.")]
    assert chosen.status_code == 200 and extra["language"] == "hiIN" and stored == "hi-IN"
    assert result.frames and tts.calls[0][1] == "hi-IN"
    assert [info["language"] for _, info in recorder.started] == ["hi-IN"]


async def test_no_key_or_a_wrong_key_plays_the_menu_again_then_the_default_language() -> None:
    with server_with(plivo_auth_id="MAid", plivo_auth_token=TOKEN, default_language="en-IN") as srv:
        async with httpx.AsyncClient(timeout=10) as client:
            wrong = await post_signed(client, f"{srv.url}/plivo/language?attempt=1", {"CallUUID": CALL, "Digits": "9"})
            _, lines, again = menu_of(wrong.text)
            silent = await post_signed(client, again, {"CallUUID": CALL})  # the <Redirect>: no Digits
    assert again.endswith("attempt=2") and ("en-IN", "Welcome.") not in lines  # no intro the second time
    assert stream_of(silent.text)["language"] == "enIN"


async def test_forged_menu_requests_are_refused_and_junk_digits_rejected() -> None:
    with server_with(plivo_auth_id="MAid", plivo_auth_token=TOKEN) as srv:
        async with httpx.AsyncClient(timeout=10) as client:
            forged = await post_signed(client, f"{srv.url}/plivo/voice", {"CallUUID": CALL}, token="guessed")
            unsigned = await client.post(f"{srv.url}/plivo/language?attempt=1", data={"CallUUID": CALL, "Digits": "2"})
            junk = await post_signed(client, f"{srv.url}/plivo/language?attempt=1", {"CallUUID": CALL, "Digits": "2x"})
    assert (forged.status_code, unsigned.status_code, junk.status_code) == (403, 403, 422)

