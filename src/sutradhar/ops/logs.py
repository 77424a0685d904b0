"""Logging: loguru, one event per line, call id / stage / language on every line, secrets redacted.

    setup_logging(settings)                  # at start; LOG_LEVEL, LOG_JSON, REDACT_PHONE_NUMBERS
    with call_context(call_id, language):    # every line logged inside (and in tasks it spawns)
        ...                                  # carries the call id and language
    logger.bind(stage="stt").warning(...)

Standard-library logging (uvicorn, httpx, sqlalchemy, alembic) is routed into loguru so every
line, whoever wrote it, goes through the same format and the same redaction.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from loguru import logger

DEFAULT_EXTRA = {"call_id": "-", "stage": "-", "language": "-"}
REDACTED = "[REDACTED]"
TEXT_FORMAT = ("{time:YYYY-MM-DD HH:mm:ss.SSS} {level: <7} call={extra[call_id]} "
               "stage={extra[stage]} lang={extra[language]} {name}: {message}")
_SECRET_FIELD = re.compile(r"(key|token|secret|password|sid)$", re.IGNORECASE)
_NOT_SECRET = {"twilio_account_sid"}  # an account id, shown in consoles; redacting it helps no one

# Each pattern keeps group 1 (the label) and replaces the rest.
_SECRET_PATTERNS = [
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*"),
    re.compile(r"(?i)(\bbasic\s+)[A-Za-z0-9+/]{6,}=*"),
    re.compile(r"(?i)(api-subscription-key[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&}]+"),
    re.compile(r"(?i)(\b(?:x-)?api[-_]?key[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&}]+"),
    re.compile(r"(?i)(\b(?:auth[-_]?token|access[-_]?token|refresh[-_]?token|token|secret|"
               r"client[-_]?secret|password|passwd|authorization)[\"']?\s*[:=]\s*[\"']?)"
               r"(?!bearer\b|basic\b)[^\s\"',;&}]+"),
    re.compile(r"(://[^/\s:@]*:)[^@\s/]+(?=@)"),  # https://user:password@host, redis://:password@host
    re.compile(r"()\bsk[-_](?:proj-)?[A-Za-z0-9_\-]{16,}"),  # OpenAI/Sarvam-style keys
]
# E.164 (+ and 8-15 digits, spaces or dashes allowed between groups) and Indian 10-digit mobiles,
# optionally with a 0 or 91 trunk prefix. Not inside longer runs of letters or digits (ids, sids).
_PHONE_PATTERNS = [
    re.compile(r"(?<![\w+])\+\d(?:[\s\-]?\d){7,14}(?!\w)"),
    re.compile(r"(?<![\w+])(?:(?:0|91)[\s\-]?)?[6-9]\d{4}[\s\-]?\d{5}(?!\w)"),
]
PHONE = "[PHONE]"


class Redactor:
    """Removes secrets (and phone numbers, when asked) from a line of log text."""

    def __init__(self, secrets: list[str] | tuple[str, ...] = (), *, phone_numbers: bool = True) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        self.phone_numbers = phone_numbers

    @classmethod
    def from_settings(cls, settings: Any) -> Redactor:
        return cls(settings_secrets(settings),
                   phone_numbers=bool(getattr(settings, "redact_phone_numbers", True)))

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        for pattern in _SECRET_PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        if self.phone_numbers:
            for pattern in _PHONE_PATTERNS:
                text = pattern.sub(PHONE, text)
        return text


def settings_secrets(settings: Any) -> list[str]:
    """Values of every settings field whose name ends in key, token, secret, password or sid."""
    values = []
    fields = getattr(type(settings), "model_fields", {}) or {}
    for name in fields:
        if _SECRET_FIELD.search(name) and name not in _NOT_SECRET:
            value = getattr(settings, name, "")
            if isinstance(value, str) and value:
                values.append(value)
    for name in ("database_url", "redis_url"):  # passwords inside connection URLs
        value = getattr(settings, name, "") or ""
        if match := re.search(r"://[^/\s:@]*:([^@\s/]+)@", value):
            values.append(match.group(1))
    return values


class _Sink:
    """Writes one redacted line per event, as text or as a JSON object."""

    def __init__(self, stream: TextIO, redact: Callable[[str], str], json_lines: bool) -> None:
        self.stream = stream
        self.redact = redact
        self.json_lines = json_lines

    def write(self, message: Any) -> None:
        if self.json_lines:
            event = _json_event(message.record)
            for key in ("message", "exception"):
                if key in event:
                    event[key] = self.redact(event[key])
            if "extra" in event:
                event["extra"] = json.loads(self.redact(json.dumps(event["extra"], default=str)))
            line = json.dumps(event, ensure_ascii=False, default=str)
        else:
            line = self.redact(str(message).rstrip("\n")).replace("\r", "").replace("\n", "\\n")
        self.stream.write(line + "\n")
        self.stream.flush()


def _json_event(record: dict[str, Any]) -> dict[str, Any]:
    extra = dict(record["extra"])
    event = {
        "time": record["time"].isoformat(),
        "level": record["level"].name,
        "message": record["message"],
        "call_id": extra.pop("call_id", "-"),
        "stage": extra.pop("stage", "-"),
        "language": extra.pop("language", "-"),
        "logger": record["name"],
    }
    if extra:
        event["extra"] = extra
    if record["exception"] is not None:
        import traceback

        exc = record["exception"]
        event["exception"] = "".join(traceback.format_exception(exc.type, exc.value, exc.traceback))
    return event


class InterceptHandler(logging.Handler):
    """Sends standard-library log records to loguru (the recipe from loguru's documentation)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        name = record.name
        logger.patch(lambda r: r.update(name=name)).opt(exception=record.exc_info).log(
            level, record.getMessage())


# loguru's level names -> the standard library's numbers (TRACE and anything unknown: everything).
_STDLIB_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "SUCCESS": logging.INFO,
                  "WARNING": logging.WARNING, "ERROR": logging.ERROR, "CRITICAL": logging.CRITICAL}
