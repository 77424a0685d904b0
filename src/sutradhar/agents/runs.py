"""Running one tool call the LLM made: validate, run under its timeout, and report.

Whatever happens (an unknown tool, arguments that are not JSON, a timeout, an exception) the LLM
gets a tool message to answer from, and the turn record gets one entry: name, arguments with
secrets redacted, result size, duration and error. A tool marked not interruptible keeps running
when the turn is cancelled (barge-in) and is logged when it finishes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loguru import logger
from pydantic import ValidationError

from sutradhar.agents.tools import Tool, ToolBox, ToolContext
from sutradhar.engines.base import ToolCall

# Tasks of non-interruptible tools whose turn was cancelled: held so they are not collected.
_background: set[asyncio.Task[Any]] = set()


@dataclass(frozen=True)
class ToolOutcome:
    call: ToolCall
    content: str  # the tool message's JSON text
    record: dict[str, Any]  # what TurnRecord.tool_calls keeps

    @property
    def error(self) -> str | None:
        return self.record.get("error")


# What the LLM is given of one result: a tool that returns a whole table must not fill the context.
MAX_RESULT_CHARS = 8000


def _content(result: Any) -> str:
    text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)
    if len(text) > MAX_RESULT_CHARS:
        return text[:MAX_RESULT_CHARS] + " [result cut: too long]"
    return text


def _failure(kind: str, message: str) -> str:
    # Said to the LLM, which turns it into a polite line for the caller.
    return json.dumps({"error": kind, "message": message,
                       "instruction": "Apologise briefly and offer another way to help."})


async def run_tool_call(box: ToolBox, call: ToolCall, context: ToolContext,
                        clock: Callable[[], float] = time.monotonic) -> ToolOutcome:
    """Run `call` from `box`. Cancellation (barge-in) propagates, except into a tool that must not
    be interrupted, which finishes in the background."""
    log = logger.bind(call_id=context.call_id or "-", stage="tool")
    began = clock()
    record: dict[str, Any] = {"id": call.id, "name": call.name, "arguments": {}, "result_chars": 0,
                              "duration_ms": 0.0, "error": None, "prefetched": False}

    def done(content: str, error: str | None = None) -> ToolOutcome:
        record["duration_ms"] = round((clock() - began) * 1000, 1)
        record["result_chars"] = len(content) if error is None else 0
        record["error"] = error
        if error:
            log.warning("tool failed name={} error={} duration_ms={}", call.name, error,
                        record["duration_ms"])
        else:
            log.info("tool done name={} arguments={} result_chars={} duration_ms={}", call.name,
                     record["arguments"], record["result_chars"], record["duration_ms"])
        return ToolOutcome(call, content, record)

    item = box.get(call.name)
    if item is None:
        return done(_failure("unknown_tool", f"there is no tool named {call.name}"), "unknown_tool")
    try:
        arguments = json.loads(call.arguments or "{}")
        if not isinstance(arguments, dict):
            raise ValueError("arguments are not a JSON object")
    except ValueError as exc:
        return done(_failure("bad_arguments", str(exc)[:200]), "bad_arguments")
    record["arguments"] = item.redact(arguments)
    task = asyncio.create_task(item.handler(arguments, context), name=f"tool-{call.name}")
    try:
        async with asyncio.timeout(box.timeout_for(item)):
            result = await (task if item.interruptible else asyncio.shield(task))
    except TimeoutError:
        _keep_or_cancel(item, task, log)
        return done(_failure("timeout", "the lookup took too long"), "timeout")
    except asyncio.CancelledError:
        _keep_or_cancel(item, task, log)
        raise
    except ValidationError as exc:
        return done(_failure("bad_arguments", _validation_summary(exc)), "bad_arguments")
    except Exception as exc:  # noqa: BLE001 - a tool's bug becomes a polite line, not a dead turn
        log.opt(exception=exc).warning("tool raised name={}", call.name)
        return done(_failure("tool_error", "the lookup failed"), f"{type(exc).__name__}: {exc}"[:300])
    return done(_content(result))


def _keep_or_cancel(item: Tool, task: asyncio.Task[Any], log: Any) -> None:
    if item.interruptible:
        task.cancel()
        return
    log.info("tool keeps running in the background name={}", item.name)
    _background.add(task)

    def finished(t: asyncio.Task[Any]) -> None:
        _background.discard(t)
        error = None if t.cancelled() else t.exception()
        log.info("background tool finished name={} error={}", item.name, error)

    task.add_done_callback(finished)


def _validation_summary(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())[:300]
