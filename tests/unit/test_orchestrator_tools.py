"""Tools and speculation: a reply started before the end of turn is certain must not run a tool
whose effect cannot be undone (interruptible=False) until the turn is committed."""

from __future__ import annotations

import asyncio
from typing import Any

from sutradhar.agents.tools import Tool, ToolBox, tool
from sutradhar.engines.base import ToolCall
from sutradhar.pipeline.events import TurnCompleted, Utterance
from sutradhar.pipeline.orchestrator import AgentOrchestrator
from sutradhar.testing.scripted import ScriptedLLM, ScriptedTTS


class WatchedToolBox(ToolBox):
    """Sets `looked_up` when the orchestrator looks a tool up before running a round."""

    def __init__(self, tools: list[Tool]) -> None:
        super().__init__(tools)
        self.looked_up = asyncio.Event()

    def get(self, name: str) -> Tool | None:
        self.looked_up.set()
        return super().get(name)


def booking_setup() -> tuple[AgentOrchestrator, WatchedToolBox, asyncio.Event]:
    booked = asyncio.Event()

    @tool(interruptible=False)
    async def book(slot: str) -> str:
        """Book a slot."""
        booked.set()
        return "booked"

    box = WatchedToolBox([book])
    llm = ScriptedLLM(replies=(ToolCall("c1", "book", '{"slot": "10"}'), "Booked for ten."))
    orch = AgentOrchestrator(llm=llm, tts=ScriptedTTS(ms_per_char=1), tools=box)
    return orch, box, booked


async def collect(events: Any) -> list[Any]:
    return [e async for e in events]


async def test_a_speculative_turn_runs_a_non_interruptible_tool_only_once_committed() -> None:
    orch, box, booked = booking_setup()
    turn = asyncio.create_task(collect(orch.respond(Utterance(b"", text="book ten"), speculative=True)))
    await box.looked_up.wait()  # the round is at the commit gate now (no await in between)
    await asyncio.sleep(0)  # one loop turn: without the gate the tool task would have started
    assert not booked.is_set()
    orch.commit()
    events = await asyncio.wait_for(turn, 5)
    assert booked.is_set()
    record = next(e.record for e in events if isinstance(e, TurnCompleted))
    assert record.reply == "Booked for ten." and record.tool_calls[0]["name"] == "book"


async def test_an_undone_speculation_never_runs_it() -> None:
    orch, box, booked = booking_setup()
    checkpoint = orch.checkpoint()
    turn = asyncio.create_task(collect(orch.respond(Utterance(b"", text="book ten"), speculative=True)))
    await box.looked_up.wait()
    turn.cancel()  # the caller went on speaking
    await asyncio.gather(turn, return_exceptions=True)
    orch.restore(checkpoint)
    assert not booked.is_set() and orch.context.history == []
