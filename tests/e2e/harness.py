"""The e2e suite's side of the live-server harness (`tests.support.server.live_server`): its
settings and scripted engines (a voice at the phone line's rate), the real factory's engines,
and a capture of everything the server logs (`LogCapture`, from loguru and standard logging).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from loguru import logger

from sutradhar.config import Settings, load_settings
from sutradhar.engines.registry import EngineSet, build_engines
from sutradhar.testing.scripted import ScriptedTTS
from tests.support import server as support
from tests.support.server import LiveServer, free_port  # noqa: F401  (re-exported for the e2e tests)


def e2e_settings(**overrides: Any) -> Settings:
    """Settings for a test server: scripted engines unless told otherwise, fast resilience.

    Callers here burst audio faster than real time and wait for the greeting before speaking, so
    the inbound rate limit is off and the first-media timeout is as long as the inactivity one.
    No turn budget and no start-up apology audio unless a test asks (as tests.support.server)."""
    base: dict[str, Any] = dict(stt=["scripted"], llm=["scripted"], tts=["scripted"], retry_attempts=1,
                                retry_backoff_s=0.0, log_level="INFO", inactivity_timeout_s=30.0,
                                first_media_timeout_s=30.0, inbound_max_speed=0.0,
                                turn_budget_s=0.0, apology_audio=False)
    base.update(overrides)
    return load_settings(**base)


def scripted_engines(stt: Any = None, llm: Any = None, tts: Any = None) -> EngineSet:
    """Scripted engines, with a default voice at the phone line's rate (no resampling)."""
    return support.scripted_engines(stt, llm, tts if tts is not None else
                                    ScriptedTTS(sample_rate=8000, ms_per_char=20, chunk_ms=100))


def configured_engines(settings: Settings, **replace: Any) -> EngineSet:
    """The engines the settings name (Sarvam, OpenAI, local), via the real registry;
    `stt=`/`llm=`/`tts=` replace a stage's chain (e.g. a fast scripted voice where speech is not
    the point)."""
    engines = build_engines(settings)
    chains = {stage: replace.get(stage, getattr(engines, stage)) for stage in ("stt", "llm", "tts")}
    chains = {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in chains.items()}
    return EngineSet(**chains)


def fast_voice() -> ScriptedTTS:
    """A quick tone voice at the phone line's rate (no resampling, short replies)."""
    return ScriptedTTS(name="fast-voice", sample_rate=8000, ms_per_char=8, chunk_ms=100)


@contextmanager
def live_server(settings: Settings, engines: support.Engines | None = None,
                **options: Any) -> Iterator[LiveServer]:
    """The live server with the e2e scripted engines by default and the call store on."""
    with support.live_server(settings, engines if engines is not None else scripted_engines(),
                             **options) as server:
        yield server


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
