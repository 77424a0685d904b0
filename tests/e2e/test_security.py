"""Security as an attacker finds it: forged Twilio signatures, admin endpoints without the token,
message-size and concurrent-call limits, and secrets that must never reach logs or responses."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets
from twilio.request_validator import RequestValidator

from tests import fakes
from tests.e2e.fixtures import UTTERANCES
from tests.e2e.harness import (
    configured_engines,
    e2e_settings,
    free_port,
    live_server,
)
from tests.e2e.wire import TwilioCaller, handshake_signature, stream_token

AUTH_TOKEN = "tw-auth-SECRET-4f1c9e"
ADMIN_TOKEN = "adm-SECRET-77b2d1"
SARVAM_KEY = "sk-sarvam-SECRET-9a8b7c"
OPENAI_KEY = "sk-openai-SECRET-1d2e3f"
SECRETS = (AUTH_TOKEN, ADMIN_TOKEN, SARVAM_KEY, OPENAI_KEY)
FORM = {"CallSid": "CAsec1", "AccountSid": "ACsec", "From": "+919876543210", "To": "+918000000000",
        "CallStatus": "ringing"}


def twilio_settings(port: int, **overrides: Any) -> Any:
    return e2e_settings(public_url=f"http://127.0.0.1:{port}", port=port, twilio_account_sid="ACsec",
                        twilio_auth_token=AUTH_TOKEN, admin_token=ADMIN_TOKEN, **overrides)


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


@pytest.fixture
def twilio_server():
    port = free_port()
    with live_server(twilio_settings(port)) as server:
        yield server


@pytest.mark.parametrize("path", ["/twilio/voice", "/twilio/language?attempt=1"])
async def test_forged_twilio_webhook_signatures_are_rejected(twilio_server, path):
    url = twilio_server.url + path
    async with httpx.AsyncClient(timeout=5) as client:
        missing = await client.post(url, data=FORM)
        forged = await client.post(url, data=FORM, headers={"X-Twilio-Signature": sign(url, FORM, "wrong-token")})
        tampered = await client.post(url, data={**FORM, "Digits": "2"},
                                     headers={"X-Twilio-Signature": sign(url, FORM)})
        genuine = await client.post(url, data=FORM, headers={"X-Twilio-Signature": sign(url, FORM)})
    assert (missing.status_code, forged.status_code, tampered.status_code) == (403, 403, 403)
    assert genuine.status_code == 200 and "<Response>" in genuine.text
    for response in (missing, forged, tampered):
        assert "<Stream" not in response.text and AUTH_TOKEN not in response.text


async def test_forged_signature_on_the_media_websocket_handshake_is_rejected(twilio_server):
    ws_url = twilio_server.ws_url + "/twilio/media"
    signed_url = "wss://" + ws_url.split("://", 1)[1]
    for headers in ({}, {"X-Twilio-Signature": sign(signed_url, {}, "wrong-token")},
                    {"X-Twilio-Signature": sign(signed_url + "/other", {})}):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(ws_url, additional_headers=headers, open_timeout=5):
                pass
        assert refused.value.response.status_code == 403
    assert twilio_server.live_calls() == 0
    # The genuine handshake (Twilio signs the wss:// URL with empty params), with the stream token
    # the signed webhook gave this call, gets a call going.
    token = await stream_token(twilio_server.url, "CAgenuine", AUTH_TOKEN)
    async with TwilioCaller(twilio_server.ws_url, call_id="CAgenuine", token=token,
                            headers={"X-Twilio-Signature": sign(signed_url, {})}) as caller:
        assert await caller.wait_audio(0.1), "a correctly signed stream got no greeting"


ADMIN_PATHS = ["/status", "/calls", "/calls/CA123", "/telephony/calls/CA123"]


@pytest.mark.parametrize("path", ADMIN_PATHS)
async def test_admin_endpoints_refuse_requests_without_the_token(path):
    port = free_port()
    with live_server(e2e_settings(public_url=f"http://127.0.0.1:{port}", port=port, admin_token=ADMIN_TOKEN)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
            none = await client.get(path)
            wrong = await client.get(path, headers={"Authorization": "Bearer not-the-token"})
            basic = await client.get(path, headers={"Authorization": f"Basic {ADMIN_TOKEN}"})
            query = await client.get(path, params={"token": ADMIN_TOKEN})
            good = await client.get(path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    if none.status_code == 404 and good.status_code == 404 and path.startswith("/telephony"):
        body = good.json() if good.headers.get("content-type", "").startswith("application/json") else {}
        if body.get("detail") == "Not Found":
            pytest.skip("needs /telephony/calls/{id} (telephony), not merged into main yet")
    assert [r.status_code for r in (none, wrong, basic, query)] == [401] * 4
    assert good.status_code in (200, 404)  # 404: no such call, but the token was accepted
    for response in (none, wrong, basic, query, good):
        assert ADMIN_TOKEN not in response.text


async def test_excess_calls_are_refused_politely_and_the_server_keeps_serving():
    port = free_port()
    with live_server(e2e_settings(public_url=f"http://127.0.0.1:{port}", port=port, max_concurrent_calls=2)) as server:
        async with TwilioCaller(server.ws_url) as first, TwilioCaller(server.ws_url) as second:
            assert await first.wait_audio(0.05) and await second.wait_audio(0.05)
            # A third stream: refused with a clear close code and reason, not a crash.
            async with TwilioCaller(server.ws_url) as third:
                await asyncio.wait_for(third.closed.wait(), 5)
            assert third.close_code == 1013 and "capacity" in third.close_reason
            # A third call through the IVR webhook: a spoken busy line and a hang-up, not a menu.
            async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
                busy = await client.post("/twilio/voice", data=FORM)
            assert busy.status_code == 200 and "<Hangup" in busy.text and "<Gather" not in busy.text
            # The two live calls still answer.
            for caller in (first, second):
                assert await caller.turn(UTTERANCES["en-IN"][1].pcm()), "a live call stopped answering"
            assert server.live_calls() == 2
        # Once they hang up, new calls are taken again.
        await asyncio.sleep(0.3)
        async with TwilioCaller(server.ws_url) as later:
            assert await later.wait_audio(0.05)
            assert not later.closed.is_set()


async def test_no_secret_in_logs_or_responses_even_when_providers_fail(fake_sarvam, fake_openai, logs):
    Fault = fakes.Fault
    fake_sarvam.api_key = SARVAM_KEY
    fake_openai.api_key = OPENAI_KEY
    port = free_port()
    settings = twilio_settings(port, stt=["sarvam"], llm=["sarvam", "openai"], tts=["sarvam"],
                               sarvam_base_url=fake_sarvam.base_url, sarvam_api_key=SARVAM_KEY,
                               openai_base_url=fake_openai.base_url, openai_api_key=OPENAI_KEY,
                               stt_timeout_s=1.0, llm_timeout_s=1.0, tts_timeout_s=1.0)
    # Every kind of failure, including the provider refusing the key (its error names the request).
    fake_sarvam.inject("stt", Fault.forbidden(), Fault.server_error(502), Fault(malformed=True))
    fake_sarvam.inject("chat", Fault.forbidden(), Fault(hang=True), Fault.quota())
    fake_openai.inject("chat", Fault.server_error(500), Fault(cut=True))
    fake_sarvam.inject("tts", Fault(), Fault(), Fault.forbidden(), Fault.rate_limited())

    responses: list[str] = []
    with live_server(settings, engines=lambda s: configured_engines(s)) as server:
        token = await stream_token(server.url, FORM["CallSid"], AUTH_TOKEN)
        async with TwilioCaller(server.ws_url, call_id=FORM["CallSid"], token=token,
                                headers=handshake_signature(server.ws_url, AUTH_TOKEN)) as caller:
            await caller.wait_audio(0.05)
            for spoken in UTTERANCES["en-IN"][:3]:
                await caller.turn(spoken.pcm(), timeout=8, min_reply_s=0.05)
            call_id = caller.call_id
        await asyncio.sleep(0.5)
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
            admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            for method, path, kw in [
                ("GET", "/health", {}), ("GET", "/metrics", {}), ("GET", "/status", {"headers": admin}),
                ("GET", "/calls", {"headers": admin}), ("GET", f"/calls/{call_id}", {"headers": admin}),
                ("GET", "/status", {"headers": {"Authorization": "Bearer " + SARVAM_KEY}}),
                ("POST", "/twilio/voice", {"data": FORM}), ("GET", "/no/such/path", {}),
                ("POST", "/twilio/language", {"content": b"\xff\x00garbage",
                                              "headers": {"content-type": "application/x-www-form-urlencoded"}}),
            ]:
                response = await client.request(method, path, **kw)
                responses.append(f"{method} {path} {response.status_code} {dict(response.headers)} {response.text}")
        record = json.dumps(server.run(_record(server, call_id)))

    assert any("provider=sarvam" in line or "sarvam" in line for line in logs.lines), "no provider failure was logged"
    everything = "\n".join([logs.text(), *responses, record])
    leaked = [secret for secret in SECRETS if secret in everything]
    assert not leaked, f"secrets leaked: {leaked}"
    # Not even a recognisable piece of one (e.g. a key prefix plus a few characters).
    for secret in SECRETS:
        assert secret[-8:] not in everything, f"the tail of a secret leaked: ...{secret[-8:]}"


async def _record(server: Any, call_id: str) -> Any:
    store = server.services.store
    assert store is not None, "the call store did not start"
    await store.flush()
    return await store.get_call(call_id)
