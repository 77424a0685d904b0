"""Sarvam realtime speech-to-text: `/speech-to-text-realtime/ws`, transcribing while the caller speaks.

Wire contract per sarvamai 0.1.39 (`speech_to_text_realtime_streaming`): the query carries
`language_code`, `model` (saaras:v3-realtime or saaras:v4), `encoding=linear16`, `sample_rate`
(8000 or 16000 only) and `endpointing=manual`; every message is JSON with an `event` field, in both
directions. Client: `speech_start`, `audio_input` (`audio`: base64 PCM), `speech_end`. Server:
`session.begin`, `transcript.partial`, `transcript.final`, `error` (`code`, `is_fatal`, `message`,
`status_code` on fatal rejections), then a close code (1003 rate/quota/key, 1008 inactivity, 1011
internal, 4000 application rejection).

Endpointing is manual because our own turn detector already decides where the utterance ends: the
server's VAD would cut turns differently, and `speech_end` then finalizes in one round trip.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from dataclasses import dataclass, field

from loguru import logger
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, WebSocketException

from sutradhar.audio.codecs import StreamResampler
from sutradhar.engines.base import (
    BadRequest,
    EmptyResult,
    Interim,
    ProviderError,
    ProviderTimeout,
    Stage,
    Transcript,
)
from sutradhar.engines.http import HTTPProvider
from sutradhar.engines.sarvam.common import (
    SARVAM_LANGUAGES,
    open_ws,
    ws_base,
    ws_error,
    ws_message,
)

PATH = "/speech-to-text-realtime/ws"
WIRE_RATES = (8000, 16000)  # "Any other value closes the connection with code 4000"
BATCH_CHUNK_S = 0.1  # `transcribe` sends a whole utterance in 100 ms messages
# The realtime socket lists Odia as or-IN (SpeechToTextRealtimeStreamingLanguageCode); the REST and
# older socket call it od-IN, which is what the rest of the project uses.
WIRE_LANGUAGE = {"od-IN": "or-IN"}
OUR_LANGUAGE = {wire: ours for ours, wire in WIRE_LANGUAGE.items()}
# Dropping a stream must not wait websockets' default 10 s for a close frame from a stuck server.
CLOSE_TIMEOUT_S = 0.5
CLOSE_ERRORS = {4000: BadRequest, 1008: ProviderTimeout}  # the rest: retryable ProviderError


@dataclass
class SarvamRealtimeSTT(HTTPProvider):
    """A streaming STT (`open_stream`) that also serves batch `transcribe` through one stream."""

    name: str = "sarvam-realtime"
    model: str = "saaras:v3-realtime"  # the SDK's default for this endpoint
    ws_url: str = ""
    # The session opens a stream with the call's language, yet still wants to follow a caller who
    # switches (its batch path asks the chain to detect). So by default the socket detects (`auto`)
    # and the given language only labels a final that reports none; False sends it as the hint.
    detect_language: bool = True
    stage: Stage = "stt"
    languages: frozenset[str] | None = SARVAM_LANGUAGES

    def url(self) -> str:
        return ws_base(self.base_url, self.ws_url) + PATH

    def params(self, sample_rate: int, language: str | None) -> dict[str, str]:
        code = None if self.detect_language else language
        return {"language_code": WIRE_LANGUAGE.get(code or "", code or "auto"),
                "model": self.model, "encoding": "linear16", "sample_rate": str(sample_rate),
                "endpointing": "manual"}

    async def open_stream(self, sample_rate: int, language: str | None = None,
                          on_interim: Interim | None = None) -> SarvamRealtimeStream:
        stream = SarvamRealtimeStream(self, sample_rate, language, on_interim)
        try:
            await stream.start()
        except BaseException as exc:
            await stream.aclose()
            if isinstance(exc, ProviderError):
                self._record(exc)
            raise
        return stream

    async def transcribe(self, audio: bytes, sample_rate: int,
                         language: str | None = None) -> Transcript:
        """Batch: the whole utterance through one stream (same endpoint, same breaker)."""
        stream = await self.open_stream(sample_rate, language)
        try:
            step = int(BATCH_CHUNK_S * sample_rate) * 2
            for i in range(0, len(audio), step):
                await stream.send(audio[i:i + step])
            result = await stream.finish()
        finally:
            await stream.aclose()
        if not result.text:
            raise EmptyResult("empty transcript", provider=self.name, stage="stt")
        return result


@dataclass
class SarvamRealtimeStream:
    stt: SarvamRealtimeSTT
    sample_rate: int
    language: str | None
    on_interim: Interim | None = None
    _exit: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    _ws: ClientConnection | None = None
    _reader: asyncio.Task[None] | None = None
    _final: asyncio.Future[Transcript] | None = None
    _resampler: StreamResampler | None = None
    _closed: bool = False

    @property
    def wire_rate(self) -> int:
        return self.sample_rate if self.sample_rate in WIRE_RATES else 16000

    async def start(self) -> None:
        """Connect and wait for `session.begin`, so a rejection fails here, under the caller's
        open timeout, rather than on the first frame."""
        stt = self.stt
        if self.wire_rate != self.sample_rate:
            self._resampler = StreamResampler(self.sample_rate, self.wire_rate)
        self._ws = await self._exit.enter_async_context(open_ws(
            stt.url(), stt.params(self.wire_rate, self.language), stt.api_key, provider=stt.name,
            stage="stt", timeout_s=stt.timeout_s))
        self._ws.close_timeout = CLOSE_TIMEOUT_S
        try:
            async with asyncio.timeout(stt.timeout_s):
                first = await self._next()
        except TimeoutError:
            raise ProviderTimeout("no session.begin in time", provider=stt.name, stage="stt") from None
        if first is None:
            raise self._closed_error()
        if first.get("event") != "session.begin":
            raise ProviderError(f"expected session.begin, got {first.get('event')!r}",
                                provider=stt.name, stage="stt")
        self._final = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(), name=f"{stt.name}-reader")
        await self._send({"event": "speech_start"})

    async def send(self, pcm: bytes) -> None:
        self._raise_if_failed()
        if self._resampler is not None:
            pcm = self._resampler.process(pcm)
        if pcm:
            await self._send({"event": "audio_input", "audio": base64.b64encode(pcm).decode()})

    async def finish(self) -> Transcript:
        """`speech_end` finalizes the utterance; its `transcript.final` is one round trip away."""
        assert self._final is not None, "finish() before open_stream() returned"
        try:
            if self._resampler is not None and (tail := self._resampler.process(b"", last=True)):
                await self._send({"event": "audio_input", "audio": base64.b64encode(tail).decode()})
            await self._send({"event": "speech_end"})
            async with asyncio.timeout(self.stt.timeout_s):
                result = await asyncio.shield(self._final)
        except TimeoutError:
            error: ProviderError = ProviderTimeout("no final transcript in time",
                                                   provider=self.stt.name, stage="stt")
            self.stt._record(error)
            raise error from None
        except ProviderError as exc:
            self.stt._record(exc)
            raise
        finally:
            await self.aclose()
        self.stt._record(None)
        return result

    async def aclose(self) -> None:
        """Drop the stream: no `end` (that would ask the server to finalize and bill the rest)."""
        if self._closed:
            return
        self._closed = True
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._final is not None and not self._final.done():
            self._final.cancel()
        with contextlib.suppress(Exception):
            await self._exit.aclose()

    # --- internals ---
    async def _send(self, message: dict[str, str]) -> None:
        assert self._ws is not None
        try:
            await self._ws.send(json.dumps(message))
        except ConnectionClosed:
            # The reader holds the reason (an error message or the close code); prefer it.
            await asyncio.sleep(0)
            self._raise_if_failed()
            raise self._closed_error() from None
        except (WebSocketException, OSError) as exc:
            raise ProviderError(f"realtime STT send failed: {exc}", provider=self.stt.name,
                                stage="stt") from exc

    def _raise_if_failed(self) -> None:
        final = self._final
        if final is not None and final.done() and not final.cancelled() \
                and (exc := final.exception()) is not None:
            raise exc

    async def _next(self) -> dict | None:
        """The next server message; an `error` event raises its mapped class; None when closed."""
        assert self._ws is not None
        while True:
            try:
                raw = await self._ws.recv()
            except ConnectionClosed:
                return None
            message = ws_message(raw, provider=self.stt.name, stage="stt")
            if message.get("event") != "error":
                return message
            if message.get("is_fatal", True):
                raise ws_error(message, provider=self.stt.name, stage="stt")
            # Non-fatal (invalid_config on a config.update we never send): the session goes on.
            logger.bind(stage="stt").warning("realtime STT non-fatal error: {}", message)

    async def _read(self) -> None:
        """Partials to `on_interim`, the utterance's final to `finish`, any failure to both."""
        assert self._final is not None
        try:
            while (message := await self._next()) is not None:
                event = message.get("event")
                if event == "transcript.partial" and self.on_interim is not None:
                    self.on_interim(self._transcript(message, is_final=False))
                elif event == "transcript.final" and not self._final.done():
                    self._final.set_result(self._transcript(message, is_final=True))
            error = self._closed_error()
        except ProviderError as exc:
            error = exc
        except Exception as exc:  # noqa: BLE001 - a failing interim callback must not hang finish
            error = ProviderError(f"realtime STT reader failed: {exc!r}", provider=self.stt.name,
                                  stage="stt")
        if not self._final.done():
            self._final.set_exception(error)
            self._final.exception()  # retrieved: no "never retrieved" warning when nobody waits

    def _transcript(self, message: dict, *, is_final: bool) -> Transcript:
        detected = message.get("language")  # only with language_code=auto
        language = OUR_LANGUAGE.get(detected, detected) if detected else self.language
        return Transcript(str(message.get("text") or "").strip(), language, None, self.stt.name,
                          is_final=is_final)

    def _closed_error(self) -> ProviderError:
        """The socket closed before the final: the close code says how."""
        ws = self._ws
        code = ws.close_code if ws is not None else None
        reason = (ws.close_reason if ws is not None else "") or "no close frame (connection cut)"
        kind = CLOSE_ERRORS.get(code or 0, ProviderError)
        return kind(f"realtime STT socket closed before the final transcript: {code} {reason}",
                    provider=self.stt.name, stage="stt")
