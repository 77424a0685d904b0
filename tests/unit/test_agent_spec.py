"""agent.yaml: the example validates, every error is reported at once with its key path, and an
orchestrator built from an agent greets and prompts in the call's language."""

from __future__ import annotations

from pathlib import Path

import pytest

from sutradhar.agents.spec import load_agent
from sutradhar.errors import ConfigError
from sutradhar.pipeline.orchestrator import AgentOrchestrator

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "order-status" / "agent.yaml"


def test_the_example_order_status_agent_is_valid() -> None:
    agent = load_agent(EXAMPLE)
    assert agent.name == "order-status" and agent.default == "hi-IN"
    assert agent.settings_overrides() == {
        "languages": ["hi-IN", "en-IN", "te-IN", "gu-IN"], "default_language": "hi-IN",
        "tools": ["order_status", "transfer_to_human", "end_call", "switch_language"]}
    assert agent.greetings()["hi-IN"].startswith("नमस्ते")


def test_every_error_is_reported_with_its_key_path(tmp_path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("""
name: broken
languages: [hi-IN, xx-YY]
default_language: ta-IN
colour: blue
prompts:
  te-IN: {greeting: hello}
  hi-IN: {greting: typo}
tools:
  - order_status
  - order_status
  - name: shop
    description: d
    url: ftp://shop
""", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_agent(path)
    message = str(caught.value)
    for expected in ("colour", "prompts.hi-IN.greting", "tools.2.url"):
        assert expected in message, message
    path.write_text("name: n\nlanguages: [hi-IN, xx-YY]\ndefault_language: ta-IN\n"
                    "prompts: {te-IN: {greeting: hi}}\ntools: [end_call, end_call]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_agent(path)
    message = str(caught.value)
    for expected in ("languages.1: unknown language 'xx-YY'", "default_language: 'ta-IN'",
                     "prompts.te-IN: not one of languages", "tools.1: 'end_call' is listed twice"):
        assert expected in message, message


def test_an_agents_greeting_and_prompt_follow_the_calls_language() -> None:
    agent = load_agent(EXAMPLE)
    orch = AgentOrchestrator(language="hi-IN", languages=("hi-IN", "en-IN"), system_prompt="base",
                             greetings=agent.greetings(), system_prompts=agent.system_prompts())
    assert orch.greeting() == agent.greetings()["hi-IN"]
    assert orch.context.system_prompt == agent.system_prompts()["hi-IN"]
    orch.set_language("en-IN")
    assert orch.greeting() == agent.greetings()["en-IN"]
    assert orch.context.get_context()[0].content.startswith("You are a shop's order-status")


def test_an_agent_sets_its_own_turn_taking_and_bad_values_name_their_key(tmp_path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("name: quiet-line\nlanguages: [en-IN]\n"
                    "turn_taking: {policy: silence, silence_ms: 800, backchannels: false}\n", encoding="utf-8")
    overrides = load_agent(path).settings_overrides()
    assert {k: overrides[k] for k in ("turn_policy", "end_of_turn_silence_ms", "backchannels")} == {
        "turn_policy": "silence", "end_of_turn_silence_ms": 800, "backchannels": False}
    assert "speculate" not in overrides  # unset keys keep the environment's settings
    path.write_text("name: n\nlanguages: [en-IN]\nturn_taking: {policy: vibes, pause_ms: 5, barge: 1}\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_agent(path)
    message = str(caught.value)
    for expected in ("turn_taking.policy", "turn_taking.pause_ms", "turn_taking.barge"):
        assert expected in message, message


async def test_the_agents_turn_taking_is_what_its_calls_use(tmp_path) -> None:
    from sutradhar.services import open_services
    from tests.support.server import make_settings, scripted_engines

    path = tmp_path / "agent.yaml"
    path.write_text("name: quiet-line\nlanguages: [en-IN]\nturn_taking: {policy: silence, backchannels: false}\n",
                    encoding="utf-8")
    settings = make_settings(agent_path=str(path), data_dir=str(tmp_path))
    services = await open_services(settings, engines=scripted_engines())
    try:
        assert services.settings.turn_policy == "silence" and services.settings.backchannels is False
    finally:
        await services.aclose()
