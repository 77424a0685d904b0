"""Speculative tool calls (agents/prefetch.py): a tool the caller's words settle starts with the
turn, alongside LLM round 1; round 1's matching call takes that run, anything else discards it.

The LLM here holds round 1 until the test lets it go (or until the prefetched run has started),
so "the tool ran alongside round 1" is shown by events, not by timings."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from sutradhar.agents.prefetch import spoken_number_rule
from sutradhar.agents.tools import Tool, ToolBox, tool
from sutradhar.agents.webhooks import WebhookToolConfig
from sutradhar.engines.base import Message, Provider, ToolCall, ToolSchema
from sutradhar.pipeline.events import TurnCompleted, Utterance
from sutradhar.pipeline.orchestrator import AgentOrchestrator
from sutradhar.testing.scripted import ScriptedTTS

ORDER_RULE = spoken_number_rule("order_id", ("order", "ऑर्डर", "ఆర్డర్", "ઓર્ડર"))
WAIT_S = 5  # a bound on waiting for an event, never a synchronisation by sleeping


class OrderBackend:
    """An order_status tool that counts its runs; a lookup of an order in `hold` waits (until
    cancelled: nothing releases it)."""

    def __init__(self, idempotent: bool = True, prefetch: bool = True, hold: set[str] | None = None) -> None:
        self.runs: list[str] = []
        self.started = asyncio.Event()
        self.hold = hold or set()
        self.cancelled: list[str] = []

        async def order_status(order_id: str) -> dict[str, Any]:
            """Look up an order by its number."""
            self.runs.append(order_id)
            self.started.set()
            try:
                if order_id in self.hold:
                    await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.append(order_id)
                raise
            return {"found": True, "order_id": order_id, "status": "shipped"}

        self.tool: Tool = tool(order_status, idempotent=idempotent,
                               prefetch=ORDER_RULE if prefetch else None)


class RoundOneLLM(Provider):
    """Round 1 (a caller's turn) waits for `go`, then calls `call`; after a tool result it
    answers from it. Records what it was shown."""

    name = "round-one"
    languages = None
    supports_tools = True

    def __init__(self, call: ToolCall | str, go: asyncio.Event | None = None) -> None:
        self.call, self.go = call, go
        self.calls: list[list[Message]] = []
        self.round_one_done = False

    async def stream(self, messages: Sequence[Message], language: str,
                     tools: Sequence[ToolSchema] | None = None) -> AsyncIterator[Any]:
        self.calls.append(list(messages))
        if messages[-1].role == "tool":
            status = json.loads(messages[-1].content).get("status", "unknown")
            yield f"Your order is {status}."
            return
        if self.go is not None:
            await asyncio.wait_for(self.go.wait(), WAIT_S)
        self.round_one_done = True
        yield self.call


def orchestrator(llm: RoundOneLLM, *tools: Tool, **kwargs: Any) -> AgentOrchestrator:
    return AgentOrchestrator(llm=llm, tts=ScriptedTTS(ms_per_char=1), tools=ToolBox(tools), **kwargs)


async def turn(orch: AgentOrchestrator, text: str, **kwargs: Any) -> Any:
    events = [e async for e in orch.respond(Utterance(b"", text=text), **kwargs)]
    return next(e.record for e in events if isinstance(e, TurnCompleted))


async def test_a_prefetched_tool_runs_once_when_round_one_agrees() -> None:
    backend = OrderBackend()
    # Round 1 speaks only once the tool is already running: without the prefetch this would wait
    # for a run that only starts after round 1, and time out.
    llm = RoundOneLLM(ToolCall("call_7", "order_status", '{"order_id": "4567"}'), backend.started)
    record = await asyncio.wait_for(turn(orchestrator(llm, backend.tool), "where is my order 4567?"), WAIT_S)
    assert backend.runs == ["4567"]
    [entry] = record.tool_calls
    assert entry["id"] == "call_7" and entry["prefetched"] is True and entry["error"] is None
    assert entry["arguments"] == {"order_id": "4567"} and entry["result_chars"] > 0
    tool_message = llm.calls[1][-1]  # round 2 is shown the result under round 1's call id
    assert tool_message.tool_call_id == "call_7" and '"shipped"' in tool_message.content
    assert record.reply == "Your order is shipped."


async def test_other_arguments_run_normally_and_the_prefetched_run_is_discarded() -> None:
    backend = OrderBackend(hold={"4567"})  # the prefetched lookup is still running when round 1 decides
    llm = RoundOneLLM(ToolCall("call_1", "order_status", '{"order_id": "1234"}'), backend.started)
    orch = orchestrator(llm, backend.tool)
    record = await asyncio.wait_for(turn(orch, "where is my order 4567?"), WAIT_S)
    assert backend.runs == ["4567", "1234"] and backend.cancelled == ["4567"]
    [entry] = record.tool_calls
    assert entry["arguments"] == {"order_id": "1234"} and entry["prefetched"] is False
    shown = [m.content for m in llm.calls[1] if m.role == "tool"]
    assert len(shown) == 1 and '"1234"' in shown[0] and "4567" not in shown[0]
    history_tools = [m for m in orch.context.history if getattr(m, "role", None) == "tool"]
    assert all("4567" not in m.content for m in history_tools)


async def test_another_tool_runs_normally_and_the_prefetch_never_reaches_the_record() -> None:
    backend = OrderBackend(hold={"4567"})

    @tool
    async def opening_hours() -> str:
        """Today's opening hours."""
        return "9 to 6"

    llm = RoundOneLLM(ToolCall("call_2", "opening_hours", "{}"), backend.started)
    orch = orchestrator(llm, backend.tool, opening_hours)
    record = await asyncio.wait_for(turn(orch, "order 4567, and when are you open?"), WAIT_S)
    assert [e["name"] for e in record.tool_calls] == ["opening_hours"]
    assert record.tool_calls[0]["prefetched"] is False
    assert backend.cancelled == ["4567"]
    assert all("shipped" not in m.content for m in llm.calls[1])


async def test_a_reply_without_tools_cancels_the_prefetch() -> None:
    backend = OrderBackend(hold={"4567"})
    llm = RoundOneLLM("Which order do you mean?", backend.started)
    record = await asyncio.wait_for(turn(orchestrator(llm, backend.tool), "order 4567"), WAIT_S)
    assert record.tool_calls == [] and record.reply == "Which order do you mean?"
    assert backend.cancelled == ["4567"]


async def test_barge_in_during_round_one_cancels_the_prefetched_run() -> None:
    backend = OrderBackend(hold={"4567"})
    never = asyncio.Event()  # round 1 is still deciding when the caller barges in
    llm = RoundOneLLM(ToolCall("call_3", "order_status", '{"order_id": "4567"}'), never)
    task = asyncio.create_task(turn(orchestrator(llm, backend.tool), "where is my order 4567?"))
    await asyncio.wait_for(backend.started.wait(), WAIT_S)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert backend.cancelled == ["4567"] and backend.runs == ["4567"]


async def test_an_undone_speculative_turn_cancels_its_prefetch_and_leaves_no_trace() -> None:
    backend = OrderBackend(hold={"4567"})
    llm = RoundOneLLM(ToolCall("call_4", "order_status", '{"order_id": "4567"}'), asyncio.Event())
    orch = orchestrator(llm, backend.tool)
    checkpoint = orch.checkpoint()
    task = asyncio.create_task(turn(orch, "where is my order 4567?", speculative=True))
    await asyncio.wait_for(backend.started.wait(), WAIT_S)
    task.cancel()  # the caller went on speaking
    await asyncio.gather(task, return_exceptions=True)
    orch.restore(checkpoint)
    assert backend.cancelled == ["4567"] and orch.context.history == [] and orch.facts == {}


async def test_a_tool_without_a_prefetch_rule_starts_only_after_round_one() -> None:
    backend = OrderBackend(idempotent=False, prefetch=False)
    seen: list[bool] = []
    llm = RoundOneLLM(ToolCall("call_5", "order_status", '{"order_id": "4567"}'))
    backend.tool = Tool(backend.tool.name, backend.tool.description, backend.tool.parameters,
                        _watching(backend.tool, llm, seen))
    record = await asyncio.wait_for(turn(orchestrator(llm, backend.tool), "where is my order 4567?"), WAIT_S)
    assert seen == [True] and record.tool_calls[0]["prefetched"] is False


async def test_tool_prefetch_off_waits_for_round_one() -> None:
    backend = OrderBackend()
    seen: list[bool] = []
    llm = RoundOneLLM(ToolCall("call_6", "order_status", '{"order_id": "4567"}'))
    backend.tool = Tool(backend.tool.name, backend.tool.description, backend.tool.parameters,
                        _watching(backend.tool, llm, seen), idempotent=True, prefetch=ORDER_RULE)
    orch = orchestrator(llm, backend.tool, tool_prefetch=False)
    record = await asyncio.wait_for(turn(orch, "where is my order 4567?"), WAIT_S)
    assert seen == [True] and record.tool_calls[0]["prefetched"] is False


def _watching(item: Tool, llm: RoundOneLLM, seen: list[bool]) -> Any:
    async def handler(arguments: dict[str, Any], context: Any) -> Any:
        seen.append(llm.round_one_done)  # True: round 1 had decided before the tool started
        return await item.handler(arguments, context)

    return handler


def test_a_non_idempotent_tool_cannot_declare_a_prefetch() -> None:
    async def book(slot: str) -> str:
        """Book a slot."""
        return "booked"

    with pytest.raises(ValueError, match="idempotent"):
        tool(book, prefetch=ORDER_RULE)
    with pytest.raises(ValueError, match="interruptible"):
        tool(book, idempotent=True, interruptible=False, prefetch=ORDER_RULE)
    plain = tool(book)
    assert plain.prefetch_arguments("order 4567", "en-IN") is None


def test_a_webhook_tool_declares_its_prefetch_in_config() -> None:
    base = {"name": "shop_order", "description": "Look up an order.", "url": "https://shop.example/o",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}}}
    rule = {"slot": "order_id", "keywords": {"en-IN": ["order"], "hi-IN": ["ऑर्डर"]}}
    from sutradhar.agents.webhooks import webhook_tool

    item = webhook_tool(WebhookToolConfig.model_validate({**base, "idempotent": True, "prefetch": rule}), {})
    assert item.prefetch_arguments("मेरा ऑर्डर चार पाँच छह सात", "hi-IN") == {"order_id": "4567"}
    with pytest.raises(ValueError, match="idempotent"):
        WebhookToolConfig.model_validate({**base, "prefetch": rule})
    with pytest.raises(ValueError, match="not one of the parameters"):
        WebhookToolConfig.model_validate({**base, "idempotent": True,
                                          "prefetch": {**rule, "slot": "phone"}})


