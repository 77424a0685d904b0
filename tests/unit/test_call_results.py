"""Post-call results from a transcript: a language model's JSON when the chain has one, else (and
when its answer is not that JSON) the slot filler over what the call established."""

from __future__ import annotations

from sutradhar.agents.results import (
    CallTranscript,
    ResultsSpec,
    compute_results,
    facts_from_tool,
)
from sutradhar.engines.fallback import TaskRouter
from sutradhar.engines.local.responder import ScriptedResponder
from sutradhar.testing.scripted import ScriptedLLM

SPEC = ResultsSpec.model_validate({"summary": True,
                                   "extract": {"schema": {"order_id": "str", "resolved": "bool",
                                                          "eta_days": "int"}}})
TURNS = [{"text": "where is order 4567", "reply": "Order 4567 has been shipped.", "tool_calls": []}]


def transcript() -> CallTranscript:
    return CallTranscript("call-x", "en-IN", "hangup", TURNS, {"order_id": "4567", "eta_days": 2})


async def test_without_a_model_the_slot_filler_fills_what_the_call_established() -> None:
    router = TaskRouter([], [ScriptedResponder()], [])  # the responder is no model: not asked
    results = await compute_results(SPEC, transcript(), router)
    assert results["source"] == "slots"
    assert results["extracted"] == {"order_id": "4567", "resolved": None, "eta_days": 2}
    assert "ended: hangup" in results["summary"] and "order_id: 4567" in results["summary"]


async def test_a_models_json_answer_fills_the_fields_the_call_left_open() -> None:
    llm = ScriptedLLM(replies=('Here you go: {"summary": "The caller asked about order 4567.", '
                               '"extracted": {"order_id": "9999", "resolved": "true", "eta_days": "soon"}}',))
    results = await compute_results(SPEC, transcript(), TaskRouter([], [llm], []))
    assert results["source"] == "llm" and results["summary"] == "The caller asked about order 4567."
    # What the call's tools established wins over the model's reading; the model fills `resolved`.
    assert results["extracted"] == {"order_id": "4567", "resolved": True, "eta_days": 2}
    assert "4567" in llm.calls[0][1].content  # the model read the transcript


async def test_a_model_that_does_not_answer_json_leaves_the_slot_filler_standing() -> None:
    llm = ScriptedLLM(replies=("I am not sure what you mean.",))
    results = await compute_results(SPEC, transcript(), TaskRouter([], [llm], []))
    assert results["source"] == "slots" and results["extracted"]["order_id"] == "4567"


def test_a_tools_facts_leave_redacted_secrets_out() -> None:
    facts = facts_from_tool({"order_id": "4567", "pin": "***"}, '{"status": "shipped", "items": ["a"]}')
    assert facts == {"order_id": "4567", "status": "shipped"}
