"""Tools: schemas from type hints, argument validation and redaction, the run's outcomes, built-ins,
the demo order backend and the TOOLS catalog."""

from __future__ import annotations

import asyncio
import json
from typing import Literal

import pytest

from sutradhar.agents.builtin import BUILTIN_TOOLS
from sutradhar.agents.catalog import build_toolbox
from sutradhar.agents.demo_orders import DemoOrders, order_status_tool
from sutradhar.agents.runs import run_tool_call
from sutradhar.agents.tools import ToolBox, ToolContext, tool
from sutradhar.config import load_settings
from sutradhar.engines.base import ToolCall
from sutradhar.errors import ConfigError
from sutradhar.pipeline.context import ContextManager


@tool(secrets=["account"])
async def pay_bill(account: str, amount: float, pin: str, method: Literal["upi", "card"] = "upi",
                   context: ToolContext | None = None) -> dict:
    """Pay a bill.

    Longer notes that the LLM does not need."""
    return {"paid": amount, "method": method}


def test_schema_comes_from_type_hints_and_docstring() -> None:
    schema = pay_bill.schema()["function"]
    assert schema["name"] == "pay_bill" and schema["description"] == "Pay a bill."
    params = schema["parameters"]
    assert params["required"] == ["account", "amount", "pin"]
    assert params["properties"]["amount"] == {"type": "number"}
    assert params["properties"]["method"]["enum"] == ["upi", "card"]
    assert "context" not in params["properties"] and params["additionalProperties"] is False


async def test_arguments_are_validated_and_secrets_redacted_in_the_record() -> None:
    box = ToolBox([pay_bill])
    call = ToolCall("c1", "pay_bill", json.dumps({"account": "A-9", "amount": "120.5", "pin": "4321"}))
    outcome = await run_tool_call(box, call, ToolContext("call-1", "en-IN"))
    assert json.loads(outcome.content) == {"paid": 120.5, "method": "upi"}
    assert outcome.record["arguments"] == {"account": "***", "amount": "120.5", "pin": "***"}
    assert outcome.error is None and outcome.record["result_chars"] == len(outcome.content)


@pytest.mark.parametrize(("arguments", "error"), [
    ('{"account": "A", "amount": "lots", "pin": "1"}', "bad_arguments"),
    ('{"account": "A", "amount": 1, "pin": "1", "extra": 1}', "bad_arguments"),
    ("not json", "bad_arguments"),
    ("[1, 2]", "bad_arguments"),
])
async def test_bad_arguments_are_told_to_the_llm_not_raised(arguments: str, error: str) -> None:
    outcome = await run_tool_call(ToolBox([pay_bill]), ToolCall("c", "pay_bill", arguments),
                                  ToolContext("c", "en-IN"))
    assert outcome.error == error and json.loads(outcome.content)["error"] == error


async def test_an_unknown_tool_is_an_error_result() -> None:
    outcome = await run_tool_call(ToolBox(), ToolCall("c", "launch_rocket", "{}"), ToolContext("c", "en-IN"))
    assert outcome.error == "unknown_tool"


def test_two_tools_of_one_name_are_refused() -> None:
    with pytest.raises(ValueError, match="pay_bill"):
        ToolBox([pay_bill, pay_bill])


def test_a_sync_function_is_not_a_tool() -> None:
    with pytest.raises(TypeError):
        tool(lambda: None)  # type: ignore[arg-type]


async def test_builtin_tools_request_the_sessions_actions() -> None:
    context = ToolContext("c", "en-IN", ("en-IN", "hi-IN", "te-IN"))
    box = ToolBox(BUILTIN_TOOLS.values())
    await run_tool_call(box, ToolCall("1", "transfer_to_human", "{}"), context)
    await run_tool_call(box, ToolCall("2", "end_call", ""), context)
    switched = await run_tool_call(box, ToolCall("3", "switch_language", '{"language": "Telugu"}'), context)
    unknown = await run_tool_call(box, ToolCall("4", "switch_language", '{"language": "Klingon"}'), context)
    assert context.actions == ["transfer", "end_call"] and context.switch_to == "te-IN"
    assert json.loads(switched.content)["ok"] is True and json.loads(unknown.content)["ok"] is False


async def test_demo_orders_are_created_under_data_dir_and_looked_up(tmp_path) -> None:
    orders = DemoOrders(tmp_path / "demo" / "orders.db")
    box = ToolBox([order_status_tool(orders)])
    context = ToolContext("c", "hi-IN")
    found = await run_tool_call(box, ToolCall("1", "order_status", '{"order_id": "४५६७"}'), context)
    missing = await run_tool_call(box, ToolCall("2", "order_status", '{"order_id": "99"}'), context)
    assert json.loads(found.content) == {"found": True, "order_id": "4567", "status": "shipped",
                                         "eta_days": 2, "items": "headphones"}
    assert json.loads(missing.content) == {"found": False, "order_id": "99"}
    assert (tmp_path / "demo" / "orders.db").is_file()


def test_the_catalog_builds_the_tools_named_in_settings_and_refuses_unknown_ones(tmp_path) -> None:
    box = build_toolbox(load_settings(data_dir=tmp_path, tools="end_call,order_status", tool_timeout_s=2))
    assert box.names == ("end_call", "order_status") and box.default_timeout_s == 2
    assert len(build_toolbox(load_settings(data_dir=tmp_path, tools=""))) == 0
    with pytest.raises(ConfigError, match="fly_drone"):
        build_toolbox(load_settings(data_dir=tmp_path, tools="end_call,fly_drone"))


async def test_a_tool_cancelled_mid_run_is_cancelled() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    @tool
    async def wait_forever() -> None:
        """Waits."""
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    run = asyncio.create_task(run_tool_call(ToolBox([wait_forever]), ToolCall("c", "wait_forever"),
                                            ToolContext("c", "en-IN")))
    await started.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert cancelled.is_set()


def test_context_window_never_starts_with_a_tool_result_whose_call_was_dropped() -> None:
    context = ContextManager(max_history=3)
    context.add_turn("user", "order 1?")
    context.add_tool_exchange((ToolCall("c1", "order_status", "{}"),), [("c1", '{"status": "shipped"}')])
    context.add_turn("assistant", "It is shipped.")
    context.add_turn("user", "thanks")
    roles = [m.role for m in context.get_context()]
    assert roles == ["assistant", "user"]  # the orphaned tool message went with its call


def test_record_heard_keeps_the_tool_call_of_an_interrupted_reply() -> None:
    context = ContextManager()
    context.add_turn("user", "order 1?", turn_id=1)
    context.add_tool_exchange((ToolCall("c1", "order_status", "{}"),), [("c1", "{}")], turn_id=1)
    context.add_turn("assistant", "Order one is shipped and arrives", turn_id=1)
    context.record_heard(1, "")
    assert [t.role for t in context.history] == ["user", "assistant", "tool"]
    assert context.last_assistant() is None


def test_what_was_heard_of_a_reply_cut_before_its_text_is_added_after_the_tool_exchange() -> None:
    context = ContextManager()
    context.add_turn("user", "order 1?", turn_id=1)
    context.add_tool_exchange((ToolCall("c1", "order_status", "{}"),), [("c1", "{}")], turn_id=1)
    context.record_heard(1, "One moment, let me check.")  # only the filler was heard
    assert [(t.role, t.content, bool(t.tool_calls)) for t in context.history] == [
        ("user", "order 1?", False), ("assistant", "", True), ("tool", "{}", False),
        ("assistant", "One moment, let me check.", False)]
