"""A loopback server speaking the OpenAI wire format (chat SSE, transcriptions, speech).

    async with FakeOpenAI() as fake:          # base_url ends in /v1, like the real one
        fake.reply("Paris is the capital.")
        fake.inject("chat", Fault(cut=True))

Endpoints (fault queue names): `chat` POST /v1/chat/completions, `stt` POST
/v1/audio/transcriptions, `tts` POST /v1/audio/speech (24 kHz PCM16 streamed in odd-sized pieces,
so clients must carry half samples across reads).
"""

from __future__ import annotations

import asyncio
import io
import uuid
import wave
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakes._server import FakeServer, error_body, tone_pcm

MS_PER_CHAR = 60


class FakeOpenAI(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.transcripts: deque[str] = deque()
        self.transcriber: Callable[[bytes, dict[str, Any]], str] | None = None
        self.default_transcript = "hello"
        self.speech_piece_bytes = 1001  # odd on purpose

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/audio/transcriptions", self.stt)
        app.router.add_post("/v1/audio/speech", self.tts)
        app.router.add_get("/v1/models", self.models)

    def check_auth(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return error_body(401, "invalid_api_key", "Incorrect API key provided", uuid.uuid4().hex)
        return None

    async def models(self, request: web.Request) -> web.StreamResponse:
        return self.check_auth(request) or web.json_response({"data": [{"id": "gpt-4o-mini"}]})

    async def stt(self, request: web.Request) -> web.StreamResponse:
        fault = self.take_fault("stt")
        form = await request.post()
        upload = form.get("file")
        fields = {k: v for k, v in form.items() if k != "file"}
        with wave.open(io.BytesIO(upload.file.read()), "rb") as src:  # type: ignore[union-attr]
            pcm = src.readframes(src.getnframes())
        self.requests.append({"endpoint": "stt", "headers": dict(request.headers), "fields": fields})
        if (denied := self.check_auth(request)) is not None:
            return denied
        if (early := await self.before(fault)) is not None:
            return early
        if self.transcriber is not None:
            text = self.transcriber(pcm, fields)
        else:
            text = self.transcripts.popleft() if self.transcripts else self.default_transcript
        return web.json_response({"text": text})

    async def tts(self, request: web.Request) -> web.StreamResponse:
        fault = self.take_fault("tts")
        body = await request.json()
        self.requests.append({"endpoint": "tts", "headers": dict(request.headers), "json": body})
        if (denied := self.check_auth(request)) is not None:
            return denied
        if (early := await self.before(fault)) is not None:
            return early
        pcm = tone_pcm(len(body.get("input", "")) * MS_PER_CHAR / 1000, 24000)
        response = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
        await response.prepare(request)
        step = self.speech_piece_bytes
        for n, i in enumerate(range(0, len(pcm), step)):
            if fault is not None and fault.cut and i >= len(pcm) // 2:
                request.transport.close()  # type: ignore[union-attr]
                return response
            await response.write(pcm[i:i + step])
            if n % 8 == 0:
                await asyncio.sleep(0)
        await response.write_eof()
        return response
