"""A strict loopback Deepgram: live WebSocket and prerecorded REST on `/v1/listen`, `/v1/projects`.

    async with FakeDeepgram() as fake:
        fake.transcripts.append("where is my order")
        fake.inject("listen", Fault(status=429))        # refuse the next WebSocket handshake
        fake.inject("listen", Fault(cut=True))          # drop the socket after the first interim

How it "transcribes" (deterministic): each stream or request takes the next scripted transcript
(`transcripts`, else `default_transcript`). On a stream one more word becomes audible per
`ms_per_word` of audio received, and each new word is sent as an interim `Results` (`is_final`
false) covering the words since the last final; with `final_every_words` set, that many words are
also finalized mid-stream (`is_final` true, `speech_final` false), as Deepgram does on long
speech. `Finalize` answers a final with every remaining word and `from_finalize` true;
`CloseStream` answers `Metadata` and closes with 1000. No audio for `idle_timeout_s`: closed with
1011 (Deepgram's NET-0001).

Strict like the real service: the query parameters must be ones the official SDK
(`deepgram-sdk`, pinned in the test extra) can send for that endpoint (its `connect` and
`transcribe_file` signatures), with values it allows (its Literal types for `model` and
`encoding`), a language the model serves, `sample_rate` with `encoding`, and `Authorization:
Token <key>`. Refusals carry Deepgram's body `{"err_code", "err_msg", "request_id"}` and, on the
WebSocket handshake, the `dg-error` and `dg-request-id` headers. Every message sent is first
validated by the SDK's own models (`ListenV1Results`, `ListenV1Metadata`, `ListenV1Response`).

Fault queues: `listen` (WebSocket; `status` refuses the handshake, `delay_s` delays the handshake
and the Finalize answer, `cut` drops the TCP connection mid-stream), `rest` (POST /v1/listen;
status, delay, hang, malformed), `projects`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import inspect
import io
import json
import typing
import uuid
import wave
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from deepgram.listen.v1.media.raw_client import AsyncRawMediaClient
from deepgram.listen.v1.raw_client import AsyncRawV1Client
from deepgram.listen.v1.types import ListenV1Metadata, ListenV1Results
from deepgram.types import ListenV1Response
from deepgram.types.listen_v1encoding import ListenV1Encoding
from deepgram.types.listen_v1model import ListenV1Model

from tests.fakes._server import FakeServer, Fault


def _sdk_params(method: Any, *skip: str) -> frozenset[str]:
    return frozenset(inspect.signature(method).parameters) - {"self", "request_options", *skip}


# What the SDK can put in the query string of each endpoint: anything else is not Deepgram's API.
LIVE_PARAMS = _sdk_params(AsyncRawV1Client.connect, "authorization")
REST_PARAMS = _sdk_params(AsyncRawMediaClient.transcribe_file, "request")
MODELS = frozenset(typing.get_args(typing.get_args(ListenV1Model)[0]))
ENCODINGS = frozenset(typing.get_args(typing.get_args(ListenV1Encoding)[0]))
BOOLEAN_PARAMS = frozenset({"interim_results", "punctuate", "smart_format", "vad_events", "diarize",
                            "numerals", "profanity_filter", "multichannel", "dictation",
                            "mip_opt_out", "detect_language", "filler_words", "paragraphs",
                            "utterances", "measurements", "detect_entities"})
# Deepgram's Models & Languages overview (nova-3 monolingual + multi; nova-2's older list).
LANGUAGES_BY_FAMILY = {
    "nova-3": frozenset({"en", "en-US", "en-GB", "en-AU", "en-NZ", "en-IN", "en-CA", "hi", "bn",
                         "mr", "ta", "te", "gu", "pa", "es", "fr", "de", "it", "pt", "nl", "ja",
                         "ru", "multi"}),
    "nova-2": frozenset({"en", "en-US", "en-GB", "en-AU", "en-NZ", "en-IN", "hi", "hi-Latn", "es",
                         "fr", "de", "it", "pt", "nl", "ja", "ru", "ta", "multi"}),
}
SAMPLE_RATES = range(8000, 48001)


class Refused(Exception):
    def __init__(self, status: int, err_code: str, err_msg: str) -> None:
        super().__init__(err_msg)
        self.status, self.err_code, self.err_msg = status, err_code, err_msg


def deepgram_error(status: int, err_code: str, err_msg: str, request_id: str | None = None) -> web.Response:
    request_id = request_id or str(uuid.uuid4())
    return web.json_response({"err_code": err_code, "err_msg": err_msg, "request_id": request_id},
                             status=status, headers={"dg-request-id": request_id, "dg-error": err_msg})


def _fault_error(fault: Fault) -> web.Response:
    codes = {401: "INVALID_AUTH", 402: "ASR_PAYMENT_REQUIRED", 403: "INSUFFICIENT_PERMISSIONS",
             429: "TOO_MANY_REQUESTS", 400: "Bad Request"}
    return deepgram_error(fault.status or 500, fault.code or codes.get(fault.status or 500, "INTERNAL_SERVER_ERROR"),
                          fault.message, fault.request_id)


def validate_query(query: Any, allowed: frozenset[str], *, live: bool) -> dict[str, str]:
    params = {k: query.get(k) for k in query}
    for name in params:
        if name not in allowed:
            raise Refused(400, "Bad Request", f"Unknown query parameter: {name}")
    model = params.get("model", "base" if not live else None)
    if model is None:
        raise Refused(400, "Bad Request", "The model parameter is required")
    if model not in MODELS:
        raise Refused(400, "Bad Request", f"No such model/language/tier combination found: {model}")
    for name in BOOLEAN_PARAMS & params.keys():
        if params[name] not in ("true", "false"):
            raise Refused(400, "Bad Request", f"Invalid value for {name}: {params[name]!r} (true or false)")
    language = params.get("language", "en")
    family = next((f for f in LANGUAGES_BY_FAMILY if model.startswith(f)), None)
    if family is not None and language not in LANGUAGES_BY_FAMILY[family]:
        raise Refused(400, "Bad Request", "No such model/language/tier combination found: "
                      f"model={model} language={language}")
    encoding = params.get("encoding")
    if encoding is not None and encoding not in ENCODINGS:
        raise Refused(400, "Bad Request", f"Invalid encoding: {encoding}")
    if live:
        if encoding is not None and "sample_rate" not in params:
            raise Refused(400, "Bad Request", "sample_rate is required when encoding is set")
        for name, valid in (("sample_rate", SAMPLE_RATES), ("channels", range(1, 33))):
            if name in params and not (params[name].isdigit() and int(params[name]) in valid):
                raise Refused(400, "Bad Request", f"Invalid value for {name}: {params[name]!r}")
        endpointing = params.get("endpointing")
        if endpointing is not None and endpointing != "false" and not endpointing.isdigit():
            raise Refused(400, "Bad Request", f"Invalid value for endpointing: {endpointing!r}")
    return params


@dataclass
class StreamLog:
    """What one WebSocket stream received and sent, for assertions."""

    params: dict[str, str]
    headers: dict[str, str]
    audio_bytes: int = 0
    control: list[dict[str, Any]] = field(default_factory=list)  # Finalize, CloseStream, KeepAlive
    sent: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None


def _results(words: list[str], start_s: float, duration_s: float, *, is_final: bool,
             from_finalize: bool, request_id: str, model: str) -> dict[str, Any]:
    step = duration_s / len(words) if words else 0.0
    message = {
        "type": "Results", "channel_index": [0, 1], "duration": round(duration_s, 3),
        "start": round(start_s, 3), "is_final": is_final, "speech_final": False,
        "from_finalize": from_finalize,
        "channel": {"alternatives": [{
            "transcript": " ".join(words), "confidence": 0.98 if words else 0.0,
            "words": [{"word": w.lower().strip(".,?!"), "start": round(start_s + i * step, 3),
                       "end": round(start_s + (i + 1) * step, 3), "confidence": 0.98,
                       "punctuated_word": w} for i, w in enumerate(words)]}]},
        "metadata": {"request_id": request_id, "model_uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, model)),
                     "model_info": {"name": f"general-{model}", "version": "2025-01-01.0", "arch": model}},
    }
    ListenV1Results.model_validate(message)  # the SDK must be able to read what we send
    return message


class FakeDeepgram(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.transcripts: deque[str] = deque()
        self.default_transcript = "hello from deepgram"
        self.ms_per_word = 200
        self.final_every_words = 0
        self.idle_timeout_s = 10.0
        self.streams: list[StreamLog] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/listen", self.live)
        app.router.add_post("/v1/listen", self.prerecorded)
        app.router.add_get("/v1/projects", self.projects)

    def next_transcript(self) -> str:
        return self.transcripts.popleft() if self.transcripts else self.default_transcript

    def check_auth(self, request: web.Request) -> web.Response | None:
        # API keys go as `Token <key>`; `Bearer` is for short-lived JWTs, which this fake never issues.
        if request.headers.get("Authorization") != f"Token {self.api_key}":
            return deepgram_error(401, "INVALID_AUTH", "Invalid credentials.")
        return None

    async def projects(self, request: web.Request) -> web.StreamResponse:
        fault = self.take_fault("projects")
        if (denied := self.check_auth(request)) is not None:
            return denied
        if fault is not None and fault.status is not None:
            return _fault_error(fault)
        return web.json_response({"projects": [{"project_id": str(uuid.uuid4()), "name": "fake"}]})

    async def prerecorded(self, request: web.Request) -> web.StreamResponse:
        fault = self.take_fault("rest")
        body = await request.read()
        self.requests.append({"endpoint": "rest", "headers": dict(request.headers),
                              "params": dict(request.query), "bytes": len(body)})
        if (denied := self.check_auth(request)) is not None:
            return denied
        try:
            params = validate_query(request.query, REST_PARAMS, live=False)
            content_type = request.headers.get("Content-Type", "")
            if not (content_type.startswith("audio/") or content_type == "application/octet-stream"):
                raise Refused(415, "UNSUPPORTED_MEDIA_TYPE", f"Unsupported content type: {content_type}")
            seconds = self._audio_seconds(body, params)
        except Refused as exc:
            return deepgram_error(exc.status, exc.err_code, exc.err_msg)
        if fault is not None:
            if fault.status is not None:
                if fault.delay_s:
                    await asyncio.sleep(fault.delay_s)
                return _fault_error(fault)
            if (early := await self.before(fault)) is not None:
                return early
        request_id = str(uuid.uuid4())
        words = self.next_transcript().split()
        language = params.get("language", "en")
        alternative: dict[str, Any] = {"transcript": " ".join(words), "confidence": 0.97,
                                       "words": [{"word": w.lower(), "start": 0.0, "end": 0.0,
                                                  "confidence": 0.97, "punctuated_word": w} for w in words]}
        channel: dict[str, Any] = {"alternatives": [alternative]}
        if language == "multi":
            alternative["languages"] = ["en"]
        response = {
            "metadata": {"transaction_key": "deprecated", "request_id": request_id,
                         "sha256": hashlib.sha256(body).hexdigest(),
                         "created": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
                         "duration": round(seconds, 3), "channels": 1, "models": [str(uuid.uuid4())],
                         "model_info": {}},
            "results": {"channels": [channel]},
        }
        ListenV1Response.model_validate(response)
        return web.json_response(response, headers={"dg-request-id": request_id})

    @staticmethod
    def _audio_seconds(body: bytes, params: dict[str, str]) -> float:
        if not body:
            raise Refused(400, "Bad Request", "Request body is empty")
        if body[:4] == b"RIFF":
            try:
                with wave.open(io.BytesIO(body), "rb") as src:
                    return src.getnframes() / src.getframerate()
            except (wave.Error, EOFError):
                raise Refused(400, "Bad Request", "failed to process audio: corrupt or unsupported data") from None
        if params.get("encoding") is None:
            # Raw audio has no header: without `encoding` Deepgram cannot decode it.
            raise Refused(400, "Bad Request", "failed to process audio: corrupt or unsupported data")
        return len(body) / 2 / 16000

    async def live(self, request: web.Request) -> web.StreamResponse:
        fault = self.take_fault("listen")
        if fault is not None and fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if (denied := self.check_auth(request)) is not None:
            return denied
        try:
            params = validate_query(request.query, LIVE_PARAMS, live=True)
        except Refused as exc:
            return deepgram_error(exc.status, exc.err_code, exc.err_msg)
        if fault is not None and fault.status is not None:
            return _fault_error(fault)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        log = StreamLog(params, dict(request.headers))
        self.streams.append(log)
        await self._serve_stream(request, ws, log, fault)
        return ws

    async def _serve_stream(self, request: web.Request, ws: web.WebSocketResponse, log: StreamLog,
                            fault: Fault | None) -> None:
        request_id = str(uuid.uuid4())
        model = log.params["model"]
        rate = int(log.params.get("sample_rate", "16000"))
        words = self.next_transcript().split()
        finalized = shown = 0  # words finalized; words audible so far
        final_end_s = 0.0  # audio time up to which results are final

        async def send(message: dict[str, Any]) -> None:
            log.sent.append(message)
            await ws.send_str(json.dumps(message))

        def heard_s() -> float:
            return log.audio_bytes / 2 / rate

        while True:
            try:
                msg = await ws.receive(timeout=self.idle_timeout_s)
            except TimeoutError:
                log.close_code = 1011
                await ws.close(code=1011, message=b"NET-0001: no audio received within the timeout")
                return
            if msg.type == WSMsgType.BINARY:
                log.audio_bytes += len(msg.data)
                audible = min(len(words), int(heard_s() * 1000 // self.ms_per_word))
                if audible <= shown:
                    continue
                shown = audible
                if self.final_every_words and shown - finalized >= self.final_every_words:
                    await send(_results(words[finalized:shown], final_end_s, heard_s() - final_end_s,
                                        is_final=True, from_finalize=False, request_id=request_id,
                                        model=model))
                    finalized, final_end_s = shown, heard_s()
                else:
                    await send(_results(words[finalized:shown], final_end_s, heard_s() - final_end_s,
                                        is_final=False, from_finalize=False, request_id=request_id,
                                        model=model))
                if fault is not None and fault.cut:
                    # The network drops mid-utterance: no close frame, no final.
                    request.transport.close()  # type: ignore[union-attr]
                    return
            elif msg.type == WSMsgType.TEXT:
                try:
                    control = json.loads(msg.data)
                    kind = control["type"]
                except (ValueError, KeyError, TypeError):
                    await send({"type": "Error", "variant": "SchemaError",
                                "description": "Could not parse the client message", "message": msg.data})
                    continue
                log.control.append(control)
                if kind == "Finalize":
                    if fault is not None and fault.delay_s:
                        await asyncio.sleep(fault.delay_s)
                    await send(_results(words[finalized:], final_end_s, heard_s() - final_end_s,
                                        is_final=True, from_finalize=True, request_id=request_id,
                                        model=model))
                    finalized = shown = len(words)
                    final_end_s = heard_s()
                elif kind == "CloseStream":
                    metadata = {"type": "Metadata", "transaction_key": "deprecated",
                                "request_id": request_id, "sha256": hashlib.sha256(request_id.encode()).hexdigest(),
                                "created": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
                                "duration": round(heard_s(), 3), "channels": 1}
                    ListenV1Metadata.model_validate(metadata)
                    await send(metadata)
                    log.close_code = 1000
                    await ws.close(code=1000)
                    return
                elif kind != "KeepAlive":
                    await send({"type": "Error", "variant": "SchemaError",
                                "description": f"Unknown message type: {kind}", "message": msg.data})
            else:  # CLOSE, CLOSING, CLOSED, ERROR: the client went away
                log.close_code = ws.close_code
                return
