"""Twilio: the IVR webhooks (TwiML) and the bidirectional Media Stream codec.

Call flow: POST /twilio/voice answers with a one-digit language menu; POST /twilio/language stores
the choice (CallSid -> language) and connects the call to WS /twilio/media, passing the language
and our call id as <Parameter>s (the stream URL must not carry a query string). Audio is 8 kHz
mu-law both ways, 160 bytes (20 ms) per outbound media message, with a mark after each sentence.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import Response
from loguru import logger
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, Gather, VoiceResponse

from sutradhar.audio.codecs import pcm16_to_ulaw, ulaw_to_pcm16
from sutradhar.config import Settings
from sutradhar.language import LANGUAGES
from sutradhar.telephony.base import Dtmf, Inbound, MalformedMessage, MarkPlayed, Start, Stop, Transport, parse_json
from sutradhar.telephony.media import serve_media

router = APIRouter()
log = logger.bind(stage="twilio")

# <Say> voices that speak each language (Twilio's Google voices cover Telugu and Gujarati).
SAY_VOICES = {"en-IN": "Google.en-IN-Standard-A", "hi-IN": "Google.hi-IN-Standard-A",
              "te-IN": "Google.te-IN-Standard-A", "gu-IN": "Google.gu-IN-Standard-A"}
BUSY_LINE = "Sorry, all our lines are busy. Please call again in a few minutes."


class TwilioTransport(Transport):
    carrier = "twilio"
    sample_rate = 8000

    def __init__(self, websocket: WebSocket, settings: Settings) -> None:
        super().__init__(websocket, settings)
        self.stream_sid = ""
        self.call_sid = ""
        self._media_prefix = ""

    def decode(self, message: str | bytes) -> Inbound:
        msg = parse_json(message)
        event = msg.get("event")
        if event == "media":
            media = msg["media"]
            if media.get("track", "inbound") != "inbound":
                return None
            return ulaw_to_pcm16(base64.b64decode(media["payload"], validate=True))
        if event == "start":
            start = msg["start"]
            self.stream_sid, self.call_sid = start["streamSid"], start["callSid"]
            # Outbound media shares this prefix: no json.dumps on the per-frame path.
            self._media_prefix = f'{{"event":"media","streamSid":{json.dumps(self.stream_sid)},"media":{{"payload":"'
            params = start.get("customParameters") or {}
            return Start(call_id=params.get("call_id") or self.call_sid, carrier_call_id=self.call_sid,
                         language=params.get("language"),
                         info={"stream_sid": self.stream_sid, "account_sid": start.get("accountSid", "")})
        if event == "mark":
            return MarkPlayed(msg["mark"]["name"])
        if event == "dtmf":
            return Dtmf(str(msg["dtmf"]["digit"]))
        if event == "stop":
            return Stop("caller_hangup")
        if event == "connected":
            return None
        raise MalformedMessage(f"unknown Twilio event {event!r}")

    async def send_audio(self, pcm: bytes) -> None:
        await self.ws.send_text(self._media_prefix + base64.b64encode(pcm16_to_ulaw(pcm)).decode() + '"}}')

    async def send_mark(self, name: str) -> None:
        await self.ws.send_text(json.dumps({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}}))

    async def send_clear(self) -> None:
        await self.ws.send_text(json.dumps({"event": "clear", "streamSid": self.stream_sid}))

    def _credentials(self) -> bool:
        s = self.settings
        return bool(s.twilio_account_sid and s.twilio_auth_token and self.call_sid)

    async def _update_call(self, data: dict[str, str]) -> bool:
        s = self.settings
        url = f"{s.twilio_api_base.rstrip('/')}/2010-04-01/Accounts/{s.twilio_account_sid}/Calls/{self.call_sid}.json"
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(url, data=data, auth=(s.twilio_account_sid, s.twilio_auth_token))
        if response.status_code == 404 and _error_code(response) == 20404:
            self.log.info("Twilio says the call had already ended")
            return True
        if response.status_code >= 400:
            self.log.warning("Twilio call update failed status={} body={}", response.status_code, response.text[:200])
            return False
        return True

    async def hang_up(self, reason: str) -> None:
        if self._credentials():
            await self._update_call({"Status": "completed"})
        await self.close(1000, reason)

    async def transfer(self, number: str) -> bool:
        if not self._credentials():
            self.log.warning("transfer needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
            return False
        twiml = VoiceResponse()
        twiml.dial(number)
        if not await self._update_call({"Twiml": str(twiml)}):
            return False
        await self.close(1000, "transferred")
        return True


def _error_code(response: httpx.Response) -> int | None:
    try:
        return int(response.json().get("code"))
    except (ValueError, TypeError, AttributeError):
        return None


# --- signatures ---

def _public_http_url(request: Request, settings: Settings) -> str:
    if settings.public_url:
        url = settings.public_url.rstrip("/") + request.url.path
        return url + (f"?{request.url.query}" if request.url.query else "")
    return str(request.url)


def signature_ok(settings: Settings, url: str, params: dict[str, Any], signature: str | None) -> bool:
    """True when Twilio signed this request, or when no auth token is configured (development)."""
    if not settings.twilio_auth_token:
        return True
    if not signature:
        return False
    return RequestValidator(settings.twilio_auth_token).validate(url, params, signature)


async def _verified_form(request: Request, settings: Settings) -> dict[str, str] | None:
    form = {k: str(v) for k, v in (await request.form()).items()}
    url = _public_http_url(request, settings)
    if signature_ok(settings, url, form, request.headers.get("x-twilio-signature")):
        return form
    log.bind(call_id=form.get("CallSid", "-")).warning("rejected {}: bad X-Twilio-Signature", request.url.path)
    return None


def _xml(twiml: VoiceResponse | str, status: int = 200) -> Response:
    return Response(str(twiml), status_code=status, media_type="application/xml")


def _forbidden() -> Response:
    return Response("forbidden", status_code=403, media_type="text/plain")


# --- IVR ---

def language_menu(settings: Settings, attempt: int) -> VoiceResponse:
    response = VoiceResponse()
    gather = Gather(num_digits=1, action=f"/twilio/language?attempt={attempt}", method="POST", timeout=6)
    intro = LANGUAGES[settings.default_language].menu_intro
    if intro and attempt == 1:
        gather.say(intro, language=settings.default_language, voice=SAY_VOICES.get(settings.default_language))
    for digit, code in enumerate(settings.languages, start=1):
        info = LANGUAGES[code]
        gather.say(info.menu_item.format(digit=digit), language=code, voice=SAY_VOICES.get(code))
    response.append(gather)
    # No key pressed: Twilio falls through to the next verb.
    response.redirect(f"/twilio/language?attempt={attempt}", method="POST")
    return response


@router.post("/twilio/voice")
async def twilio_voice(request: Request) -> Response:
    services = request.app.state.services
    settings = services.settings
    form = await _verified_form(request, settings)
    if form is None:
        return _forbidden()
    if len(services.calls) >= settings.max_concurrent_calls:
        log.bind(call_id=form.get("CallSid", "-")).warning("refusing call: at MAX_CONCURRENT_CALLS")
        busy = VoiceResponse()
        busy.say(BUSY_LINE, language="en-IN", voice=SAY_VOICES["en-IN"])
        busy.hangup()
        return _xml(busy)
    attempt = int(request.query_params.get("attempt", "1") or 1)
    return _xml(language_menu(settings, attempt))


@router.post("/twilio/language")
async def twilio_language(request: Request) -> Response:
    services = request.app.state.services
    settings = services.settings
    form = await _verified_form(request, settings)
    if form is None:
        return _forbidden()
    call_sid = form.get("CallSid", "")
    digits = form.get("Digits", "")
    attempt = int(request.query_params.get("attempt", "1") or 1)
    choice = int(digits) if digits.isdigit() else 0
    if 1 <= choice <= len(settings.languages):
        language = settings.languages[choice - 1]
    elif attempt < 2:  # no key or a wrong key: the menu once more
        return _xml(language_menu(settings, attempt + 1))
    else:
        language = settings.default_language
    bound = log.bind(call_id=call_sid or "-")
    try:
        await services.ivr_languages.set(call_sid, language)
    except Exception as exc:  # the <Parameter> below still carries it
        bound.warning("could not store the IVR language: {}", exc)
    bound.info("IVR chose language={} digits={!r} attempt={}", language, digits, attempt)
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=settings.media_url("/twilio/media") if settings.public_url
                            else _ws_url_from(request, "/twilio/media"))
    stream.parameter(name="language", value=language)
    stream.parameter(name="call_id", value=call_sid)
    response.append(connect)
    return _xml(response)


def _ws_url_from(request: Request, path: str) -> str:
    scheme = "wss" if request.url.scheme == "https" else "ws"
    return f"{scheme}://{request.url.netloc}{path}"


# --- media ---

def _ws_signature_ok(websocket: WebSocket, settings: Settings) -> bool:
    if not settings.twilio_auth_token:
        return True
    signature = websocket.headers.get("x-twilio-signature")
    # Twilio signs the wss:// URL it dialled with empty params; accept our configured public form.
    path = websocket.url.path
    candidates = {settings.media_url(path)} if settings.public_url else set()
    candidates.add(f"wss://{websocket.url.netloc}{path}")
    for url in list(candidates):
        if url.startswith("ws://"):
            candidates.add("wss://" + url[len("ws://"):])
    return any(signature_ok(settings, url, {}, signature) for url in candidates)


@router.websocket("/twilio/media")
async def twilio_media(websocket: WebSocket) -> None:
    services = websocket.app.state.services
    settings = services.settings
    if not _ws_signature_ok(websocket, settings):
        log.warning("rejected media stream from {}: bad X-Twilio-Signature",
                    websocket.client.host if websocket.client else "?")
        await websocket.close(code=1008)  # before accept: the handshake gets HTTP 403
        return
    await websocket.accept()
    await serve_media(websocket, TwilioTransport(websocket, settings), services)
