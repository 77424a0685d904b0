"""Outbound calls: the agent dials a number (`POST /calls/outbound`, `sutradhar dial`).

The carrier places the call and, when it is answered, fetches our answer URL, which connects the
media stream exactly like an inbound call's (the language chosen per call instead of by the IVR).
Its status callbacks (initiated, ringing, answered, completed, busy, no-answer, failed) are
verified like every webhook and appended to the call record. Twilio through its SDK
(twilio/dialer.py), Exotel and Plivo through their REST APIs (exotel/dialer.py, plivo/dialer.py).
"""

from __future__ import annotations

from typing import Any

from loguru import logger

from sutradhar.config import Settings
from sutradhar.ids import is_call_id
from sutradhar.services import Services
from sutradhar.telephony.dialing import Dialer, OutboundError
from sutradhar.telephony.numbers import e164


def dialer_for(settings: Settings, carrier: str) -> Dialer:
    if carrier == "twilio":
        from sutradhar.telephony.twilio.dialer import TwilioDialer

        return TwilioDialer(settings)
    if carrier == "exotel":
        from sutradhar.telephony.exotel.dialer import ExotelDialer

        return ExotelDialer(settings)
    if carrier == "plivo":
        from sutradhar.telephony.plivo.dialer import PlivoDialer

        return PlivoDialer(settings)
    raise OutboundError(400, f"outbound calls on {carrier!r} are not supported (twilio, exotel, plivo)")


async def place_call(services: Services, to: str, language: str | None = None,
                     carrier: str = "twilio") -> dict[str, Any]:
    """Dial `to` and put the call on record; return what the admin API answers."""
    settings = services.settings
    try:
        number = e164(to)
    except ValueError as exc:
        raise OutboundError(422, str(exc)) from None
    language = language or settings.default_language
    if language not in settings.languages:
        raise OutboundError(422, f"language {language!r} is not in LANGUAGES ({', '.join(settings.languages)})")
    if services.calls.at_capacity:
        raise OutboundError(503, f"not placing calls: {services.calls.refusal}")
    dialer = dialer_for(settings, carrier)
    problems = dialer.problems()
    if problems:  # 409, not 503: the server is up, its configuration is what stands in the way
        raise OutboundError(409, "; ".join(problems))
    from_ = dialer.caller_id
    call_id = await dialer.place(number, language)
    if not is_call_id(call_id):  # the carrier's answer keys our records: held to the id rule too
        raise OutboundError(502, f"{carrier} answered with an unusable call id {call_id!r:.60}",
                            maybe_placed=True)
    log = logger.bind(call_id=call_id, stage="outbound")
    # The stream's start finds the language here when its carrier cannot carry it (Exotel); the
    # callee is still ringing, seconds before any stream.
    try:
        await services.ivr_languages.set(call_id, language)
        await services.shared.directions.set(call_id, "outbound")  # screened for a machine (voicemail.py)
    except Exception as exc:  # noqa: BLE001 - Redis down: the call goes on in the default language
        log.warning("could not store the call's language and direction: {}", exc)
    info = {"carrier": carrier, "to_number": number, "from_number": from_, "carrier_call_id": call_id,
            "language": language}
    if services.store is not None:
        await services.store.call_placed(call_id, info)
    else:
        log.warning("call records are off: this outbound call and its progress are not stored")
    log.info("outbound call placed carrier={} language={}", carrier, language)
    return {"call_id": call_id, "carrier": carrier, "to": number, "from": from_, "language": language,
            "status": "queued"}
