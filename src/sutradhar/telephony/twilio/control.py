"""Twilio call control through the REST API: hang up (Status=completed) and transfer (<Dial>).

No key presses here: updating a live call's TwiML (`<Play digits>`) ends its <Connect><Stream>,
and a Media Stream takes only media, mark and clear from us, so the session sends in-band tones."""

from __future__ import annotations

import httpx
from loguru import logger
from twilio.twiml.voice_response import VoiceResponse

from sutradhar.config import Settings
from sutradhar.telephony.transport import CallControl

log = logger.bind(stage="twilio")


class TwilioControl(CallControl):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _credentials(self, call_sid: str) -> bool:
        s = self.settings
        return bool(s.twilio_account_sid and s.twilio_auth_token and call_sid)

    async def _update_call(self, call_sid: str, data: dict[str, str]) -> bool:
        s = self.settings
        url = f"{s.twilio_api_base.rstrip('/')}/2010-04-01/Accounts/{s.twilio_account_sid}/Calls/{call_sid}.json"
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(url, data=data, auth=(s.twilio_account_sid, s.twilio_auth_token))
        bound = log.bind(call_id=call_sid)
        if response.status_code == 404 and _error_code(response) == 20404:
            bound.info("Twilio says the call had already ended")
            return True
        if response.status_code >= 400:
            bound.warning("Twilio call update failed status={} body={}", response.status_code, response.text[:200])
            return False
        return True

    async def hang_up(self, carrier_call_id: str) -> None:
        if self._credentials(carrier_call_id):
            await self._update_call(carrier_call_id, {"Status": "completed"})

    async def transfer(self, carrier_call_id: str, number: str) -> bool:
        if not self._credentials(carrier_call_id):
            log.bind(call_id=carrier_call_id or "-").warning(
                "transfer needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
            return False
        twiml = VoiceResponse()
        twiml.dial(number)
        return await self._update_call(carrier_call_id, {"Twiml": str(twiml)})


def _error_code(response: httpx.Response) -> int | None:
    try:
        return int(response.json().get("code"))
    except (ValueError, TypeError, AttributeError):
        return None
