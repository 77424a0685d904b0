"""Plivo's answer and transfer webhooks with PLIVO_AUTH_TOKEN set: X-Plivo-Signature-V3 checked on
the real server, a signed call streams, forged and unsigned requests get 403."""

from __future__ import annotations

import httpx

from sutradhar.telephony.plivo.signature import signature_v3
from sutradhar.testing.simulator import SimConfig, simulate
from tests.support.server import RecordingRecorder
from tests.support.server import scripted_server as server_with

TOKEN = "plivo-token"


def signed(token: str, method: str, url: str, form: dict[str, str], nonce: str = "31415") -> dict[str, str]:
    return {"X-Plivo-Signature-V3-Nonce": nonce,
            "X-Plivo-Signature-V3": signature_v3(token, method, url, form, nonce)}


async def test_a_signed_answer_streams_the_call() -> None:
    recorder = RecordingRecorder()
    with server_with(recorder, plivo_auth_id="MAid", plivo_auth_token=TOKEN) as srv:
        result = await simulate(SimConfig(srv.url, [], carrier="plivo", webhook=True, auth_token=TOKEN,
                                          language="hi-IN", reply_wait_s=3, timeout_s=10))
    assert result.frames, "the signed call got no greeting"
    assert [(call_id, info["language"]) for call_id, info in recorder.started] == [(result.call_id, "hi-IN")]


async def test_forged_unsigned_and_replayed_requests_are_refused() -> None:
    with server_with(plivo_auth_id="MAid", plivo_auth_token=TOKEN) as srv:
        answer = f"{srv.url}/plivo/answer"
        form = {"CallUUID": "11111111-2222-3333-4444-555555555555"}
        async with httpx.AsyncClient(timeout=10) as client:
            ok = await client.post(answer, data=form, headers=signed(TOKEN, "POST", answer, form))
            forged = await client.post(answer, data=form, headers=signed("guessed", "POST", answer, form))
            unsigned = await client.post(answer, data=form)
            # A captured signature replayed for another language or another call is no good either.
            replayed_url = await client.post(answer + "?language=gu-IN", data=form,
                                             headers=signed(TOKEN, "POST", answer, form))
            replayed_call = await client.post(answer, data={"CallUUID": "u-other"},
                                              headers=signed(TOKEN, "POST", answer, form))
            got = await client.get(answer, params={"CallUUID": "u-2"},
                                   headers=signed(TOKEN, "GET", f"{answer}?CallUUID=u-2", {}))
            transfer = await client.post(f"{srv.url}/plivo/transfer", data=form)
    assert ok.status_code == 200 and "<Stream" in ok.text
    assert got.status_code == 200 and "<Stream" in got.text
    assert [r.status_code for r in (forged, unsigned, replayed_url, replayed_call, transfer)] == [403] * 5
    assert "<Stream" not in forged.text


async def test_without_an_auth_token_plivo_requests_are_not_checked() -> None:
    with server_with() as srv:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(f"{srv.url}/plivo/answer", data={"CallUUID": "u-1"})
    assert response.status_code == 200
