"""A strict loopback fake of Plivo's Make-a-Call API, and Plivo's side of the call.

    POST /v1/Account/{auth_id}/Call/   (JSON: from, to, answer_url, answer_method, ring_url,
                                        ring_method, hangup_url, hangup_method)
    DELETE /v1/Account/{auth_id}/Call/{call_uuid}/   (hang up an answered call: 204, 404 unknown)
    POST /v1/Account/{auth_id}/Call/{call_uuid}/     (transfer, JSON: legs aleg|bleg|both, aleg_url,
                                                      aleg_method, bleg_url, bleg_method: 202)
    POST /v1/Account/{auth_id}/Call/{call_uuid}/DTMF/ (send digits, JSON: digits 0-9 * # and w/W
                                                      pauses, leg aleg|bleg: 202)

Like Plivo: HTTP Basic auth as AUTH_ID:AUTH_TOKEN (401 otherwise), the path's account must be the
authenticated one, a JSON body with `from`, `to` (digits with the country code) and `answer_url`,
no unknown field (400); 201 with `{"message": "call fired", "request_uuid": ...}`. Then it plays
Plivo, every request signed with X-Plivo-Signature-V3: `ring()`, `answer()` (the answer XML for
the call's new CallUUID) and `hangup()`.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web

from sutradhar.telephony.plivo.signature import signature_v3
from tests.fakes._server import FakeServer

FIELDS = {"from", "to", "answer_url", "answer_method", "ring_url", "ring_method", "hangup_url",
          "hangup_method", "fallback_url", "fallback_method", "caller_name", "time_limit", "ring_timeout"}
NUMBER = re.compile(r"^[1-9]\d{7,14}$")


@dataclass
class PlacedCall:
    request_uuid: str
    body: dict[str, Any]
    call_uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    hung_up: bool = False  # the server hung up through the API


class FakePlivoRest(FakeServer):
    auth_id = "MAFAKEPLIVOACCOUNT01"
    auth_token = "fake-plivo-token"

    def __init__(self) -> None:
        super().__init__()
        self.placed: list[PlacedCall] = []
        self.transfers: dict[str, dict[str, Any]] = {}  # call uuid -> the transfer's body
        self.digits: list[tuple[str, dict[str, Any]]] = []  # (call uuid, send-digits body) in order

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/Account/{auth_id}/Call/", self._make_call)
        app.router.add_delete("/v1/Account/{auth_id}/Call/{call_uuid}/", self._hang_up)
        app.router.add_post("/v1/Account/{auth_id}/Call/{call_uuid}/", self._transfer)
        app.router.add_post("/v1/Account/{auth_id}/Call/{call_uuid}/DTMF/", self._send_digits)

    async def _send_digits(self, request: web.Request) -> web.Response:
        """Like Plivo's Send Digits: `digits` required (keypad keys, w = 0.5 s and W = 1 s pause),
        `leg` aleg (default) or bleg, nothing else."""
        self.requests.append({"endpoint": "dtmf", "headers": dict(request.headers)})
        basic = "Basic " + base64.b64encode(f"{self.auth_id}:{self.auth_token}".encode()).decode()
        if request.headers.get("Authorization") != basic:
            return _error(401, "Authentication failed")
        if request.match_info["auth_id"] != self.auth_id:
            return _error(404, "not found")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _error(400, "body is not JSON")
        if not isinstance(body, dict) or set(body) - {"digits", "leg"}:
            return _error(400, "unknown parameters")
        if not re.fullmatch(r"[0-9*#wW]+", str(body.get("digits", ""))):
            return _error(400, "digits must be 0-9, *, #, w or W")
        if body.get("leg", "aleg") not in ("aleg", "bleg"):
            return _error(400, "leg must be aleg or bleg")
        self.digits.append((request.match_info["call_uuid"], body))
        return web.json_response({"api_id": str(uuid.uuid4()), "message": "digits sent"}, status=202)

    def _unauthorised(self, request: web.Request) -> web.Response | None:
        """Plivo's REST API takes HTTP Basic auth with the account's auth id and token."""
        basic = "Basic " + base64.b64encode(f"{self.auth_id}:{self.auth_token}".encode()).decode()
        return _error(401, "Authentication failed") if request.headers.get("Authorization") != basic else None

    async def _json_body(self, request: web.Request) -> Any:
        """The request's JSON body, or the refusal Plivo gives (auth, another account, not JSON)."""
        if (refused := self._unauthorised(request)) is not None:
            return refused
        if request.match_info["auth_id"] != self.auth_id:
            return _error(404, "not found")
        try:
            return json.loads(await request.read())
        except ValueError:
            return _error(400, "body is not JSON")

    async def _transfer(self, request: web.Request) -> web.Response:
        """Like Plivo's Transfer a Call: the legs to move and the URL each fetches its XML from."""
        self.requests.append({"endpoint": "transfer", "headers": dict(request.headers)})
        body = await self._json_body(request)
        if isinstance(body, web.Response):
            return body
        known = {"legs", "aleg_url", "aleg_method", "bleg_url", "bleg_method"}
        if not isinstance(body, dict) or set(body) - known:
            return _error(400, "unknown parameters")
        legs = body.get("legs")
        if legs not in ("aleg", "bleg", "both"):
            return _error(400, "legs must be aleg, bleg or both")
        for leg in ("aleg", "bleg"):
            if legs in (leg, "both") and not str(body.get(f"{leg}_url", "")).startswith(("http://", "https://")):
                return _error(400, f"{leg}_url is required")
            if body.get(f"{leg}_method", "POST") not in ("GET", "POST"):
                return _error(400, f"{leg}_method must be GET or POST")
        self.transfers[request.match_info["call_uuid"]] = body
        return web.json_response({"api_id": str(uuid.uuid4()), "message": "call transferred"}, status=202)

    async def fetch_transfer_xml(self, call_uuid: str) -> httpx.Response:
        """Plivo moving the A leg: fetch the transfer's aleg_url, signed like every Plivo request."""
        body = self.transfers[call_uuid]
        form = {"CallUUID": call_uuid, "Direction": "inbound", "CallStatus": "in-progress"}
        return await self._post_signed(body["aleg_url"], form)

    async def _hang_up(self, request: web.Request) -> web.Response:
        self.requests.append({"endpoint": "hangup", "headers": dict(request.headers)})
        if (refused := self._unauthorised(request)) is not None:
            return refused
        call = next((c for c in self.placed if c.call_uuid == request.match_info["call_uuid"]), None)
        if request.match_info["auth_id"] != self.auth_id or call is None:
            return _error(404, "not found")
        call.hung_up = True
        return web.Response(status=204)

    async def _make_call(self, request: web.Request) -> web.Response:
        self.requests.append({"endpoint": "call", "headers": dict(request.headers)})
        body = await self._json_body(request)
        if isinstance(body, web.Response):
            return body
        if not isinstance(body, dict) or set(body) - FIELDS:
            return _error(400, f"unknown parameters {sorted(set(body) - FIELDS) if isinstance(body, dict) else body}")
        for name in ("from", "to"):
            if not NUMBER.fullmatch(str(body.get(name, ""))):
                return _error(400, f"invalid {name} number")
        if not str(body.get("answer_url", "")).startswith(("http://", "https://")):
            return _error(400, "answer_url is required")
        call = PlacedCall(str(uuid.uuid4()), body)
        self.placed.append(call)
        return web.json_response({"api_id": str(uuid.uuid4()), "message": "call fired",
                                  "request_uuid": call.request_uuid}, status=201)

    # --- Plivo calling us back ---

    def _form(self, call: PlacedCall, status: str, answered: bool) -> dict[str, str]:
        form = {"RequestUUID": call.request_uuid, "CallStatus": status, "Direction": "outbound",
                "From": call.body["from"], "To": call.body["to"], "Event": "StartApp" if answered else status}
        if answered or status != "ringing":
            form["CallUUID"] = call.call_uuid
        return form

    async def _post_signed(self, url: str, form: dict[str, str], token: str | None = None) -> httpx.Response:
        nonce = uuid.uuid4().hex
        headers = {"X-Plivo-Signature-V3-Nonce": nonce,
                   "X-Plivo-Signature-V3": signature_v3(token or self.auth_token, "POST", url, form, nonce)}
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.post(url, data=form, headers=headers)

    async def ring(self, call: PlacedCall) -> int:
        return (await self._post_signed(call.body["ring_url"], self._form(call, "ringing", False))).status_code

    async def answer(self, call: PlacedCall) -> httpx.Response:
        return await self._post_signed(call.body["answer_url"], self._form(call, "in-progress", True))

    async def hangup(self, call: PlacedCall, status: str = "completed", *, answered: bool = True,
                     token: str | None = None) -> int:
        form = self._form(call, status, answered)
        if not answered:
            form.pop("CallUUID", None)
        form.update(Duration="9" if answered else "0", HangupCause="NORMAL_CLEARING")
        return (await self._post_signed(call.body["hangup_url"], form, token)).status_code


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"api_id": str(uuid.uuid4()), "error": message}, status=status)
