"""Plivo webhooks: the answer XML that streams the call to /plivo/media, the DTMF language menu
(/plivo/voice answers with <GetInput>, /plivo/language takes the key and streams the call in that
language), the transfer XML, the ring and hang-up notifications of outbound calls (/plivo/status),
and the media socket.

With PLIVO_AUTH_TOKEN set, the answer, status and transfer webhooks must carry a valid
`X-Plivo-Signature-V3` and its nonce (signature.py) over the URL Plivo called (PUBLIC_URL's form);
anything else gets 403 before its fields are read."""

from __future__ import annotations

from typing import Annotated
from xml.sax.saxutils import escape, quoteattr

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, WebSocket
from fastapi.responses import Response
from loguru import logger
from pydantic import BeforeValidator

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
from sutradhar.telephony.plivo.codec import PlivoCodec, pack_language
from sutradhar.telephony.plivo.control import PlivoControl
from sutradhar.telephony.plivo.signature import valid_v3
from sutradhar.telephony.transport import DTMF_KEYS, Transport
from sutradhar.text.languages import LANGUAGES
from sutradhar.urls import public_url_of

router = APIRouter()
log = logger.bind(stage="plivo")

# Plivo sends the call's fields as the query (GET) or the form (POST); these are the ones we read.
# `language` comes from the answer URL an operator configured: an unknown code falls back to the
# default language (a typo must not drop calls); only a length no code has is refused.
CallUuidQuery = Annotated[str | None, Query(alias="CallUUID", max_length=MAX_ID_CHARS, pattern=ID_PATTERN)]
CallUuidForm = Annotated[str | None, Form(alias="CallUUID", max_length=MAX_ID_CHARS, pattern=ID_PATTERN)]
LanguageQuery = Annotated[str | None, Query(max_length=64, description="e.g. hi-IN; else DEFAULT_LANGUAGE")]
LanguageForm = Annotated[str | None, Form(alias="language", max_length=64)]
# An outbound call's answer and notifications also name the request it was placed by.
RequestUuidForm = Annotated[str | None, Form(alias="RequestUUID", max_length=MAX_ID_CHARS, pattern=ID_PATTERN)]
DirectionForm = Annotated[str | None, Form(alias="Direction", max_length=16)]
# Plivo's CallStatus on ring and hang-up notifications, stored under the names Twilio uses.
PLIVO_STATUSES = {"ringing": "ringing", "in-progress": "in-progress", "completed": "completed", "busy": "busy",
                  "failed": "failed", "timeout": "no-answer", "no-answer": "no-answer", "cancel": "canceled"}
StatusForm = Annotated[str, Form(alias="CallStatus", pattern=f"^({'|'.join(PLIVO_STATUSES)})$")]
DurationForm = Annotated[str | None, Form(alias="Duration", max_length=8, pattern=r"^\d+$")]
# The menu's key (GetInput posts Digits) and our own ?attempt=.
DigitsForm = Annotated[str | None, Form(alias="Digits", max_length=MAX_DIGITS, pattern=f"^[{DTMF_KEYS}]*$")]
Attempt = Annotated[int, BeforeValidator(menu_attempt), Query(description="menu attempt, 1 or 2")]
# Plivo's <Speak> voices (Amazon Polly) read English and Hindi; other languages' menu lines are
# said in English ("For Telugu, press 3.") rather than read by a voice that cannot.
SPEAK_LANGUAGES = frozenset({"en-IN", "hi-IN"})


async def verified(request: Request) -> None:
    """403 unless Plivo signed this request (V3), when PLIVO_AUTH_TOKEN is set. A route
    dependency: it runs before the declared fields are validated."""
    settings = request.app.state.services.settings
    token = settings.plivo_auth_token
    if not token:
        return
    params: dict[str, list[str]] = {}
    if request.method == "POST":
        for key, value in (await request.form()).multi_items():
            params.setdefault(key, []).append(str(value))
    url = public_url_of(settings.public_url, request.url.path, request.url.query, str(request.url))
    if not valid_v3(token, request.method, url, params, request.headers.get("x-plivo-signature-v3-nonce"),
                    request.headers.get("x-plivo-signature-v3")):
        call_uuid = (params.get("CallUUID") or [request.query_params.get("CallUUID")])[0]
        log.bind(call_id=call_uuid if is_call_id(call_uuid) else "-").warning(
            "rejected {} {}: bad X-Plivo-Signature-V3", request.method, request.url.path)
        raise HTTPException(403, "forbidden")


def _xml(body: str) -> Response:
    return Response('<?xml version="1.0" encoding="UTF-8"?>' + body, media_type="application/xml")


def _busy(call_uuid: str | None, refusal: str) -> Response:
    log.bind(call_id=call_uuid or "-").warning("refusing call: {}", refusal)
    return _xml("<Response><Speak>Sorry, all our lines are busy. Please call again later.</Speak>"
                "<Hangup/></Response>")


@router.get("/plivo/answer", dependencies=[Depends(verified)])
async def plivo_answer(request: Request, call_uuid: CallUuidQuery = None,
                       language: LanguageQuery = None) -> Response:
    """Answer URL: stream the call to /plivo/media. `?language=hi-IN` picks the call's language."""
    return await _answer(request, call_uuid, language)


