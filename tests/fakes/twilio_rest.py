"""A strict loopback fake of Twilio's REST API for outbound calls, and Twilio's side of the call.

    POST /2010-04-01/Accounts/{AccountSid}/Calls.json    (form: To, From, Url, StatusCallback,
                                                          StatusCallbackEvent..., StatusCallbackMethod,
                                                          MachineDetection, AsyncAmd, AsyncAmdStatusCallback,
                                                          AsyncAmdStatusCallbackMethod)
    POST /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json  (form: Status=completed | Twiml)

Like Twilio: HTTP Basic auth as AccountSid:AuthToken (401, code 20003, otherwise; the path's
account must be the authenticated one), E.164 `To`/`From` (400, code 21211 / 21212), `Url`
required (400, 21205), no field Twilio does not know (400), MachineDetection only Enable or
DetectMessageEnd, AsyncAmd only true/false and with AsyncAmd=true an AsyncAmdStatusCallback URL
(400, 21626 otherwise), 201 with the call resource (JSON). Updating a call needs a call this fake
placed (404, 20404) and Status=completed or Twiml (400). Then it plays Twilio: `answer()` fetches the
call's Url signed with X-Twilio-Signature, `status()` posts a signed status callback and `amd()` the
AsyncAmd callback (AnsweredBy, MachineDetectionDuration) with the fields Twilio sends.
"""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from dataclasses import dataclass, field

import httpx
from aiohttp import web
from twilio.request_validator import RequestValidator

from tests.fakes._server import FakeServer

E164 = re.compile(r"^\+[1-9]\d{7,14}$")
CALL_FIELDS = {"To", "From", "Url", "Method", "StatusCallback", "StatusCallbackEvent",
               "StatusCallbackMethod", "Timeout", "MachineDetection", "Record", "AsyncAmd",
               "AsyncAmdStatusCallback", "AsyncAmdStatusCallbackMethod"}
MACHINE_DETECTION = {"Enable", "DetectMessageEnd"}
ANSWERED_BY = {"human", "machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other",
               "fax", "unknown"}
CALLBACK_EVENTS = {"initiated", "ringing", "answered", "completed"}
# The CallStatus a callback carries for each outcome (answered is reported as in-progress).
CALL_STATUS = {"initiated": "initiated", "ringing": "ringing", "answered": "in-progress",
               "completed": "completed", "busy": "busy", "no-answer": "no-answer", "failed": "failed"}


@dataclass
class PlacedCall:
    sid: str
    form: dict[str, list[str]]
    statuses_sent: list[tuple[str, int]] = field(default_factory=list)  # (CallStatus, our reply)
    updates: list[dict[str, str]] = field(default_factory=list)  # call updates: hang-ups, transfers

    def one(self, name: str) -> str:
        return self.form[name][0]


