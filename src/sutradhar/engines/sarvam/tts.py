"""Sarvam text-to-speech: REST `/text-to-speech` (default) or the streaming WebSocket.

bulbul:v2 takes pitch, loudness and pace; bulbul:v3 takes pace and temperature only and answers
400 to pitch or loudness, so each model gets exactly its own parameters. Telephony wants 8 kHz, the
default output rate; the REST answer is a WAV whose header is stripped.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sutradhar.audio.codecs import strip_wav_header
from sutradhar.engines.base import (
    AudioChunk,
    EmptyResult,
    LanguageNotSupported,
    MalformedResponse,
    ProviderError,
    ProviderTimeout,
    Stage,
)
from sutradhar.engines.http import HTTPProvider, parse_json
from sutradhar.engines.sarvam.common import (
    AUTH_HEADER,
    SARVAM_LANGUAGES,
    open_ws,
    ws_base,
    ws_message,
)
from sutradhar.text.sentences import split_text

# Characters per request. v3 is documented at 2,500; v2 is commonly cited at 1,500.
MAX_CHARS = {"bulbul:v2": 1500, "bulbul:v3": 2500, "bulbul:v4-flash": 2500}
DEFAULT_SPEAKER = {"bulbul:v2": "anushka", "bulbul:v3": "shubh", "bulbul:v4-flash": "shubh_enhi_ads"}
@dataclass
class SarvamTTS(HTTPProvider):
    name: str = "sarvam"
    model: str = "bulbul:v2"
    speaker: str = ""  # empty: the language registry's voice for the model
    sample_rate: int = 8000
    pace: float = 1.0
    pitch: float = 0.0  # bulbul:v2 only
    loudness: float = 1.0  # bulbul:v2 only
    temperature: float = 0.6  # bulbul:v3 only
    streaming: bool = False
    ws_url: str = ""
    stage: Stage = "tts"
    languages: frozenset[str] | None = SARVAM_LANGUAGES

    def auth_headers(self) -> dict[str, str]:
        return {AUTH_HEADER: self.api_key}

    @property
    def is_v3(self) -> bool:
        # bulbul:v4-flash has v3's request contract (sarvamai 0.1.39).
        return self.model.startswith(("bulbul:v3", "bulbul:v4"))

    def speaker_for(self, language: str) -> str:
        if self.speaker:
            return self.speaker
        return DEFAULT_SPEAKER.get(self.model, "anushka")

    def voice_params(self, language: str) -> dict[str, Any]:
        """Parameters of this model only, under the names sarvamai 0.1.39 sends.

        The language goes as `language_code` on REST and in the socket's config (the SDK's
        `configure(target_language_code=...)` argument is renamed on the wire). pitch, loudness and
        enable_preprocessing are bulbul:v2 only: v3 answers 400 to pitch/loudness and always
        preprocesses; temperature is v3 only.
        """
        params: dict[str, Any] = {"language_code": language, "speaker": self.speaker_for(language),
                                  "pace": self.pace, "speech_sample_rate": self.sample_rate}
        if self.is_v3:
            params["temperature"] = self.temperature
        else:
            params["pitch"] = self.pitch
            params["loudness"] = self.loudness
            params["enable_preprocessing"] = True
        return params

    async def synthesize(self, text: str, language: str) -> AsyncIterator[AudioChunk]:
        if language not in SARVAM_LANGUAGES:
            raise LanguageNotSupported(f"Sarvam TTS has no {language}", provider=self.name,
                                       stage="tts")
        pieces = split_text(text, MAX_CHARS.get(self.model, 1500))
        if not pieces:
            raise EmptyResult("nothing to say", provider=self.name, stage="tts")
        once = self._stream_piece if self.streaming else self._rest_piece
        try:
            for piece in pieces:  # in order; each yields as soon as its audio arrives
                async for chunk in once(piece, language):
                    yield chunk
        except ProviderError as exc:
            self._record(exc)
            raise
        self._record(None)

    async def _rest_piece(self, text: str, language: str) -> AsyncIterator[AudioChunk]:
        body = {"text": text, "model": self.model, **self.voice_params(language)}
        response = await self._post("/text-to-speech", json=body)
        request_id = response.headers.get("x-request-id")
        answer = parse_json(response.content, provider=self.name, stage="tts", request_id=request_id)
        audios = answer.get("audios") if isinstance(answer, dict) else None
        if not isinstance(audios, list):
            raise MalformedResponse("no audios list in TTS answer", provider=self.name, stage="tts",
                                    request_id=request_id)
        produced = False
        for item in audios:
            pcm, rate = strip_wav_header(_b64(item, self.name, request_id))
            if pcm:
                produced = True
                yield AudioChunk(pcm[: len(pcm) // 2 * 2], rate or self.sample_rate)
        if not produced:
            raise EmptyResult("TTS answer had no audio", provider=self.name, stage="tts",
                              request_id=request_id)

    async def _stream_piece(self, text: str, language: str) -> AsyncIterator[AudioChunk]:
        """config, text, flush; then audio messages until the `final` event."""
        url = ws_base(self.base_url, self.ws_url) + "/text-to-speech/ws"
        params = {"model": self.model, "send_completion_event": "true"}
        config = {**self.voice_params(language), "output_audio_codec": "linear16",
                  "min_buffer_size": 50, "max_chunk_length": 150}
        produced = False
        try:
            async with open_ws(url, params, self.api_key, provider=self.name, stage="tts",
                               timeout_s=self.timeout_s) as ws:
                await ws.send(json.dumps({"type": "config", "data": config}))
                await ws.send(json.dumps({"type": "text", "data": {"text": text}}))
                await ws.send('{"type":"flush"}')
                while True:
                    async with asyncio.timeout(self.timeout_s):  # per message, like a read timeout
                        raw = await ws.recv()
                    message = ws_message(raw, provider=self.name, stage="tts")
                    kind, data = message.get("type"), message.get("data") or {}
                    if kind == "audio":
                        pcm, rate = strip_wav_header(_b64(data.get("audio"), self.name,
                                                          data.get("request_id")))
                        if len(pcm) >= 2:
                            produced = True
                            yield AudioChunk(pcm[: len(pcm) // 2 * 2], rate or self.sample_rate)
                    elif kind == "event" and data.get("event_type") == "final":
                        break
        except TimeoutError as exc:
            raise ProviderTimeout("TTS WebSocket went quiet", provider=self.name,
                                  stage="tts") from exc
        if not produced:
            raise EmptyResult("TTS stream had no audio", provider=self.name, stage="tts")


def _b64(value: object, provider: str, request_id: str | None) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (ValueError, TypeError):
        raise MalformedResponse("audio is not base64", provider=provider, stage="tts",
                                request_id=request_id) from None
