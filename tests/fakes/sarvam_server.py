"""A loopback server speaking Sarvam's wire formats, for driving the real clients in tests.

    async with FakeSarvam() as fake:
        fake.transcribe_as("नमस्ते", "hi-IN")               # next STT answer (queue)
        fake.transcriber = lambda pcm, fields: ("hi", "en-IN")  # or compute it from the audio
        fake.inject("stt", Fault.quota())                   # next /speech-to-text answers 429 quota
        settings = load_settings(sarvam_base_url=fake.base_url, sarvam_api_key=fake.api_key, ...)

Endpoints (fault queue names): `stt` POST /speech-to-text, `tts` POST /text-to-speech,
`chat` POST /v1/chat/completions (SSE), `stt_ws` /speech-to-text/ws, `tts_ws` /text-to-speech/ws.
TTS answers a tone whose length follows the text (60 ms a character) at the requested rate, and,
like Sarvam, rejects pitch or loudness for bulbul:v3 with a 400. Every request is recorded in
`fake.requests`. STT audio longer than 30 s is rejected with a 400, as Sarvam does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from sutradhar.audio.codecs import pcm16_to_wav, wav_to_pcm16
from tests.fakes._server import FakeServer, Fault, error_body, tone_pcm

Transcriber = Callable[[bytes, dict[str, Any]], tuple[str, str | None]]

MS_PER_CHAR = 60




class FakeSarvam(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.transcripts: deque[tuple[str, str | None]] = deque()
        self.transcriber: Transcriber | None = None
        self.default_transcript: tuple[str, str | None] = ("hello", "en-IN")

    def transcribe_as(self, text: str, language: str | None) -> None:
        self.transcripts.append((text, language))

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/speech-to-text", self.stt)
        app.router.add_post("/text-to-speech", self.tts)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/speech-to-text/ws", self.stt_ws)
        app.router.add_get("/text-to-speech/ws", self.tts_ws)

    def check_auth(self, request: web.Request) -> web.Response | None:
        if request.headers.get("api-subscription-key") != self.api_key:
            return error_body(403, "invalid_api_key_error", "Invalid API key", uuid.uuid4().hex[:12])
        return None

    def _transcript(self, pcm: bytes, fields: dict[str, Any]) -> tuple[str, str | None]:
        if self.transcriber is not None:
            return self.transcriber(pcm, fields)
        return self.transcripts.popleft() if self.transcripts else self.default_transcript

    # --- REST ---
    async def stt(self, request: web.Request) -> web.StreamResponse:
        fault = self.take_fault("stt")
        form = await request.post()
        upload = form.get("file")
        fields = {k: v for k, v in form.items() if k != "file"}
        pcm, rate = wav_to_pcm16(upload.file.read())  # type: ignore[union-attr]
        self.requests.append({"endpoint": "stt", "headers": dict(request.headers), "fields": fields,
                              "seconds": len(pcm) / 2 / rate, "sample_rate": rate})
        if (denied := self.check_auth(request)) is not None:
            return denied
        if (early := await self.before(fault)) is not None:
            return early
        if len(pcm) / 2 / rate > 30.0:
            return error_body(400, "invalid_request_error", "Audio longer than 30 seconds", "r400")
        text, language = self._transcript(pcm, fields)
        request_id = f"req_{uuid.uuid4().hex[:12]}"
        return web.json_response({"request_id": request_id, "transcript": text,
                                  "language_code": language, "timestamps": None,
                                  "diarized_transcript": None}, headers={"x-request-id": request_id})

    async def tts(self, request: web.Request) -> web.StreamResponse:
        fault = self.take_fault("tts")
        body = await request.json()
        self.requests.append({"endpoint": "tts", "headers": dict(request.headers), "json": body})
        if (denied := self.check_auth(request)) is not None:
            return denied
        if (early := await self.before(fault)) is not None:
            return early
        if body.get("model", "").startswith("bulbul:v3") and ({"pitch", "loudness"} & body.keys()):
            return error_body(400, "invalid_request_error",
                              "pitch and loudness are not supported for bulbul:v3", "r400")
        rate = int(body.get("speech_sample_rate", 22050))
        pcm = tone_pcm(len(body.get("text", "")) * MS_PER_CHAR / 1000, rate)
        audio = base64.b64encode(pcm16_to_wav(pcm, rate)).decode()
        return web.json_response({"request_id": "req_tts", "audios": [audio]})

    # --- WebSockets ---
    async def _ws_open(self, request: web.Request, endpoint: str
                       ) -> tuple[web.WebSocketResponse | web.Response, Fault | None]:
        fault = self.take_fault(endpoint)
        self.requests.append({"endpoint": endpoint, "headers": dict(request.headers),
                              "query": dict(request.query), "messages": []})
        if (denied := self.check_auth(request)) is not None:
            return denied, fault
        if fault is not None and fault.status is not None and fault.status != 200:
            return error_body(fault.status, fault.code, fault.message, fault.request_id), None
        ws = web.WebSocketResponse(max_msg_size=64 * 1024 * 1024)
        await ws.prepare(request)
        return ws, fault

    async def _ws_fault(self, ws: web.WebSocketResponse, fault: Fault | None) -> bool:
        """Apply a fault once the client has asked for output; True when the exchange is over."""
        if fault is None:
            return False
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.hang:
            await self._stopping.wait()
            return True
        if fault.code:
            await ws.send_json({"type": "error", "data": {"message": fault.message, "code": fault.code,
                                                          "request_id": fault.request_id}})
            return True
        if fault.malformed:
            await ws.send_str("{not json")
            return True
        return False

    async def stt_ws(self, request: web.Request) -> web.StreamResponse:
        ws, fault = await self._ws_open(request, "stt_ws")
        if not isinstance(ws, web.WebSocketResponse):
            return ws
        record = self.requests[-1]
        audio = b""
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            message = json.loads(msg.data)
            record["messages"].append(message.get("type") or "audio")
            if "audio" in message:
                raw = base64.b64decode(message["audio"]["data"])
                audio += wav_to_pcm16(raw)[0] if raw[:4] == b"RIFF" else raw
            elif message.get("type") == "flush":
                if await self._ws_fault(ws, fault):
                    break
                if fault is not None and fault.cut:
                    await ws.close()
                    break
                text, language = self._transcript(audio, dict(request.query))
                await ws.send_json({"type": "data", "data": {
                    "request_id": "req_ws", "transcript": text, "language_code": language,
                    "metrics": {"audio_duration": len(audio) / 32000, "processing_latency": 0.01}}})
                audio = b""
        await ws.close()
        return ws

    async def tts_ws(self, request: web.Request) -> web.StreamResponse:
        ws, fault = await self._ws_open(request, "tts_ws")
        if not isinstance(ws, web.WebSocketResponse):
            return ws
        record = self.requests[-1]
        config: dict[str, Any] = {}
        text = ""
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            message = json.loads(msg.data)
            kind = message.get("type")
            record["messages"].append(message)
            if kind == "config":
                config = message.get("data", {})
            elif kind == "text":
                text += message["data"]["text"]
            elif kind == "flush":
                if await self._ws_fault(ws, fault):
                    break
                rate = int(config.get("speech_sample_rate", 22050))
                pcm = tone_pcm(len(text) * MS_PER_CHAR / 1000, rate)
                step = rate // 5 * 2  # 200 ms messages
                pieces = [pcm[i:i + step] for i in range(0, len(pcm), step)]
                for n, piece in enumerate(pieces):
                    if fault is not None and fault.cut and n == len(pieces) // 2:
                        await ws.close()
                        return ws
                    await ws.send_json({"type": "audio", "data": {
                        "audio": base64.b64encode(piece).decode(), "request_id": "req_tts_ws"}})
                await ws.send_json({"type": "event", "data": {"event_type": "final"}})
                text = ""
        await ws.close()
        return ws
