"""Plivo Audio Streams: the answer XML and the bidirectional stream codec (mu-law 8 kHz).

Plivo names things differently: playAudio / checkpoint / clearAudio out, playedStream back for a
checkpoint that actually played (never after clearAudio). The stream's context travels in
`extraHeaders`, which allows only [A-Za-z0-9] in keys and values, so "hi-IN" is sent as "hiIN".
Hang-up and transfer use the REST API (Basic auth auth_id:auth_token).
"""

from __future__ import annotations

import base64
import json
from xml.sax.saxutils import escape, quoteattr

import httpx
from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import Response
from loguru import logger

from sutradhar.audio.codecs import pcm16_to_ulaw, ulaw_to_pcm16
from sutradhar.config import Settings
from sutradhar.telephony.base import Dtmf, Inbound, MalformedMessage, MarkPlayed, Start, Stop, Transport, parse_json
from sutradhar.telephony.media import serve_media

router = APIRouter()
log = logger.bind(stage="plivo")


def _pack(code: str) -> str:
    return "".join(ch for ch in code if ch.isalnum())


def _unpack_language(value: str | None, settings: Settings) -> str | None:
    if not value:
        return None
    return next((code for code in settings.languages if _pack(code) == value or code == value), None)


def parse_extra_headers(raw: str | dict | None) -> dict[str, str]:
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    out: dict[str, str] = {}
    for part in (raw or "").replace(";", ",").split(","):
        key, sep, value = part.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


class PlivoTransport(Transport):
    carrier = "plivo"
    sample_rate = 8000

    def __init__(self, websocket: WebSocket, settings: Settings) -> None:
        super().__init__(websocket, settings)
        self.stream_id = ""
        self.call_uuid = ""
        self._media_prefix = ""

    def decode(self, message: str | bytes) -> Inbound:
        msg = parse_json(message)
        event = msg.get("event")
        if event == "media":
            return ulaw_to_pcm16(base64.b64decode(msg["media"]["payload"], validate=True))
        if event == "start":
            start = msg["start"]
            self.stream_id, self.call_uuid = start["streamId"], start["callId"]
            self._media_prefix = ('{"event":"playAudio","streamId":' + json.dumps(self.stream_id)
                                  + ',"media":{"contentType":"audio/x-mulaw","sampleRate":8000,"payload":"')
            extra = parse_extra_headers(msg.get("extra_headers") or start.get("extra_headers"))
            return Start(call_id=self.call_uuid, carrier_call_id=self.call_uuid,
                         language=_unpack_language(extra.get("language"), self.settings),
                         info={"stream_id": self.stream_id, "account_id": start.get("accountId", "")})
        if event == "playedStream":
            return MarkPlayed(msg["name"])
        if event == "dtmf":
            return Dtmf(str(msg["dtmf"]["digit"]))
        if event == "stop":  # not documented on the socket; handled defensively
            return Stop("caller_hangup")
        if event in ("clearedAudio", "connected"):
            return None
        raise MalformedMessage(f"unknown Plivo event {event!r}")

    async def send_audio(self, pcm: bytes) -> None:
        await self.ws.send_text(self._media_prefix + base64.b64encode(pcm16_to_ulaw(pcm)).decode() + '"}}')

    async def send_mark(self, name: str) -> None:
        await self.ws.send_text(json.dumps({"event": "checkpoint", "streamId": self.stream_id, "name": name}))

    async def send_clear(self) -> None:
        await self.ws.send_text(json.dumps({"event": "clearAudio", "streamId": self.stream_id}))

    def _can_call_api(self) -> bool:
        s = self.settings
        return bool(s.plivo_auth_id and s.plivo_auth_token and self.call_uuid)

    def _call_url(self) -> str:
        s = self.settings
        return f"{s.plivo_api_base.rstrip('/')}/v1/Account/{s.plivo_auth_id}/Call/{self.call_uuid}/"

    async def hang_up(self, reason: str) -> None:
        if self._can_call_api():
            s = self.settings
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.delete(self._call_url(), auth=(s.plivo_auth_id, s.plivo_auth_token))
            if response.status_code == 404:
                self.log.info("Plivo says the call had already ended")
            elif response.status_code >= 400:
                self.log.warning("Plivo hang-up failed status={} body={}", response.status_code, response.text[:200])
        await self.close(1000, reason)

    async def transfer(self, number: str) -> bool:
        s = self.settings
        if not (self._can_call_api() and s.public_url):
            self.log.warning("transfer needs PLIVO_AUTH_ID, PLIVO_AUTH_TOKEN and PUBLIC_URL")
            return False
        data = {"legs": "aleg", "aleg_url": s.public_url.rstrip("/") + "/plivo/transfer", "aleg_method": "POST"}
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(self._call_url(), json=data, auth=(s.plivo_auth_id, s.plivo_auth_token))
        if response.status_code >= 400:
            self.log.warning("Plivo transfer failed status={} body={}", response.status_code, response.text[:200])
            return False
        await self.close(1000, "transferred")
        return True


def _xml(body: str) -> Response:
    return Response('<?xml version="1.0" encoding="UTF-8"?>' + body, media_type="application/xml")


@router.api_route("/plivo/answer", methods=["GET", "POST"])
async def plivo_answer(request: Request) -> Response:
    """Answer URL: stream the call to /plivo/media. `?language=hi-IN` picks the call's language."""
    services = request.app.state.services
    s = services.settings
    params = dict(request.query_params)
    if request.method == "POST":
        params.update({k: str(v) for k, v in (await request.form()).items()})
    call_uuid = params.get("CallUUID", "")
    if len(services.calls) >= s.max_concurrent_calls:
        log.bind(call_id=call_uuid or "-").warning("refusing call: at MAX_CONCURRENT_CALLS")
        return _xml("<Response><Speak>Sorry, all our lines are busy. Please call again later.</Speak>"
                    "<Hangup/></Response>")
    language = params.get("language") if params.get("language") in s.languages else s.default_language
    extra = f"language={_pack(language)}"
    url = s.media_url("/plivo/media") if s.public_url else \
        f"{'wss' if request.url.scheme == 'https' else 'ws'}://{request.url.netloc}/plivo/media"
    return _xml('<Response><Stream bidirectional="true" keepCallAlive="true" '
                'contentType="audio/x-mulaw;rate=8000" streamTimeout="86400" '
                f'extraHeaders={quoteattr(extra)}>{escape(url)}</Stream></Response>')


@router.api_route("/plivo/transfer", methods=["GET", "POST"])
async def plivo_transfer(request: Request) -> Response:
    number = request.app.state.services.settings.transfer_number
    return _xml(f"<Response><Dial><Number>{escape(number)}</Number></Dial></Response>")


@router.websocket("/plivo/media")
async def plivo_media(websocket: WebSocket) -> None:
    services = websocket.app.state.services
    await websocket.accept()
    await serve_media(websocket, PlivoTransport(websocket, services.settings), services)
