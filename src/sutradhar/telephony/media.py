"""The media WebSocket loop every carrier shares: wire message -> transport.decode -> session.

Bad input is the caller's problem, never the server's: a malformed or out-of-order message is logged
with the call id and ignored; a flood of them, or an oversized message, closes only this socket.
Admission (`admission.py`) guards the way in: sockets per source, `start` within START_TIMEOUT_S, the
stream token; caller audio faster than real time is dropped (`inbound_rate.py`).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from typing import Any

from fastapi import Request, WebSocket, WebSocketDisconnect
from loguru import logger

from sutradhar.campaigns.prompts import CallScript
from sutradhar.campaigns.store import CampaignStore
from sutradhar.config import Settings
from sutradhar.ids import is_call_id
from sutradhar.ops.logs import call_context
from sutradhar.services import Services
from sutradhar.telephony.admission import token_refusal
from sutradhar.telephony.inbound_rate import InboundRate
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
THEN = "sutradhar.then"  # a message key: what the frame sink left for this stream's task to await
CAMPAIGN_LOOKUP_S = 1.0  # a campaign call's variables, looked up at the stream's start


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


async def campaign_script(services: Services, start: Start) -> CallScript | None:
    """A campaign call's variables and prompts (campaigns/), looked up by the carrier's call id."""
    if services.store is None:
        return None
    try:  # bounded: a slow database must not keep the callee waiting for the greeting
        return await asyncio.wait_for(CampaignStore(services.store).script_for(
            [i for i in (start.carrier_call_id, start.call_id) if is_call_id(i)]), CAMPAIGN_LOOKUP_S)
    except Exception as exc:  # noqa: BLE001 - the database down: the standard greeting is better than none
        logger.bind(call_id=start.call_id or "-", stage="campaign").warning(
            "campaign lookup failed: {}: {}", type(exc).__name__, exc)
        return None

async def _mark_outbound(services: Services, start: Start) -> None:
    """A stream of a call we placed says so in `start.info["direction"]` (the session screens it
    for an answering machine): from its own parameters (Twilio, Plivo), else from placement (Exotel)."""
    if not services.settings.amd_enabled or "direction" in start.info or not start.carrier_call_id:
        return
    try:
        if await services.shared.directions.get(start.carrier_call_id) == "outbound":
            start.info["direction"] = "outbound"
    except Exception as exc:  # Redis down: the call goes on unscreened
        logger.bind(call_id=start.call_id, stage="amd").warning("call direction lookup failed: {}", exc)


async def _ivr_language(services: Services, call_sid: str) -> str | None:
    if not call_sid:
        return None
    try:
        return await services.ivr_languages.get(call_sid)
    except Exception as exc:  # Redis down: the default language is better than no call
        logger.bind(call_id=call_sid, stage="ivr").warning("IVR language lookup failed: {}", exc)
        return None


async def serve_media(websocket: WebSocket, transport: Transport, services: Services) -> CallSession | None:
    """Admit the socket (MAX_STREAMS_PER_SOURCE), accept it and run its stream to the end.

    The carrier's route checks its own credentials first and calls this instead of `accept`."""
    limiter = services.sources
    source = limiter.source(websocket.client.host if websocket.client else None, websocket.headers)
    if not limiter.acquire(source):
        transport.log.warning("refused media stream from {}: {} already open from it (MAX_STREAMS_PER_SOURCE)",
                              source, limiter.open(source))
        services.telemetry.stream_refused(transport.carrier, "source_limit")
        await websocket.close(code=1008)  # before accept: the handshake gets HTTP 403
        return None
    try:
        await websocket.accept()
        # The stream runs in a task of its own: awaited here, ~20 coroutines deep under the ASGI
        # middleware and routing, every inbound message would resume and suspend all of them
        # (a third of the server's CPU per 20 ms frame). Cancelling this await cancels the task.
        return await asyncio.create_task(_run(websocket, transport, services), name="media-stream")
    finally:
        limiter.release(source)


