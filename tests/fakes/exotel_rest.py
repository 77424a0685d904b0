"""A strict loopback fake of Exotel's Calls/connect API (a number to a flow), and Exotel's side of
the call.

    POST /v1/Accounts/{sid}/Calls/connect.json   (form: From, CallerId, Url, CallType, TimeLimit,
                                                  TimeOut, StatusCallback, StatusCallbackEvents[i],
                                                  CustomField)

Like Exotel: HTTP Basic auth as API key:token (401 otherwise), the path's account must be ours,
From / CallerId / Url required and Url a flow of this account
(`http://my.exotel.com/{sid}/exoml/start_voice/{app_id}`), StatusCallbackEvents only terminal and
answered, no unknown field; 200 with `{"Call": {...}}`. `status()` posts a status callback as
Exotel does: form fields, no signature.
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass

import httpx
from aiohttp import web

from tests.fakes._server import FakeServer

FIELDS = re.compile(r"^(From|CallerId|Url|CallType|TimeLimit|TimeOut|StatusCallback|CustomField|"
                    r"StatusCallbackEvents\[\d\])$")


@dataclass
class PlacedCall:
    sid: str
    form: dict[str, str]


class FakeExotelRest(FakeServer):
    sid = "sutradhar1"
    api_key = "exo-key"
    api_token = "exo-token"
    app_id = "926"

    def __init__(self) -> None:
        super().__init__()
        self.placed: list[PlacedCall] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/Accounts/{sid}/Calls/connect.json", self._connect)

    async def _connect(self, request: web.Request) -> web.Response:
        self.requests.append({"endpoint": "connect", "headers": dict(request.headers)})
        basic = "Basic " + base64.b64encode(f"{self.api_key}:{self.api_token}".encode()).decode()
        if request.headers.get("Authorization") != basic:
            return _error(401, "Authentication is required to view this page.")
        if request.match_info["sid"] != self.sid:
            return _error(403, "account mismatch")
        form: dict[str, str] = {}
        for key, value in (await request.post()).items():
            if key in form:
                return _error(400, f"{key} given twice")
            form[key] = str(value)
        unknown = [key for key in form if not FIELDS.fullmatch(key)]
        if unknown:
            return _error(400, f"unknown parameters {unknown}")
        for name in ("From", "CallerId", "Url"):
            if not form.get(name):
                return _error(400, f"{name} is mandatory")
        if form["Url"] != f"http://my.exotel.com/{self.sid}/exoml/start_voice/{self.app_id}":
            return _error(400, "Url is not a flow of this account")
        events = {v for k, v in form.items() if k.startswith("StatusCallbackEvents")}
        if events - {"terminal", "answered"}:
            return _error(400, f"invalid StatusCallbackEvents {sorted(events)}")
        call = PlacedCall(uuid.uuid4().hex, form)
        self.placed.append(call)
        return web.json_response({"Call": {
            "Sid": call.sid, "ParentCallSid": None, "AccountSid": self.sid, "To": None,
            "From": form["From"], "PhoneNumberSid": form["CallerId"], "Status": "in-progress",
            "Direction": "outbound-api", "Uri": f"/v1/Accounts/{self.sid}/Calls/{call.sid}.json"}})

    async def status(self, call: PlacedCall, status: str, event: str = "terminal", url: str | None = None) -> int:
        """One status callback, to the call's StatusCallback (or `url`, a forger's guess)."""
        form = {"CallSid": call.sid, "EventType": event, "Status": status,
                "DateUpdated": "2026-12-01 23:20:00", "Direction": "outbound-api",
                "From": call.form["From"], "To": call.form["CallerId"]}
        if event == "terminal":
            form["ConversationDuration"] = "12" if status == "completed" else "0"
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(url or call.form["StatusCallback"], data=form)
        return response.status_code


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"RestException": {"Status": status, "Message": message}}, status=status)
