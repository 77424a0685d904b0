"""What every carrier codec turns its wire messages into, and what the session asks of a carrier.

A transport is Pipecat's "serializer" idea: `decode` turns one wire message into an inbound event;
`send_audio` / `send_mark` / `send_clear` turn the session's outbound events into wire messages;
`hang_up` / `transfer` are the carrier's call-control API. Adding a carrier is one new file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from loguru import logger

from sutradhar.config import Settings


@dataclass(slots=True)
class Start:
    call_id: str  # our id for the call (the carrier's call id unless the webhook chose one)
    carrier_call_id: str  # CallSid / call_sid / callId: what the carrier's REST API knows
    language: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Dtmf:
    digit: str


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


# What sending to a caller who already hung up raises (Starlette, the websockets library, the socket).
DISCONNECTED: tuple[type[BaseException], ...] = (WebSocketDisconnect, ConnectionClosed, ConnectionError)


class MalformedMessage(ValueError):
    """A wire message we cannot use; logged with the call id and ignored."""


class Transport:
    carrier = "base"
    sample_rate = 8000  # PCM rate on the wire (both directions)
    frame_ms = 20  # outbound pacing unit
    lead_frames = 2  # frames allowed ahead of real time
    echoes_marks = True  # the carrier reports played marks; False: a mark counts as played when sent

    def __init__(self, websocket: WebSocket, settings: Settings) -> None:
        self.ws = websocket
        self.settings = settings
        self.closed = False
        self.log = logger.bind(call_id="-", stage=self.carrier)

    def bind(self, call_id: str) -> None:
        self.log = logger.bind(call_id=call_id, stage=self.carrier)

    # --- inbound ---
    def decode(self, message: str | bytes) -> Inbound:
        raise NotImplementedError

    # --- outbound ---
    async def send_audio(self, pcm: bytes) -> None:
        raise NotImplementedError

    async def send_mark(self, name: str) -> None:
        raise NotImplementedError

    async def send_clear(self) -> None:
        raise NotImplementedError

    async def send_event(self, event: dict[str, Any]) -> None:
        """Show a call event to the caller's UI (browser only; phones have no screen)."""

    async def hang_up(self, reason: str) -> None:
        await self.close(1000, reason)

    async def transfer(self, number: str) -> bool:
        """Hand the call to `number`. False when this carrier (or its configuration) cannot."""
        return False

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        try:
            await self.ws.close(code=code, reason=reason[:120])
        except Exception:  # already closed by the peer; nothing left to tell it
            pass


def parse_json(message: str | bytes) -> dict[str, Any]:
    import json

    if isinstance(message, bytes):
        raise MalformedMessage("binary frame on a JSON stream")
    try:
        data = json.loads(message)
    except ValueError as exc:
        raise MalformedMessage(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedMessage("JSON message is not an object")
    return data
