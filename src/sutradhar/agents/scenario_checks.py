"""A scenario's expectations against a finished call's record (`GET /calls/{id}`): one verdict per
check, each saying what was expected and what was seen.

A check the server's record cannot answer (a flow `state` when no turn records one, post-call
`results` when the record has none) is "unsupported", never a silent pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from sutradhar.agents.scenarios import Ending, Expectation, Scenario

Outcome = Literal["pass", "fail", "unsupported"]


@dataclass(frozen=True)
class Check:
    what: str  # "tool", "reply_contains", "state", "status", "results", "turns"
    outcome: Outcome
    expected: str
    seen: str


@dataclass
class TurnVerdict:
    index: int
    said: str  # the scenario's line (or its WAV file)
    heard: str | None  # what the server transcribed
    reply: str | None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.outcome != "fail" for c in self.checks)


@dataclass
class ScenarioVerdict:
    scenario: Scenario
    call_id: str = ""
    input_mode: str = ""  # "speech over twilio", "typed (no STT for hi-IN)", ...
    turns: list[TurnVerdict] = field(default_factory=list)
    ending: list[Check] = field(default_factory=list)
    error: str | None = None  # the scenario could not run at all
    seconds: float = 0.0

    @property
    def checks(self) -> list[Check]:
        return [c for t in self.turns for c in t.checks] + self.ending

    @property
    def passed(self) -> bool:
        return self.error is None and all(c.outcome != "fail" for c in self.checks)


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _same(expected: Any, seen: Any) -> bool:
    """Expected values match loosely where YAML and JSON disagree on types ("4567" vs 4567);
    a mapping matches when every expected key does (extra keys in what was seen are fine)."""
    if isinstance(expected, dict):
        return isinstance(seen, dict) and all(k in seen and _same(v, seen[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(seen, list) and len(expected) == len(seen) and all(map(_same, expected, seen))
    if isinstance(expected, bool) or isinstance(seen, bool):
        return expected == seen
    return str(expected).strip().lower() == str(seen).strip().lower()


def _tool_check(expect: Expectation, calls: list[dict[str, Any]]) -> Check | None:
    if expect.tool is None:
        return None
    wanted = expect.tool
    expected = f"{wanted.name}({_show(wanted.arguments)})" if wanted.arguments else wanted.name
    seen = ", ".join(f"{c.get('name')}({_show(c.get('arguments') or {})})"
                     + (f" error={c['error']}" if c.get("error") else "") for c in calls) or "no tool call"
    found = any(c.get("name") == wanted.name and _same(wanted.arguments, c.get("arguments") or {})
                for c in calls)
    return Check("tool", "pass" if found else "fail", expected, seen)


def _reply_checks(expect: Expectation, reply: str | None) -> list[Check]:
    said = (reply or "").lower()
    return [Check("reply_contains", "pass" if part.lower() in said else "fail", repr(part),
                  repr(reply or ""))
            for part in expect.reply_contains]


def _state_check(expect: Expectation, turn: dict[str, Any] | None) -> Check | None:
    if expect.state is None:
        return None
    if turn is None or "state" not in turn:
        return Check("state", "unsupported", expect.state, "the call record has no flow state per turn")
    seen = turn.get("state")
    return Check("state", "pass" if seen == expect.state else "fail", expect.state, str(seen))


def check_turn(index: int, said: str, expect: Expectation, turn: dict[str, Any] | None) -> TurnVerdict:
    """One caller turn's expectations against the record of the turn the server made of it."""
    verdict = TurnVerdict(index, said, (turn or {}).get("text"), (turn or {}).get("reply"),
                          list((turn or {}).get("tool_calls") or []))
    if turn is None:  # the turn count check of the call fails too; this names the line
        if expect.tool or expect.reply_contains or expect.state:
            verdict.checks.append(Check("turns", "fail", "a turn for this line",
                                        "the server recorded no turn for it"))
        return verdict
    checks = [_tool_check(expect, verdict.tool_calls), *_reply_checks(expect, verdict.reply),
              _state_check(expect, turn)]
    verdict.checks = [c for c in checks if c is not None]
    return verdict


def _status_of(call: dict[str, Any]) -> str:
    if call.get("end_reason") == "transferred":
        return "transferred"
    return str(call.get("status"))


def check_ending(end: Ending, call: dict[str, Any]) -> list[Check]:
    checks = []
    if end.status is not None:
        seen = _status_of(call)
        reason = f" (end_reason {call.get('end_reason')})" if call.get("end_reason") else ""
        checks.append(Check("status", "pass" if seen == end.status else "fail", end.status, seen + reason))
    if end.results is not None:
        if "results" not in call:
            checks.append(Check("results", "unsupported", _show(end.results),
                                "the call record has no post-call results"))
        else:
            seen = call.get("results")
            checks.append(Check("results", "pass" if _same(end.results, seen) else "fail",
                                _show(end.results), _show(seen)))
    return checks


def check_call(scenario: Scenario, said: list[str],
               call: dict[str, Any]) -> tuple[list[TurnVerdict], list[Check]]:
    """Every expectation of `scenario` against the stored call. Caller turns and recorded turns are
    paired in order; a count that differs (a line split in two by a pause, or not heard) is a
    failure of its own, since every later pairing may be off."""
    recorded = list(call.get("turns") or [])
    turns = [check_turn(n, said[n], t.expect, recorded[n] if n < len(recorded) else None)
             for n, t in enumerate(scenario.turns)]
    ending = []
    if len(recorded) != len(scenario.turns):
        extra = "; extra: " + " | ".join(repr(t.get("text")) for t in recorded[len(scenario.turns):]) \
            if len(recorded) > len(scenario.turns) else ""
        ending.append(Check("turns", "fail", f"{len(scenario.turns)} caller turns",
                            f"{len(recorded)} recorded{extra}"))
    return turns, ending + check_ending(scenario.end, call)
