"""LiveTranscription: one caller utterance transcribed while it is spoken, with the router's
fallback behind it.

The session opens one when speech starts (only when the first usable STT in the chain streams),
pushes every frame without waiting (a sender task forwards them), and the orchestrator calls
`finish` at the end of the turn: then only the provider's flush is left on the critical path. If
the stream fails at any point, or its final transcript is empty, the utterance's audio (which the
turn detector kept anyway) goes to the rest of the chain as a batch request: nothing the caller
said is lost.
"""

from __future__ import annotations

import asyncio

from loguru import logger

from sutradhar.engines.base import (
    EmptyResult,
    Interim,
    StreamingSTTProvider,
    STTStream,
    Transcript,
)
from sutradhar.engines.deadline import TurnDeadline
from sutradhar.engines.fallback import ProviderSlot, TaskRouter
from sutradhar.engines.resilience import BreakerState

_END = b""  # the sender's sentinel: everything pushed has been queued


def open_transcription(router: TaskRouter, sample_rate: int, language: str | None,
                       on_interim: Interim | None = None, detect: bool = False) -> LiveTranscription | None:
    """Start transcribing while the caller speaks, when the first usable STT in the router's chain
    streams; None means the chain's first choice is a batch STT (the utterance then goes to
    `route_transcription` at the end of the turn, as before). `language` picks the providers that
    serve it; with `detect` the stream is asked to detect the spoken language (as the batch path
    does), so a caller who changes language is followed."""
    for slot in router.chains["stt"]:
        if not slot.provider.supports(language) or slot.breaker.state is BreakerState.OPEN:
            continue
        if not isinstance(slot.provider, StreamingSTTProvider) or not slot.breaker.allow():
            return None
        return LiveTranscription(router, slot, sample_rate, None if detect else language, on_interim,
                                 call_language=language)
    return None


class LiveTranscription:
    def __init__(self, router: TaskRouter, slot: ProviderSlot, sample_rate: int, language: str | None,
                 on_interim: Interim | None = None, call_language: str | None = None) -> None:
        self.router, self.slot = router, slot
        self.sample_rate, self.language = sample_rate, language  # None: the provider detects it
        self.call_language = call_language or language  # labels a final that names no language
        self._on_interim = on_interim
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._stream: STTStream | None = None
        self._error: BaseException | None = None
        self._closed = False
        self._settled = False  # a success or failure was recorded for the slot's breaker
        self._sender = asyncio.create_task(self._send_all(), name=f"stt-stream-{slot.name}")

    @property
    def provider(self) -> str:
        return self.slot.name

    def push(self, pcm: bytes) -> None:
        """Queue audio for the stream; never waits (this is the session's per-frame path)."""
        if pcm and self._error is None and not self._closed:
            self._queue.put_nowait(pcm)

    async def _send_all(self) -> None:
        try:
            policy = self.router.policies["stt"].retry
            async with asyncio.timeout(policy.timeout):
                self._stream = await self.slot.provider.open_stream(self.sample_rate, self.language,
                                                                    self._on_interim)
            while (chunk := await self._queue.get()) is not _END:
                await self._stream.send(chunk)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the batch fallback takes over at finish
            self._error = self._fail(exc)
            logger.bind(stage="stt").warning("stream failed provider={} error={}; the rest of the chain "
                                             "gets the utterance", self.slot.name, self._error)

    async def finish(self, audio: bytes, audio_rate: int, language: str | None,
                     detect: bool = True, deadline: TurnDeadline | None = None) -> Transcript:
        """The final transcript: the stream's, or the chain's from `audio` (the utterance, kept by
        the turn detector) when the stream failed or heard nothing."""
        self._queue.put_nowait(_END)
        result: Transcript | None = None
        try:
            timeout = self.router.policies["stt"].retry.timeout
            if deadline is not None:  # the flush shares the budget with the chain behind it
                ahead = self.router.providers_ahead(self.slot, language, frozenset())
                timeout = deadline.attempt_timeout(timeout, ahead)
            async with asyncio.timeout(timeout):
                await self._sender
                if self._error is None and self._stream is not None:
                    result = await self._stream.finish()
            if result is not None and not result.text.strip():
                # Silence or noise, not a broken provider: no breaker count, but let the chain try.
                self._fail(EmptyResult("empty transcript", provider=self.slot.name, stage="stt"),
                           count_for_breaker=False)
                result = None
        except asyncio.CancelledError:
            await self.aclose()
            raise
        except Exception as exc:  # noqa: BLE001 - classified and recorded; the chain takes over
            if not self._settled:
                self._fail(exc)
            result = None
        if result is not None:
            self._settled = True
            self.router.record_success(self.slot)
        await self.aclose()
        if result is not None:
            return Transcript(result.text, result.language or self.call_language, result.confidence,
                              result.provider or self.slot.name)
        return await self.router.route_transcription(audio, audio_rate, language, detect=detect,
                                                     skip=frozenset({self.slot.name}), deadline=deadline)

    async def aclose(self) -> None:
        """Drop the stream (barge-in, hang-up, a noise blip that was no utterance). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if not self._sender.done():
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
        if self._stream is not None:
            try:
                await self._stream.aclose()
            except Exception as exc:  # noqa: BLE001 - closing is best effort
                logger.bind(stage="stt").debug("stream close failed provider={} error={}", self.slot.name, exc)
        if not self._settled:
            self.slot.breaker.release()  # no verdict (a half-open breaker lets the next trial through)

    def _fail(self, exc: BaseException, count_for_breaker: bool = True) -> BaseException:
        self._settled = True
        return self.router.record_failure(self.slot, exc, count_for_breaker=count_for_breaker)
