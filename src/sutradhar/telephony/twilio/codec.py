"""Twilio Media Streams wire format: 8 kHz mu-law both ways, base64 in JSON, camelCase.

Inbound: connected, start (with our <Parameter>s), media, mark (a sentence played), dtmf, stop.
Outbound: media (160 bytes = 20 ms per message), mark after each sentence, clear on barge-in.
"""

from __future__ import annotations

import json

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


class TwilioCodec(Codec):
    carrier = "twilio"
    sample_rate = 8000

    def __init__(self) -> None:
        self.stream_sid = ""
        self.call_sid = ""
        self._media_prefix = ""

    def decode(self, message: Wire) -> Inbound:
        msg = json_object(message)
        event = msg.get("event")
        if event == "media":
            media = msg["media"]
            if media.get("track", "inbound") != "inbound":
                return None
            return ulaw_to_pcm16(pybase64.b64decode(media["payload"], validate=True))
        if event == "start":
            start = msg["start"]
            self.stream_sid, self.call_sid = start["streamSid"], start["callSid"]
            # Outbound media shares this prefix: no json.dumps on the per-frame path.
            self._media_prefix = f'{{"event":"media","streamSid":{json.dumps(self.stream_sid)},"media":{{"payload":"'
            params = start.get("customParameters") or {}
            return Start(call_id=params.get("call_id") or self.call_sid, carrier_call_id=self.call_sid,
                         language=params.get("language"), token=params.get("token"),
                         info={"stream_sid": self.stream_sid, "account_sid": start.get("accountSid", ""),
                               **({"direction": "outbound"} if params.get("direction") == "outbound" else {})})
        if event == "mark":
            return MarkPlayed(msg["mark"]["name"])
        if event == "dtmf":
            return Dtmf(str(msg["dtmf"]["digit"]))
        if event == "stop":
            return Stop("caller_hangup")
        if event == "connected":
            return None
        raise MalformedMessage(f"unknown Twilio event {event!r}")

    def audio(self, pcm: bytes) -> str:
        return self._media_prefix + pybase64.b64encode(pcm16_to_ulaw(pcm)).decode() + '"}}'

    def mark(self, name: str) -> str:
        return json.dumps({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    def clear(self) -> str:
        return json.dumps({"event": "clear", "streamSid": self.stream_sid})
