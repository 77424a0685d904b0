"""What `sutradhar test` prints (per scenario, per turn: what was said, heard, replied and called,
each check with expected vs seen) and its JUnit XML for CI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from sutradhar.agents.scenario_checks import Check, ScenarioVerdict

MARKS = {"pass": "ok  ", "fail": "FAIL", "unsupported": "n/a "}


def _check_line(check: Check) -> str:
    line = f"      {MARKS[check.outcome]} {check.what:<14} expected {check.expected}"
    if check.outcome != "pass" or check.what in ("tool", "status"):
        line += f"\n      {'':<4} {'':<14} seen     {check.seen}"
    return line


def _tools(calls: list[dict]) -> str:
    return ", ".join(f"{c.get('name')}({json.dumps(c.get('arguments') or {}, ensure_ascii=False)})"
                     for c in calls) or "none"


def render_scenario(verdict: ScenarioVerdict) -> str:
    scenario = verdict.scenario
    head = "PASS" if verdict.passed else "FAIL"
    unsupported = sum(c.outcome == "unsupported" for c in verdict.checks)
    if unsupported:
        head += f" ({unsupported} unsupported)"
    lines = [f"{head}  {scenario.name}  ({scenario.path.name}, {scenario.language}, {verdict.input_mode}"
             + (f", call {verdict.call_id}" if verdict.call_id else "") + f", {verdict.seconds} s)"]
    if verdict.error:
        lines.append(f"  error: {verdict.error}")
    for turn in verdict.turns:
        lines += [f"  turn {turn.index + 1}  caller said:   {turn.said}",
                  f"          server heard:  {turn.heard!r}",
                  f"          agent replied: {turn.reply!r}",
                  f"          tool calls:    {_tools(turn.tool_calls)}"]
        lines += [_check_line(c) for c in turn.checks]
    if verdict.ending:
        lines.append("  end of call")
        lines += [_check_line(c) for c in verdict.ending]
    return "\n".join(lines)


def summary(verdicts: list[ScenarioVerdict]) -> str:
    passed = sum(v.passed for v in verdicts)
    unsupported = sum(c.outcome == "unsupported" for v in verdicts for c in v.checks)
    line = f"{passed} passed, {len(verdicts) - passed} failed of {len(verdicts)} scenarios"
    if unsupported:
        line += f"; {unsupported} checks unsupported by this server (not counted as passes)"
    return line


def _failure_text(verdict: ScenarioVerdict) -> str:
    lines = [verdict.error] if verdict.error else []
    for turn in verdict.turns:
        lines += [f"turn {turn.index + 1} {c.what}: expected {c.expected}, seen {c.seen}"
                  for c in turn.checks if c.outcome == "fail"]
    lines += [f"end {c.what}: expected {c.expected}, seen {c.seen}" for c in verdict.ending
              if c.outcome == "fail"]
    return "\n".join(lines)


def write_junit(verdicts: list[ScenarioVerdict], path: Path, suite: str) -> None:
    failures = sum(not v.passed for v in verdicts)
    root = ET.Element("testsuite", name=suite, tests=str(len(verdicts)), failures=str(failures),
                      errors="0", time=str(round(sum(v.seconds for v in verdicts), 1)))
    for verdict in verdicts:
        case = ET.SubElement(root, "testcase", classname=suite, name=verdict.scenario.name,
                             file=str(verdict.scenario.path), time=str(verdict.seconds))
        if not verdict.passed:
            text = _failure_text(verdict)
            ET.SubElement(case, "failure", message=text.splitlines()[0] if text else "failed").text = text
        skipped = [c for c in verdict.checks if c.outcome == "unsupported"]
        if skipped:
            ET.SubElement(case, "system-out").text = "\n".join(
                f"unsupported {c.what}: {c.seen}" for c in skipped)
        ET.SubElement(case, "system-err").text = render_scenario(verdict)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
