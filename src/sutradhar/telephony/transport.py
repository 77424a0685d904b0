"""The carrier contract: the events a wire codec decodes, the codec and call-control interfaces,
and the `Transport` that joins a media WebSocket to them for the session.

Pipecat's "serializer" split: a `Codec` is the carrier's pure wire format (wire message -> inbound
event; outbound audio / mark / clear -> wire message) and knows no web framework; `CallControl` is
the carrier's REST API (hang up, transfer); `Transport` owns the socket and sends what the codec
encodes. Adding a carrier is a folder with a codec, its webhooks and, if it has one, call control.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import WebSocket, WebSocketDisconnect
from loguru import logger
from websockets.exceptions import ConnectionClosed

from sutradhar.audio.dtmf import DTMF_KEYS


@dataclass(slots=True)
class Start:
    call_id: str  # our id for the call (the carrier's call id unless the webhook chose one)
    carrier_call_id: str  # CallSid / call_sid / callId: what the carrier's REST API knows
    language: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    token: str | None = None  # the single-use stream token the answer webhook issued (admission.py)


@dataclass(slots=True)
class Dtmf:
    digit: str

    def __post_init__(self) -> None:
        # Built from untrusted JSON: "²" passes str.isdigit() but not int(), so check the key.
        if not (isinstance(self.digit, str) and len(self.digit) == 1 and self.digit in DTMF_KEYS):
            raise MalformedMessage(f"dtmf digit {self.digit!r:.20} is not a keypad key")


@dataclass(slots=True)
class MarkPlayed:
    name: str

    def __post_init__(self) -> None:
        # Every carrier's decoder builds this from untrusted JSON; the session keys dicts by it.
        if not isinstance(self.name, str):
            raise MalformedMessage(f"mark name is {type(self.name).__name__}, not a string")


@dataclass(slots=True)
class Stop:
    reason: str = "caller_hangup"


@dataclass(slots=True)
class Text:
    """A typed caller turn (browser): skips STT."""

    text: str


# Inbound audio is returned as plain `bytes` (PCM16 at the wire rate), not wrapped in an object:
# it is 50 messages a second per call and the session only needs the samples.
Inbound = bytes | Start | Dtmf | MarkPlayed | Stop | Text | None
Wire = str | bytes  # one WebSocket message: text (JSON) or binary

# What sending to a caller who already hung up raises (Starlette, the websockets library, the socket).
DISCONNECTED: tuple[type[BaseException], ...] = (WebSocketDisconnect, ConnectionClosed, ConnectionError)
# The ASGI scope extension under which our WebSocket protocol (server/websocket_protocol.py) offers
# a media stream its messages without the receive queue (telephony/media.py takes them) and a
# direct write for what the stream sends (`Transport.protocol`).
MEDIA_SINK = "sutradhar.media_sink"


class MalformedMessage(ValueError):
    """A wire message we cannot use; logged with the call id and ignored."""


def json_object(message: Wire) -> dict[str, Any]:
    """A text wire message as a JSON object, or MalformedMessage."""
    if isinstance(message, bytes):
        raise MalformedMessage("binary frame on a JSON stream")
    try:
        data = orjson.loads(message)
    except ValueError as exc:
        raise MalformedMessage(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedMessage("JSON message is not an object")
    return data


class Codec:
    """One carrier's wire format for one stream. Pure: no sockets, no HTTP, no framework."""

    carrier = "base"
    sample_rate = 8000  # PCM rate on the wire (both directions)
    frame_ms = 20  # outbound pacing unit
    lead_frames = 2  # frames allowed ahead of real time
    echoes_marks = True  # the carrier reports played marks; False: a mark counts as played when sent

    def decode(self, message: Wire) -> Inbound:
        raise NotImplementedError

    def audio(self, pcm: bytes) -> Wire:
        raise NotImplementedError

    def mark(self, name: str) -> Wire:
        raise NotImplementedError

    def clear(self) -> Wire:
        raise NotImplementedError

    def event(self, event: dict[str, Any]) -> Wire | None:
        """A call event for the caller's screen (browser only; phones have none)."""
        return None


class CallControl:
    """A carrier's call-control API. The default can neither hang up remotely nor transfer:
    closing the media socket is the hang-up."""

    async def hang_up(self, carrier_call_id: str) -> None:
        return None

    async def transfer(self, carrier_call_id: str, number: str) -> bool:
        """Hand the call to `number`. False when this carrier (or its configuration) cannot."""
        return False

    async def send_digits(self, carrier_call_id: str, digits: str) -> bool:
        """Press `digits` on the call through the carrier's API. False: it has none (Twilio's and
        Exotel's streams take only audio, mark and clear), so the session sends them as tones."""
        return False


class Transport:
    """One media stream: the socket, its carrier's codec and call control, and the call's log."""

    def __init__(self, websocket: WebSocket, codec: Codec, control: CallControl | None = None) -> None:
        self.ws = websocket
        self.codec = codec
        self.control = control or CallControl()
        self.carrier = codec.carrier
        self.carrier_call_id = ""
        self.closed = False
        self.log = logger.bind(call_id="-", stage=self.carrier)
        # Our WebSocket protocol (server/websocket_protocol.py) when the server runs it: the media
        # loop gives it a frame sink, and `_send` writes through it.
        self.protocol: Any = websocket.scope.get("extensions", {}).get(MEDIA_SINK)

    # The codec may learn the rate from the stream's start (Exotel), so these are read through.
    @property
    def sample_rate(self) -> int:
        return self.codec.sample_rate

    @property
    def frame_ms(self) -> int:
        return self.codec.frame_ms

    @property
    def lead_frames(self) -> int:
        return self.codec.lead_frames

    @property
    def echoes_marks(self) -> bool:
        return self.codec.echoes_marks

    def bind(self, start: Start) -> None:
        self.carrier_call_id = start.carrier_call_id
        self.log = logger.bind(call_id=start.call_id, stage=self.carrier)

    def decode(self, message: Wire) -> Inbound:
        return self.codec.decode(message)

    async def _send(self, message: Wire) -> None:
        if self.protocol is not None and self.protocol.send_now(message):
            return  # written at once; False: the stock ASGI send below decides
        if isinstance(message, bytes):
            await self.ws.send_bytes(message)
        else:
            await self.ws.send_text(message)

    async def send_audio(self, pcm: bytes) -> None:
        await self._send(self.codec.audio(pcm))

    async def send_mark(self, name: str) -> None:
        await self._send(self.codec.mark(name))

    async def send_clear(self) -> None:
        await self._send(self.codec.clear())

    async def send_event(self, event: dict[str, Any]) -> None:
        message = self.codec.event(event)
        if message is not None and not self.closed:
            await self._send(message)

    async def hang_up(self, reason: str) -> None:
        if self.carrier_call_id:
            await self.control.hang_up(self.carrier_call_id)
        await self.close(1000, reason)

    async def transfer(self, number: str) -> bool:
        if not await self.control.transfer(self.carrier_call_id, number):
            return False
        await self.close(1000, "transferred")
        return True

    async def send_digits(self, digits: str) -> bool:
        return await self.control.send_digits(self.carrier_call_id, digits)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        try:
            await self.ws.close(code=code, reason=reason[:120])
        except Exception:  # already closed by the peer; nothing left to tell it
            pass
