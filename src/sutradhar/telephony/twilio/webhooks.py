"""Twilio webhooks: the IVR language menu (TwiML), signature checks, and the media-stream socket.

Outbound calls (telephony/outbound.py) are answered by POST /twilio/outbound/answer, which streams
them like the IVR does (marked outbound, so the session screens for an answering machine), report
progress to POST /twilio/status and Twilio's AMD verdict to POST /twilio/amd (all signed).

Call flow: POST /twilio/voice answers with a one-digit language menu; POST /twilio/language stores
the choice (CallSid -> language) and connects the call to WS /twilio/media, passing the language,
our call id and (when TWILIO_AUTH_TOKEN signs the webhooks) a single-use stream token bound to the
CallSid as <Parameter>s (the stream URL must not carry a query string). The handshake signature is
the same for every call, so the token is what proves a stream belongs to a call we answered.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, WebSocket
from fastapi.responses import Response
from loguru import logger
from pydantic import BeforeValidator
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, Gather, VoiceResponse

from sutradhar.config import Settings
from sutradhar.ids import ID_PATTERN, MAX_ID_CHARS, is_call_id
from sutradhar.telephony.admission import tokens_required
from sutradhar.telephony.ivr import (
    MAX_DIGITS,
    MENU_TIMEOUT_S,
    chosen_language,
    menu_attempt,
    menu_lines,
)
from sutradhar.telephony.media import serve_media, stream_url
from sutradhar.telephony.session import CallSession
from sutradhar.telephony.transport import DTMF_KEYS, Transport
from sutradhar.telephony.twilio.codec import TwilioCodec
from sutradhar.telephony.twilio.control import TwilioControl
from sutradhar.telephony.voicemail import carrier_verdict
from sutradhar.urls import public_url_of, websocket_url

router = APIRouter()
log = logger.bind(stage="twilio")

# <Say> voices that speak each language (Twilio's Google voices cover Telugu and Gujarati).
SAY_VOICES = {"en-IN": "Google.en-IN-Standard-A", "hi-IN": "Google.hi-IN-Standard-A",
              "te-IN": "Google.te-IN-Standard-A", "gu-IN": "Google.gu-IN-Standard-A"}
BUSY_LINE = "Sorry, all our lines are busy. Please call again in a few minutes."


# --- signatures ---

def signature_ok(settings: Settings, url: str, params: dict[str, Any], signature: str | None) -> bool:
    """True when Twilio signed this request, or when no auth token is configured (development)."""
    if not settings.twilio_auth_token:
        return True
    if not signature:
        return False
    return RequestValidator(settings.twilio_auth_token).validate(url, params, signature)


async def verified_form(request: Request) -> None:
    """403 unless Twilio signed the whole form. A route dependency: FastAPI runs it before the
    declared fields are validated, so an unsigned request learns nothing about them."""
    settings: Settings = request.app.state.services.settings
    form = {k: str(v) for k, v in (await request.form()).items()}
    url = public_url_of(settings.public_url, request.url.path, request.url.query, str(request.url))
    if not signature_ok(settings, url, form, request.headers.get("x-twilio-signature")):
        call_sid = form.get("CallSid")
        log.bind(call_id=call_sid if is_call_id(call_sid) else "-").warning(
            "rejected {}: bad X-Twilio-Signature", request.url.path)
        raise HTTPException(403, "forbidden")


def _xml(twiml: VoiceResponse | str, status: int = 200) -> Response:
    return Response(str(twiml), status_code=status, media_type="application/xml")


def _busy(services: Any, call_sid: str | None) -> Response:
    """At capacity or draining: a polite line and a hang-up, before the caller waits for nothing."""
    log.bind(call_id=call_sid or "-").warning("refusing call: {}", services.calls.refusal)
    busy = VoiceResponse()
    busy.say(BUSY_LINE, language="en-IN", voice=SAY_VOICES["en-IN"])
    busy.hangup()
    return _xml(busy)


# --- the webhooks' fields (Twilio posts many more; these are the ones we read) ---

# Twilio's CallStatus values (an "answered" event is reported as in-progress).
CALL_STATUSES = ("queued", "initiated", "ringing", "in-progress", "completed", "busy", "no-answer",
                 "failed", "canceled")

CallSid = Annotated[str | None, Form(alias="CallSid", max_length=MAX_ID_CHARS, pattern=ID_PATTERN)]
# Strict (a 422 otherwise): a keypad sends nothing else, so only a forger or a bug can.
Digits = Annotated[str | None, Form(alias="Digits", max_length=MAX_DIGITS, pattern=f"^[{DTMF_KEYS}]+$")]
Attempt = Annotated[int, BeforeValidator(menu_attempt), Query(description="menu attempt, 1 or 2")]


# --- IVR ---

def language_menu(settings: Settings, attempt: int) -> VoiceResponse:
    response = VoiceResponse()
    gather = Gather(num_digits=1, action=f"/twilio/language?attempt={attempt}", method="POST",
                    timeout=MENU_TIMEOUT_S)
    for line in menu_lines(settings, attempt):
        gather.say(line.text, language=line.language, voice=SAY_VOICES.get(line.language))
    response.append(gather)
    # No key pressed: Twilio falls through to the next verb.
    response.redirect(f"/twilio/language?attempt={attempt}", method="POST")
    return response


@router.post("/twilio/voice", dependencies=[Depends(verified_form)])
async def twilio_voice(request: Request, call_sid: CallSid = None, attempt: Attempt = 1) -> Response:
    services = request.app.state.services
    settings = services.settings
    if services.calls.at_capacity:
        return _busy(services, call_sid)
    return _xml(language_menu(settings, attempt))


@router.post("/twilio/language", dependencies=[Depends(verified_form)])
async def twilio_language(request: Request, call_sid: CallSid = None, digits: Digits = None,
                          attempt: Attempt = 1) -> Response:
    services = request.app.state.services
    settings = services.settings
    if services.calls.at_capacity:  # filled up or began draining while the caller chose
        return _busy(services, call_sid)
    call_sid = call_sid or ""
    digits = digits or ""
    language = chosen_language(settings, digits, attempt)
    if language is None:  # no key or a wrong key: the menu once more
        return _xml(language_menu(settings, attempt + 1))
    bound = log.bind(call_id=call_sid or "-")
    try:
        await services.ivr_languages.set(call_sid, language)
    except Exception as exc:  # the <Parameter> below still carries it
        bound.warning("could not store the IVR language: {}", exc)
    bound.info("IVR chose language={} digits={!r} attempt={}", language, digits, attempt)
    return _xml(await _connect_stream(request, call_sid, language))


async def _connect_stream(request: Request, call_sid: str, language: str,
                          outbound: bool = False) -> VoiceResponse:
    """<Connect><Stream> to our media socket, with the call's language, id and stream token."""
    services = request.app.state.services
    settings = services.settings
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=stream_url(request, settings, "/twilio/media"))
    stream.parameter(name="language", value=language)
    stream.parameter(name="call_id", value=call_sid)
    if outbound:
        stream.parameter(name="direction", value="outbound")
    if tokens_required(settings, "twilio"):  # the signed webhook vouches for this call's stream only
        stream.parameter(name="token", value=await services.stream_tokens.issue("twilio", call_sid))
    response.append(connect)
    return response


