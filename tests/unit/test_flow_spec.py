"""The flow and results of an agent file: the examples validate, and every mistake in a flow
(unknown or missing states, unreachable ones, tools, intents and slots it does not have) is
reported at once, each with its key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from sutradhar.agents.spec import load_agent
from sutradhar.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "appointment" / "agent.yaml"


def test_the_example_appointment_agent_is_valid() -> None:
    agent = load_agent(EXAMPLE)
    assert agent.languages == ["te-IN", "gu-IN", "en-IN"] and agent.default == "te-IN"
    assert agent.flow is not None and agent.flow.initial == "collect"
    assert agent.flow.reachable() == {"collect", "confirm"}
    assert agent.results is not None and agent.results.extract.schema_["booked"] == "bool"
    assert all(agent.greetings()[code] for code in agent.languages)


def broken(tmp_path: Path, flow: str, results: str = "") -> str:
    path = tmp_path / "agent.yaml"
    path.write_text("name: broken\nlanguages: [te-IN, en-IN]\ntools: [end_call, book_appointment]\n"
                    + flow + results, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_agent(path)
    return str(caught.value)


def test_every_flow_problem_is_reported_at_once_with_its_key_path(tmp_path: Path) -> None:
    message = broken(tmp_path, """
flow:
  initial: start
  intents: {"yes": {te-IN: [అవును], hi-IN: [हाँ]}}
  slots: {day: {monday: {en-IN: [monday]}}}
  states:
    collect:
      tools: [end_call, order_status]
      say: {gu-IN: "કયો દિવસ?"}
      transitions:
        - to: confirm
          slots: [day, time]
          when: {intent: book, slots: [day]}
        - to: nowhere
        - to: confirm
        - to: confirm
          after_tool: book_appointment
    confirm:
      rules:
        - tool: order_status
          when: {intent: "yes"}
    island:
      prompt: never reached
""")
    for expected in (
        "flow.initial: unknown state 'start'",
        "flow.states.collect.tools.1: 'order_status' is not one of the agent's tools",
        "flow.states.collect.say.gu-IN: not one of languages",
        "flow.states.collect.transitions.0.when.intent: unknown intent 'book'",
        "flow.states.collect.transitions.0: slot 'time' has no words in flow.slots",
        "flow.states.collect.transitions.1.to: transition to a missing state 'nowhere'",
        "flow.states.collect.transitions.2.name: 'go_to_confirm' is already the tool of "
        "flow.states.collect.transitions.0",
        "flow.states.collect.transitions.3.after_tool: 'book_appointment' is not a tool of this state",
        "flow.states.confirm.rules.0.tool: 'order_status' is not a tool of this state",
        "flow.intents.yes.hi-IN: not one of languages",
    ):
        assert expected in message, message
    assert "flow.slots.day" not in message  # en-IN is one of the agent's languages
    # Unreachable states are only judged from a known initial state.
    message = broken(tmp_path, """
flow:
  initial: collect
  states:
    collect: {transitions: [{to: confirm}]}
    confirm: {}
    island: {prompt: never reached}
""")
    assert "flow.states.island: unreachable from 'collect'" in message
    assert "confirm" not in message.replace("flow.states.island", "")


def test_a_typo_in_a_flow_key_and_a_results_schema_name_their_paths(tmp_path: Path) -> None:
    message = broken(tmp_path, """
flow:
  initial: collect
  states:
    collect: {contxt: keep, context: forget}
""", """
results:
  extract: {schema: {order_id: str, items: list}}
  webhook: {url: ftp://crm, secret_env: "1BAD"}
""")
    for expected in ("flow.states.collect.contxt", "flow.states.collect.context",
                     "results.extract.schema.items", "results.webhook.url", "results.webhook.secret_env"):
        assert expected in message, message
