"""What the fake cloud servers share: a loopback aiohttp server, per-endpoint fault queues, SSE chat.

A fault is consumed by the next request to its endpoint; with the queue empty, requests succeed.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web


@dataclass
class Fault:
    """One injected misbehaviour. Combine: `Fault(delay_s=0.2, status=500)`."""

    status: int | None = None  # answer this HTTP status with an error body
    code: str = ""  # error.code in the body (e.g. insufficient_quota_error)
    message: str = "injected failure"
    delay_s: float = 0.0  # added latency before answering
    hang: bool = False  # never answer (until the server stops)
    malformed: bool = False  # answer 200 with a body that is not JSON
    cut: bool = False  # start a streamed answer, then drop the connection mid-way
    request_id: str = field(default_factory=lambda: f"req_{uuid.uuid4().hex[:12]}")

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls(status=status, code="internal_server_error", message="upstream exploded")

    @classmethod
    def rate_limited(cls) -> Fault:
        return cls(status=429, code="rate_limit_exceeded_error", message="slow down")

    @classmethod
    def quota(cls) -> Fault:
        return cls(status=429, code="insufficient_quota_error", message="no credits left")

    @classmethod
    def forbidden(cls) -> Fault:
        return cls(status=403, code="invalid_api_key_error", message="invalid API key")


def error_body(status: int, code: str, message: str, request_id: str) -> web.Response:
    body = {"error": {"message": message, "code": code, "request_id": request_id}}
    return web.json_response(body, status=status, headers={"x-request-id": request_id})


def tone_pcm(seconds: float, sample_rate: int, frequency_hz: float = 300.0) -> bytes:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (6000 * np.sin(2 * math.pi * frequency_hz * t)).astype("<i2").tobytes()


@dataclass(frozen=True)
class ToolCalls:
    """A scripted reply that calls tools, streamed as the OpenAI API does: each call's first delta
    has its index, id, type and name with empty arguments; then the arguments' JSON arrives in
    pieces of `piece_chars`; the last chunk's finish_reason is "tool_calls". `text` comes first."""

    calls: tuple[tuple[str, dict[str, Any]], ...]  # (function name, arguments)
    text: str = ""
    piece_chars: int = 4

    def call_id(self, index: int) -> str:
        return f"call_{index}{self.calls[index][0][:12]}"

    def deltas(self) -> list[tuple[dict[str, Any], str | None]]:
        """(delta, finish_reason) of every chunk after the first (role) one."""
        out: list[tuple[dict[str, Any], str | None]] = []
        words = self.text.split(" ") if self.text else []
        for i, word in enumerate(words):
            out.append(({"content": word if i == 0 else " " + word}, None))
        for index, (name, arguments) in enumerate(self.calls):
            out.append(({"tool_calls": [{"index": index, "id": self.call_id(index), "type": "function",
                                         "function": {"name": name, "arguments": ""}}]}, None))
            encoded = json.dumps(arguments, ensure_ascii=False)
            for start in range(0, len(encoded), self.piece_chars):
                piece = encoded[start:start + self.piece_chars]
                out.append(({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}, None))
        out.append(({}, "tool_calls"))
        return out


Reply = str | ToolCalls | Callable[[list[dict[str, Any]]], "str | ToolCalls"]


class FakeServer:
    """Base: start/stop on 127.0.0.1 with a free port; `async with Fake() as fake: fake.base_url`."""

    api_key = "test-key"

    def __init__(self) -> None:
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.requests: list[dict[str, Any]] = []
        self.replies: deque[Reply] = deque()
        self.default_reply: Reply = "Hello! How can I help you today?"
        self.reasoning: str = ""  # emitted as reasoning_content (content null) before the reply
        self.sse_write_size: int | None = None  # write the SSE body in pieces of this many bytes
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- scripting ---
    def inject(self, endpoint: str, *faults: Fault) -> None:
        self.faults[endpoint].extend(faults)

    def reply(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def take_fault(self, endpoint: str) -> Fault | None:
        queue = self.faults[endpoint]
        return queue.popleft() if queue else None

    def calls(self, endpoint: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["endpoint"] == endpoint]

    # --- lifecycle ---
    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FakeServer:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.routes(app)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- shared behaviour ---
    async def before(self, fault: Fault | None) -> web.StreamResponse | None:
        """Apply latency, hang or an error status; return a response to send instead, if any."""
        if fault is None:
            return None
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.hang:
            await self._stopping.wait()
            raise ConnectionResetError("fake server stopping")
        if fault.status is not None:
            return error_body(fault.status, fault.code, fault.message, fault.request_id)
        if fault.malformed:
            return web.Response(text='{"transcript": "oops', content_type="application/json",
                                headers={"x-request-id": fault.request_id})
        return None

    def next_reply(self, messages: list[dict[str, Any]]) -> str | ToolCalls:
        reply = self.replies.popleft() if self.replies else self.default_reply
        return reply(messages) if callable(reply) else reply

    async def chat(self, request: web.Request, endpoint: str = "chat") -> web.StreamResponse:
        """OpenAI-style streaming chat completions."""
        fault = self.take_fault(endpoint)
        body = await request.json()
        self.requests.append({"endpoint": endpoint, "headers": dict(request.headers), "json": body})
        if (denied := self.check_auth(request)) is not None:
            return denied
        if (early := await self.before(fault)) is not None:
            return early
        text = self.next_reply(body.get("messages", []))
        request_id = fault.request_id if fault else f"req_{uuid.uuid4().hex[:12]}"
        return await self.write_sse(request, self.sse_events(text), request_id, fault)

    async def write_sse(self, request: web.Request, events: list[bytes], request_id: str,
                        fault: Fault | None) -> web.StreamResponse:
        """Answer with `events` as server-sent events; a `cut` fault drops the connection halfway,
        and `sse_write_size` splits the body into pieces (SSE lines cut across TCP writes)."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "x-request-id": request_id})
        await response.prepare(request)
        payload = b"".join(events)
        if fault and fault.cut:
            # Send the first half of the stream, then drop the TCP connection.
            await response.write(payload[: len(payload) // 2])
            request.transport.close()  # type: ignore[union-attr]
            return response
        size = self.sse_write_size
        pieces = [payload[i:i + size] for i in range(0, len(payload), size)] if size else events
        for piece in pieces:
            await response.write(piece)
            await asyncio.sleep(0)
        await response.write_eof()
        return response

    def sse_events(self, text: str) -> list[bytes]:
        def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
            chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()

        events = [event({"role": "assistant", "content": ""})]
        for word in self.reasoning.split(" ") if self.reasoning else []:
            events.append(event({"content": None, "reasoning_content": word + " "}))
        words = text.split(" ")
        for i, word in enumerate(words):
            events.append(event({"content": word if i == 0 else " " + word}))
        events.append(event({}, "stop"))
        usage = {"id": "chatcmpl-fake", "choices": [], "usage": {"total_tokens": len(words)}}
        events.append(f"data: {json.dumps(usage)}\n\n".encode())
        events.append(b"data: [DONE]\n\n")
        return events

    def check_auth(self, request: web.Request) -> web.Response | None:
        return None
