"""Plivo webhooks: the answer XML that streams the call to /plivo/media, the transfer XML, and
the media socket."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import Response
from loguru import logger

from sutradhar.telephony.admission import tokens_required
from sutradhar.telephony.media import serve_media, stream_url
from sutradhar.telephony.plivo.codec import PlivoCodec, pack_language
from sutradhar.telephony.plivo.control import PlivoControl
from sutradhar.telephony.transport import Transport

router = APIRouter()
log = logger.bind(stage="plivo")


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
    if services.calls.at_capacity:
        log.bind(call_id=call_uuid or "-").warning("refusing call: at MAX_CONCURRENT_CALLS")
        return _xml("<Response><Speak>Sorry, all our lines are busy. Please call again later.</Speak>"
                    "<Hangup/></Response>")
    language = params.get("language") if params.get("language") in s.languages else s.default_language
    extra = f"language={pack_language(language)}"
    if tokens_required(s, "plivo"):  # hex: extraHeaders allow only [A-Za-z0-9]
        extra += f",token={await services.stream_tokens.issue('plivo', call_uuid)}"
    url = stream_url(request, s, "/plivo/media")
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
    settings = services.settings
    await serve_media(websocket, Transport(websocket, PlivoCodec(settings.languages), PlivoControl(settings)),
                      services)
