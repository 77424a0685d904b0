"""The benchmark's providers as a separate loopback HTTP process speaking the OpenAI-compatible API,
so the server under test pays what a real deployment pays: HTTP requests, a multipart WAV upload,
SSE parsing, streamed PCM at 24 kHz and its resampling to the phone line.

    python -m bench.provider_server --port 8766 --stt-ms 150 --llm-first-token-ms 200 ...

Endpoints (the server's real OpenAI engines call them through OPENAI_BASE_URL=.../v1):
- POST /v1/audio/transcriptions: answers the scripted transcript after `stt_ms`.
- POST /v1/chat/completions (stream=true): the scripted reply as SSE `chat.completion.chunk`
  events, the first after `llm_first_token_ms`, then one every `llm_token_ms`, then `[DONE]`.
- POST /v1/audio/speech (response_format=pcm): 24 kHz PCM16 streamed, the first chunk after
  `tts_first_chunk_ms`, then `tts_chunk_audio_ms` of audio every `tts_chunk_ms`; the length of
  the audio follows the text (`tts_ms_per_char`), as the scripted TTS does.
- GET /v1/models: for health checks.

Unlike tests/fakes/openai_server.py (strict: it validates every field against the SDK's types),
this one must stay cheap and never fail a request under load: every event and audio chunk is
serialised once at start-up, and requests are read, not validated.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import weakref
from pathlib import Path
from typing import Any

from aiohttp import web

_REPO = Path(__file__).resolve().parents[1]
TTS_RATE = 24000  # OpenAI's response_format=pcm: 24 kHz mono PCM16 little-endian
CREATED = 1_700_000_000


def _chunk_event(model: str, content: str | None, finish: str | None) -> bytes:
    delta = {"content": content} if content is not None else {}
    event = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": CREATED, "model": model,
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"


class Providers:
    """The scripted conversation of bench/scenario.py behind the OpenAI wire format."""

    def __init__(self, d: Any) -> None:
        from bench.scenario import REPLIES, TRANSCRIPTS, tokens
        from sutradhar.testing.scripted import tone

        self.d = d
        self.transcripts = [json.dumps({"text": t}).encode() for t in TRANSCRIPTS]
        self.transcript_index = {t: i for i, t in enumerate(TRANSCRIPTS)}
        model = "bench-llm"
        self.replies = [[_chunk_event(model, tok, None) for tok in tokens(r)]
                        + [_chunk_event(model, None, "stop"), b"data: [DONE]\n\n"] for r in REPLIES]
        self.chunk_bytes = d.tts_chunk_audio_ms * TTS_RATE // 1000 * 2
        self.tone = tone(self.chunk_bytes // 2, TTS_RATE)
        self._stt_turns = itertools.count()
        self._llm_turns = itertools.count()
        self.requests = {"stt": 0, "llm": 0, "tts": 0}
        # Distinct TCP connections the server under test opened: its connection reuse.
        self._transports: weakref.WeakSet[Any] = weakref.WeakSet()
        self.connections = 0
        from bench.common import LagTicker

        self.ticker = LagTicker()

    def _count(self, request: web.Request, stage: str) -> None:
        self.requests[stage] += 1
        transport = request.transport
        if transport is not None and transport not in self._transports:
            self._transports.add(transport)
            self.connections += 1

    async def transcribe(self, request: web.Request) -> web.Response:
        await request.read()  # the multipart WAV: read as a real server would, not parsed
        self._count(request, "stt")
        await asyncio.sleep(self.d.stt_ms / 1000)
        body = self.transcripts[next(self._stt_turns) % len(self.transcripts)]
        return web.Response(body=body, content_type="application/json")

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self._count(request, "llm")
        # The reply to the caller's last words when they are a scripted transcript, so a call's
        # turns get the replies in order whatever other calls do; otherwise the next one.
        last = next((m.get("content") for m in reversed(body.get("messages", [])) if m.get("role") == "user"), None)
        index = self.transcript_index.get(last) if isinstance(last, str) else None
        if index is None:
            index = next(self._llm_turns)
        events = self.replies[index % len(self.replies)]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                               "x-request-id": "req_bench"})
        await response.prepare(request)
        await asyncio.sleep(self.d.llm_first_token_ms / 1000)
        step = self.d.llm_token_ms / 1000
        last_token = len(events) - 2
        for i, event in enumerate(events):
            if 0 < i < last_token and step:
                await asyncio.sleep(step)
            await response.write(event)
        await response.write_eof()
        return response

    async def speech(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self._count(request, "tts")
        text = str(body.get("input", ""))
        total = max(2, int(len(text) * self.d.tts_ms_per_char * TTS_RATE / 1000) * 2)
        response = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await asyncio.sleep(self.d.tts_first_chunk_ms / 1000)
        for n, start in enumerate(range(0, total, self.chunk_bytes)):
            if n and self.d.tts_chunk_ms:
                await asyncio.sleep(self.d.tts_chunk_ms / 1000)
            await response.write(self.tone[: min(self.chunk_bytes, total - start)])
        await response.write_eof()
        return response

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "bench-llm", "object": "model",
                                                              "created": CREATED, "owned_by": "bench"}]})

    async def stats(self, request: web.Request) -> web.Response:
        from bench.common import summarize

        lags = sorted(self.ticker.lags)
        return web.json_response({"requests": self.requests, "connections": self.connections,
                                  "loop_lag_ms": {**summarize(lags), "over_25ms": sum(1 for x in lags if x >= 25)}})

    async def measure_lag(self, app: web.Application) -> Any:
        """This process's own event-loop lag: a provider that falls behind under the turn bursts
        delays every stage the server measures."""
        self.ticker.start()
        yield
        self.ticker.stop()


def build_app(d: Any) -> web.Application:
    providers = Providers(d)
    app = web.Application(client_max_size=64 * 2**20)
    app.router.add_post("/v1/audio/transcriptions", providers.transcribe)
    app.router.add_post("/v1/chat/completions", providers.chat)
    app.router.add_post("/v1/audio/speech", providers.speech)
    app.router.add_get("/v1/models", providers.models)
    app.router.add_get("/bench/stats", providers.stats)
    app.cleanup_ctx.append(providers.measure_lag)
    return app


def main(argv: list[str] | None = None) -> int:
    src = os.environ.get("BENCH_SRC") or str(_REPO / "src")
    sys.path[:0] = [src, str(_REPO)]
    from bench.common import use_uvloop
    from bench.scenario import Delays

    p = argparse.ArgumentParser(prog="provider_server", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=8766)
    Delays.add_arguments(p)
    args = p.parse_args(argv)
    d = Delays.from_args(args)
    use_uvloop()
    print(f"bench providers on http://127.0.0.1:{args.port}/v1 delays={d.as_dict()}", file=sys.stderr)
    # backlog: a few hundred calls open their first connections at once
    web.run_app(build_app(d), host="127.0.0.1", port=args.port, access_log=None, print=None, backlog=1024)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
