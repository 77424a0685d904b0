"""The browser client: GET / serves a one-page app; WS /browser/media carries the call.

Wire: binary frames are PCM16 mono 16 kHz both ways (20 ms out, any size in); text frames are JSON:
in  {"type":"start","language":"hi-IN"} {"type":"text","text":...} {"type":"dtmf","digit":"1"}
    {"type":"mark","name":...} (echoed by the page when the audio before it has played) {"type":"stop"}
out {"type":"mark","name":...} {"type":"clear"} and call events (started, transcript, language,
    turn with per-stage timings, interrupted, dtmf).
An optional BROWSER_TOKEN is required as ?token= on the page and the socket.
"""

from __future__ import annotations

import hmac
import json
import uuid
from importlib import resources
from typing import Any

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import HTMLResponse, Response

from sutradhar.config import Settings
from sutradhar.language import LANGUAGES
from sutradhar.telephony.base import Dtmf, Inbound, MalformedMessage, MarkPlayed, Start, Stop, Text, Transport, parse_json
from sutradhar.telephony.media import serve_media

router = APIRouter()


def _token_ok(settings: Settings, token: str | None) -> bool:
    return not settings.browser_token or hmac.compare_digest(settings.browser_token, token or "")


class BrowserTransport(Transport):
    carrier = "browser"
    sample_rate = 16000

    def decode(self, message: str | bytes) -> Inbound:
        if isinstance(message, bytes):
            if len(message) % 2:
                raise MalformedMessage("odd-length PCM16 frame")
            return message
        msg = parse_json(message)
        kind = msg.get("type")
        if kind == "start":
            call_id = "web-" + uuid.uuid4().hex[:16]  # never the page's choice: ids must not collide
            return Start(call_id=call_id, carrier_call_id="", language=msg.get("language"))
        if kind == "mark":
            return MarkPlayed(str(msg["name"]))
        if kind == "text":
            text = str(msg["text"]).strip()
            return Text(text[:2000]) if text else None
        if kind == "dtmf":
            return Dtmf(str(msg["digit"])[:1])
        if kind == "stop":
            return Stop("caller_hangup")
        raise MalformedMessage(f"unknown browser message {kind!r}")

    async def send_audio(self, pcm: bytes) -> None:
        await self.ws.send_bytes(pcm)

    async def send_mark(self, name: str) -> None:
        await self.ws.send_text(json.dumps({"type": "mark", "name": name}))

    async def send_clear(self) -> None:
        await self.ws.send_text('{"type":"clear"}')

    async def send_event(self, event: dict[str, Any]) -> None:
        if not self.closed:
            await self.ws.send_text(json.dumps(event, ensure_ascii=False))


@router.get("/", response_class=HTMLResponse)
async def browser_page(request: Request) -> Response:
    settings = request.app.state.services.settings
    if not _token_ok(settings, request.query_params.get("token")):
        return Response("a valid ?token= is required", status_code=403, media_type="text/plain")
    page = resources.files("sutradhar").joinpath("static/index.html").read_text(encoding="utf-8")
    options = "".join(
        f'<option value="{code}"{" selected" if code == settings.default_language else ""}>'
        f"{LANGUAGES[code].native_name} ({LANGUAGES[code].name})</option>" for code in settings.languages)
    return HTMLResponse(page.replace("<!--LANGUAGES-->", options))


@router.websocket("/browser/media")
async def browser_media(websocket: WebSocket) -> None:
    services = websocket.app.state.services
    if not _token_ok(services.settings, websocket.query_params.get("token")):
        await websocket.close(code=1008)
        return
    await websocket.accept()
    await serve_media(websocket, BrowserTransport(websocket, services.settings), services)