async def _run(websocket: WebSocket, transport: Transport, services: Services) -> CallSession | None:
    """Run one media stream until the carrier stops it, the socket closes or the call ends."""
    settings = services.settings
    session: CallSession | None = None
    reason = "disconnected"
    log = transport.log
    limit = settings.max_message_bytes
    malformed_before_start = 0  # junk before a call exists counts too, or it could go on for minutes
    scope = ExitStack()  # the call's log context, entered at start, left when the stream ends
    loop = asyncio.get_running_loop()
    start_by = loop.time() + settings.start_timeout_s  # from accept: messages before start do not extend it
    inbound: InboundRate | None = None
    # Our WebSocket protocol (server/websocket_protocol.py) can hand caller audio to the call
    # straight from the socket, without waking this task for every 20 ms frame.
    protocol = transport.protocol
    try:
        while True:
            if session is None:  # no call yet: a socket holds no slot, but it may not idle either
                message = await asyncio.wait_for(websocket.receive(), max(0.0, start_by - loop.time()))
            else:
                message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            then = message.get(THEN)
            if then is not None:  # the frame sink took a frame whose rest must be awaited here
                await then
                continue
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
            if type(event) is bytes:  # caller audio (most frames take the sink instead, see below)
                if session is not None and (then := _take_audio(session, inbound, transport, event)) is not None:
                    await then
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
                    if settings.inbound_max_speed:
                        inbound = InboundRate(settings.inbound_max_speed, settings.inbound_burst_s,
                                              settings.flood_close_s)
                    if protocol is not None:
                        protocol.set_sink(_frame_sink(session, inbound, transport, limit))
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
    except _Flooded:
        reason = "flooding"
    except TimeoutError:
        reason = "no_start"
        log.warning("no start message within {}s (START_TIMEOUT_S); closing", settings.start_timeout_s)
        services.telemetry.stream_refused(transport.carrier, "no_start")
        await transport.close(1000, "no start")
    except (WebSocketDisconnect, RuntimeError):  # RuntimeError: receive after the peer closed
        pass
    finally:
        if protocol is not None:
            protocol.set_sink(None)
            _release(protocol.take_queued())
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


class _Flooded(Exception):
    """The caller's audio came too fast for too long: the stream was closed (1008)."""


def _take_audio(session: CallSession, inbound: InboundRate | None, transport: Transport,
                pcm: bytes) -> Awaitable[None] | None:
    """A chunk of caller audio, as far as it goes at once: None when done, else what is left to
    await (the session's `audio_now`, or closing a flooding stream, which raises _Flooded)."""
    if inbound is not None:
        seconds = len(pcm) / (2 * transport.sample_rate)
        if not inbound.admit(seconds):
            return _close_flooding(transport) if _dropped(session, inbound, seconds) else None
    return session.audio_now(pcm)


async def _close_flooding(transport: Transport) -> None:
    await transport.close(1008, "media faster than real time")
    raise _Flooded


def _frame_sink(session: CallSession, inbound: InboundRate | None, transport: Transport,
                limit: int) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    """What the protocol calls with each data message while this stream's task waits for one:
    caller audio is taken at once; anything else (and anything odd) goes back to be queued for
    the loop, which decodes it again and answers it as it always has."""
    context = contextvars.copy_context()  # the call's log context: the protocol runs outside the task

    def take(message: dict[str, Any]) -> dict[str, Any] | None:
        data = message.get("text")
        if data is None:
            data = message.get("bytes")
        if data is None or len(data) > limit:
            return message
        try:
            event = transport.decode(data)
        except Exception:  # noqa: BLE001 - the loop decodes it again and says what is wrong
            return message
        if type(event) is not bytes:
            return message
        try:
            then = _take_audio(session, inbound, transport, event)
        except Exception as exc:  # noqa: BLE001 - raised in the stream's task, as the loop would
            then = _raise(exc)
        return None if then is None else {"type": "websocket.receive", THEN: then}

    return lambda message: context.run(take, message)


def _release(messages: list[dict[str, Any]]) -> None:
    """Close what the sink left queued for a loop that has ended (cancelled, or the call over):
    the rest of a frame's handling no longer matters, and an unawaited coroutine would warn."""
    for message in messages:
        then = message.get(THEN)
        if inspect.iscoroutine(then):
            then.close()


async def _raise(exc: BaseException) -> None:
    raise exc


def _dropped(session: CallSession, inbound: InboundRate, seconds: float) -> bool:
    """Count audio the caller sent too fast; True when the call should end for flooding."""
    if not session.inbound_dropped_s:
        session.log.warning("caller audio arrives faster than {}x real time (INBOUND_MAX_SPEED); dropping the excess",
                            session.settings.inbound_max_speed)
    session.inbound_dropped_s = inbound.dropped_s
    session.telemetry.inbound_audio_dropped(session.transport.carrier, seconds)
    if not inbound.flooding:
        return False
    session.log.warning("closing a flooding stream: {:.1f}s of caller audio dropped", inbound.dropped_s)
    session.telemetry.stream_refused(session.transport.carrier, "flooding")
    return True


async def _start(transport: Transport, services: Services, start: Start, scope: ExitStack) -> CallSession | None:
    transport.bind(start)
    refusal = await token_refusal(services.settings, services.stream_tokens, transport.carrier, start)
    if refusal is not None:  # a replayed or forged handshake, or a token spent already: no call, no record
        transport.log.warning("refusing stream: {}", refusal)
        services.telemetry.stream_refused(transport.carrier, "token")
        await transport.close(1008, "stream not admitted")
        return None
    language = await first_language(services, start)
    script = await campaign_script(services, start)
    await _mark_outbound(services, start)
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
    session = CallSession(services, transport, start, language, script)
    await session.start()
    return session
