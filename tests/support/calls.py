"""A real CallSession without a carrier on the other end: its transport writes into a list.

For tests of what sits around a live call (the live-call registry, /status, Redis mirroring):
they must see the session's real types (a Transport, a State enum), never strings a fake chose.
"""

from __future__ import annotations

import json

from sutradhar.services import Services
from sutradhar.telephony.session import CallSession
from sutradhar.telephony.transport import Codec, Start, Transport
from sutradhar.telephony.twilio.codec import TwilioCodec


class RecordingSocket:
    """Stands in for a WebSocket: keeps every message sent."""

    def __init__(self) -> None:
        self.sent: list[str | bytes] = []
        self.closed_with: int | None = None
        self.scope: dict[str, object] = {"type": "websocket", "extensions": {}}

    async def send_text(self, data: str) -> None:
        self.sent.append(data)

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with = code

    def json(self) -> list[dict]:
        return [json.loads(m) for m in self.sent if isinstance(m, str)]


def unstarted_session(services: Services, call_id: str, language: str = "en-IN",
                      codec: Codec | None = None) -> CallSession:
    """A CallSession as the media loop builds it, before `start()` (no greeting, no tasks)."""
    transport = Transport(RecordingSocket(), codec or TwilioCodec())  # type: ignore[arg-type]
    return CallSession(services, transport, Start(call_id, call_id), language)
