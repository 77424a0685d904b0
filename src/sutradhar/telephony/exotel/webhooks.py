"""Exotel's media socket, with the applet's Basic credentials checked when configured, and the
stream URL endpoint a Voicebot applet may ask for the socket's URL (its dynamic-URL form).

GET /exotel/stream?CallSid=...&sample-rate=8000 answers {"url": "wss://.../exotel/media?..."}; with
STREAM_TOKENS=required the URL carries a single-use `token` bound to that CallSid, which Exotel
sends back on the handshake (and in the start's custom_parameters).

Exotel has no call-control API here: hanging up is closing the socket, and the Exotel flow then
moves to its next applet, or ends the call when there is none.
"""

from __future__ import annotations

import base64
import hmac
from urllib.parse import urlencode

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from loguru import logger

from sutradhar.config import Settings
from sutradhar.telephony.admission import tokens_required
from sutradhar.telephony.exotel.codec import RATES, ExotelCodec
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
    await serve_media(websocket, Transport(websocket, codec), services)


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