@pytest.mark.parametrize(("text", "expected"), [
    ("where is my order 4567?", {"order_id": "4567"}),
    ("order four five six seven", {"order_id": "4567"}),
    ("मेरा ऑर्डर चार पाँच छह सात कहाँ है?", {"order_id": "4567"}),
    ("నా ఆర్డర్ నాలుగు ఐదు ఆరు ఏడు ఎక్కడ ఉంది?", {"order_id": "4567"}),
    ("મારો ઓર્ડર ચાર પાંચ છ સાત ક્યાં છે?", {"order_id": "4567"}),
    ("where is my order?", None),  # no number: the LLM asks for it
    ("call me at 4567", None),  # a number without the keyword
    ("my orderly 4567", None),  # Latin keywords match whole words only
])
def test_the_spoken_number_rule(text: str, expected: dict[str, str] | None) -> None:
    assert ORDER_RULE(text, "en-IN") == expected


def test_an_agent_file_names_the_key_of_an_unsafe_prefetch(tmp_path) -> None:
    from sutradhar.agents.spec import load_agent
    from sutradhar.errors import ConfigError

    path = tmp_path / "agent.yaml"
    path.write_text("""
name: shop
languages: [en-IN]
default_language: en-IN
tools:
  - name: pay_order
    description: Pay for an order.
    url: https://shop.example/pay
    prefetch: {slot: order_id, keywords: [order]}
""", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"tools\.0\.prefetch: .*idempotent"):
        load_agent(path)


async def test_a_rule_that_raises_costs_the_head_start_not_the_turn() -> None:
    backend = OrderBackend()

    def broken(text: str, language: str) -> dict[str, Any] | None:
        raise RuntimeError("rule bug")

    item = backend.tool
    backend.tool = Tool(item.name, item.description, item.parameters, item.handler,
                        idempotent=True, prefetch=broken)
    llm = RoundOneLLM(ToolCall("call_8", "order_status", '{"order_id": "4567"}'))
    record = await asyncio.wait_for(turn(orchestrator(llm, backend.tool), "where is my order 4567?"), WAIT_S)
    assert backend.runs == ["4567"] and record.tool_calls[0]["prefetched"] is False
    assert record.reply == "Your order is shipped."
