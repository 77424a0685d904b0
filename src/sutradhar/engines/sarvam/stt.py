"""Sarvam speech-to-text: REST `/speech-to-text` (default) or the streaming WebSocket.

Sarvam wants 16 kHz audio and at most 30 s per request, so input is resampled and longer turns are
cut into 30 s pieces transcribed concurrently and joined in order.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass

from sutradhar.audio.codecs import pcm16_to_wav, resample
from sutradhar.engines.base import (
    EmptyResult,
    ProviderError,
    ProviderTimeout,
    Stage,
    Transcript,
)
from sutradhar.engines.http import HTTPProvider, parse_json
from sutradhar.engines.sarvam.common import (
    AUTH_HEADER,
    SARVAM_LANGUAGES,
    open_ws,
    ws_base,
    ws_message,
)

SARVAM_STT_RATE = 16000
MAX_PIECE_S = 30
# Where `mode` applies, per sarvamai 0.1.39: REST says "only saaras:v3", the socket "saaras:v3 or
# saaras:v4". Elsewhere it is not sent.
REST_MODE_MODELS = ("saaras:v3",)
WS_MODE_MODELS = ("saaras:v3", "saaras:v4")


def split_pcm(audio: bytes, sample_rate: int, max_seconds: float = MAX_PIECE_S) -> list[bytes]:
    """Cut PCM16 into pieces of at most `max_seconds` (whole samples)."""
    step = int(max_seconds * sample_rate) * 2
    return [audio[i:i + step] for i in range(0, len(audio), step)] or [b""]


@dataclass
class SarvamSTT(HTTPProvider):
    name: str = "sarvam"
    model: str = "saaras:v3"  # the SDK's REST default; saarika is in neither of its model lists
    streaming: bool = False
    ws_url: str = ""
    stage: Stage = "stt"
    languages: frozenset[str] | None = SARVAM_LANGUAGES

    def auth_headers(self) -> dict[str, str]:
        return {AUTH_HEADER: self.api_key}

    async def transcribe(self, audio: bytes, sample_rate: int,
                         language: str | None = None) -> Transcript:
        pcm = resample(audio, sample_rate, SARVAM_STT_RATE) if sample_rate != SARVAM_STT_RATE else audio
        pieces = split_pcm(pcm, SARVAM_STT_RATE)
        once = self._stream_piece if self.streaming else self._rest_piece
        try:
            results = await asyncio.gather(*(once(piece, language) for piece in pieces))
        except ProviderError as exc:
            self._record(exc)
            raise
        text = " ".join(t for t, _ in results if t).strip()
        detected = next((lang for _, lang in results if lang), None)
        if not text:
            raise EmptyResult("empty transcript", provider=self.name, stage="stt")
        self._record(None)
        return Transcript(text=text, language=detected or language, provider=self.name)

    def _fields(self, language: str | None) -> dict[str, str]:
        fields = {"model": self.model, "language_code": language or "unknown"}
        if self.model.startswith(REST_MODE_MODELS):
            fields["mode"] = "transcribe"  # not translate: the agent answers in the caller's language
        return fields

    async def _rest_piece(self, pcm: bytes, language: str | None) -> tuple[str, str | None]:
        files = {"file": ("audio.wav", pcm16_to_wav(pcm, SARVAM_STT_RATE), "audio/wav")}
        response = await self._post("/speech-to-text", data=self._fields(language), files=files)
        body = parse_json(response.content, provider=self.name, stage="stt",
                          request_id=response.headers.get("x-request-id"))
        if not isinstance(body, dict):
            body = {}
        return (body.get("transcript") or "").strip(), body.get("language_code")

    async def _stream_piece(self, pcm: bytes, language: str | None) -> tuple[str, str | None]:
        """One utterance over the WebSocket: audio, flush, then the final `data` segment."""
        params = {"model": self.model, "language-code": language or "unknown",
                  "sample_rate": str(SARVAM_STT_RATE), "flush_signal": "true"}
        if self.model.startswith(WS_MODE_MODELS):
            params["mode"] = "transcribe"
        url = ws_base(self.base_url, self.ws_url) + "/speech-to-text/ws"
        try:
            async with asyncio.timeout(self.timeout_s):
                async with open_ws(url, params, self.api_key, provider=self.name, stage="stt",
                                   timeout_s=self.timeout_s) as ws:
                    audio = base64.b64encode(pcm16_to_wav(pcm, SARVAM_STT_RATE)).decode()
                    await ws.send(f'{{"audio":{{"data":"{audio}","encoding":"audio/wav",'
                                  f'"sample_rate":{SARVAM_STT_RATE}}}}}')
                    await ws.send('{"type":"flush"}')
                    async for raw in ws:
                        message = ws_message(raw, provider=self.name, stage="stt")
                        if message.get("type") == "data":
                            data = message.get("data") or {}
                            return (data.get("transcript") or "").strip(), data.get("language_code")
                    raise ProviderError("STT WebSocket closed before a transcript",
                                        provider=self.name, stage="stt")
        except TimeoutError as exc:
            raise ProviderTimeout("no transcript in time on the WebSocket", provider=self.name,
                                  stage="stt") from exc
