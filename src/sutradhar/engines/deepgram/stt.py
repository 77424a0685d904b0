"""Deepgram speech-to-text: live streaming over the `/v1/listen` WebSocket, batch over REST.

Streaming: one WebSocket per caller utterance. Audio goes up as binary linear16 frames; Deepgram
answers `Results` messages: interims (`is_final` false, may still change) and finals (`is_final`
true, never revised). Endpointing is off because our turn detector decides the end of a turn: at
that point `finish` sends `{"type": "Finalize"}`, Deepgram flushes what it holds as a final with
`from_finalize` true, and the transcript is every final received, in order: one round trip.

Batch: `POST /v1/listen` with a WAV body (a container names its own rate and encoding; the
official SDK's `transcribe_file` takes no `sample_rate`, so raw PCM would be guesswork).

The official `deepgram-sdk` is a test dependency only (tests/contract): at run time this speaks
the wire protocol with `websockets` and `httpx`, like the other cloud clients.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from sutradhar.audio.codecs import pcm16_to_wav
from sutradhar.engines.base import (
    BadRequest,
    EmptyResult,
    Interim,
    MalformedResponse,
    ProviderError,
    ProviderTimeout,
    QuotaExceeded,
    Stage,
    Transcript,
)
from sutradhar.engines.http import HTTPProvider, error_for, parse_json
from sutradhar.urls import websocket_url

# Our BCP-47 codes -> Deepgram's. English keeps its region (nova-3 has an Indian English model);
# the Indian languages go by their base code, as Deepgram lists them.
LANGUAGE_CODES: dict[str, str] = {
    "en-IN": "en-IN", "en-US": "en-US", "en-GB": "en-GB", "hi-IN": "hi", "bn-IN": "bn",
    "mr-IN": "mr", "ta-IN": "ta", "te-IN": "te", "gu-IN": "gu", "pa-IN": "pa",
}
# Deepgram's codes back to ours, for the language a `multi` stream detected.
OUR_CODES: dict[str, str] = {"en": "en-IN", **{v: k for k, v in LANGUAGE_CODES.items()}}
# What each model family takes (Deepgram's Models & Languages overview). `multi` on nova-3 is
# code-switching across ten languages including Hindi and English (Hinglish callers); on nova-2 it
# only mixes English and Spanish, so detection always uses nova-3.
NOVA3_LANGUAGES = frozenset({"en", "en-US", "en-GB", "en-AU", "en-NZ", "en-IN", "en-CA", "hi",
                             "bn", "mr", "ta", "te", "gu", "pa", "multi"})
NOVA2_LANGUAGES = frozenset({"en", "en-US", "en-GB", "en-AU", "en-NZ", "en-IN", "hi", "hi-Latn",
                             "multi"})
DETECT = "multi"
FINALIZE = '{"type":"Finalize"}'
CLOSE_STREAM = '{"type":"CloseStream"}'


def deepgram_language(language: str | None) -> str:
    """"hi-IN" -> "hi"; None (detect) -> "multi". A code we have no mapping for goes as is."""
    if not language:
        return DETECT
    return LANGUAGE_CODES.get(language, language)


def model_for(configured: str, code: str) -> str:
    """The configured model, or nova-2 for a language only nova-2 serves (and nova-3 for `multi`)."""
    if code == DETECT:
        return configured if configured.startswith("nova-3") else "nova-3"
    if configured.startswith("nova-3") and code not in NOVA3_LANGUAGES and code in NOVA2_LANGUAGES:
        return "nova-2"
    return configured


def deepgram_error(status: int, body: bytes, headers: Any, *, provider: str,
                   stage: Stage = "stt") -> ProviderError:
    """Deepgram answers errors as `{"err_code", "err_msg", "request_id"}` (and `dg-error`,
    `dg-request-id` headers on a refused WebSocket handshake). 402 is "no credits"."""
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        parsed = {}
    parsed = parsed if isinstance(parsed, dict) else {}
    message = parsed.get("err_msg") or parsed.get("message") or headers.get("dg-error") \
        or (body[:200].decode("utf-8", "replace").strip() if body else "") or f"HTTP {status}"
    if parsed.get("err_code"):
        message = f"{parsed['err_code']}: {message}"
    request_id = parsed.get("request_id") or headers.get("dg-request-id")
    if status == 402:
        return QuotaExceeded(message, provider=provider, stage=stage, status=status,
                             request_id=request_id)
    return error_for(status, None, message, provider=provider, stage=stage, request_id=request_id)


def close_error(exc: ConnectionClosed, *, provider: str) -> ProviderError:
    """A socket Deepgram closed (1008: audio it cannot decode; 1011: its timeout) or that was cut."""
    frame = exc.rcvd
    detail = f"code={frame.code} reason={frame.reason!r}" if frame else "no close frame"
    if frame is not None and frame.code == 1008:
        return BadRequest(f"Deepgram closed the stream: {detail}", provider=provider, stage="stt")
    return ProviderError(f"Deepgram stream cut: {detail}", provider=provider, stage="stt",
                         retryable=True)


def _alternative(message: dict[str, Any], provider: str) -> dict[str, Any]:
    try:
        alternative = message["channel"]["alternatives"][0]
    except (KeyError, IndexError, TypeError):
        alternative = None
    if not isinstance(alternative, dict):
        raise MalformedResponse("Results without an object at channel.alternatives[0]",
                                provider=provider, stage="stt")
    return alternative


def _detected(alternative: dict[str, Any], fallback: str | None) -> str | None:
    languages = alternative.get("languages") or []
    return OUR_CODES.get(languages[0], languages[0]) if languages else fallback


class DeepgramStream:
    """One utterance on one WebSocket. A reader task collects Results as they come, so `send`
    never waits for the server and `finish` only waits for the Finalize answer."""

    def __init__(self, ws: ClientConnection, *, provider: str, language: str | None,
                 on_interim: Interim | None, finalize_timeout_s: float) -> None:
        self._ws, self._provider, self._language = ws, provider, language
        self._on_interim = on_interim
        self._finalize_timeout_s = finalize_timeout_s
        self._finals: list[str] = []
        self._confidences: list[float] = []
        self._detected: str | None = None
        self._finalized = asyncio.Event()  # a from_finalize final arrived, or the reader stopped
        self._error: ProviderError | None = None
        self._closing = False
        self._closed = False
        self.sent_bytes = 0
        self._reader = asyncio.create_task(self._read(), name=f"{provider}-stt-reader")

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                if isinstance(raw, bytes):
                    continue  # Deepgram sends no binary frames on /v1/listen
                message = parse_json(raw, provider=self._provider, stage="stt")
                if not isinstance(message, dict):
                    raise MalformedResponse("WebSocket message is not an object",
                                            provider=self._provider, stage="stt")
                kind = message.get("type")
                if kind == "Results":
                    self._on_results(message)
                elif kind == "Error":
                    description = str(message.get("description") or "Deepgram stream error")
                    error_class = BadRequest if message.get("variant") == "SchemaError" else ProviderError
                    raise error_class(description, provider=self._provider, stage="stt")
                # Metadata, SpeechStarted and UtteranceEnd carry nothing we need.
            if not self._closing:
                self._error = ProviderError("Deepgram closed the stream before the final transcript",
                                            provider=self._provider, stage="stt")
        except ConnectionClosed as exc:
            if not self._closing:
                self._error = close_error(exc, provider=self._provider)
        except ProviderError as exc:
            self._error = exc
        finally:
            self._finalized.set()

    def _on_results(self, message: dict[str, Any]) -> None:
        alternative = _alternative(message, self._provider)
        text = str(alternative.get("transcript") or "").strip()
        self._detected = _detected(alternative, self._detected)
        if message.get("is_final"):
            if text:
                self._finals.append(text)
                if isinstance(alternative.get("confidence"), int | float):
                    self._confidences.append(float(alternative["confidence"]))
            if message.get("from_finalize"):
                self._finalized.set()
        elif self._on_interim is not None and text:
            # An interim covers only what follows the last final: show the whole utterance so far.
            self._on_interim(Transcript(" ".join([*self._finals, text]),
                                        self._detected or self._language, None, self._provider,
                                        is_final=False))

    async def send(self, pcm: bytes) -> None:
        if self._error is not None:
            raise self._error
        if self._closed or self._reader.done():
            raise ProviderError("Deepgram stream is closed", provider=self._provider, stage="stt")
        try:
            await self._ws.send(pcm)
        except ConnectionClosed as exc:
            raise self._error or close_error(exc, provider=self._provider) from exc
        self.sent_bytes += len(pcm)

    async def finish(self) -> Transcript:
        if self._error is not None:
            raise self._error
        if self._closed or self._reader.done():
            raise ProviderError("Deepgram stream is closed", provider=self._provider, stage="stt")
        if self.sent_bytes:
            self._finalized.clear()  # the reader sets it again on from_finalize, or when it stops
            try:
                await self._ws.send(FINALIZE)
                async with asyncio.timeout(self._finalize_timeout_s):
                    await self._finalized.wait()
            except ConnectionClosed as exc:
                raise self._error or close_error(exc, provider=self._provider) from exc
            except TimeoutError as exc:
                raise ProviderTimeout("no answer to Finalize in time", provider=self._provider,
                                      stage="stt") from exc
            if self._error is not None:
                raise self._error
        confidence = (sum(self._confidences) / len(self._confidences)) if self._confidences else None
        return Transcript(" ".join(self._finals), self._detected or self._language, confidence,
                          self._provider)

    async def aclose(self) -> None:
        """CloseStream (Deepgram then sends Metadata and closes), then close our side. Idempotent."""
        if self._closed:
            return
        self._closed = self._closing = True
        try:
            await self._ws.send(CLOSE_STREAM)
        except (ConnectionClosed, OSError):
            pass  # already gone: nothing to tell the server
        await self._ws.close()
        if not self._reader.done():
            self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


@dataclass
class DeepgramSTT(HTTPProvider):
    """Streaming (`open_stream`) and batch (`transcribe`) STT; `languages` are the ones mapped."""

    name: str = "deepgram"
    model: str = "nova-3"
    stage: Stage = "stt"
    health_path: str | None = "/v1/projects"  # cheap, authenticated, lists the key's projects
    ws_url: str = ""  # defaults to the ws(s):// form of base_url
    finalize_timeout_s: float | None = None  # the wait for the Finalize answer; None: timeout_s
    languages: frozenset[str] | None = frozenset(LANGUAGE_CODES)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.api_key}"}

    def _params(self, language: str | None, **extra: str) -> dict[str, str]:
        code = deepgram_language(language)
        return {"model": model_for(self.model, code), "language": code, "punctuate": "true",
                "smart_format": "true", **extra}

    async def open_stream(self, sample_rate: int, language: str | None = None,
                          on_interim: Interim | None = None) -> DeepgramStream:
        params = self._params(language, encoding="linear16", sample_rate=str(sample_rate),
                              channels="1", interim_results="true", endpointing="false")
        base = (self.ws_url or websocket_url(self.base_url)).rstrip("/")
        uri = f"{base}/v1/listen?{urlencode(params)}"
        try:
            ws = await connect(uri, additional_headers=self.auth_headers(),
                               open_timeout=min(self.timeout_s, 5.0), compression=None,
                               max_size=4 * 1024 * 1024)
        except InvalidStatus as exc:
            response = exc.response
            error = deepgram_error(response.status_code, response.body or b"", response.headers,
                                   provider=self.name)
            self._record(error)
            raise error from exc
        except (WebSocketException, OSError, TimeoutError) as exc:
            raise self._fail(exc) from exc
        self._record(None)
        return DeepgramStream(ws, provider=self.name, language=language, on_interim=on_interim,
                              finalize_timeout_s=self.finalize_timeout_s or self.timeout_s)

    async def transcribe(self, audio: bytes, sample_rate: int,
                         language: str | None = None) -> Transcript:
        response = await self._request("POST", "/v1/listen", params=self._params(language),
                                       content=pcm16_to_wav(audio, sample_rate),
                                       headers={"Content-Type": "audio/wav"})
        request_id = response.headers.get("dg-request-id")
        body = parse_json(response.content, provider=self.name, stage="stt", request_id=request_id)
        try:
            alternative = body["results"]["channels"][0]["alternatives"][0]
            text = str(alternative.get("transcript") or "").strip()
        except (KeyError, IndexError, TypeError, AttributeError):
            raise MalformedResponse("no results.channels[0].alternatives[0] in the answer",
                                    provider=self.name, stage="stt", request_id=request_id) from None
        if not text:
            raise EmptyResult("empty transcript", provider=self.name, stage="stt", request_id=request_id)
        self._record(None)
        channel = body["results"]["channels"][0]
        detected = channel.get("detected_language")
        language_out = OUR_CODES.get(detected, detected) if detected else _detected(alternative, language)
        confidence = alternative.get("confidence")
        return Transcript(text, language_out,
                          float(confidence) if isinstance(confidence, int | float) else None, self.name)

    async def _check(self, response: httpx.Response) -> None:
        """Deepgram's error body (`err_code`/`err_msg`; 402 means no credits)."""
        if not response.is_success:
            raise deepgram_error(response.status_code, await response.aread(), response.headers,
                                 provider=self.name)


__all__ = ["DeepgramSTT", "DeepgramStream", "deepgram_error", "deepgram_language", "model_for"]
