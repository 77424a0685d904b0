"""A loopback server speaking Sarvam's wire formats, for driving the real clients in tests.

    async with FakeSarvam() as fake:
        fake.transcribe_as("नमस्ते", "hi-IN")               # next STT answer (queue)
        fake.transcriber = lambda pcm, fields: ("hi", "en-IN")  # or compute it from the audio
        fake.inject("stt", Fault.quota())                   # next /speech-to-text answers 429 quota
        settings = load_settings(sarvam_base_url=fake.base_url, sarvam_api_key=fake.api_key, ...)

Endpoints (fault queue names): `stt` POST /speech-to-text, `tts` POST /text-to-speech,
`chat` POST /v1/chat/completions (SSE when `stream` is true, else one JSON completion),
`stt_ws` /speech-to-text/ws, `tts_ws` /text-to-speech/ws, `stt_rt` /speech-to-text-realtime/ws.

The realtime socket answers `session.begin`, then a `transcript.partial` every 200 ms of audio
heard inside an utterance (the scripted transcript a word more each time; none with
`stream_type=simulated`; partials peek at the transcript queue, the final pops it) and
`transcript.final` on `speech_end`/`flush` (manual endpointing) or `end`. Refusals there follow
the SDK: the upgrade is accepted, a fatal `error` event (with `status_code`) is sent and the socket
closed with 4000 (bad query or message) or 1003 (bad key).
`stt_rt` faults: `status` refuses the handshake itself; `code` sends a fatal error at the first
audio; `cut` drops the TCP connection after the first partial; `delay_s`, `hang` and `malformed`
apply to the final.

Strict, as the real service: every request is checked against what the official `sarvamai` SDK
(0.1.39, see `sarvam_contract.py`) sends, and a wrong one (unknown or renamed field, such as
`target_language_code` on TTS; model, language, speaker, sample rate not allowed; pitch or loudness
for bulbul:v3 over REST; audio over 30 s) is refused with Sarvam's error shape: HTTP
`{"error": {"message", "code", "request_id"}}`, on the STT socket `{"type": "error", "data":
{"error", "code"}}`, on the TTS socket `{"type": "error", "data": {"message", "code": <int>}}`.
`tests/contract/test_sarvam_sdk.py` drives the SDK itself against this fake to keep it honest.

TTS answers a tone whose length follows the text (60 ms a character) at the requested rate, as a
WAV whatever `output_audio_codec` says (the fake encodes nothing). Every request, refused or not,
is recorded in `fake.requests`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from sutradhar.audio.codecs import pcm16_to_wav, wav_to_pcm16
from tests.fakes import sarvam_contract as contract
from tests.fakes._server import FakeServer, Fault, ToolCalls, error_body, tone_pcm

Transcriber = Callable[[bytes, dict[str, Any]], tuple[str, str | None]]

MS_PER_CHAR = 60
RT_PARTIAL_EVERY_S = 0.2
# The HTTP status a Sarvam error code comes with; the TTS socket sends only this integer.
CODE_STATUS = {"invalid_api_key_error": 403, "authentication_error": 403,
               "insufficient_quota_error": 429, "rate_limit_exceeded_error": 429,
               "invalid_request_error": 400, "unprocessable_entity_error": 422,
               "not_found_error": 404, "internal_server_error": 500,
               "gateway_timeout_error": 504}
CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "linear16": "audio/pcm",
                 "mulaw": "audio/basic", "alaw": "audio/alaw", "opus": "audio/opus",
                 "flac": "audio/flac", "aac": "audio/aac"}


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex[:12]}"


def refusal(exc: contract.Invalid) -> web.Response:
    return error_body(exc.status, exc.code, exc.message, _request_id())


PARTIAL_SHARE = 0.85  # audio shorter than this share of a scripted utterance is part of it


class FakeSarvam(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.transcripts: deque[tuple[str, str | None]] = deque()
        self.transcriber: Transcriber | None = None
        self.default_transcript: tuple[str, str | None] = ("hello", "en-IN")
        self._lengths: dict[int, float] = {}  # id of a queued transcript -> seconds of its speech

    def transcribe_as(self, text: str, language: str | None, seconds: float | None = None) -> None:
        """Queue the next utterance's transcript. With `seconds` (how long it is spoken), a
        request with clearly less audio (the early STT at a pause inside it) hears the words so
        far, as a real STT would, and leaves the queue as it is."""
        entry = (text, language)
        self.transcripts.append(entry)
        if seconds:
            self._lengths[id(entry)] = seconds

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/speech-to-text", self.stt)
        app.router.add_post("/text-to-speech", self.tts)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/speech-to-text/ws", self.stt_ws)
        app.router.add_get("/text-to-speech/ws", self.tts_ws)
        app.router.add_get("/speech-to-text-realtime/ws", self.stt_realtime)

    def check_auth(self, request: web.Request) -> web.Response | None:
        if request.headers.get("api-subscription-key") != self.api_key:
            return error_body(403, "invalid_api_key_error", "Invalid API key", _request_id())
        return None

    def _transcript(self, pcm: bytes, fields: dict[str, Any]) -> tuple[str, str | None]:
        if self.transcriber is not None:
            return self.transcriber(pcm, fields)
        if not self.transcripts:
            return self.default_transcript
        head = self.transcripts[0]
        length = self._lengths.get(id(head))
        heard = len(pcm) / 2 / int(fields.get("sample_rate") or 16000)
        if length and heard < PARTIAL_SHARE * length:
            words = head[0].split()
            return " ".join(words[:max(1, round(len(words) * heard / length))]), head[1]
        self._lengths.pop(id(head), None)
        return self.transcripts.popleft()

    # --- REST ---
    async def stt(self, request: web.Request) -> web.StreamResponse:
        fault = self.take_fault("stt")
        form = await request.post()
        upload = form.get("file")
        fields = {k: str(v) for k, v in form.items() if k != "file"}
        record: dict[str, Any] = {"endpoint": "stt", "headers": dict(request.headers),
                                  "fields": fields, "seconds": 0.0, "sample_rate": None}
        self.requests.append(record)
        if (denied := self.check_auth(request)) is not None:
            return denied
        if (early := await self.before(fault)) is not None:
            return early
        try:
            contract.check_stt_fields(fields)
            if not isinstance(upload, web.FileField):
                raise contract.Invalid("file: field required")
            try:
                pcm, rate = wav_to_pcm16(upload.file.read())
            except Exception as exc:  # noqa: BLE001 - any undecodable upload is the client's fault
                raise contract.rule(f"file: not a readable WAV ({exc})") from None
            record.update(seconds=len(pcm) / 2 / rate, sample_rate=rate)
            if record["seconds"] > contract.STT_MAX_SECONDS:
                raise contract.rule("Audio longer than 30 seconds; use the Batch API")
        except contract.Invalid as exc:
            return refusal(exc)
        text, language = self._transcript(pcm, {**fields, "sample_rate": rate})
        request_id = _request_id()
        return web.json_response({"request_id": request_id, "transcript": text,
                                  "language_code": language, "timestamps": None,
                                  "diarized_transcript": None}, headers={"x-request-id": request_id})

    async def tts(self, request: web.Request) -> web.StreamResponse:
        fault = self.take_fault("tts")
        raw = await request.json()
        self.requests.append({"endpoint": "tts", "headers": dict(request.headers), "json": raw})
        if (denied := self.check_auth(request)) is not None:
            return denied
        if (early := await self.before(fault)) is not None:
            return early
        try:
            body, _model = contract.check_tts_body(raw if isinstance(raw, dict) else {})
        except contract.Invalid as exc:
            return refusal(exc)
        rate = int(body.get("speech_sample_rate", 22050))
        pcm = tone_pcm(len(body["text"]) * MS_PER_CHAR / 1000, rate)
        audio = base64.b64encode(pcm16_to_wav(pcm, rate)).decode()
        request_id = _request_id()
        return web.json_response({"request_id": request_id, "audios": [audio]},
                                 headers={"x-request-id": request_id})

    async def chat(self, request: web.Request, endpoint: str = "chat") -> web.StreamResponse:
        """Chat completions: SSE chunks when `stream` is true, one JSON completion otherwise."""
        fault = self.take_fault(endpoint)
        raw = await request.json()
        self.requests.append({"endpoint": endpoint, "headers": dict(request.headers), "json": raw})
        if (denied := self.check_auth(request)) is not None:
            return denied
        if (early := await self.before(fault)) is not None:
            return early
        try:
            body = contract.check_chat(raw)
        except contract.Invalid as exc:
            return refusal(exc)
        text = self.next_reply(body["messages"])
        request_id = fault.request_id if fault else _request_id()
        if body.get("stream") is True:
            return await self.write_sse(request, self.sse_events(text, body["model"]), request_id, fault)
        if isinstance(text, ToolCalls):
            return web.json_response({"error": {"message": "the fake answers tool calls only when "
                                                "streaming", "code": "not_implemented"}}, status=501)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if self.reasoning:
            message["reasoning_content"] = self.reasoning
        return web.json_response({
            "id": f"chatcmpl-{request_id}", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": self._usage(body["messages"], text)}, headers={"x-request-id": request_id})

    @staticmethod
    def _usage(messages: list[dict[str, Any]], text: str) -> dict[str, int]:
        prompt = sum(len(str(m.get("content") or "").split()) for m in messages)
        completion = len(text.split())
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}

    def sse_events(self, text: str | ToolCalls,  # type: ignore[override]
                   model: str = "sarvam-105b-conversations") -> list[bytes]:
        """ChatCompletionChunk events: every chunk carries `id`, `created` and `model` (required
        by the SDK's type), the last one the usage."""
        created = int(time.time())

        def event(delta: dict[str, Any] | None, finish: str | None = None,
                  usage: dict[str, int] | None = None) -> bytes:
            chunk: dict[str, Any] = {"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                                     "created": created, "model": model, "choices": []}
            if delta is not None:
                chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
            if usage is not None:
                chunk["usage"] = usage
            return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()

        events = [event({"role": "assistant", "content": ""})]
        for word in self.reasoning.split(" ") if self.reasoning else []:
            events.append(event({"content": None, "reasoning_content": word + " "}))
        if isinstance(text, ToolCalls):
            # ChoiceDelta.tool_calls (ChoiceDeltaToolCall: index, id, type, function name/arguments).
            events += [event(contract.check_chunk_delta(delta), finish) for delta, finish in text.deltas()]
            events.append(b"data: [DONE]\n\n")
            return events
        words = text.split(" ")
        for i, word in enumerate(words):
            events.append(event({"content": word if i == 0 else " " + word}))
        events.append(event({}, "stop"))
        events.append(event(None, usage={"prompt_tokens": 0, "completion_tokens": len(words),
                                         "total_tokens": len(words)}))
        events.append(b"data: [DONE]\n\n")
        return events

    # --- WebSockets ---
    async def _ws_open(self, request: web.Request, endpoint: str,
                       check: Callable[[dict[str, str]], object]
                       ) -> tuple[web.WebSocketResponse | web.Response, Fault | None]:
        """Auth, an injected handshake status, then the query check: each refuses the upgrade
        with an HTTP error body, as Sarvam does."""
        fault = self.take_fault(endpoint)
        query = dict(request.query)
        self.requests.append({"endpoint": endpoint, "headers": dict(request.headers),
                              "query": query, "messages": []})
        if (denied := self.check_auth(request)) is not None:
            return denied, fault
        if fault is not None and fault.status is not None and fault.status != 200:
            return error_body(fault.status, fault.code, fault.message, fault.request_id), None
        try:
            check(query)
        except contract.Invalid as exc:
            return refusal(exc), None
        ws = web.WebSocketResponse(max_msg_size=64 * 1024 * 1024)
        await ws.prepare(request)
        return ws, fault

    async def _ws_fault(self, ws: web.WebSocketResponse, fault: Fault | None,
                        error: Callable[[str, str, str], dict[str, Any]]) -> bool:
        """Apply a fault once the client has asked for output; True when the exchange is over."""
        if fault is None:
            return False
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.hang:
            await self._stopping.wait()
            return True
        if fault.code:
            await ws.send_json(error(fault.message, fault.code, fault.request_id))
            return True
        if fault.malformed:
            await ws.send_str("{not json")
            return True
        return False

    @staticmethod
    def stt_error(message: str, code: str, request_id: str = "") -> dict[str, Any]:
        """STT socket error (sarvamai ErrorData): the text is under `error`, the code a string."""
        return {"type": "error", "data": {"error": message, "code": code}}

    @staticmethod
    def tts_error(message: str, code: str, request_id: str = "") -> dict[str, Any]:
        """TTS socket error (sarvamai ErrorResponseData): `message`, and `code` an integer."""
        return {"type": "error", "data": {"message": message, "code": CODE_STATUS.get(code, 500),
                                          "request_id": request_id or _request_id()}}

    async def stt_ws(self, request: web.Request) -> web.StreamResponse:
        ws, fault = await self._ws_open(request, "stt_ws", contract.check_stt_query)
        if not isinstance(ws, web.WebSocketResponse):
            return ws
        record = self.requests[-1]
        query = record["query"]
        connection_rate = int(query.get("sample_rate", "16000"))
        audio = b""
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            try:
                message = json.loads(msg.data)
                if not isinstance(message, dict):
                    raise contract.Invalid("message: a JSON object is required")
                record["messages"].append(message.get("type") or "audio")
                if "audio" in message:
                    contract.check_stt_audio(message["audio"], connection_rate)
                    raw = base64.b64decode(message["audio"]["data"])
                    audio += wav_to_pcm16(raw)[0] if raw[:4] == b"RIFF" else raw
                    continue
                if message.get("type") != "flush":
                    raise contract.Invalid(f"unknown message {message.get('type')!r}")
            except (ValueError, contract.Invalid) as exc:
                code = exc.code if isinstance(exc, contract.Invalid) else "invalid_request_error"
                await ws.send_json(self.stt_error(str(exc), code))
                break
            if await self._ws_fault(ws, fault, self.stt_error):
                break
            if fault is not None and fault.cut:
                await ws.close()
                break
            text, language = self._transcript(audio, query)
            await ws.send_json({"type": "data", "data": {
                "request_id": _request_id(), "transcript": text, "timestamps": None,
                "diarized_transcript": None, "language_code": language,
                "language_probability": 0.9 if query.get("language-code", "unknown") == "unknown"
                else None,
                "metrics": {"audio_duration": len(audio) / 2 / connection_rate,
                            "processing_latency": 0.01}}})
            audio = b""
        await ws.close()
        return ws

    # --- realtime STT socket ---
    async def stt_realtime(self, request: web.Request) -> web.StreamResponse:
        fault = self.take_fault("stt_rt")
        query = dict(request.query)
        record: dict[str, Any] = {"endpoint": "stt_rt", "headers": dict(request.headers),
                                  "query": query, "messages": [], "sent": []}
        self.requests.append(record)
        if fault is not None and fault.status is not None and fault.status != 200:
            return error_body(fault.status, fault.code, fault.message, fault.request_id)
        ws = web.WebSocketResponse(max_msg_size=64 * 1024 * 1024)
        await ws.prepare(request)
        session = RealtimeSession(self, ws, record, fault, request)
        if request.headers.get("api-subscription-key") != self.api_key:
            return await session.reject(403, "invalid_api_key_error", "Invalid API key",
                                        contract.RT_CLOSE_RATE)
        try:
            session.config = contract.check_realtime_query(query)
        except contract.Invalid as exc:
            return await session.reject(exc.status, exc.code, exc.message, contract.RT_CLOSE_REJECTED)
        await session.run()
        return ws

    async def tts_ws(self, request: web.Request) -> web.StreamResponse:
        ws, fault = await self._ws_open(request, "tts_ws", contract.check_tts_query)
        if not isinstance(ws, web.WebSocketResponse):
            return ws
        record = self.requests[-1]
        model = record["query"].get("model", contract.TTS_DEFAULT_MODEL)
        completion_event = record["query"].get("send_completion_event") == "true"
        config: dict[str, Any] | None = None
        text = ""
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            try:
                message = json.loads(msg.data)
                if not isinstance(message, dict):
                    raise contract.Invalid("message: a JSON object is required")
                kind = message.get("type")
                record["messages"].append(message)
                if kind == "config":
                    config = contract.check_tts_config(message.get("data"), model)
                    continue
                if kind == "ping":
                    continue
                if config is None:
                    raise contract.Invalid("the first message must be config")
                if kind == "text":
                    piece = (message.get("data") or {}).get("text")
                    if not isinstance(piece, str) or not 1 <= len(text + piece) <= contract.TTS_WS_MAX_CHARS:
                        raise contract.Invalid("text: 1-2500 characters are required")
                    text += piece
                    continue
                if kind != "flush":
                    raise contract.Invalid(f"unknown message type {kind!r}")
            except (ValueError, contract.Invalid) as exc:
                code = exc.code if isinstance(exc, contract.Invalid) else "invalid_request_error"
                await ws.send_json(self.tts_error(str(exc), code))
                break
            if await self._ws_fault(ws, fault, self.tts_error):
                break
            rate = int(config.get("speech_sample_rate", 22050))
            codec = config.get("output_audio_codec", "mp3")
            pcm = tone_pcm(len(text) * MS_PER_CHAR / 1000, rate)
            step = rate // 5 * 2  # 200 ms messages
            pieces = [pcm[i:i + step] for i in range(0, len(pcm), step)]
            for n, piece in enumerate(pieces):
                if fault is not None and fault.cut and n == len(pieces) // 2:
                    await ws.close()
                    return ws
                await ws.send_json({"type": "audio", "data": {
                    "content_type": CONTENT_TYPES.get(codec, "application/octet-stream"),
                    "audio": base64.b64encode(piece).decode(), "request_id": "req_tts_ws"}})
            if completion_event:
                await ws.send_json({"type": "event", "data": {
                    "event_type": "final", "message": "generation complete",
                    "timestamp": datetime.now(UTC).isoformat()}})
            text = ""
        await ws.close()
        return ws


class RealtimeSession:
    """One /speech-to-text-realtime/ws connection: the SDK's events in, the SDK's events out."""

    def __init__(self, fake: FakeSarvam, ws: web.WebSocketResponse, record: dict[str, Any],
                 fault: Fault | None, request: web.Request) -> None:
        self.fake, self.ws, self.record, self.fault, self.request = fake, ws, record, fault, request
        self.config: dict[str, str] = {}
        self.request_id = _request_id()
        self.utterance_idx = 0
        self._reset()

    def _reset(self) -> None:
        self.audio = b""
        self.speaking = False
        self.partials = 0
        self.script: tuple[str, str | None] | None = None

    @property
    def rate(self) -> int:
        return int(self.config["sample_rate"])

    async def send(self, event: dict[str, Any]) -> None:
        self.record["sent"].append(event["event"])
        await self.ws.send_json(event)

    async def reject(self, status: int, code: str, message: str, close_code: int) -> web.WebSocketResponse:
        """A fatal error event, then the close code (its reason capped at 123 bytes, as Sarvam's)."""
        await self.send({"event": "error", "code": code, "is_fatal": True, "message": message,
                         "status_code": status})
        await self.ws.close(code=close_code, message=message.encode()[:123])
        return self.ws

    async def run(self) -> None:
        await self.send({"event": "session.begin", "request_id": self.request_id, "config": {
            "model": self.config["model"], "language_code": self.config["language_code"],
            "encoding": self.config["encoding"], "sample_rate": self.rate,
            "stream_type": self.config["stream_type"], "mode": self.config["mode"],
            "turn_detection": self.config["endpointing"],
            "return_timestamps": self.config["return_timestamps"] == "true"}})
        async for msg in self.ws:
            if msg.type != WSMsgType.TEXT:
                break
            try:
                message = contract.check_realtime_message(json.loads(msg.data),
                                                          self.config["endpointing"],
                                                          self.config["encoding"])
            except (ValueError, contract.Invalid) as exc:
                status, code = (exc.status, exc.code) if isinstance(exc, contract.Invalid) \
                    else (400, "invalid_request_error")
                await self.reject(status, code, str(exc), contract.RT_CLOSE_REJECTED)
                return
            event = message["event"]
            self.record["messages"].append(event)
            if event == "audio_input":
                if not await self.hear(base64.b64decode(message["audio"])):
                    return
            elif event == "speech_start":
                self.speaking = True
            elif event in ("speech_end", "flush"):
                if not await self.finalize():
                    return
            elif event == "end":
                if (self.audio or self.speaking) and not await self.finalize():
                    return
                await self.send({"event": "session.end", "request_id": self.request_id,
                                 "total_utterances": self.utterance_idx})
                break
            elif event == "ping":
                await self.send({"event": "pong"})
            else:
                await self.config_update(message)
        await self.ws.close()

    async def hear(self, pcm: bytes) -> bool:
        """Buffer audio; partials while an utterance is open. False when the exchange is over."""
        fault = self.fault
        if fault is not None and fault.code:
            status = CODE_STATUS.get(fault.code, 500)
            close = contract.RT_CLOSE_RATE if status in (403, 429) else \
                contract.RT_CLOSE_INTERNAL if status >= 500 else contract.RT_CLOSE_REJECTED
            await self.reject(status, fault.code, fault.message, close)
            return False
        if self.config["endpointing"] == "vad" and not self.speaking:
            self.speaking = True
            await self.send({"event": "vad.speech_start", "utterance_idx": self.utterance_idx,
                             "confidence": 0.9})
        self.audio += pcm
        step = int(RT_PARTIAL_EVERY_S * self.rate) * 2
        if not self.speaking or self.config["stream_type"] == "simulated":
            return True
        words = self.transcript()[0].split()
        while self.partials < len(words) and len(self.audio) >= (self.partials + 1) * step:
            self.partials += 1
            await self.send(self.with_language({"event": "transcript.partial",
                                                "utterance_idx": self.utterance_idx,
                                                "text": " ".join(words[:self.partials])}))
            if fault is not None and fault.cut:
                self.request.transport.close()  # type: ignore[union-attr]  # no close frame
                return False
        return True

    async def finalize(self) -> bool:
        fault = self.fault
        if fault is not None:
            if fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            if fault.hang:
                await self.fake._stopping.wait()
                return False
            if fault.malformed:
                await self.ws.send_str("{not json")
                return False
        if self.config["endpointing"] == "vad":
            await self.send({"event": "vad.speech_end", "utterance_idx": self.utterance_idx,
                             "confidence": 0.9})
        final: dict[str, Any] = {"event": "transcript.final", "utterance_idx": self.utterance_idx,
                                 "text": self.transcript(final=True)[0]}
        if self.config["return_timestamps"] == "true":
            final.update(start_s=0.0, end_s=len(self.audio) / 2 / self.rate)
        await self.send(self.with_language(final))
        self.utterance_idx += 1
        self._reset()
        return True

    async def config_update(self, message: dict[str, Any]) -> None:
        applied = sorted(k for k in message if k != "event")
        simulated = "simulated" in (message.get("stream_type"), self.config["stream_type"])
        if "stream_type" in message and simulated and message["stream_type"] != self.config["stream_type"]:
            await self.send({"event": "error", "code": "invalid_config", "is_fatal": False,
                             "message": "stream_type cannot change to or from simulated"})
            return
        self.config.update({k: str(message[k]) for k in applied})
        await self.send({"event": "config.updated", "applied": applied})

    def transcript(self, final: bool = False) -> tuple[str, str | None]:
        """The utterance's scripted answer. Partials peek at the queue and only the final pops
        it, so a stream dropped before its final (a noise blip) leaves the script in step; a
        transcriber sees the audio heard so far."""
        if self.fake.transcriber is not None:
            return self.fake.transcriber(self.audio, self.config)
        if final:
            self.script = self.fake._transcript(self.audio, self.config)
        if self.script is None:
            queued = self.fake.transcripts
            return queued[0] if queued else self.fake.default_transcript
        return self.script

    def with_language(self, event: dict[str, Any]) -> dict[str, Any]:
        """`language` (and on finals its confidence) only when the connection asked for auto."""
        if self.config["language_code"] == "auto":
            language = self.transcript()[1]
            event["language"] = {"od-IN": "or-IN"}.get(language or "", language)
            if event["event"] == "transcript.final":
                event["language_confidence"] = 0.9
        return event
