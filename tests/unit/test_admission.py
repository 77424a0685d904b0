"""Admission rules that need no server: which carriers must bring a stream token, which Host
headers are the public one, and whose address X-Forwarded-For may name."""

from __future__ import annotations

import pytest

from sutradhar.telephony.admission import SourceLimiter, public_host_ok, tokens_required
from tests.support.server import make_settings


@pytest.mark.parametrize(("mode", "auth", "expected"), [
    ("auto", "", {"twilio": False, "plivo": False, "exotel": False, "browser": False}),
    ("auto", "tok", {"twilio": True, "plivo": False, "exotel": False, "browser": False}),
    ("required", "", {"twilio": True, "plivo": True, "exotel": True, "browser": False}),
    ("off", "tok", {"twilio": False, "plivo": False, "exotel": False, "browser": False}),
])
def test_which_carriers_need_a_stream_token(mode: str, auth: str, expected: dict[str, bool]) -> None:
    settings = make_settings(stream_tokens=mode, twilio_auth_token=auth)
    assert {carrier: tokens_required(settings, carrier) for carrier in expected} == expected


@pytest.mark.parametrize(("public_url", "host", "ok"), [
    ("https://voice.example.com", "voice.example.com", True),
    ("https://voice.example.com", "VOICE.example.com:443", True),  # the proxy may add the default port
    ("https://voice.example.com", "voice.example.com:8443", False),
    ("https://voice.example.com", "attacker.example", False),
    ("https://voice.example.com", "voice.example.com.attacker.example", False),
    ("https://voice.example.com", None, False),
    ("http://127.0.0.1:8123", "127.0.0.1:8123", True),
    ("http://127.0.0.1:8123", "127.0.0.1", False),
    ("", "anything.example", True),  # no PUBLIC_URL (development): no check
])
def test_only_the_public_host_is_accepted(public_url: str, host: str | None, ok: bool) -> None:
    assert public_host_ok(make_settings(public_url=public_url), host) is ok


def test_forwarded_for_names_the_client_only_behind_a_trusted_proxy() -> None:
    behind = SourceLimiter(make_settings(trusted_proxies=["10.0.0.0/8"]))
    header = {"x-forwarded-for": "6.6.6.6, 203.0.113.9, 10.0.0.2"}  # client-chosen, client, inner proxy
    assert behind.source("10.0.0.1", header) == "203.0.113.9"
    assert behind.source("198.51.100.1", header) == "198.51.100.1"  # not a trusted peer: header ignored
    assert SourceLimiter(make_settings()).source("10.0.0.1", header) == "10.0.0.1"
