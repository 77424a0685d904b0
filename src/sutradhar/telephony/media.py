"""The media WebSocket loop every carrier shares: wire message -> transport.decode -> session.

Bad input is the caller's problem, never the server's: a malformed or out-of-order message is logged
with the call id and ignored; a flood of them, or an oversized message, closes only this socket.
"""

from __future__ import annotations

import asyncio
from contextlib import ExitStack

from fastapi import Request, WebSocket, WebSocketDisconnect
from loguru import logger

from sutradhar.config import Settings
from sutradhar.ids import is_call_id
from sutradhar.ops.logs import call_context
from sutradhar.services import Services
from sutradhar.telephony.session import CallSession
from sutradhar.telephony.transport import (
    Dtmf,
    MalformedMessage,
    MarkPlayed,
    Start,
    Stop,
    Text,
    Transport,
)
from sutradhar.urls import websocket_url

MAX_MALFORMED = 50  # per call; beyond this the peer is broken or hostile


def stream_url(request: Request, settings: Settings, path: str) -> str:
    """The media socket's URL for a carrier to dial (TwiML, Plivo XML): under PUBLIC_URL when set,
    else this request's own host (development)."""
    base = settings.public_url or f"{request.url.scheme}://{request.url.netloc}"
    return websocket_url(base.rstrip("/") + path)


async def first_language(services: Services, start: Start) -> str:
    """The call's first language: the stream's parameter, else the IVR's answer, else the default."""
    s = services.settings
    for candidate in (start.language, await _ivr_language(services, start.carrier_call_id)):
        if candidate and candidate in s.languages:
            return candidate
    return s.default_language


async def _ivr_language(services: Services, call_sid: str) -> str | None:
    if not call_sid:
        return None
    try:
        return await services.ivr_languages.get(call_sid)
    except Exception as exc:  # Redis down: the default language is better than no call
        logger.bind(call_id=call_sid, stage="ivr").warning("IVR language lookup failed: {}", exc)
        return None


async def serve_media(websocket: WebSocket, transport: Transport, services: Services) -> CallSession | None:
    """Run one media stream until the carrier stops it, the socket closes or the call ends."""
    settings = services.settings
    session: CallSession | None = None
    reason = "disconnected"
    log = transport.log
    limit = settings.max_message_bytes
    malformed_before_start = 0  # junk before a call exists counts too, or it could go on for minutes
    scope = ExitStack()  # the call's log context, entered at start, left when the stream ends
    try:
        while True:
            if session is None:  # no call yet: do not let an idle socket live forever
                message = await asyncio.wait_for(websocket.receive(), settings.inactivity_timeout_s)
            else:
                message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("text")
            if data is None:
                data = message.get("bytes")
                if data is None:
                    continue
            if len(data) > limit:
                log.warning("message of {} bytes exceeds MAX_MESSAGE_BYTES={}; closing", len(data), limit)
                reason = "message_too_big"
                await transport.close(1009, "message too big")
                break
            try:
                event = transport.decode(data)
            except (MalformedMessage, KeyError, TypeError, ValueError, AttributeError) as exc:
                # AttributeError: a field of the wrong JSON type ("media": "x" where an object belongs)
                malformed_before_start += session is None
                if session is not None:
                    session.malformed += 1
                log.warning("malformed message ignored: {}", exc)
                if (session.malformed if session is not None else malformed_before_start) >= MAX_MALFORMED:
                    reason = "malformed"
                    await transport.close(1008, "too many malformed messages")
                    break
                continue
            if type(event) is bytes:  # the hot path: one frame of caller audio
                if session is not None:
                    await session.on_audio(event)
                continue
            if event is None:
                continue
            if session is None:
                if isinstance(event, Start) and not _usable_start(event):
                    malformed_before_start += 1
                    log.warning("malformed message ignored: start without a usable call id ({!r:.60})",
                                event.call_id)
                    if malformed_before_start >= MAX_MALFORMED:
                        reason = "malformed"
                        await transport.close(1008, "too many malformed messages")
                        break
                elif isinstance(event, Start):
                    session = await _start(transport, services, event, scope)
                    if session is None:
                        reason = "refused"
                        break
                elif isinstance(event, Stop):
                    break
                else:
                    log.warning("{} before start; ignored", type(event).__name__)
                continue
            session.touch()
            if isinstance(event, MarkPlayed):
                session.on_mark(event.name)
            elif isinstance(event, Dtmf):
                await session.on_dtmf(event.digit)
            elif isinstance(event, Text):
                await session.on_text(event.text)
            elif isinstance(event, Stop):
                reason = "caller_hangup"
                break
            elif isinstance(event, Start):
                log.warning("second start on a running stream; ignored")
            if session.ended:
                break
    except TimeoutError:
        reason = "no_start"
        log.warning("no start message within {}s; closing", settings.inactivity_timeout_s)
        await transport.close(1000, "no start")
    except (WebSocketDisconnect, RuntimeError):  # RuntimeError: receive after the peer closed
        pass
    finally:
        if session is not None:
            await session.end(reason)
        await transport.close(1000, reason)
        scope.close()
    return session


def _usable_start(start: Start) -> bool:
    """A start names the call with bounded ids (they key the live-call registry, the store, the
    carrier's REST API and every log line); the browser has no carrier id, Exotel may omit the
    stream id."""
    stream_id = start.info.get("stream_sid", start.info.get("stream_id", ""))
    return (is_call_id(start.call_id)
            and (start.carrier_call_id == "" or is_call_id(start.carrier_call_id))
            and (stream_id == "" or is_call_id(stream_id))
            and (start.language is None or isinstance(start.language, str)))


async def _start(transport: Transport, services: Services, start: Start, scope: ExitStack) -> CallSession | None:
    transport.bind(start)
    language = await first_language(services, start)
    # No await between this check and the session registering itself: the limit holds under a rush.
    if services.calls.at_capacity:
        calls = services.calls
        transport.log.warning("refusing call: {} ({} calls live, MAX_CONCURRENT_CALLS={})",
                              calls.refusal, len(calls), calls.limit)
        # 1012 "service restart" while draining (another worker takes the retry), else 1013
        await transport.close(1012 if calls.draining else 1013, f"{calls.refusal}, try again later")
        return None
    if start.call_id in services.calls:
        transport.log.warning("a call with this id is already live; refusing the second stream")
        await transport.close(1008, "duplicate call id")
        return None
    # Every line logged for this call from here on (and in the tasks it spawns) carries its id.
    scope.enter_context(call_context(start.call_id, language))
    session = CallSession(services, transport, start, language)
    await session.start()
    return session
