"""The REAL server for end-to-end tests, run so the test can look inside it.

uvicorn serves `sutradhar.server.create_app(settings, services)` on a free 127.0.0.1 port, in a
thread with an event loop this harness owns. The test talks to it only over HTTP and WebSockets,
like a carrier would, and measures from outside what must not leak: the server loop's pending
asyncio tasks (`tasks()`), and everything the server logged (`logs`, captured from loguru and the
standard logging module).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from loguru import logger

from sutradhar.config import Settings, load_settings
from sutradhar.providers.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS
from sutradhar.services import Services, router_from_settings
from tests.support.server import free_port  # noqa: F401  (re-exported for the e2e tests)


def require(module: str, piece: str) -> Any:
    """Import a module another branch delivers, or skip naming the missing piece."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pytest.skip(f"needs {piece} ({module}), not merged into main yet: {exc}")


def e2e_settings(**overrides: Any) -> Settings:
    """Settings for a test server: scripted engines unless told otherwise, fast resilience."""
    base: dict[str, Any] = dict(stt=["scripted"], llm=["scripted"], tts=["scripted"], retry_attempts=1,
                                retry_backoff_s=0.0, log_level="INFO", inactivity_timeout_s=30.0)
    base.update(overrides)
    return load_settings(**base)


def scripted_services(settings: Settings, stt: Any = None, llm: Any = None, tts: Any = None) -> Services:
    def chain(value: Any, default: Any) -> list[Any]:
        if value is None:
            return [default]
        return list(value) if isinstance(value, (list, tuple)) else [value]

    return Services(settings, router_from_settings(
        settings, chain(stt, ScriptedSTT(script=("hello there",))),
        chain(llm, ScriptedLLM(replies=("Sure. I can help with that.",))),
        chain(tts, ScriptedTTS(sample_rate=8000, ms_per_char=20, chunk_ms=100))))


def configured_services(settings: Settings, **replace: Any) -> Services:
    """Services with the engines the settings name (Sarvam, OpenAI, local), via the real factory;
    `stt=`/`llm=`/`tts=` replace a stage's chain (e.g. a fast scripted voice where speech is not
    the point)."""
    factory = require("sutradhar.providers.factory", "build_providers (providers)")
    engines = factory.build_providers(settings)
    chains = {stage: replace.get(stage, getattr(engines, stage)) for stage in ("stt", "llm", "tts")}
    chains = {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in chains.items()}
    return Services(settings, router_from_settings(settings, chains["stt"], chains["llm"], chains["tts"]))


def fast_voice() -> ScriptedTTS:
    """A quick tone voice at the phone line's rate (no resampling, short replies)."""
    return ScriptedTTS(name="fast-voice", sample_rate=8000, ms_per_char=8, chunk_ms=100)


class LogCapture:
    """Every record the process logs while active: loguru (with its bound extras) and stdlib."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.records: list[dict[str, Any]] = []
        self._ids: list[int] = []
        self._handler: logging.Handler | None = None

    def __enter__(self) -> LogCapture:
        def sink(message: Any) -> None:
            record = message.record
            self.records.append({"level": record["level"].name, "message": record["message"],
                                 "extra": dict(record["extra"]),
                                 "exception": str(record["exception"]) if record["exception"] else ""})
            self.lines.append(str(message))

        self._ids.append(logger.add(sink, level="DEBUG", format="{level} {extra} {message}\n{exception}",
                                    backtrace=False, diagnose=False))
        capture = self

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                text = self.format(record)
                capture.lines.append(text)
                capture.records.append({"level": record.levelname, "message": record.getMessage(),
                                        "extra": {"logger": record.name}, "exception": text})

        self._handler = Handler(logging.DEBUG)
        self._handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        logging.getLogger().addHandler(self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for handler_id in self._ids:
            logger.remove(handler_id)
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)

    def text(self) -> str:
        return "\n".join(self.lines)

    def find(self, needle: str, level: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.records if needle in r["message"] and (level is None or r["level"] == level)]

    def tracebacks(self) -> list[str]:
        """Lines that show an exception escaped somewhere (a traceback was logged)."""
        return [line for line in self.lines if "Traceback" in line]


@dataclass
class LiveServer:
    settings: Settings
    services: Services
    app: Any
    port: int
    server: uvicorn.Server
    thread: threading.Thread
    loop: asyncio.AbstractEventLoop
    baseline_tasks: set[str] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        """Run a coroutine on the server's loop (e.g. to read its state safely)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

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
def live_server(settings: Settings | None = None, services: Services | None = None,
                services_factory: Callable[[Settings], Services] | None = None,
                **overrides: Any) -> Iterator[LiveServer]:
    """Start the real app under uvicorn on its own loop in a thread; stop it on exit.

    Given settings, it listens on `settings.port` (tests pick a free one and put it in PUBLIC_URL,
    which signatures and stream URLs are built from)."""
    port = settings.port if settings is not None and settings.port != 8000 else free_port()
    if settings is None:
        settings = e2e_settings(public_url=f"http://127.0.0.1:{port}", **overrides)
    if services is None:
        services = services_factory(settings) if services_factory else scripted_services(settings)
    from sutradhar.server import create_app

    app = create_app(settings, services)  # with operations: the call store, metrics, health
    # log_config=None: uvicorn leaves logging alone, so its errors reach the root logger (LogCapture).
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                            log_config=None, ws_max_size=settings.max_message_bytes,
                            timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),),
                              name=f"uvicorn-e2e-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    live = LiveServer(settings, services, app, port, server, thread, loop)
    time.sleep(0.1)  # let startup tasks (health monitor, store writer) settle into the baseline
    live.baseline_tasks = set(live.tasks())
    try:
        yield live
    finally:
        server.should_exit = True
        thread.join(15)
        if not thread.is_alive():
            loop.close()
