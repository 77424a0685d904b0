"""Placing Twilio calls with the official SDK (async, aiohttp), against TWILIO_API_BASE.

The call's Url is our outbound answer webhook (`/twilio/outbound/answer?language=`), its
StatusCallback `/twilio/status`, both under PUBLIC_URL: Twilio must reach them and signs them.
With TWILIO_MACHINE_DETECTION on, Twilio's own AMD runs beside ours without delaying the answer
(AsyncAmd) and posts who answered to `/twilio/amd`.
"""

from __future__ import annotations

from urllib.parse import urlencode

from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from sutradhar.config import Settings
from sutradhar.telephony.dialing import OutboundError, missing_settings

STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]  # busy/no-answer/failed come as completed's kin
API_TIMEOUT_S = 10.0


class TwilioDialer:
    carrier = "twilio"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def caller_id(self) -> str:
        return self.settings.twilio_from_number

    def problems(self) -> list[str]:
        return missing_settings(self.settings, "Twilio", "twilio_account_sid", "twilio_auth_token",
                                "twilio_from_number", "public_url")

    async def place(self, to: str, language: str) -> str:
        s = self.settings
        public = s.public_url.rstrip("/")
        amd = {}
        if s.twilio_machine_detection != "off":
            amd = dict(machine_detection=s.twilio_machine_detection, async_amd="true",
                       async_amd_status_callback=f"{public}/twilio/amd",
                       async_amd_status_callback_method="POST")
        http = AsyncTwilioHttpClient(timeout=API_TIMEOUT_S)
        try:
            # environment={}: TWILIO_EDGE / TWILIO_REGION in the process environment must not
            # rewrite TWILIO_API_BASE's host behind the operator's back.
            client = Client(s.twilio_account_sid, s.twilio_auth_token, http_client=http, environment={})
            client.api.base_url = s.twilio_api_base.rstrip("/")
            call = await client.calls.create_async(
                to=to, from_=s.twilio_from_number,
                url=f"{public}/twilio/outbound/answer?{urlencode({'language': language})}",
                status_callback=f"{public}/twilio/status", status_callback_method="POST",
                status_callback_event=STATUS_EVENTS, **amd)
        except TwilioRestException as exc:
            raise OutboundError(502, f"Twilio refused the call: {exc.msg} (code {exc.code}, HTTP {exc.status})") from None
        except (OSError, TimeoutError) as exc:  # aiohttp's connection errors are OSErrors
            raise OutboundError(502, f"Twilio did not answer: {type(exc).__name__}: {exc}",
                               maybe_placed=True) from None
        finally:
            await http.close()
        return str(call.sid)
