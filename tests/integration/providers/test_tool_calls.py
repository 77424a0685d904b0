"""Tool calls in the streamed turn, against the strict OpenAI and Sarvam fakes: the clients assemble
streamed `tool_calls` deltas, and `respond` runs the tools and asks the LLM again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from sutradhar.agents.tools import Tool, ToolBox, ToolContext, tool
from sutradhar.engines.base import Message, ToolCall
from sutradhar.engines.openai.compat import OpenAIChat
from sutradhar.engines.sarvam.llm import SarvamLLM
from sutradhar.pipeline.events import (
    ActionRequested,
    ReplyText,
    TurnCompleted,
    TurnRecord,
    Utterance,
)
from sutradhar.pipeline.orchestrator import AgentOrchestrator
from sutradhar.testing.scripted import ScriptedTTS
from tests.fakes import FakeOpenAI, FakeSarvam, ToolCalls
from tests.fakes._server import FakeServer


@pytest.fixture(params=["openai", "sarvam"])
async def fake_llm(request: pytest.FixtureRequest, fake_openai: FakeOpenAI,
                   fake_sarvam: FakeSarvam) -> AsyncIterator[tuple[FakeServer, OpenAIChat]]:
    if request.param == "openai":
        llm: OpenAIChat = OpenAIChat(base_url=fake_openai.base_url, api_key=fake_openai.api_key,
                                     timeout_s=5.0)
        fake: FakeServer = fake_openai
    else:
        llm = SarvamLLM(base_url=fake_sarvam.base_url, api_key=fake_sarvam.api_key, timeout_s=5.0)
        fake = fake_sarvam
    yield fake, llm
    await llm.aclose()


@tool
async def order_status(order_id: str) -> dict[str, Any]:
    """Look up an order by its number."""
    return {"order_id": order_id, "status": "shipped", "eta_days": 2}


@tool
async def store_hours(city: str, day: str = "today") -> dict[str, Any]:
    """Opening hours of the store in a city."""
    return {"city": city, "day": day, "hours": "9 to 6"}


def orchestrator(llm: OpenAIChat, *tools: Tool, filler_s: float = 5.0) -> AgentOrchestrator:
    return AgentOrchestrator(llm=llm, tts=ScriptedTTS(ms_per_char=1, chunk_ms=50),
                             tools=ToolBox(tools, default_timeout_s=5.0), tool_filler_s=filler_s)


async def turn(orch: AgentOrchestrator, text: str,
               on_event: Callable[[Any], None] | None = None) -> tuple[TurnRecord, list[Any]]:
    events = []
    async for event in orch.respond(Utterance(b"", text=text)):
        events.append(event)
        if on_event is not None:
            on_event(event)
    record = next(e.record for e in events if isinstance(e, TurnCompleted))
    return record, events


async def drain(events: AsyncIterator[Any]) -> None:
    async for _ in events:
        pass


def answer_from_tool_result(messages: list[dict[str, Any]]) -> str:
    """The fake's second reply: built from the tool message it was sent, so the test proves the
    result reached the LLM."""
    result = json.loads(messages[-1]["content"])
    return f"Order {result['order_id']} is {result['status']}."


@pytest.mark.parametrize("write_size", [None, 1])
async def test_client_assembles_several_calls_with_arguments_split_over_chunks(
        fake_llm: tuple[FakeServer, OpenAIChat], write_size: int | None) -> None:
    fake, llm = fake_llm
    fake.sse_write_size = write_size  # 1: every SSE line cut across reads as well
    reply = ToolCalls((("order_status", {"order_id": "4567"}),
                       ("store_hours", {"city": "हैदराबाद", "day": "Sunday"})), piece_chars=2)
    fake.reply(reply)
    tools = [order_status.schema(), store_hours.schema()]
    deltas = [d async for d in llm.stream([Message("user", "order 4567, and hours?")], "en-IN", tools)]
    assert deltas == [
        ToolCall(reply.call_id(0), "order_status", '{"order_id": "4567"}'),
        ToolCall(reply.call_id(1), "store_hours", '{"city": "हैदराबाद", "day": "Sunday"}'),
    ]
    assert deltas[0].id != deltas[1].id and all(d.id.startswith("call_") for d in deltas)
    sent = fake.calls("chat")[0]["json"]
    assert [t["function"]["name"] for t in sent["tools"]] == ["order_status", "store_hours"]
    assert sent["tools"][1]["function"]["parameters"]["required"] == ["city"]


async def test_a_turn_without_tools_sends_no_tools_field(fake_llm: tuple[FakeServer, OpenAIChat]) -> None:
    fake, llm = fake_llm
    fake.reply("Hello there.")
    record, _ = await turn(orchestrator(llm), "hello")
    assert record.reply == "Hello there." and record.tool_calls == []
    assert "tools" not in fake.calls("chat")[0]["json"]


async def test_turn_runs_the_tools_and_speaks_the_answer_from_their_results(
        fake_llm: tuple[FakeServer, OpenAIChat]) -> None:
    fake, llm = fake_llm
    fake.reply(ToolCalls((("order_status", {"order_id": "4567"}),), text="Let me check."),
               answer_from_tool_result)
    orch = orchestrator(llm, order_status)
    record, events = await turn(orch, "where is order 4567?")
    assert record.reply == "Let me check. Order 4567 is shipped."
    assert [e.text for e in events if isinstance(e, ReplyText)] == ["Let me check.", "Order 4567 is shipped."]
    assert [(c["name"], c["arguments"], c["error"]) for c in record.tool_calls] == [
        ("order_status", {"order_id": "4567"}, None)]
    assert record.tool_calls[0]["result_chars"] > 0 and not record.filler
    second = fake.calls("chat")[1]["json"]["messages"]
    assert second[-2]["role"] == "assistant" and second[-2]["tool_calls"][0]["function"]["name"] == "order_status"
    assert second[-1] == {"role": "tool", "content": json.dumps(
        {"order_id": "4567", "status": "shipped", "eta_days": 2}), "tool_call_id": second[-2]["tool_calls"][0]["id"]}
    # The next turn's context still holds the exchange, in an order the API accepts.
    fake.reply("You're welcome.")
    await turn(orch, "thanks")
    third = fake.calls("chat")[2]["json"]["messages"]
    assert [m["role"] for m in third[1:]] == ["user", "assistant", "tool", "assistant", "user"]


async def test_several_tools_in_one_reply_run_and_each_result_is_sent(
        fake_llm: tuple[FakeServer, OpenAIChat]) -> None:
    fake, llm = fake_llm
    fake.reply(ToolCalls((("order_status", {"order_id": "1"}), ("store_hours", {"city": "Pune"}))),
               "Both done.")
    record, _ = await turn(orchestrator(llm, order_status, store_hours), "order 1 and Pune hours")
    assert [c["name"] for c in record.tool_calls] == ["order_status", "store_hours"]
    tool_messages = [m for m in fake.calls("chat")[1]["json"]["messages"] if m["role"] == "tool"]
    assert [json.loads(m["content"]).get("city") for m in tool_messages] == [None, "Pune"]


async def test_a_tool_that_times_out_becomes_a_polite_answer_and_is_recorded(
        fake_llm: tuple[FakeServer, OpenAIChat]) -> None:
    fake, llm = fake_llm
    never = asyncio.Event()

    @tool(timeout_s=0.05)
    async def slow_lookup(order_id: str) -> str:
        """Never answers."""
        await never.wait()
        return "late"

    def apologise(messages: list[dict[str, Any]]) -> str:
        assert json.loads(messages[-1]["content"])["error"] == "timeout"
        return "Sorry, I could not check that right now."

    fake.reply(ToolCalls((("slow_lookup", {"order_id": "9"}),)), apologise)
    record, _ = await turn(orchestrator(llm, slow_lookup), "order 9?")
    assert record.reply == "Sorry, I could not check that right now."
    assert record.tool_calls[0]["error"] == "timeout" and record.tool_calls[0]["result_chars"] == 0
    assert {"stage": "tool", "provider": "slow_lookup", "kind": "timeout",
            "message": "timeout"} in record.errors


async def test_a_tool_that_raises_is_recorded_and_the_caller_still_hears_a_line(
        fake_llm: tuple[FakeServer, OpenAIChat]) -> None:
    fake, llm = fake_llm

    @tool
    async def broken(order_id: str) -> str:
        """Always fails."""
        raise RuntimeError("database is down")

    fake.reply(ToolCalls((("broken", {"order_id": "9"}),)), "Sorry, that lookup failed.")
    record, events = await turn(orchestrator(llm, broken), "order 9?")
    assert record.tool_calls[0]["error"] == "RuntimeError: database is down"
    assert "database is down" not in fake.calls("chat")[1]["json"]["messages"][-1]["content"]
    assert any(isinstance(e, ReplyText) for e in events)


async def test_barge_in_during_a_tool_cancels_it(fake_llm: tuple[FakeServer, OpenAIChat]) -> None:
    fake, llm = fake_llm
    started, cancelled = asyncio.Event(), asyncio.Event()

    @tool
    async def lookup(order_id: str) -> str:
        """Waits until cancelled."""
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "unreachable"

    fake.reply(ToolCalls((("lookup", {"order_id": "1"}),)))
    orch = orchestrator(llm, lookup)
    consume = asyncio.create_task(drain(orch.respond(Utterance(b"", text="order 1"))))
    await started.wait()
    consume.cancel()  # barge-in: the session cancels the turn's task
    with pytest.raises(asyncio.CancelledError):
        await consume
    await asyncio.wait_for(cancelled.wait(), 5)
    assert len(fake.calls("chat")) == 1  # the LLM was not asked again


async def test_a_tool_that_must_not_be_interrupted_finishes_after_barge_in(
        fake_llm: tuple[FakeServer, OpenAIChat]) -> None:
    fake, llm = fake_llm
    started, release, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()

    @tool(interruptible=False)
    async def book_slot(slot: str) -> str:
        """A booking that must complete."""
        started.set()
        await release.wait()
        finished.set()
        return "booked"

    fake.reply(ToolCalls((("book_slot", {"slot": "10am"}),)))
    consume = asyncio.create_task(drain(orchestrator(llm, book_slot).respond(
        Utterance(b"", text="book 10am"))))
    await started.wait()
    consume.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consume
    assert not finished.is_set()
    release.set()
    await asyncio.wait_for(finished.wait(), 5)


async def test_a_slow_tool_gets_the_filler_line_once(fake_llm: tuple[FakeServer, OpenAIChat]) -> None:
    fake, llm = fake_llm
    gate = asyncio.Event()

    @tool
    async def lookup(order_id: str) -> str:
        """Answers once the caller has heard the filler."""
        await gate.wait()
        return "shipped"

    fake.reply(ToolCalls((("lookup", {"order_id": "1"}),)), ToolCalls((("lookup", {"order_id": "2"}),)),
               "Both are shipped.")
    orch = orchestrator(llm, lookup, filler_s=0.0)  # every tool counts as slow

    def on_event(event: Any) -> None:
        if isinstance(event, ReplyText):
            gate.set()  # the filler was about to be spoken: let the tool answer

    orch.set_language("hi-IN")
    record, events = await turn(orch, "ऑर्डर 1 और 2", on_event)
    lines = [e.text for e in events if isinstance(e, ReplyText)]
    assert lines == ["एक मिनट, मैं देखता हूँ।", "Both are shipped."]  # two tool rounds, one filler
    assert record.filler and len(record.tool_calls) == 2


async def test_the_end_call_tool_asks_the_session_to_hang_up_after_the_reply(
        fake_llm: tuple[FakeServer, OpenAIChat]) -> None:
    from sutradhar.agents.builtin import end_call

    fake, llm = fake_llm
    fake.reply(ToolCalls((("end_call", {}),)), "Goodbye!")
    record, events = await turn(orchestrator(llm, end_call), "I am done for today")
    assert isinstance(events[-2], ActionRequested) and events[-2].action == "end_call"
    assert record.reply == "Goodbye!"


def test_tool_context_requests_each_action_once() -> None:
    context = ToolContext("c1", "en-IN")
    context.request("transfer")
    context.request("transfer")
    assert context.actions == ["transfer"]


async def test_a_flow_moves_on_a_transition_tool_and_its_offline_plan_stays_off_the_wire(
        fake_llm: tuple[FakeServer, OpenAIChat]) -> None:
    from sutradhar.agents.flow import Flow
    from sutradhar.agents.flow_spec import FlowSpec
    from sutradhar.pipeline.flow import FlowRun

    fake, llm = fake_llm
    spec = FlowSpec.model_validate({
        "initial": "ask", "intents": {"order": {"en-IN": ["order"]}},
        "slots": {"order_id": {"4567": {"en-IN": ["4567"]}}},
        "states": {"ask": {"tools": [], "transitions": [
                       {"to": "lookup", "slots": ["order_id"], "when": {"intent": "order"}}]},
                   "lookup": {"tools": ["order_status"], "prompt": "Look the order up."}}})
    run = FlowRun(Flow(spec, ToolBox([order_status])))
    orch = AgentOrchestrator(llm=llm, tts=ScriptedTTS(ms_per_char=1, chunk_ms=50), flow=run)
    fake.reply(ToolCalls((("go_to_lookup", {"order_id": "4567"}),)))
    fake.reply("Let me look at order 4567.")
    record, _ = await turn(orch, "where is my order 4567")
    assert record.state == "lookup" and record.reply == "Let me look at order 4567."
    first, second = (c["json"] for c in fake.calls("chat"))
    assert all(set(t) == {"type", "function"} for c in (first, second) for t in c["tools"])
    assert [t["function"]["name"] for t in second["tools"]] == ["order_status"]
    assert "Look the order up." in second["messages"][0]["content"]
