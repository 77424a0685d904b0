"""The one live-server harness: the REAL app under uvicorn on a free 127.0.0.1 port, on an event
loop of its own in a background thread, so a test talks to it only over HTTP and WebSockets (like
a carrier would) and can still look inside it: the server loop's pending asyncio tasks (`tasks()`)
and its shared services (`services`).

Engines are scripted (fixed delays, injectable failures) unless a test passes others.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from sutradhar.config import Settings, load_settings
from sutradhar.engines.registry import EngineSet
from sutradhar.services import Services
from sutradhar.store import Recorder
from sutradhar.testing.ports import free_port
from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS


def make_settings(**overrides: Any) -> Settings:
    # No turn budget and no start-up apology audio unless a test asks: elsewhere slow scripted
    # engines are the point, and scripted voices count their calls (tests/integration/test_turn_budget.py).
    # INBOUND_MAX_SPEED=0: most tests send caller audio faster than real time on purpose (a test
    # of the limit itself turns it on).
    base: dict[str, Any] = dict(stt=["scripted"], llm=["scripted"], tts=["scripted"], retry_attempts=1,
                                log_level="WARNING", turn_budget_s=0.0, apology_audio=False,
                                inbound_max_speed=0.0)
    base.update(overrides)
    return load_settings(**base)


def _chain(value: Any, default: Any) -> list[Any]:
    if value is None:
        return [default]
    return list(value) if isinstance(value, (list, tuple)) else [value]


def scripted_engines(stt: Any = None, llm: Any = None, tts: Any = None) -> EngineSet:
    """Scripted engines for each stage; each argument is one engine or a fallback chain."""
    return EngineSet(stt=_chain(stt, ScriptedSTT(script=("hello there",))),
                     llm=_chain(llm, ScriptedLLM(replies=("Sure. I can help with that.",))),
                     tts=_chain(tts, ScriptedTTS(ms_per_char=25, chunk_ms=100)))


Engines = EngineSet | Callable[[Settings], EngineSet]


@dataclass
class LiveServer:
    settings: Settings
    app: Any
    port: int
    server: uvicorn.Server
    thread: threading.Thread
    loop: asyncio.AbstractEventLoop
    baseline_tasks: set[str] = field(default_factory=set)

    @property
    def services(self) -> Services:
        return self.app.state.services

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        """Run a coroutine on the server's loop (e.g. to read its state safely)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def flush_records(self) -> None:
        """From a test's own loop: wait until the server's call store has written what is queued.
        (Awaiting `store.flush()` there directly would wait on the server loop's queue from the
        wrong loop, and hang once anything is queued.)"""
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.services.store.flush(), self.loop))

    def tasks(self) -> list[str]:
        """Names of the server loop's unfinished tasks, beyond those it had once it was serving."""
        async def names() -> list[str]:
            current = asyncio.current_task()
            return sorted(f"{t.get_name()}:{t.get_coro().__qualname__ if t.get_coro() else '?'}"
                          for t in asyncio.all_tasks() if t is not current and not t.done())

        return [n for n in self.run(names()) if n not in self.baseline_tasks]

    def wait_tasks_settled(self, timeout: float = 5.0) -> list[str]:
        """Wait until no task beyond the baseline is left; return what is left at the deadline."""
        deadline = time.monotonic() + timeout
        left = self.tasks()
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = self.tasks()
        return left

    def live_calls(self) -> int:
        async def count() -> int:
            return len(self.services.calls)

        return self.run(count())


@contextmanager
def live_server(settings: Settings | None = None, engines: Engines | None = None, *,
                records: bool = True, recorder: Recorder | None = None,
                **overrides: Any) -> Iterator[LiveServer]:
    """Start the real app under uvicorn on its own loop in a thread; stop it on exit.

    Given settings, it listens on `settings.port` (tests pick a free one and put it in PUBLIC_URL,
    which signatures and stream URLs are built from). `engines` is an EngineSet or a function of
    the settings that builds one (scripted engines when omitted); `records=False` keeps no call
    store, `recorder` receives the records instead."""
    from sutradhar.server.app import create_app
    from sutradhar.server.runner import uvicorn_config

    port = settings.port if settings is not None and settings.port != 8000 else free_port()
    if settings is None:
        settings = make_settings(public_url=f"http://127.0.0.1:{port}", **overrides)
    if engines is None:
        engines = scripted_engines()
    elif callable(engines):
        engines = engines(settings)
    app = create_app(settings, engines=engines, records=records, recorder=recorder)
    # As `sutradhar serve` configures uvicorn (its WebSocket protocol, TRUSTED_PROXIES deciding
    # client addresses), on the default loop; log_config=None: its errors reach the root logger.
    config = uvicorn_config(app, settings, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on", loop="auto", timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),),
                              name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    live = LiveServer(settings, app, port, server, thread, loop)
    time.sleep(0.1)  # let startup tasks (health monitor, store writer) settle into the baseline
    live.baseline_tasks = set(live.tasks())
    try:
        yield live
    finally:
        server.should_exit = True
        thread.join(15)
        if not thread.is_alive():
            loop.close()


def scripted_server(recorder: Recorder | None = None, *, stt: ScriptedSTT | None = None,
                    llm: ScriptedLLM | None = None, tts: ScriptedTTS | None = None,
                    **overrides: Any) -> Any:
    """A live server with scripted engines and settings overrides. No call store: a test that
    checks call records passes a RecordingRecorder, and nothing is written under DATA_DIR."""
    port = free_port()
    settings = make_settings(public_url=f"http://127.0.0.1:{port}", port=port, **overrides)
    return live_server(settings, scripted_engines(stt, llm, tts), records=False, recorder=recorder)


class RecordingRecorder:
    """A call-record sink that keeps everything it is told (for assertions)."""

    def __init__(self) -> None:
        self.started: list[tuple[str, dict]] = []
        self.turns: list[tuple[str, dict]] = []
        self.ended: list[tuple[str, str, dict]] = []
        self.heard: list[tuple[str, Any, str | None, bool]] = []  # playout progress updates

    async def call_started(self, call_id: str, info: dict) -> None:
        self.started.append((call_id, info))

    async def turn_completed(self, call_id: str, record: dict) -> None:
        self.turns.append((call_id, record))

    async def turn_heard(self, call_id: str, turn_id: Any, heard: str | None, playing: bool) -> None:
        self.heard.append((call_id, turn_id, heard, playing))

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
