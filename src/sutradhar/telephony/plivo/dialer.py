"""Placing Plivo calls: `POST /v1/Account/{auth_id}/Call/` (httpx, JSON, Basic auth
PLIVO_AUTH_ID:PLIVO_AUTH_TOKEN), answered by /plivo/answer like an inbound call, with ring and
hang-up notifications on /plivo/status (both signed V3 by Plivo).

Plivo answers the request with a `request_uuid`; the call's own CallUUID exists only once it is
answered. The record is kept under the request uuid until the answer webhook, which carries both,
moves it to the CallUUID the stream and the call-control API use (`CallStore.call_answered`).
"""

from __future__ import annotations

from urllib.parse import urlencode

import httpx

from sutradhar.config import Settings
from sutradhar.telephony.dialing import OutboundError, missing_settings

API_TIMEOUT_S = 10.0


class PlivoDialer:
    carrier = "plivo"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def caller_id(self) -> str:
        return self.settings.plivo_caller_id

    def problems(self) -> list[str]:
        return missing_settings(self.settings, "Plivo", "plivo_auth_id", "plivo_auth_token", "plivo_caller_id",
                                "public_url")

    async def place(self, to: str, language: str) -> str:
        s = self.settings
        public = s.public_url.rstrip("/")
        body = {  # Plivo writes numbers as digits with the country code, no "+"
            "from": s.plivo_caller_id.lstrip("+"), "to": to.lstrip("+"),
            "answer_url": f"{public}/plivo/answer?{urlencode({'language': language})}", "answer_method": "POST",
            "ring_url": f"{public}/plivo/status", "ring_method": "POST",
            "hangup_url": f"{public}/plivo/status", "hangup_method": "POST",
        }
        url = f"{s.plivo_api_base.rstrip('/')}/v1/Account/{s.plivo_auth_id}/Call/"
        try:
            async with httpx.AsyncClient(timeout=API_TIMEOUT_S) as client:
                response = await client.post(url, json=body, auth=(s.plivo_auth_id, s.plivo_auth_token))
        except httpx.HTTPError as exc:
            raise OutboundError(502, f"Plivo did not answer: {type(exc).__name__}: {exc}",
                               maybe_placed=True) from None
        if response.status_code >= 400:
            raise OutboundError(502, f"Plivo refused the call: HTTP {response.status_code}: {response.text[:200]}")
        try:
            return str(response.json()["request_uuid"])
        except (ValueError, KeyError, TypeError):
            raise OutboundError(502, f"Plivo's answer has no request_uuid: {response.text[:200]}",
                               maybe_placed=True) from None
