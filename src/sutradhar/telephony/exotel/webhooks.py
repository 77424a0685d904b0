"""Exotel's media socket, with the applet's Basic credentials checked when configured.

Exotel has no call-control API here: hanging up is closing the socket, and the Exotel flow then
moves to its next applet, or ends the call when there is none.
"""

from __future__ import annotations

import base64
import hmac

from fastapi import APIRouter, WebSocket
from loguru import logger

from sutradhar.config import Settings
from sutradhar.telephony.exotel.codec import RATES, ExotelCodec
from sutradhar.telephony.media import serve_media
from sutradhar.telephony.transport import Transport

router = APIRouter()


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
    await websocket.accept()
    await serve_media(websocket, Transport(websocket, ExotelCodec(rate)), services)


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