_STDLIB_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "fastapi", "httpx", "httpcore",
                   "sqlalchemy", "alembic", "asyncio", "websockets")


def setup_logging(settings: Any = None, *, json_lines: bool | None = None, level: str | None = None,
                  stream: TextIO | None = None) -> Redactor:
    """Configure loguru for the process; return the redactor (also usable on other text)."""
    level = (level or getattr(settings, "log_level", None) or "INFO").upper()
    if json_lines is None:
        json_lines = bool(getattr(settings, "log_json", False))
    redact = Redactor.from_settings(settings) if settings is not None else Redactor()
    logger.remove()
    logger.configure(extra=dict(DEFAULT_EXTRA))
    sink = _Sink(stream or sys.stderr, redact, json_lines)
    logger.add(sink.write, level=level, format=TEXT_FORMAT,
               backtrace=False, diagnose=False, enqueue=False, catch=True)
    # Records below the sink's level are not created at all: httpcore traces every request at
    # DEBUG (about ten records each), and a root at level 0 made each one a LogRecord and a trip
    # through loguru only to be dropped there.
    logging.basicConfig(handlers=[InterceptHandler()], level=_STDLIB_LEVELS.get(level, 0), force=True)
    for name in _STDLIB_LOGGERS:
        std = logging.getLogger(name)
        std.handlers = []
        std.propagate = True
    # uvicorn.access logs every HTTP request at INFO; quiet below DEBUG, as are SQL statements.
    logging.getLogger("uvicorn.access").setLevel(logging.INFO if level in ("DEBUG", "TRACE")
                                                 else logging.WARNING)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    return redact


@contextmanager
def call_context(call_id: str, language: str | None = None, **extra: Any) -> Iterator[None]:
    """Bind the call id (and language) to every line logged in this block and its tasks."""
    values = {"call_id": call_id, **extra}
    if language:
        values["language"] = language
    with logger.contextualize(**values):
        yield
