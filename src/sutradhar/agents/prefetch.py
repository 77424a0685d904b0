"""Speculative tool calls: a tool the caller's words already determine starts with the turn.

LLM round 1 only decides which tool to call; when the transcript settles that ("where is order
4567?" -> order_status(order_id="4567")), the lookup can run while round 1 is still deciding,
so the caller waits for max(round 1, tool) instead of their sum. Only a tool that declares a
prefetch rule and is idempotent (read-only, safe to run twice or for nothing) is started this
way. Round 1 has the last word: the same tool with the same arguments takes the prefetched run
(in flight or finished) instead of a new one; anything else runs as usual and an unused
prefetch is cancelled and discarded, so its result never reaches the context or the record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from loguru import logger

from sutradhar.agents.runs import ToolOutcome, run_tool_call
from sutradhar.agents.tools import PrefetchRule, ToolBox, ToolContext
from sutradhar.engines.base import ToolCall
from sutradhar.text.keywords import keyword_matches
from sutradhar.text.spoken_numbers import spoken_number


def spoken_number_rule(slot: str, keywords: Iterable[str] | Mapping[str, Iterable[str]]) -> PrefetchRule:
    """A prefetch rule: when the caller says one of `keywords` (in any of the languages, for a
    mapping of language -> keywords) and reads out a number, call the tool with {slot: number}.
    Latin keywords match whole words, Indian-script ones as substrings (suffixes attach)."""
    words = tuple(str(k).lower() for k in (
        [w for group in keywords.values() for w in group] if isinstance(keywords, Mapping) else keywords))

    def rule(text: str, language: str) -> dict[str, Any] | None:
        lowered = text.lower()
        if not any(keyword_matches(word, lowered) for word in words):
            return None
        number = spoken_number(text)
        return {slot: number} if number else None

    return rule


@dataclass
class _Started:
    call: ToolCall
    arguments: dict[str, Any]
    task: asyncio.Task[ToolOutcome]


class ToolPrefetch:
    """The prefetched tool runs of one turn: `start` them, `take` the one round 1 asks for,
    `cancel` the rest (after round 1, and whenever the turn ends or is cancelled)."""

    def __init__(self, started: list[_Started], log: Any) -> None:
        self._started = started
        self.log = log

    @classmethod
    def start(cls, box: ToolBox, offered: Iterable[str], text: str, context: ToolContext,
              clock: Callable[[], float] = time.monotonic) -> ToolPrefetch:
        """Start every offered tool whose rule `text` fills. The runs get their own ToolContext:
        a discarded run must leave nothing behind (prefetch tools are read-only anyway)."""
        log = logger.bind(call_id=context.call_id or "-", stage="tool")
        started: list[_Started] = []
        for name in offered:
            item = box.get(name)
            if item is None or item.prefetch is None:
                continue
            try:
                arguments = item.prefetch_arguments(text, context.language)
            except Exception as exc:  # noqa: BLE001 - a bad rule costs the head start, not the turn
                log.opt(exception=exc).warning("prefetch rule failed name={}", name)
                continue
            if arguments is None:
                continue
            call = ToolCall(f"prefetch-{name}", name, json.dumps(arguments, ensure_ascii=False))
            own = ToolContext(context.call_id, context.language, context.languages)
            task = asyncio.create_task(run_tool_call(box, call, own, clock),
                                       name=f"prefetch-{context.call_id}-{name}")
            started.append(_Started(call, arguments, task))
            log.info("prefetch started name={} arguments={}", name, item.redact(arguments))
        return cls(started, log)

    def take(self, call: ToolCall) -> asyncio.Task[ToolOutcome] | None:
        """The prefetched run of exactly this call (name and arguments), or None. Taken once."""
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            return None
        for run in self._started:
            if run.call.name == call.name and run.arguments == arguments:
                self._started.remove(run)
                self.log.info("prefetch used name={} done={}", call.name, run.task.done())
                return run.task
        return None

    def cancel(self) -> None:
        """Discard every run not taken: cancelled if still running, its result dropped."""
        for run in self._started:
            if not run.task.done():
                run.task.cancel()
            else:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    run.task.result()  # retrieved, so a failed run logs no "never retrieved"
            self.log.info("prefetch discarded name={}", run.call.name)
        self._started.clear()


async def adopt(task: asyncio.Task[ToolOutcome], call: ToolCall) -> ToolOutcome:
    """The prefetched outcome, as the answer to round 1's `call` (its id, `prefetched: true`)."""
    outcome = await task
    return replace(outcome, call=call, record={**outcome.record, "id": call.id, "prefetched": True})
