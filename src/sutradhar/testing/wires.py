"""The carrier side of each media socket, for the simulator and tests: the mirror image of
`sutradhar.telephony`'s codecs (what Twilio, Exotel, Plivo and the browser page send and expect)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from sutradhar.audio.codecs import pcm16_to_ulaw, ulaw_to_pcm16
from sutradhar.urls import websocket_url


class Wire:
    rate = 8000
    frame_ms = 20
    frames_per_message = 1

    def __init__(self, base_url: str, call_sid: str, stream_sid: str, *, token: str = "",
                 sample_rate: int = 8000) -> None:
        self.base_url, self.call_sid, self.stream_sid, self.token = base_url, call_sid, stream_sid, token

    def url(self) -> str: ...
    def opening(self, params: dict[str, str]) -> list[str | bytes]: ...
    def media(self, pcm: bytes) -> str | bytes: ...
    def dtmf(self, digit: str) -> str: ...
    def mark_played(self, name: str) -> str | None: ...
    def stop(self) -> str | None: ...
    def parse(self, message: str | bytes) -> tuple[str, Any]:
        """-> ("audio", pcm16) | ("mark", name) | ("clear", None) | ("event", dict)"""
        ...


class TwilioWire(Wire):
    def url(self) -> str:
        return websocket_url(self.base_url) + "/twilio/media"

    def opening(self, params: dict[str, str]) -> list[str | bytes]:
        self._seq = 1
        start = {"accountSid": "ACsimulator", "streamSid": self.stream_sid, "callSid": self.call_sid,
                 "tracks": ["inbound"], "customParameters": params,
                 "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}
        self._chunk = 0
        return [json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
                json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": self.stream_sid, "start": start})]

    def _next(self) -> str:
        self._seq += 1
        return str(self._seq)

    def media(self, pcm: bytes) -> str:
        self._chunk += 1
        return json.dumps({"event": "media", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
                           "media": {"track": "inbound", "chunk": str(self._chunk), "timestamp": str(self._chunk * 20),
                                     "payload": base64.b64encode(pcm16_to_ulaw(pcm)).decode()}})

    def dtmf(self, digit: str) -> str:
        return json.dumps({"event": "dtmf", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
                           "dtmf": {"track": "inbound_track", "digit": digit}})

    def mark_played(self, name: str) -> str:
        return json.dumps({"event": "mark", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
                           "mark": {"name": name}})

    def stop(self) -> str:
        return json.dumps({"event": "stop", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
                           "stop": {"accountSid": "ACsimulator", "callSid": self.call_sid}})

    def parse(self, message: str | bytes) -> tuple[str, Any]:
        msg = json.loads(message)
        event = msg.get("event")
        if event == "media":
            return "audio", ulaw_to_pcm16(base64.b64decode(msg["media"]["payload"]))
        if event == "mark":
            return "mark", msg["mark"]["name"]
        if event == "clear":
            return "clear", None
        return "event", msg


class ExotelWire(Wire):
    frames_per_message = 5  # Exotel sends ~100 ms per media message

    def __init__(self, base_url: str, call_sid: str, stream_sid: str, *, token: str = "",
                 sample_rate: int = 8000) -> None:
        super().__init__(base_url, call_sid, stream_sid, token=token)
        self.rate = sample_rate  # the ?sample-rate= this stream asks for

    def url(self) -> str:
        return websocket_url(self.base_url) + f"/exotel/media?sample-rate={self.rate}"

    def opening(self, params: dict[str, str]) -> list[str | bytes]:
        self._seq = 1
        start = {"stream_sid": self.stream_sid, "call_sid": self.call_sid, "account_sid": "simulator",
                 "from": "+910000000000", "to": "+910000000001", "custom_parameters": params,
                 "media_format": {"encoding": "audio/x-raw", "sample_rate": str(self.rate), "bit_rate": "16"}}
        return [json.dumps({"event": "connected"}),
                json.dumps({"event": "start", "sequence_number": "1", "stream_sid": self.stream_sid, "start": start})]

    def _next(self) -> str:
        self._seq += 1
        return str(self._seq)

    def media(self, pcm: bytes) -> str:
        return json.dumps({"event": "media", "sequence_number": self._next(), "stream_sid": self.stream_sid,
                           "media": {"chunk": self._seq, "timestamp": "0", "payload": base64.b64encode(pcm).decode()}})

    def dtmf(self, digit: str) -> str:
        return json.dumps({"event": "dtmf", "sequence_number": self._next(), "stream_sid": self.stream_sid,
                           "dtmf": {"digit": digit, "duration": "100"}})

    def mark_played(self, name: str) -> str:
        return json.dumps({"event": "mark", "sequence_number": self._next(), "stream_sid": self.stream_sid,
                           "mark": {"name": name}})

    def stop(self) -> str:
        return json.dumps({"event": "stop", "sequence_number": self._next(), "stream_sid": self.stream_sid,
                           "stop": {"call_sid": self.call_sid, "account_sid": "simulator", "reason": "callended"}})

    def parse(self, message: str | bytes) -> tuple[str, Any]:
        msg = json.loads(message)
        event = msg.get("event")
        if event == "media":
            return "audio", base64.b64decode(msg["media"]["payload"])
        if event == "mark":
            return "mark", msg["mark"]["name"]
        if event == "clear":
            return "clear", None
        return "event", msg


class PlivoWire(Wire):
    def url(self) -> str:
        return websocket_url(self.base_url) + "/plivo/media"

    def opening(self, params: dict[str, str]) -> list[str | bytes]:
        self._seq = 1
        # extraHeaders allows only [A-Za-z0-9]: "hi-IN" travels as "hiIN"
        extra = ",".join(f"{k}={''.join(c for c in v if c.isalnum())}" for k, v in params.items() if k != "call_id")
        return [json.dumps({"event": "start", "sequenceNumber": 1, "extra_headers": extra,
                            "start": {"callId": self.call_sid, "streamId": self.stream_sid, "accountId": "MAsim",
                                      "tracks": ["inbound"],
                                      "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}}})]

    def media(self, pcm: bytes) -> str:
        self._seq += 1
        return json.dumps({"event": "media", "sequenceNumber": self._seq, "streamId": self.stream_sid,
                           "media": {"track": "inbound", "timestamp": str(int(time.time() * 1000)),
                                     "chunk": self._seq, "payload": base64.b64encode(pcm16_to_ulaw(pcm)).decode()}})

    def dtmf(self, digit: str) -> str:
        self._seq += 1
        return json.dumps({"event": "dtmf", "sequenceNumber": self._seq, "streamId": self.stream_sid,
                           "dtmf": {"track": "inbound", "digit": digit, "timestamp": "0"}})

    def mark_played(self, name: str) -> str:
        self._seq += 1
        return json.dumps({"event": "playedStream", "sequenceNumber": self._seq, "streamId": self.stream_sid,
                           "name": name})

    def stop(self) -> str | None:
        return None  # Plivo just closes the socket

    def parse(self, message: str | bytes) -> tuple[str, Any]:
        msg = json.loads(message)
        event = msg.get("event")
        if event == "playAudio":
            return "audio", ulaw_to_pcm16(base64.b64decode(msg["media"]["payload"]))
        if event == "checkpoint":
            return "mark", msg["name"]
        if event == "clearAudio":
            return "clear", None
        return "event", msg


class BrowserWire(Wire):
    rate = 16000

    def url(self) -> str:
        query = f"?token={self.token}" if self.token else ""
        return websocket_url(self.base_url) + "/browser/media" + query

    def opening(self, params: dict[str, str]) -> list[str | bytes]:
        return [json.dumps({"type": "start", "call_id": self.call_sid, **params})]

    def media(self, pcm: bytes) -> bytes:
        return pcm

    def text(self, text: str) -> str:
        return json.dumps({"type": "text", "text": text})

    def dtmf(self, digit: str) -> str:
        return json.dumps({"type": "dtmf", "digit": digit})

    def mark_played(self, name: str) -> str:
        return json.dumps({"type": "mark", "name": name})

    def stop(self) -> str:
        return json.dumps({"type": "stop"})

    def parse(self, message: str | bytes) -> tuple[str, Any]:
        if isinstance(message, bytes):
            return "audio", message
        msg = json.loads(message)
        kind = msg.get("type")
        if kind == "mark":
            return "mark", msg["name"]
        if kind == "clear":
            return "clear", None
        return "event", msg


WIRES = {"twilio": TwilioWire, "exotel": ExotelWire, "plivo": PlivoWire, "browser": BrowserWire}