class FakeTwilioRest(FakeServer):
    account_sid = "AC" + "0" * 32
    auth_token = "fake-twilio-token"

    def __init__(self) -> None:
        super().__init__()
        self.placed: list[PlacedCall] = []
        self.new_calls: asyncio.Queue[PlacedCall] = asyncio.Queue()  # each call as it is placed
        # Calls to these numbers are placed, then their create request is not answered until
        # `release` is set: a server killed meanwhile never learns the call's sid.
        self.hold_numbers: set[str] = set()
        self.release = asyncio.Event()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/2010-04-01/Accounts/{account}/Calls.json", self._create_call)
        app.router.add_post("/2010-04-01/Accounts/{account}/Calls/{sid}.json", self._update_call)

    async def _create_call(self, request: web.Request) -> web.Response:
        self.requests.append({"endpoint": "calls", "headers": dict(request.headers)})
        if request.headers.get("Authorization", "") != _basic(self.account_sid, self.auth_token):
            return _error(401, 20003, "Authenticate")
        if request.match_info["account"] != self.account_sid:
            return _error(404, 20404, "The requested resource was not found")
        if request.content_type != "application/x-www-form-urlencoded":
            return _error(400, 20001, f"unexpected content type {request.content_type}")
        post = await request.post()
        form: dict[str, list[str]] = {}
        for key, value in post.items():
            form.setdefault(key, []).append(str(value))
        unknown = set(form) - CALL_FIELDS
        if unknown:
            return _error(400, 20001, f"unknown parameters {sorted(unknown)}")
        for name, code in (("To", 21211), ("From", 21212)):
            if not E164.fullmatch(form.get(name, [""])[0]):
                return _error(400, code, f"Invalid '{name}' Phone Number")
        if not form.get("Url", [""])[0].startswith(("http://", "https://")):
            return _error(400, 21205, "Url is not a valid URL")
        amd = _amd_problem(form)
        if amd:
            return _error(400, 21626, amd)
        events = set(form.get("StatusCallbackEvent", []))
        if events - CALLBACK_EVENTS:
            return _error(400, 21626, f"invalid StatusCallbackEvent {sorted(events - CALLBACK_EVENTS)}")
        call = PlacedCall("CA" + uuid.uuid4().hex, form)
        self.placed.append(call)
        self.new_calls.put_nowait(call)
        if call.one("To") in self.hold_numbers:
            self.hold_numbers.discard(call.one("To"))
            await self.release.wait()
        return web.json_response({
            "sid": call.sid, "account_sid": self.account_sid, "to": call.one("To"),
            "from": call.one("From"), "status": "queued", "direction": "outbound-api",
            "api_version": "2010-04-01", "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{call.sid}.json",
        }, status=201)

    async def _update_call(self, request: web.Request) -> web.Response:
        self.requests.append({"endpoint": "update", "headers": dict(request.headers)})
        if request.headers.get("Authorization", "") != _basic(self.account_sid, self.auth_token):
            return _error(401, 20003, "Authenticate")
        call = next((c for c in self.placed if c.sid == request.match_info["sid"]), None)
        if request.match_info["account"] != self.account_sid or call is None:
            return _error(404, 20404, "The requested resource was not found")
        form = {k: str(v) for k, v in (await request.post()).items()}
        if set(form) - {"Status", "Twiml", "Url", "Method"} or form.get("Status", "completed") not in (
                "completed", "canceled") or not ({"Status", "Twiml", "Url"} & set(form)):
            return _error(400, 20001, f"unusable call update {sorted(form)}")
        call.updates.append(form)
        return web.json_response({"sid": call.sid, "account_sid": self.account_sid,
                                  "status": form.get("Status", "in-progress")})

    def hung_up(self, call: PlacedCall) -> bool:
        """Did the server end this call through the REST API?"""
        return any(u.get("Status") == "completed" for u in call.updates)

    # --- Twilio calling us back ---

    def _form(self, call: PlacedCall, status: str) -> dict[str, str]:
        return {"AccountSid": self.account_sid, "CallSid": call.sid, "CallStatus": status,
                "Direction": "outbound-api", "To": call.one("To"), "From": call.one("From"),
                "ApiVersion": "2010-04-01"}

    async def _post_signed(self, url: str, form: dict[str, str], token: str | None = None) -> httpx.Response:
        signature = RequestValidator(token or self.auth_token).compute_signature(url, form)
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.post(url, data=form, headers={"X-Twilio-Signature": signature})

    async def answer(self, call: PlacedCall) -> str:
        """The callee picked up: fetch the call's TwiML like Twilio does."""
        response = await self._post_signed(call.one("Url"), self._form(call, "in-progress"))
        response.raise_for_status()
        return response.text

    async def status(self, call: PlacedCall, outcome: str, *, token: str | None = None,
                     **extra: str) -> int:
        """Send one status callback (`token`: sign with another account's token, a forgery)."""
        status = CALL_STATUS[outcome]
        form = {**self._form(call, status), "CallbackSource": "call-progress-events",
                "SequenceNumber": str(len(call.statuses_sent)), **extra}
        if status in ("completed", "busy", "no-answer", "failed"):
            form.setdefault("CallDuration", "0")
        response = await self._post_signed(call.one("StatusCallback"), form, token)
        call.statuses_sent.append((status, response.status_code))
        return response.status_code


    async def amd(self, call: PlacedCall, answered_by: str, duration_ms: int = 2400, *,
                  token: str | None = None) -> int:
        """Send the AsyncAmd callback: who Twilio thinks answered."""
        assert answered_by in ANSWERED_BY, answered_by
        form = {"AccountSid": self.account_sid, "CallSid": call.sid, "AnsweredBy": answered_by,
                "MachineDetectionDuration": str(duration_ms)}
        response = await self._post_signed(call.one("AsyncAmdStatusCallback"), form, token)
        return response.status_code


def _amd_problem(form: dict[str, list[str]]) -> str | None:
    """What Twilio would refuse in the machine-detection fields, or None."""
    detection = form.get("MachineDetection", [None])[0]
    if detection is not None and detection not in MACHINE_DETECTION:
        return f"MachineDetection must be one of {sorted(MACHINE_DETECTION)}"
    async_amd = form.get("AsyncAmd", [None])[0]
    if async_amd is not None and async_amd not in ("true", "false"):
        return "AsyncAmd must be true or false"
    if async_amd == "true":
        if detection is None:
            return "AsyncAmd needs MachineDetection"
        if not form.get("AsyncAmdStatusCallback", [""])[0].startswith(("http://", "https://")):
            return "AsyncAmdStatusCallback is not a valid URL"
    if form.get("AsyncAmdStatusCallbackMethod", ["POST"])[0] not in ("GET", "POST"):
        return "AsyncAmdStatusCallbackMethod must be GET or POST"
    return None


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message, "more_info":
                              f"https://www.twilio.com/docs/errors/{code}", "status": status}, status=status)