@router.post("/plivo/answer", dependencies=[Depends(verified)])
async def plivo_answer_form(request: Request, call_uuid: CallUuidForm = None,
                            language: LanguageQuery = None, form_language: LanguageForm = None,
                            request_uuid: RequestUuidForm = None, direction: DirectionForm = None) -> Response:
    """The answer URL posted: the form's fields win over the URL's, as Plivo merges them. An
    outbound call's record moves from the request it was placed by to its CallUUID."""
    store = request.app.state.services.store
    if direction == "outbound" and request_uuid and call_uuid and store is not None:
        await store.call_answered(request_uuid, call_uuid)
    return await _answer(request, call_uuid, form_language or language, outbound=direction == "outbound")


async def _answer(request: Request, call_uuid: str | None, language: str | None,
                  outbound: bool = False) -> Response:
    services = request.app.state.services
    s = services.settings
    if services.calls.at_capacity:
        return _busy(call_uuid, services.calls.refusal)
    language = language if language in s.languages else s.default_language
    extra = f"language={pack_language(language)}"
    if outbound:  # the session screens it for an answering machine
        extra += ",direction=outbound"
    if tokens_required(s, "plivo"):  # hex: extraHeaders allow only [A-Za-z0-9]
        extra += f",token={await services.stream_tokens.issue('plivo', call_uuid)}"
    url = stream_url(request, s, "/plivo/media")
    return _xml('<Response><Stream bidirectional="true" keepCallAlive="true" '
                'contentType="audio/x-mulaw;rate=8000" streamTimeout="86400" '
                f'extraHeaders={quoteattr(extra)}>{escape(url)}</Stream></Response>')


def language_menu(request: Request, attempt: int) -> str:
    """<GetInput> one key, saying the menu; no key: Plivo moves on to the <Redirect>, which asks
    /plivo/language without Digits (the menu again, or the default language)."""
    settings = request.app.state.services.settings
    base = (settings.public_url or f"{request.url.scheme}://{request.url.netloc}").rstrip("/")
    action = escape(f"{base}/plivo/language?attempt={attempt}")
    lines = []
    for line in menu_lines(settings, attempt):
        text, code = line.text, line.language
        if code not in SPEAK_LANGUAGES:
            text = (f"For {LANGUAGES[code].name}, press {line.digit}." if line.digit is not None
                    else LANGUAGES["en-IN"].menu_intro)
            code = "en-IN"
        lines.append(f'<Speak language="{code}" voice="WOMAN">{escape(text)}</Speak>')
    # executionTimeout runs while the menu is said too (about 2 s a line), within Plivo's 5-60 s.
    timeout = min(60, MENU_TIMEOUT_S + 2 * len(lines))
    return (f'<Response><GetInput action="{action}" method="POST" inputType="dtmf" numDigits="1" '
            f'executionTimeout="{timeout}" digitEndTimeout="{MENU_TIMEOUT_S}" '
            f'redirect="true">{"".join(lines)}</GetInput>'
            f'<Redirect method="POST">{action}</Redirect></Response>')


@router.post("/plivo/voice", dependencies=[Depends(verified)])
async def plivo_voice(request: Request, call_uuid: CallUuidForm = None, attempt: Attempt = 1) -> Response:
    """An answer URL with the language menu (instead of /plivo/answer's fixed language)."""
    services = request.app.state.services
    if services.calls.at_capacity:
        return _busy(call_uuid, services.calls.refusal)
    return _xml(language_menu(request, attempt))


@router.post("/plivo/language", dependencies=[Depends(verified)])
async def plivo_language(request: Request, call_uuid: CallUuidForm = None, digits: DigitsForm = None,
                         attempt: Attempt = 1) -> Response:
    """The menu's key (or none): stream the call in the chosen language, or play the menu again."""
    services = request.app.state.services
    language = chosen_language(services.settings, digits, attempt)
    if language is None:
        return _xml(language_menu(request, attempt + 1))
    bound = log.bind(call_id=call_uuid or "-")
    if call_uuid:
        try:
            await services.ivr_languages.set(call_uuid, language)
        except Exception as exc:  # noqa: BLE001 - the stream's extraHeaders still carry it
            bound.warning("could not store the IVR language: {}", exc)
    bound.info("IVR chose language={} digits={!r} attempt={}", language, digits or "", attempt)
    return await _answer(request, call_uuid, language)


@router.post("/plivo/status", dependencies=[Depends(verified)], status_code=204)
async def plivo_status(request: Request, status: StatusForm, call_uuid: CallUuidForm = None,
                       request_uuid: RequestUuidForm = None, duration: DurationForm = None) -> Response:
    """Ring and hang-up notifications of a call we placed (plivo/dialer.py)."""
    call_id = call_uuid or request_uuid
    if not call_id:
        raise HTTPException(422, "CallUUID or RequestUUID is required")
    stored = PLIVO_STATUSES[status]
    log.bind(call_id=call_id).info("call status {}", stored)
    store = request.app.state.services.store
    if store is not None:
        await store.carrier_status(call_id, stored, {"duration_s": duration} if duration else {}, alias=request_uuid)
    return Response(status_code=204)


@router.get("/plivo/transfer", dependencies=[Depends(verified)])
@router.post("/plivo/transfer", dependencies=[Depends(verified)])  # two routes, not one api_route: one OpenAPI operation each
async def plivo_transfer(request: Request) -> Response:
    number = request.app.state.services.settings.transfer_number
    return _xml(f"<Response><Dial><Number>{escape(number)}</Number></Dial></Response>")


@router.websocket("/plivo/media")
async def plivo_media(websocket: WebSocket) -> None:
    services = websocket.app.state.services
    settings = services.settings
    await serve_media(websocket, Transport(websocket, PlivoCodec(settings.languages), PlivoControl(settings)),
                      services)
