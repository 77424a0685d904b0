"""The browser talk page's wire format.

Binary frames are PCM16 mono 16 kHz both ways (20 ms out, any size in); text frames are JSON:
in  {"type":"start","language":"hi-IN"} {"type":"text","text":...} {"type":"dtmf","digit":"1"}
    {"type":"mark","name":...} (echoed by the page when the audio before it has played) {"type":"stop"}
out {"type":"mark","name":...} {"type":"clear"} and call events (started, transcript, language,
    turn with per-stage timings, interrupted, dtmf).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sutradhar.telephony.transport import (
    Codec,
    Dtmf,
    Inbound,
    MalformedMessage,
    MarkPlayed,
    Start,
    Stop,
    Text,
    Wire,
    json_object,
)


class BrowserCodec(Codec):
    carrier = "browser"
    sample_rate = 16000

    def decode(self, message: Wire) -> Inbound:
        if isinstance(message, bytes):
            if len(message) % 2:
                raise MalformedMessage("odd-length PCM16 frame")
            return message
        msg = json_object(message)
        kind = msg.get("type")
        if kind == "start":
            call_id = "web-" + uuid.uuid4().hex[:16]  # never the page's choice: ids must not collide
            return Start(call_id=call_id, carrier_call_id="", language=msg.get("language"))
        if kind == "mark":
            return MarkPlayed(str(msg["name"]))
        if kind == "text":
            text = str(msg["text"]).strip()
            return Text(text[:2000]) if text else None
        if kind == "dtmf":
            return Dtmf(str(msg["digit"])[:1])
        if kind == "stop":
            return Stop("caller_hangup")
        raise MalformedMessage(f"unknown browser message {kind!r}")

    def audio(self, pcm: bytes) -> bytes:
        return pcm

    def mark(self, name: str) -> str:
        return json.dumps({"type": "mark", "name": name})

    def clear(self) -> str:
        return '{"type":"clear"}'

    def event(self, event: dict[str, Any]) -> str:
        return json.dumps(event, ensure_ascii=False)
