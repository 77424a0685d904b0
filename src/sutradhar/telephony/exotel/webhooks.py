"""Exotel's media socket, with the applet's Basic credentials checked when configured, and the
stream URL endpoint a Voicebot applet may ask for the socket's URL (its dynamic-URL form).

GET /exotel/stream?CallSid=...&sample-rate=8000 answers {"url": "wss://.../exotel/media?..."}; with
STREAM_TOKENS=required the URL carries a single-use `token` bound to that CallSid, which Exotel
sends back on the handshake (and in the start's custom_parameters).

POST /exotel/status takes the status callbacks of the calls we place (exotel/dialer.py): only with
the reference and HMAC their StatusCallback URL was given (Exotel signs nothing).

Exotel has no call-control API here: hanging up is closing the socket, and the Exotel flow then
moves to its next applet, or ends the call when there is none. A transfer closes it too, after
noting the call (exotel/control.py); the flow's Passthru applet then asks GET /exotel/handoff,
200 (to the Connect applet) or 302 (to Hangup).
"""

from __future__ import annotations

import base64
import hmac
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from loguru import logger

from sutradhar.config import Settings
from sutradhar.ids import is_call_id
from sutradhar.telephony.admission import tokens_required
from sutradhar.telephony.exotel.codec import RATES, ExotelCodec
from sutradhar.telephony.exotel.control import ExotelControl
from sutradhar.telephony.exotel.dialer import callback_ok
from sutradhar.telephony.media import serve_media, stream_url
from sutradhar.telephony.transport import Transport

router = APIRouter()


@router.get("/exotel/stream")
async def exotel_stream(request: Request) -> Response:
    """The Voicebot applet's dynamic URL: where to stream this call."""
    services = request.app.state.services
    settings = services.settings
    call_sid = request.query_params.get("CallSid", "")
    if not basic_auth_ok(request.headers.get("authorization", ""), settings):
        logger.bind(call_id=call_sid or "-", stage="exotel").warning("rejected /exotel/stream: bad or missing Basic auth")
        return Response("forbidden", status_code=403, media_type="text/plain")
    rate = request.query_params.get("sample-rate", "8000")
    query = {"sample-rate": rate if rate.isdigit() and int(rate) in RATES else "8000"}
    if tokens_required(settings, "exotel"):
        query["token"] = await services.stream_tokens.issue("exotel", call_sid)
    return JSONResponse({"url": stream_url(request, settings, "/exotel/media") + "?" + urlencode(query)})


# Exotel's Status values, and what an `answered` event is stored as (Twilio's name, like the rest).
EXOTEL_STATUSES = frozenset({"queued", "ringing", "in-progress", "completed", "busy", "no-answer", "failed", "canceled"})


@router.post("/exotel/status", status_code=204)
async def exotel_status(request: Request) -> Response:
    """A status callback (terminal or answered) of a call we placed."""
    services = request.app.state.services
    log = logger.bind(call_id="-", stage="exotel")
    if not callback_ok(services.settings, request.query_params.get("ref"), request.query_params.get("sig")):
        log.warning("rejected /exotel/status: not a callback URL we gave Exotel")
        raise HTTPException(403, "forbidden")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise HTTPException(400, "body is not JSON") from None
        fields = {str(k): str(v) for k, v in body.items()} if isinstance(body, dict) else {}
    else:
        fields = {k: str(v) for k, v in (await request.form()).items()}
    call_sid, status = fields.get("CallSid"), fields.get("Status", "").lower()
    if fields.get("EventType") == "answered":
        status = "in-progress"
    if not is_call_id(call_sid) or status not in EXOTEL_STATUSES:
        raise HTTPException(422, "CallSid and a known Status are required")
    logger.bind(call_id=call_sid, stage="exotel").info("call status {}", status)
    if services.store is not None:
        info = {"duration_s": fields["ConversationDuration"]} if fields.get("ConversationDuration", "").isdigit() else {}
        await services.store.carrier_status(call_sid, status, info)
    return Response(status_code=204)


@router.get("/exotel/handoff")
@router.post("/exotel/handoff")  # the Passthru applet may be set to GET or POST
async def exotel_handoff(request: Request) -> Response:
    """The Passthru applet after the Voicebot: 200 OK when the agent handed this call to a person
    (the flow's choice A, a Connect applet), 302 Found otherwise (choice B, Hangup). Exotel signs
    nothing and a flow URL is fixed: an unknown caller learns only whether a live call id it
    guessed asked for a person."""
    services = request.app.state.services
    call_sid = request.query_params.get("CallSid", "")
    if request.method == "POST" and not call_sid:
        call_sid = str((await request.form()).get("CallSid") or "")
    log = logger.bind(call_id=call_sid if is_call_id(call_sid) else "-", stage="exotel")
    number = None
    if is_call_id(call_sid):
        try:
            number = await services.shared.handoffs.get(call_sid)
        except Exception as exc:  # noqa: BLE001 - Redis down: no transfer, the flow hangs up
            log.warning("handoff lookup failed: {}", exc)
    if number:
        log.info("Exotel flow: handing the call to a person")
        return Response("transfer", status_code=200, media_type="text/plain")
    return Response(status_code=302)  # Passthru's "302 Found" branch; nothing to follow


@router.websocket("/exotel/media")
async def exotel_media(websocket: WebSocket) -> None:
    services = websocket.app.state.services
    try:
        rate = int(websocket.query_params.get("sample-rate", "8000"))
    except ValueError:
        rate = 0
    if rate not in RATES:
        await websocket.close(code=1008)
        return
    if not basic_auth_ok(websocket.headers.get("authorization", ""), services.settings):
        logger.bind(stage="exotel").warning("rejected media stream from {}: bad or missing Basic auth",
                                            websocket.client.host if websocket.client else "?")
        await websocket.close(code=1008)  # before accept: the handshake gets HTTP 403
        return
    codec = ExotelCodec(rate, token=websocket.query_params.get("token"))
    await serve_media(websocket, Transport(websocket, codec, ExotelControl(services.shared.handoffs)), services)


def basic_auth_ok(header: str, settings: Settings) -> bool:
    """Exotel sends the applet URL's KEY:TOKEN as Basic auth; checked when both are configured."""
    if not (settings.exotel_api_key and settings.exotel_api_token):
        return True
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except ValueError:
        return False
    expected = f"{settings.exotel_api_key}:{settings.exotel_api_token}".encode()
    return hmac.compare_digest(given, expected)
