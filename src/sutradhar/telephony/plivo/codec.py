"""Plivo Audio Streams wire format (mu-law 8 kHz, bidirectional).

Plivo names things differently: playAudio / checkpoint / clearAudio out, playedStream back for a
checkpoint that actually played (never after clearAudio). The stream's context travels in
`extraHeaders`, which allows only [A-Za-z0-9] in keys and values, so "hi-IN" is sent as "hiIN".
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pybase64

from sutradhar.audio.codecs import pcm16_to_ulaw, ulaw_to_pcm16
from sutradhar.telephony.transport import (
    Codec,
    Dtmf,
    Inbound,
    MalformedMessage,
    MarkPlayed,
    Start,
    Stop,
    Wire,
    json_object,
)


def pack_language(code: str) -> str:
    return "".join(ch for ch in code if ch.isalnum())


def unpack_language(value: str | None, languages: Sequence[str]) -> str | None:
    if not value:
        return None
    return next((code for code in languages if pack_language(code) == value or code == value), None)


def parse_extra_headers(raw: str | dict | None) -> dict[str, str]:
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    out: dict[str, str] = {}
    for part in (raw or "").replace(";", ",").split(","):
        key, sep, value = part.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


class PlivoCodec(Codec):
    carrier = "plivo"
    sample_rate = 8000

    def __init__(self, languages: Sequence[str]) -> None:
        self.languages = tuple(languages)
        self.stream_id = ""
        self.call_uuid = ""
        self._media_prefix = ""

    def decode(self, message: Wire) -> Inbound:
        msg = json_object(message)
        event = msg.get("event")
        if event == "media":
            return ulaw_to_pcm16(pybase64.b64decode(msg["media"]["payload"], validate=True))
        if event == "start":
            start = msg["start"]
            self.stream_id, self.call_uuid = start["streamId"], start["callId"]
            self._media_prefix = ('{"event":"playAudio","streamId":' + json.dumps(self.stream_id)
                                  + ',"media":{"contentType":"audio/x-mulaw","sampleRate":8000,"payload":"')
            extra = parse_extra_headers(msg.get("extra_headers") or start.get("extra_headers"))
            return Start(call_id=self.call_uuid, carrier_call_id=self.call_uuid,
                         language=unpack_language(extra.get("language"), self.languages),
                         token=extra.get("token"),
                         info={"stream_id": self.stream_id, "account_id": start.get("accountId", ""),
                               **({"direction": "outbound"} if extra.get("direction") == "outbound" else {})})
        if event == "playedStream":
            return MarkPlayed(msg["name"])
        if event == "dtmf":
            return Dtmf(str(msg["dtmf"]["digit"]))
        if event == "stop":  # not documented on the socket; handled defensively
            return Stop("caller_hangup")
        if event in ("clearedAudio", "connected"):
            return None
        raise MalformedMessage(f"unknown Plivo event {event!r}")

    def audio(self, pcm: bytes) -> str:
        return self._media_prefix + pybase64.b64encode(pcm16_to_ulaw(pcm)).decode() + '"}}'

    def mark(self, name: str) -> str:
        return json.dumps({"event": "checkpoint", "streamId": self.stream_id, "name": name})

    def clear(self) -> str:
        return json.dumps({"event": "clearAudio", "streamId": self.stream_id})
