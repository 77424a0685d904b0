"""Exotel Voicebot / AgentStream wire format: PCM16 (not mu-law) at 8/16/24 kHz, snake_case JSON.

The rate comes from the stream URL (`?sample-rate=`, default 8000) and the start's media_format.
Exotel wants outbound media in chunks of at least 100 ms and in multiples of 320 bytes (a short tail
packet makes it wait 20 ms and leaves a gap), so this codec paces 100 ms frames.
"""

from __future__ import annotations

import json

import pybase64

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

RATES = (8000, 16000, 24000)


class ExotelCodec(Codec):
    carrier = "exotel"
    frame_ms = 100  # 1600 / 3200 / 4800 bytes: at least 100 ms and a multiple of 320 bytes
    lead_frames = 1

    def __init__(self, sample_rate: int = 8000, token: str | None = None) -> None:
        self.sample_rate = sample_rate
        self.url_token = token  # the stream URL's ?token= (its custom parameters carry it too)
        self.stream_sid = ""
        self._media_prefix = ""

    def decode(self, message: Wire) -> Inbound:
        msg = json_object(message)
        event = msg.get("event")
        if event == "media":
            pcm = pybase64.b64decode(msg["media"]["payload"], validate=True)
            if len(pcm) % 2:
                raise MalformedMessage("odd-length PCM16 payload")
            return pcm
        if event == "start":
            start = msg["start"]
            self.stream_sid = start.get("stream_sid") or msg.get("stream_sid") or ""
            self._media_prefix = f'{{"event":"media","stream_sid":{json.dumps(self.stream_sid)},"media":{{"payload":"'
            rate = int((start.get("media_format") or {}).get("sample_rate") or self.sample_rate)
            if rate in RATES:
                self.sample_rate = rate
            params = start.get("custom_parameters") or {}
            call_sid = start["call_sid"]
            return Start(call_id=call_sid, carrier_call_id=call_sid, language=params.get("language"),
                         token=params.get("token") or self.url_token,
                         info={"stream_sid": self.stream_sid, "account_sid": start.get("account_sid", ""),
                               "sample_rate": self.sample_rate})
        if event == "mark":
            return MarkPlayed(msg["mark"]["name"])
        if event == "dtmf":
            return Dtmf(str(msg["dtmf"]["digit"]))
        if event == "stop":
            return Stop((msg.get("stop") or {}).get("reason") or "caller_hangup")
        if event == "connected":
            return None
        raise MalformedMessage(f"unknown Exotel event {event!r}")

    def audio(self, pcm: bytes) -> str:
        return self._media_prefix + pybase64.b64encode(pcm).decode() + '"}}'

    def mark(self, name: str) -> str:
        return json.dumps({"event": "mark", "stream_sid": self.stream_sid, "mark": {"name": name}})

    def clear(self) -> str:
        return json.dumps({"event": "clear", "stream_sid": self.stream_sid})
