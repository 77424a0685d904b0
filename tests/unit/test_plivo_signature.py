"""Plivo signature V3: the text it covers and the HMAC, pinned to values computed with Plivo's SDK
algorithm (plivo.utils.signature_v3), and what a forgery changes."""

from __future__ import annotations

import pytest

from sutradhar.telephony.plivo.signature import signature_v3, signed_text, valid_v3

URL = "https://v.example.com/plivo/answer"


@pytest.mark.parametrize(("method", "url", "params", "expected"), [
    ("POST", URL, {"CallUUID": "abc", "From": "+91987", "To": "+9180"},
     "4CBpY7Qv2jnGNS9MMYz6V8sHSjX8ZzD4MumJfqGlW5Y="),
    ("POST", URL + "?language=hi-IN&b=2", {"CallUUID": "abc", "Event": "StartApp"},
     "x7fH/l1eR5j2EHGpUrG0eGjeyRmp5vFXozSrYrlhJ48="),
    ("POST", URL + "?language=hi-IN", {}, "5uDAqOJRC/xknupckhxZxUOqrVQPZxZujyocdQab6o0="),
    ("GET", URL + "?language=hi-IN&CallUUID=abc", {}, "6g9nWnZVNzdiMx4Pwsvirs2Vz+aqiCEAwWGr/nJiQRs="),
    ("GET", URL, {}, "qdjPes7ngFARnvCVFIWnO29QJRRPxWWZ1B2ET2kyIRw="),
    ("POST", URL, {"Name": "नमस्ते"}, "0erRs38msz4Q7QkfOrnGLZiawJ/s5gsuUsxuRzAf+tQ="),
])
def test_signature_matches_plivos_sdk(method: str, url: str, params: dict, expected: str) -> None:
    assert signature_v3("tok", method, url, params, "12345") == expected


def test_signed_text_sorts_the_query_then_appends_the_form_fields() -> None:
    text = signed_text("POST", URL + "?b=2&a=1", {"To": "+9180", "CallUUID": "abc"}, "n1")
    assert text == URL + "?a=1&b=2.CallUUIDabcTo+9180.n1"
    assert signed_text("GET", URL + "?b=2&a=1", {}, "n1") == URL + "?a=1&b=2.n1"


def test_any_change_to_the_request_breaks_the_signature() -> None:
    form = {"CallUUID": "abc"}
    good = signature_v3("tok", "POST", URL, form, "n1")
    assert valid_v3("tok", "POST", URL, form, "n1", good)
    assert valid_v3("tok", "POST", URL, form, "n1", f"stale-signature, {good}")  # a rotated token
    assert not valid_v3("tok", "POST", URL, {"CallUUID": "abd"}, "n1", good)  # another call
    assert not valid_v3("tok", "POST", URL + "?language=hi-IN", form, "n1", good)  # another URL
    assert not valid_v3("tok", "POST", URL, form, "n2", good)  # another nonce
    assert not valid_v3("other", "POST", URL, form, "n1", good)  # another account
    assert not valid_v3("tok", "POST", URL, form, None, good)
    assert not valid_v3("tok", "POST", URL, form, "n1", None)
