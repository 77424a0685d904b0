"""Agent test scenarios: files validate with every error's key path, the examples' scenarios load,
expectations are checked against call records (loose argument types, subset matches, unsupported
checks never passing silently), and the report and JUnit XML say what was expected and seen."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sutradhar.agents.scenario_checks import ScenarioVerdict, check_call
from sutradhar.agents.scenario_report import render_scenario, summary, write_junit
from sutradhar.agents.scenario_run import Delivery
from sutradhar.agents.scenarios import Scenario, discover, load_all, load_scenario
from sutradhar.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "order-status"


def scenario(**fields) -> Scenario:
    base = {"name": "n", "language": "en-IN", "turns": [{"say": "where is order 4567"}]}
    return Scenario.model_validate({**base, **fields})


def record(*turns: dict, **call) -> dict:
    return {"status": "completed", "end_reason": "caller_hangup", "turns": list(turns), **call}


def test_the_example_agent_has_an_order_lookup_scenario_in_each_of_its_four_languages() -> None:
    agent, files = discover(EXAMPLE)
    scenarios = load_all(files)
    assert agent == EXAMPLE / "agent.yaml"
    looks_up = {s.language for s in scenarios
                if any(t.expect.tool and t.expect.tool.name == "order_status" for t in s.turns)}
    assert looks_up == {"en-IN", "hi-IN", "te-IN", "gu-IN"}


def test_a_single_scenario_file_finds_the_agent_beside_its_tests_folder() -> None:
    agent, files = discover(EXAMPLE / "tests" / "hi-shipped.yaml")
    assert agent == EXAMPLE / "agent.yaml" and files == [EXAMPLE / "tests" / "hi-shipped.yaml"]


def test_every_problem_of_a_scenario_file_is_reported_with_its_key_path(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("""
name: broken
language: xx-YY
transport: carrier-pigeon
colour: blue
turns:
  - say: hello
    wav: hello.wav
  - expect: {tool: {arguments: {order_id: 1}}, reply_contain: [x]}
