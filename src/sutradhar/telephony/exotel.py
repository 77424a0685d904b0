"""Exotel Voicebot / AgentStream: PCM16 (not mu-law) at 8/16/24 kHz, snake_case JSON.

The rate comes from the stream URL (`?sample-rate=`, default 8000). Exotel wants outbound media in
chunks of at least 100 ms and in multiples of 320 bytes (a short tail packet makes it wait 20 ms
and leaves a gap), so this transport paces 100 ms frames. Hanging up is closing the socket: the
Exotel flow then moves to its next applet, or ends the call when there is none.
"""

from __future__ import annotations

import base64
import hmac
import json

from fastapi import APIRouter, WebSocket
from loguru import logger

from sutradhar.config import Settings
from sutradhar.telephony.base import Dtmf, Inbound, MalformedMessage, MarkPlayed, Start, Stop, Transport, parse_json
from sutradhar.telephony.media import serve_media

router = APIRouter()
RATES = (8000, 16000, 24000)


class ExotelTransport(Transport):
    carrier = "exotel"
    frame_ms = 100  # 1600 / 3200 / 4800 bytes: at least 100 ms and a multiple of 320 bytes
    lead_frames = 1

    def __init__(self, websocket: WebSocket, settings: Settings, sample_rate: int = 8000) -> None:
        super().__init__(websocket, settings)
        self.sample_rate = sample_rate
        self.stream_sid = ""
        self._media_prefix = ""

    def decode(self, message: str | bytes) -> Inbound:
        msg = parse_json(message)
        event = msg.get("event")
        if event == "media":
            pcm = base64.b64decode(msg["media"]["payload"], validate=True)
            if len(pcm) % 2:
                raise MalformedMessage("odd-length PCM16 payload")
            return pcm
        if event == "start":
            start = msg["start"]
            self.stream_sid = start.get("stream_sid") or msg.get("stream_sid") or ""
            self._media_prefix = f'{{"event":"media","stream_sid":{json.dumps(self.stream_sid)},"media":{{"payload":"'
            rate = int((start.get("media_format") or {}).get("sample_rate") or self.sample_rate)
            if rate in RATES:
                self.sample_rate = rate
            params = start.get("custom_parameters") or {}
            call_sid = start["call_sid"]
            return Start(call_id=call_sid, carrier_call_id=call_sid, language=params.get("language"),
                         info={"stream_sid": self.stream_sid, "account_sid": start.get("account_sid", ""),
                               "sample_rate": self.sample_rate})
        if event == "mark":
            return MarkPlayed(msg["mark"]["name"])
        if event == "dtmf":
            return Dtmf(str(msg["dtmf"]["digit"]))
        if event == "stop":
            return Stop((msg.get("stop") or {}).get("reason") or "caller_hangup")
        if event == "connected":
            return None
        raise MalformedMessage(f"unknown Exotel event {event!r}")

    async def send_audio(self, pcm: bytes) -> None:
        await self.ws.send_text(self._media_prefix + base64.b64encode(pcm).decode() + '"}}')

    async def send_mark(self, name: str) -> None:
        await self.ws.send_text(json.dumps({"event": "mark", "stream_sid": self.stream_sid, "mark": {"name": name}}))

    async def send_clear(self) -> None:
        await self.ws.send_text(json.dumps({"event": "clear", "stream_sid": self.stream_sid}))


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
    await serve_media(websocket, ExotelTransport(websocket, services.settings, rate), services)


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
