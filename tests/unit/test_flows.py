"""Agent flows: a call moves between states when the LLM calls a transition tool (or a tool a
transition waits for succeeds); each state offers its own tools and prompt, and applies its
context policy. Offline, the scripted responder walks the example appointment flow in te/gu/en."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sutradhar.agents.catalog import build_toolbox
from sutradhar.agents.flow import Flow
from sutradhar.agents.flow_spec import FlowSpec
from sutradhar.agents.spec import load_agent
from sutradhar.agents.tools import ToolBox, tool
from sutradhar.engines.base import OFFLINE_PLAN_KEY, ToolCall, wire_tools
from sutradhar.engines.local.responder import ScriptedResponder
from sutradhar.pipeline.events import TurnCompleted, Utterance
from sutradhar.pipeline.flow import FlowRun
from sutradhar.pipeline.orchestrator import AgentOrchestrator
from sutradhar.testing.scripted import ScriptedLLM, ScriptedTTS
from tests.support.server import make_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "appointment" / "agent.yaml"


async def turn(orch: AgentOrchestrator, text: str) -> Any:
    events = [e async for e in orch.respond(Utterance(b"", text=text))]
    return next(e.record for e in events if isinstance(e, TurnCompleted))


def two_states(collect_context: str = "keep", confirm_context: str = "keep") -> tuple[Flow, list[str]]:
    booked: list[str] = []

    @tool
    async def book(day: str) -> dict[str, Any]:
        """Book the day."""
        booked.append(day)
        return {"booked": True, "day": day, "reference": "A1"}

    @tool
    async def weather() -> str:
        """Not offered in the confirm state."""
        return "sunny"

    spec = FlowSpec.model_validate({
        "initial": "collect",
        "states": {
            "collect": {"prompt": "Ask for the day.", "tools": ["weather"], "context": collect_context,
                        "transitions": [{"to": "confirm", "slots": ["day"],
                                         "description": "The caller said the day."}]},
            "confirm": {"prompt": {"en-IN": "Confirm {the day}.", "hi-IN": "दिन पक्का करें।"},
                        "tools": ["book"], "context": confirm_context,
                        "transitions": [{"to": "done", "after_tool": "book"}]},
            "done": {"prompt": "Say goodbye.", "tools": []},
        },
    })
    return Flow(spec, ToolBox([book, weather])), booked


async def test_the_llm_calling_a_transition_tool_moves_the_call_and_the_next_round_is_the_new_states() -> None:
    flow, booked = two_states()
    llm = ScriptedLLM(replies=(ToolCall("c1", "go_to_confirm", '{"day": "monday"}'),
                               "Monday then. Shall I book it?",
                               ToolCall("c2", "book", '{"day": "monday"}'), "Booked."))
    orch = AgentOrchestrator(llm=llm, tts=ScriptedTTS(ms_per_char=1), flow=FlowRun(flow, "call-1"))
    first = await turn(orch, "monday please")
    assert llm.tools_seen[:2] == [["weather", "go_to_confirm"], ["book"]]
    assert first.state == "confirm" and first.reply == "Monday then. Shall I book it?"
    system = llm.calls[1][0].content  # the second round was prompted as the confirm state
    assert "Confirm {the day}." in system and "Known so far: day: monday." in system
    assert "Ask for the day." not in system
    second = await turn(orch, "yes")
    assert booked == ["monday"] and second.state == "done"  # book succeeded: its after_tool transition
    assert [m["to"] for m in orch.flow.path] == ["confirm", "done"]
    assert orch.facts["reference"] == "A1" and orch.facts["day"] == "monday"


async def test_a_transition_tool_missing_its_slots_does_not_move() -> None:
    flow, _ = two_states()
    llm = ScriptedLLM(replies=(ToolCall("c1", "go_to_confirm", "{}"), "Which day?"))
    orch = AgentOrchestrator(llm=llm, tts=ScriptedTTS(ms_per_char=1), flow=FlowRun(flow))
    record = await turn(orch, "hello")
    assert record.state == "collect" and record.tool_calls[0]["error"] == "bad_arguments"


@pytest.mark.parametrize("policy", ["keep", "reset", "summary"])
async def test_a_states_context_policy_decides_what_it_sees_of_earlier_states(policy: str) -> None:
    flow, _ = two_states(confirm_context=policy)
    llm = ScriptedLLM(replies=("Which day?", ToolCall("c1", "go_to_confirm", '{"day": "friday"}'), "Friday?"))
    orch = AgentOrchestrator(llm=llm, tts=ScriptedTTS(ms_per_char=1), flow=FlowRun(flow))
    await turn(orch, "I want to come in")
    await turn(orch, "friday")
    after_move = llm.calls[2]  # the confirm state's first round
    user_and_agent = [m for m in after_move if m.role in ("user", "assistant") and not m.tool_calls]
    if policy == "keep":
        assert [m.content for m in user_and_agent] == ["I want to come in", "Which day?", "friday"]
    else:
        assert [m.content for m in user_and_agent] == ["friday"]
    summarised = "Earlier in this call: caller: I want to come in | agent: Which day?" in after_move[0].content
    assert summarised is (policy == "summary")


async def test_an_undone_speculation_puts_the_flow_back() -> None:
    flow, _ = two_states()
    llm = ScriptedLLM(replies=(ToolCall("c1", "go_to_confirm", '{"day": "monday"}'), "Monday?"))
    orch = AgentOrchestrator(llm=llm, tts=ScriptedTTS(ms_per_char=1), flow=FlowRun(flow))
    checkpoint = orch.checkpoint()
    await turn(orch, "monday")
    assert orch.flow.state == "confirm"
    orch.restore(checkpoint)
    assert (orch.flow.state, orch.flow.slots, orch.flow.path) == ("collect", {}, [])


def test_the_offline_plan_never_reaches_the_wire() -> None:
    flow, _ = two_states()
    schemas = FlowRun(flow).schemas("en-IN")
    assert all(set(t) == {"type", "function"} for t in wire_tools(schemas))


# --- offline: the scripted responder walks the example appointment flow ---------------------------

def example_orchestrator(tmp_path: Path, language: str) -> AgentOrchestrator:
    agent = load_agent(EXAMPLE)
    settings = make_settings(data_dir=tmp_path, **agent.settings_overrides())
    flow = Flow(agent.flow, build_toolbox(settings))
    return AgentOrchestrator(llm=ScriptedResponder(), tts=ScriptedTTS(ms_per_char=1), language=language,
                             languages=agent.languages, flow=FlowRun(flow, "call-offline"),
                             system_prompts=agent.system_prompts())


@pytest.mark.parametrize(("language", "ask", "day_time", "confirm", "yes", "booked"), [
    ("te-IN", "నాకు అపాయింట్‌మెంట్ కావాలి", "సోమవారం పది గంటలకు",
     "అయితే సోమవారం పది గంటలకు. బుక్ చేయమంటారా?", "అవును",
     "మీ అపాయింట్‌మెంట్ సోమవారం పది గంటలకు బుక్ అయింది. మీ రిఫరెన్స్ నంబర్ A1003."),
    ("gu-IN", "મારે એપોઇન્ટમેન્ટ જોઈએ છે", "મંગળવારે અગિયાર વાગ્યે",
     "તો મંગળવાર, અગિયાર વાગ્યે. બુક કરું?", "હા",
     "તમારી એપોઇન્ટમેન્ટ મંગળવાર, અગિયાર વાગ્યે બુક થઈ ગઈ છે. તમારો રેફરન્સ નંબર A1003 છે."),
    ("en-IN", "I would like to book an appointment", "friday at 3 pm",
     "So that is friday at 3 pm. Shall I book it?", "yes please",
     "Your appointment is booked for friday at 3 pm. Your reference is A1003."),
])
async def test_offline_the_responder_walks_the_appointment_flow(
        tmp_path: Path, language: str, ask: str, day_time: str, confirm: str, yes: str, booked: str) -> None:
    orch = example_orchestrator(tmp_path, language)
    first = await turn(orch, ask)
    assert first.state == "collect" and first.tool_calls == []
    assert first.reply == load_agent(EXAMPLE).flow.states["collect"].transitions[0].ask[language]
    second = await turn(orch, day_time)
    assert second.state == "confirm" and second.reply == confirm
    [moved] = second.tool_calls
    assert moved["name"] == "confirm_details"
    third = await turn(orch, yes)
    [booking] = third.tool_calls
    assert booking["name"] == "book_appointment" and booking["error"] is None
    assert third.reply == booked and orch.facts["booked"] is True


async def test_offline_a_change_goes_back_to_collect(tmp_path: Path) -> None:
    orch = example_orchestrator(tmp_path, "en-IN")
    await turn(orch, "book me in on monday at 10 am")
    assert orch.flow.state == "confirm"
    back = await turn(orch, "can we change it")
    assert back.state == "collect" and back.reply == "All right. Which day and time instead?"
    again = await turn(orch, "tuesday")  # the time is still known: tuesday at 10 am
    assert again.state == "confirm" and again.reply == "So that is tuesday at 10 am. Shall I book it?"
    assert [c["name"] for c in again.tool_calls] == ["confirm_details"]
    assert orch.flow.slots == {"day": "tuesday", "time": "10:00"}


def test_the_plan_rides_on_the_first_schema_in_the_calls_language(tmp_path: Path) -> None:
    orch = example_orchestrator(tmp_path, "gu-IN")
    plan = orch.flow.schemas("gu-IN")[0][OFFLINE_PLAN_KEY]
    assert plan["state"] == "collect" and plan["rules"][0]["tool"] == "confirm_details"
    assert "સોમવાર" in plan["slots"]["day"]["monday"]


@pytest.mark.parametrize("scenario", sorted((EXAMPLE.parent / "tests").glob("*.yaml")), ids=lambda p: p.stem)
async def test_the_examples_scenarios_hold_offline(tmp_path: Path, scenario: Path) -> None:
    """The scenario files shipped for `sutradhar test` say what this flow does, turn by turn."""
    import yaml

    from sutradhar.agents.results import CallTranscript, compute_results

    script = yaml.safe_load(scenario.read_text(encoding="utf-8"))
    orch = example_orchestrator(tmp_path, script["language"])
    records = []
    for step in script["turns"]:
        record = await turn(orch, step["say"])
        records.append(record.as_dict())
        expect = step.get("expect", {})
        if "tool" in expect:
            called = [(c["name"], c["arguments"]) for c in record.tool_calls]
            wanted = expect["tool"]
            assert any(name == wanted["name"] and all(args.get(k) == v for k, v in
                                                       (wanted.get("arguments") or {}).items())
                       for name, args in called), (step["say"], called)
        for words in expect.get("reply_contains", []):
            assert words in record.reply, (step["say"], record.reply)
        if "state" in expect:
            assert record.state == expect["state"], step["say"]
    agent = load_agent(EXAMPLE)
    results = await compute_results(agent.results, CallTranscript(
        "call-offline", script["language"], "hangup", records, {**orch.facts, **orch.flow.slots},
        orch.flow.state), None)
    for key, value in script["end"]["results"]["extracted"].items():
        assert results["extracted"][key] == value, key