end: {status: hung_up}
""")
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    message = str(err.value)
    for where in ("transport:", "colour:", "turns.0: give exactly one of", "turns.1.expect.tool.name:",
                  "turns.1.expect.reply_contain:", "end.status:"):
        assert f"  {where}" in message, message


def test_an_unknown_language_and_a_missing_wav_name_their_keys(tmp_path) -> None:
    (tmp_path / "a.yaml").write_text("name: a\nlanguage: xx-YY\nturns: [{say: hi}]\n")
    (tmp_path / "b.yaml").write_text("name: b\nlanguage: hi-IN\nturns: [{wav: missing.wav}]\n")
    with pytest.raises(ConfigError) as err:
        load_all([tmp_path / "a.yaml", tmp_path / "b.yaml"])  # both files' problems at once
    assert "  language: unknown 'xx-YY'" in str(err.value)
    assert f"  turns.0.wav: no file {tmp_path / 'missing.wav'}" in str(err.value)


def test_a_folder_without_scenarios_is_an_error(tmp_path) -> None:
    (tmp_path / "agent.yaml").write_text("name: a\nlanguages: [en-IN]\n")
    with pytest.raises(ConfigError, match="no scenarios"):
        discover(tmp_path)


def test_tool_arguments_match_loosely_and_as_a_subset() -> None:
    s = scenario(turns=[{"say": "x", "expect": {"tool": {"name": "order_status", "arguments": {"order_id": 4567}},
                                                "reply_contains": ["SHIPPED"]}}])
    call = {"name": "order_status", "arguments": {"order_id": "4567", "verbose": True}}
    turns, ending = check_call(s, ["x"], record({"text": "x", "reply": "It has shipped.", "tool_calls": [call]}))
    assert [c.outcome for c in turns[0].checks] == ["pass", "pass"] and ending == []


def test_a_wrong_tool_argument_fails_showing_what_was_called() -> None:
    s = scenario(turns=[{"say": "x", "expect": {"tool": {"name": "order_status", "arguments": {"order_id": "4567"}}}}])
    call = {"name": "order_status", "arguments": {"order_id": "4568"}}
    [turn], _ = check_call(s, ["x"], record({"text": "x", "reply": "r", "tool_calls": [call]}))
    [check] = turn.checks
    assert check.outcome == "fail" and check.seen == 'order_status({"order_id": "4568"})'


def test_state_and_results_are_unsupported_when_the_record_has_none_and_checked_when_it_has() -> None:
    s = scenario(turns=[{"say": "x", "expect": {"state": "booked"}}],
                 end={"status": "completed", "results": {"resolved": True}})
    [turn], ending = check_call(s, ["x"], record({"text": "x", "reply": "r"}))
    assert [c.outcome for c in turn.checks] == ["unsupported"]
    assert [(c.what, c.outcome) for c in ending] == [("status", "pass"), ("results", "unsupported")]
    verdict = ScenarioVerdict(s, turns=[turn], ending=ending)
    assert verdict.passed and "2 checks unsupported" in summary([verdict])

    [turn], ending = check_call(s, ["x"], record({"text": "x", "reply": "r", "state": "asking"},
                                                 results={"resolved": False, "order_id": "1"}))
    assert [c.outcome for c in turn.checks] == ["fail"]
    assert [(c.what, c.outcome) for c in ending] == [("status", "pass"), ("results", "fail")]


def test_a_transfer_is_read_from_the_end_reason() -> None:
    s = scenario(end={"status": "transferred"})
    _, ending = check_call(s, ["x"], record({"text": "x", "reply": "r"}, end_reason="caller_hangup"))
    assert ending[0].outcome == "fail" and ending[0].seen == "completed (end_reason caller_hangup)"
    _, ending = check_call(s, ["x"], record({"text": "x", "reply": "r"}, end_reason="transferred"))
    assert ending[0].outcome == "pass"


def test_fewer_recorded_turns_than_caller_turns_fail_the_unanswered_line() -> None:
    s = scenario(turns=[{"say": "a"}, {"say": "b", "expect": {"reply_contains": ["x"]}}])
    turns, ending = check_call(s, ["a", "b"], record({"text": "a", "reply": "r"}))
    assert turns[1].checks[0].outcome == "fail" and turns[1].checks[0].seen == "the server recorded no turn for it"
    assert ending[0].what == "turns" and ending[0].seen == "1 recorded"


def test_delivery_types_turns_for_a_language_the_stt_cannot_hear() -> None:
    hindi = scenario(language="hi-IN")
    english = scenario(transport="browser")
    assert Delivery.choose(english, "offline", frozenset({"en-IN"})) == Delivery("browser", False, "speech over browser")
    typed = Delivery.choose(hindi, "offline", frozenset({"en-IN"}))
    assert typed.typed and typed.carrier == "browser" and "serves en-IN, not hi-IN" in typed.note
    assert not Delivery.choose(hindi, "env", None).typed  # an STT that serves every language
    assert Delivery.choose(english, "scripted", None).typed


def test_report_and_junit_show_expected_and_seen(tmp_path) -> None:
    s = load_scenario(EXAMPLE / "tests" / "hi-shipped.yaml")
    turns, ending = check_call(s, ["मेरा ऑर्डर"], record({"text": "मेरा ऑर्डर", "reply": "नहीं मिला",
                                                            "tool_calls": []}))
    verdict = ScenarioVerdict(s, call_id="web-1", input_mode="typed", turns=turns, ending=ending)
    text = render_scenario(verdict)
    assert text.startswith("FAIL  a Hindi caller asks where a shipped order is")
    assert "FAIL tool           expected order_status({\"order_id\": \"4567\"})" in text
    assert "seen     no tool call" in text and "seen     'नहीं मिला'" in text
    path = tmp_path / "junit.xml"
    write_junit([verdict], path, suite="agent order-status")
    suite = ET.parse(path).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("1", "1")
    failure = suite.find("testcase/failure")
    assert failure is not None and "turn 1 tool: expected order_status" in (failure.text or "")


async def test_a_wav_turn_is_played_from_its_file_and_cannot_be_typed(tmp_path) -> None:
    from sutradhar.agents.scenario_run import caller_turn
    from sutradhar.audio.codecs import write_wav_file

    write_wav_file(str(tmp_path / "caller.wav"), b"\x01\x00" * 8000, 8000)
    (tmp_path / "s.yaml").write_text("name: s\nlanguage: te-IN\nturns: [{wav: caller.wav}]\n")
    s = load_scenario(tmp_path / "s.yaml")
    played = await caller_turn(s, s.turns[0], Delivery("twilio", False, "speech over twilio"))
    assert (played.audio, played.sample_rate, played.text) == (b"\x01\x00" * 8000, 8000, None)
    with pytest.raises(ValueError, match="cannot be typed"):
        await caller_turn(s, s.turns[0], Delivery("browser", True, "typed"))


async def test_a_said_line_is_spoken_in_the_scenarios_language_or_typed() -> None:
    from sutradhar.agents.scenario_run import caller_turn

    s = scenario(language="hi-IN", turns=[{"say": "मेरा ऑर्डर कहाँ है"}])
    spoken = await caller_turn(s, s.turns[0], Delivery("twilio", False, "speech over twilio"))
    assert spoken.text is None and len(spoken.audio) / 2 / spoken.sample_rate > 0.5  # real speech
    typed = await caller_turn(s, s.turns[0], Delivery("browser", True, "typed"))
    assert (typed.text, typed.audio) == ("मेरा ऑर्डर कहाँ है", b"")
