"""Plivo call control through the REST API (Basic auth auth_id:auth_token): hang up (DELETE the
call), transfer (redirect the A leg to /plivo/transfer, which answers with <Dial>) and press keys
(Send Digits: POST .../Call/{uuid}/DTMF/ with `digits`, played on the A leg)."""

from __future__ import annotations

import httpx
from loguru import logger

from sutradhar.config import Settings
from sutradhar.telephony.transport import CallControl

log = logger.bind(stage="plivo")


class PlivoControl(CallControl):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _can_call_api(self, call_uuid: str) -> bool:
        s = self.settings
        return bool(s.plivo_auth_id and s.plivo_auth_token and call_uuid)

    def _call_url(self, call_uuid: str) -> str:
        s = self.settings
        return f"{s.plivo_api_base.rstrip('/')}/v1/Account/{s.plivo_auth_id}/Call/{call_uuid}/"

    async def hang_up(self, carrier_call_id: str) -> None:
        if not self._can_call_api(carrier_call_id):
            return
        s = self.settings
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.delete(self._call_url(carrier_call_id), auth=(s.plivo_auth_id, s.plivo_auth_token))
        bound = log.bind(call_id=carrier_call_id)
        if response.status_code == 404:
            bound.info("Plivo says the call had already ended")
        elif response.status_code >= 400:
            bound.warning("Plivo hang-up failed status={} body={}", response.status_code, response.text[:200])

    async def transfer(self, carrier_call_id: str, number: str) -> bool:
        s = self.settings
        bound = log.bind(call_id=carrier_call_id or "-")
        if not (self._can_call_api(carrier_call_id) and s.public_url):
            bound.warning("transfer needs PLIVO_AUTH_ID, PLIVO_AUTH_TOKEN and PUBLIC_URL")
            return False
        data = {"legs": "aleg", "aleg_url": s.public_url.rstrip("/") + "/plivo/transfer", "aleg_method": "POST"}
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(self._call_url(carrier_call_id), json=data,
                                         auth=(s.plivo_auth_id, s.plivo_auth_token))
        if response.status_code >= 400:
            bound.warning("Plivo transfer failed status={} body={}", response.status_code, response.text[:200])
            return False
        return True

    async def send_digits(self, carrier_call_id: str, digits: str) -> bool:
        s = self.settings
        bound = log.bind(call_id=carrier_call_id or "-")
        if not self._can_call_api(carrier_call_id):
            return False  # no credentials: the session sends tones instead
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.post(self._call_url(carrier_call_id) + "DTMF/",
                                             json={"digits": digits, "leg": "aleg"},
                                             auth=(s.plivo_auth_id, s.plivo_auth_token))
        except httpx.HTTPError as exc:
            bound.warning("Plivo send digits failed: {}; sending tones", exc)
            return False
        if response.status_code >= 400:
            bound.warning("Plivo send digits failed status={} body={}; sending tones",
                          response.status_code, response.text[:200])
            return False
        return True