# --- outbound calls (telephony/outbound.py places them) ---

CallStatus = Annotated[str, Form(alias="CallStatus", pattern=f"^({'|'.join(CALL_STATUSES)})$")]
CallDuration = Annotated[str | None, Form(alias="CallDuration", max_length=8, pattern=r"^\d+$")]
Language = Annotated[str | None, Query(max_length=16)]


@router.post("/twilio/outbound/answer", dependencies=[Depends(verified_form)])
async def twilio_outbound_answer(request: Request, call_sid: CallSid = None, language: Language = None) -> Response:
    """The callee answered the call we placed: stream it in the language chosen when it was placed."""
    services = request.app.state.services
    settings = services.settings
    if services.calls.at_capacity:
        return _busy(services, call_sid)
    if language not in settings.languages:
        language = settings.default_language
    log.bind(call_id=call_sid or "-").info("outbound call answered language={}", language)
    return _xml(await _connect_stream(request, call_sid or "", language, outbound=True))


@router.post("/twilio/status", dependencies=[Depends(verified_form)], status_code=204)
async def twilio_status(request: Request, status: CallStatus, call_sid: CallSid = None,
                        duration: CallDuration = None) -> Response:
    """A status callback of a call we placed (initiated ... completed, busy, no-answer, failed)."""
    services = request.app.state.services
    bound = log.bind(call_id=call_sid or "-")
    if not call_sid:
        raise HTTPException(422, "CallSid is required")
    bound.info("call status {}", status)
    if services.store is not None:
        await services.store.carrier_status(call_sid, status, {"duration_s": duration} if duration else {})
    return Response(status_code=204)


# Twilio's AnsweredBy values (AsyncAmd); MachineDetectionDuration is in ms.
ANSWERED_BY = ("human", "machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other",
               "fax", "unknown")
AnsweredBy = Annotated[str, Form(alias="AnsweredBy", pattern=f"^({'|'.join(ANSWERED_BY)})$")]
DetectionMs = Annotated[str | None, Form(alias="MachineDetectionDuration", max_length=8, pattern=r"^\d+$")]


@router.post("/twilio/amd", dependencies=[Depends(verified_form)], status_code=204)
async def twilio_amd(request: Request, answered_by: AnsweredBy, call_sid: CallSid = None,
                     duration: DetectionMs = None) -> Response:
    """Twilio's answering-machine verdict on a call we placed: stored, and told to the live call
    (a second opinion beside our own detector; DetectMessageEnd's machine_end_* cues the message)."""
    services = request.app.state.services
    if not call_sid:
        raise HTTPException(422, "CallSid is required")
    info = {"detection_ms": int(duration)} if duration else {}
    log.bind(call_id=call_sid).info("Twilio AMD answered_by={}", answered_by)
    session = services.calls.get(call_sid)
    if isinstance(session, CallSession) and session.screen is not None:
        await session.screen.carrier_verdict("twilio", answered_by, info)
    else:  # not screened here (AMD_ENABLED off, or the stream is not up): counted and stored as is
        verdict = carrier_verdict(answered_by, 0, info)
        services.telemetry.answering("twilio", verdict.answered_by)
        if services.store is not None:
            await services.store.answering(call_sid, "twilio", verdict.as_dict())
    return Response(status_code=204)


# --- media ---

def _ws_signature_ok(websocket: WebSocket, settings: Settings) -> bool:
    if not settings.twilio_auth_token:
        return True
    signature = websocket.headers.get("x-twilio-signature")
    # Twilio signs the wss:// URL it dialled with empty params; accept our configured public form.
    path = websocket.url.path
    candidates = {f"wss://{websocket.url.netloc}{path}"}
    if settings.public_url:
        public = settings.public_url.rstrip("/") + path
        candidates |= {websocket_url(public), websocket_url(public, secure=True)}
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
    await serve_media(websocket, Transport(websocket, TwilioCodec(), TwilioControl(settings)), services)
