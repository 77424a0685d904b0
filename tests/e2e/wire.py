"""A bare Twilio Media Streams caller for tests that need exact control of the wire: send frames as
fast as wanted, echo marks like Twilio, hang up at a chosen moment, or send anything at all."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import httpx
import websockets
from twilio.request_validator import RequestValidator

from sutradhar.audio.codecs import pcm16_to_ulaw, ulaw_to_pcm16

FRAME = 160  # 20 ms of 8 kHz samples


def handshake_signature(ws_url: str, auth_token: str) -> dict[str, str]:
    """The X-Twilio-Signature header Twilio sends on /twilio/media: the wss:// URL, empty params.
    It is the same for every call, which is why a stream also needs its token."""
    signed = "wss://" + (ws_url + "/twilio/media").split("://", 1)[1]
    return {"X-Twilio-Signature": RequestValidator(auth_token).compute_signature(signed, {})}


async def stream_token(base_url: str, call_sid: str, auth_token: str, public_url: str | None = None) -> str:
    """Answer `call_sid` through the signed IVR webhook, as Twilio would, and return the stream
    token its <Connect><Stream> carries."""
    import xml.etree.ElementTree as ET

    path = "/twilio/language?attempt=2"  # the last attempt: no key needed, the default language
    form = {"CallSid": call_sid, "AccountSid": "ACtest"}
    signature = RequestValidator(auth_token).compute_signature((public_url or base_url) + path, form)
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        response = await client.post(path, data=form, headers={"X-Twilio-Signature": signature})
    response.raise_for_status()
    params = {p.get("name"): p.get("value") for p in ET.fromstring(response.text).iter("Parameter")}
    return params["token"]


class TwilioCaller:
    def __init__(self, ws_url: str, language: str = "en-IN", call_id: str | None = None,
                 headers: dict[str, str] | None = None, echo_marks: bool = True,
                 token: str | None = None) -> None:
        self.url = ws_url + "/twilio/media"
        self.call_id = call_id or "CA" + uuid.uuid4().hex
        self.token = token  # the stream token from the answer webhook (`stream_token`), when required
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.language = language
        self.headers = headers or {}
        self.echo_marks = echo_marks
        self.audio = bytearray()  # agent audio received, PCM16 8 kHz
        self.marks: list[str] = []
        self.mark_at: dict[str, int] = {}  # mark name -> bytes of agent audio received before it
        self.events: list[dict[str, Any]] = []
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self.ws: Any = None
        self.last_audio_at = 0.0  # loop time of the last agent audio message
        self._seq = 0
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, start: bool = True) -> TwilioCaller:
        self.ws = await websockets.connect(self.url, additional_headers=self.headers, max_size=2**24,
                                           open_timeout=5)
        self._reader = asyncio.create_task(self._read())
        self.last_audio_at = asyncio.get_running_loop().time()  # the greeting is about to start
        if start:
            await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            await self.send({"event": "start", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
                             "start": {"accountSid": "ACtest", "streamSid": self.stream_sid, "callSid": self.call_id,
                                       "tracks": ["inbound"],
                                       "customParameters": self.parameters(),
                                       "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                                       "channels": 1}}})
        return self

    async def __aenter__(self) -> TwilioCaller:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def parameters(self) -> dict[str, str]:
        """The <Parameter>s Twilio passes in start.customParameters."""
        params = {"call_id": self.call_id, "language": self.language}
        return params | {"token": self.token} if self.token else params

    def _next(self) -> str:
        self._seq += 1
        return str(self._seq)

    async def send(self, message: dict[str, Any] | str | bytes) -> bool:
        """Send anything; False when the socket is already closed."""
        data = json.dumps(message) if isinstance(message, dict) else message
        try:
            await self.ws.send(data)
            return True
        except websockets.ConnectionClosed:
            return False

    def media(self, ulaw: bytes) -> dict[str, Any]:
        return {"event": "media", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
                "media": {"track": "inbound", "chunk": "1", "timestamp": "0",
                          "payload": base64.b64encode(ulaw).decode()}}

    async def say(self, pcm: bytes, pace_s: float = 0.0) -> None:
        """Send PCM16 8 kHz as 20 ms mu-law media messages (`pace_s` between them; 0: a burst)."""
        ulaw = pcm16_to_ulaw(pcm)
        for i in range(0, len(ulaw), FRAME):
            if not await self.send(self.media(ulaw[i:i + FRAME].ljust(FRAME, b"\xff"))):
                return
            await asyncio.sleep(pace_s)

    async def silence(self, ms: int, pace_s: float = 0.0) -> None:
        await self.say(bytes(ms * 16), pace_s)

    async def stop(self) -> None:
        await self.send({"event": "stop", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
                         "stop": {"accountSid": "ACtest", "callSid": self.call_id}})

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 5)

    async def abort(self) -> None:
        """Drop the TCP connection without a closing handshake (a phone line that just dies)."""
        transport = getattr(self.ws, "transport", None)
        if transport is not None:
            transport.abort()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 5)

    async def wait_audio(self, seconds: float, timeout: float = 10.0) -> bool:
        """Wait until at least `seconds` of agent audio has arrived."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.audio) < seconds * 16000:
            if self.closed.is_set() or asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def wait_quiet(self, quiet_s: float = 0.4, timeout: float = 15.0) -> bool:
        """Wait until the agent has sent no audio for `quiet_s` (it finished speaking)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() - self.last_audio_at < quiet_s:
            if self.closed.is_set() or loop.time() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def turn(self, pcm: bytes, pace_s: float = 0.0, timeout: float = 10.0, min_reply_s: float = 0.1) -> bool:
        """One caller turn: wait for the agent to finish, speak, then wait for new agent audio."""
        await self.wait_quiet(timeout=timeout)
        before = len(self.audio)
        await self.say(pcm, pace_s)
        await self.silence(800, pace_s)
        return await self.wait_audio(before / 16000 + min_reply_s, timeout)

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if isinstance(message, bytes):
                    self.events.append({"binary": len(message)})
                    continue
                msg = json.loads(message)
                event = msg.get("event")
                if event == "media":
                    self.audio += ulaw_to_pcm16(base64.b64decode(msg["media"]["payload"]))
                    self.last_audio_at = asyncio.get_running_loop().time()
                elif event == "mark":
                    self.marks.append(msg["mark"]["name"])
                    self.mark_at[msg["mark"]["name"]] = len(self.audio)
                    if self.echo_marks:
                        await self.send({"event": "mark", "sequenceNumber": self._next(),
                                         "streamSid": self.stream_sid, "mark": msg["mark"]})
                else:
                    self.events.append(msg)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason or ""
            self.closed.set()
