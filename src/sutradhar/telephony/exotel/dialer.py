"""Placing Exotel calls: `POST /v1/Accounts/{sid}/Calls/connect.json` (httpx, Basic auth
EXOTEL_API_KEY:EXOTEL_API_TOKEN) calls the number and, once answered, runs the flow EXOTEL_APP_ID,
whose Voicebot applet streams the call to us like an inbound one.

Exotel does not sign its status callbacks, so each call's StatusCallback URL carries a reference
and an HMAC of it under EXOTEL_API_TOKEN (`callback_sig`): a callback without a matching pair was
not sent to a URL we gave Exotel.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlencode

import httpx

from sutradhar.config import Settings
from sutradhar.telephony.dialing import OutboundError, missing_settings

API_TIMEOUT_S = 10.0


def callback_sig(settings: Settings, ref: str) -> str:
    return hmac.new(settings.exotel_api_token.encode(), f"exotel-status:{ref}".encode(), hashlib.sha256).hexdigest()


def callback_ok(settings: Settings, ref: str | None, sig: str | None) -> bool:
    if not (settings.exotel_api_token and ref and sig):
        return False
    return hmac.compare_digest(callback_sig(settings, ref), sig)


class ExotelDialer:
    carrier = "exotel"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def caller_id(self) -> str:
        return self.settings.exotel_caller_id

    def problems(self) -> list[str]:
        return missing_settings(self.settings, "Exotel", "exotel_sid", "exotel_api_key", "exotel_api_token",
                                "exotel_caller_id", "exotel_app_id", "public_url")

    async def place(self, to: str, language: str) -> str:
        s = self.settings
        ref = secrets.token_hex(8)
        status_url = (f"{s.public_url.rstrip('/')}/exotel/status?"
                      f"{urlencode({'ref': ref, 'sig': callback_sig(s, ref)})}")
        form = {"From": to, "CallerId": s.exotel_caller_id, "CallType": "trans",
                "Url": f"http://my.exotel.com/{s.exotel_sid}/exoml/start_voice/{s.exotel_app_id}",
                "StatusCallback": status_url, "StatusCallbackEvents[0]": "terminal",
                "StatusCallbackEvents[1]": "answered", "CustomField": f"language={language}"}
        url = f"{s.exotel_api_base.rstrip('/')}/v1/Accounts/{s.exotel_sid}/Calls/connect.json"
        try:
            async with httpx.AsyncClient(timeout=API_TIMEOUT_S) as client:
                response = await client.post(url, data=form, auth=(s.exotel_api_key, s.exotel_api_token))
        except httpx.HTTPError as exc:
            raise OutboundError(502, f"Exotel did not answer: {type(exc).__name__}: {exc}",
                               maybe_placed=True) from None
        if response.status_code >= 400:
            raise OutboundError(502, f"Exotel refused the call: HTTP {response.status_code}: {response.text[:200]}")
        try:
            return str(response.json()["Call"]["Sid"])
        except (ValueError, KeyError, TypeError):
            raise OutboundError(502, f"Exotel's answer has no Call.Sid: {response.text[:200]}",
                               maybe_placed=True) from None
