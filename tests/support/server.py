"""A REAL server for integration tests: uvicorn on a free 127.0.0.1 port in a background thread,
with scripted engines (fixed delays, injectable failures) instead of real models."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from sutradhar.config import Settings, load_settings
from sutradhar.providers.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS
from sutradhar.services import Services, router_from_settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = dict(stt=["scripted"], llm=["scripted"], tts=["scripted"], retry_attempts=1,
                                log_level="WARNING")
    base.update(overrides)
    return load_settings(**base)


def scripted_services(settings: Settings, *, stt: ScriptedSTT | None = None, llm: ScriptedLLM | None = None,
                      tts: ScriptedTTS | None = None) -> Services:
    stt = stt or ScriptedSTT(script=("hello there",))
    llm = llm or ScriptedLLM(replies=("Sure. I can help with that.",))
    tts = tts or ScriptedTTS(ms_per_char=25, chunk_ms=100)
    return Services(settings, router_from_settings(settings, [stt], [llm], [tts]))


@dataclass
class RunningServer:
    url: str
    port: int
    services: Services
    app: Any
    server: uvicorn.Server
    thread: threading.Thread
    recorder: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.services.settings


def build_app(settings: Settings, services: Services, with_operations: bool = False) -> Any:
    """The real app. Operations (call store, monitors) are off unless asked: tests that check call
    records install a RecordingRecorder, and nothing is written under data_dir."""
    from sutradhar.server import create_app

    return create_app(settings, services, with_operations=with_operations)


@contextmanager
def running_server(settings: Settings | None = None, services: Services | None = None,
                   port: int | None = None, with_operations: bool = False,
                   **overrides: Any) -> Iterator[RunningServer]:
    """Start the real app with uvicorn; yields once it accepts connections."""
    port = port or free_port()
    if settings is None:
        settings = make_settings(public_url=f"http://127.0.0.1:{port}", **overrides)
    services = services or scripted_services(settings)
    app = build_app(settings, services, with_operations)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                            ws_max_size=settings.max_message_bytes)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", port, services, app, server, thread)
    finally:
        server.should_exit = True
        thread.join(10)


def scripted_server(recorder: Any = None, *, stt: ScriptedSTT | None = None, llm: ScriptedLLM | None = None,
                    tts: ScriptedTTS | None = None, **overrides: Any) -> Any:
    """A running server with scripted engines, settings overrides and an optional recorder."""
    port = free_port()
    settings = make_settings(public_url=f"http://127.0.0.1:{port}", **overrides)
    services = scripted_services(settings, stt=stt, llm=llm, tts=tts)
    if recorder is not None:
        services.recorder = recorder
    return running_server(settings, services, port=port)


class RecordingRecorder:
    """A call-record sink that keeps everything it is told (for assertions)."""

    def __init__(self) -> None:
        self.started: list[tuple[str, dict]] = []
        self.turns: list[tuple[str, dict]] = []
        self.ended: list[tuple[str, str, dict]] = []

    async def call_started(self, call_id: str, info: dict) -> None:
        self.started.append((call_id, info))

    async def turn_completed(self, call_id: str, record: dict) -> None:
        self.turns.append((call_id, record))

    async def call_ended(self, call_id: str, reason: str, summary: dict) -> None:
        self.ended.append((call_id, reason, summary))


def wait_until(predicate: Any, timeout: float = 5.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def sequence(*items: str) -> Sequence[str]:
    return tuple(items)
