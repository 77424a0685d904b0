"""Walking an agent's flow without a language model: the offline plan a flow state puts on its
tool schemas (`agents/flow.py`, key `OFFLINE_PLAN_KEY`), read by the scripted responder.

A plan is plain JSON: the state's rules (a tool to call when an intent's words are heard, or were
asked for, and every slot it needs is known), the words of each intent and of each slot value in
the call's language, the slots known already, and the lines to say: a rule's `ask` while slots are
missing, its `reply` after the tool ran (by the result's `status`), the state's `enter` line after
a transition brought the call here and its `say` line when no rule fires.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sutradhar.engines.base import OFFLINE_PLAN_KEY, Message, ToolCall, ToolSchema
from sutradhar.text.keywords import keyword_matches


def flow_plan(tools: Sequence[ToolSchema] | None) -> dict[str, Any] | None:
    return next((t[OFFLINE_PLAN_KEY] for t in tools or () if isinstance(t.get(OFFLINE_PLAN_KEY), dict)),
                None)


def _slot_values(plan: Mapping[str, Any], text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for slot, values in plan.get("slots", {}).items():
        for value, words in values.items():
            if any(keyword_matches(w, text) for w in words):
                found[slot] = value
                break
    return found


def _last_said(messages: Sequence[Message]) -> str:
    return next((m.content.strip() for m in reversed(messages) if m.role == "assistant" and m.content), "")


def plan_turn(plan: Mapping[str, Any], messages: Sequence[Message]) -> ToolCall | str | None:
    """The caller's turn in a flow state: a tool call, a line to say, or None (nothing to add)."""
    heard = next((m.content for m in reversed(messages) if m.role == "user"), "").lower()
    said = _last_said(messages)
    # What the caller said earlier in this context, then what the flow carries (a transition's
    # slots are newer than the words they came from), then this turn's words: the newest wins.
    known: dict[str, str] = {}
    for message in messages[:-1]:
        if message.role == "user":
            known.update(_slot_values(plan, message.content.lower()))
    known.update(plan.get("known", {}))
    named_now = _slot_values(plan, heard)
    known.update(named_now)
    for rule in plan.get("rules", []):
        intent = rule.get("intent")
        # The intent's words, a slot of the rule named now ("monday at ten" answers "which day?"),
        # or an answer to this rule's own question.
        hit = (bool(intent) and any(keyword_matches(w, heard) for w in plan.get("intents", {}).get(intent, ()))
               or any(slot in named_now for slot in rule["slots"])
               or bool(rule.get("ask")) and said == _fill(plan, rule["ask"], known))
        if not hit:
            continue
        if any(slot not in known for slot in rule["slots"]):
            if rule.get("ask"):
                return _fill(plan, rule["ask"], known)
            continue  # nothing to ask with: another rule (or the state's `say`) answers
        arguments = {name: known[name] for name in rule["arguments"] if name in known}
        return ToolCall(f"call_{uuid.uuid4().hex[:12]}", rule["tool"], json.dumps(arguments, ensure_ascii=False))
    return plan.get("say")


def answer_tool(plan: Mapping[str, Any] | None, messages: Sequence[Message]) -> str | None:
    """The line after a tool result in a flow: its rule's reply, else the state's `enter` line
    when a transition brought the call here; None when the plan has nothing to say of it."""
    if plan is None or not messages or messages[-1].role != "tool":
        return None
    result_message = messages[-1]
    calls = {c.id: c for m in messages for c in m.tool_calls}
    call = calls.get(result_message.tool_call_id or "")
    try:
        result = json.loads(result_message.content)
    except ValueError:
        result = None
    if call is None or not isinstance(result, dict) or "error" in result:
        return None
    try:
        arguments = json.loads(call.arguments or "{}")
    except ValueError:
        arguments = {}
    values = {**plan.get("known", {}), **arguments, **{k: v for k, v in result.items() if v is not None}}
    rule = next((r for r in plan.get("rules", []) if r["tool"] == call.name), None)
    if rule is not None and rule.get("reply"):
        line = rule["reply"].get(str(result.get("status", ""))) or rule["reply"].get("")
        if line:
            return _fill(plan, line, values)
    if plan.get("enter") and rule is None:
        return _fill(plan, plan["enter"], values)
    return None


def _fill(plan: Mapping[str, Any], line: str, values: Mapping[str, Any]) -> str:
    """`line` with its {slot} fields, each value as the caller's language says it."""
    display = plan.get("display", {})
    said = {k: display.get(k, {}).get(str(v), v) for k, v in values.items()}
    return str(line).format_map(_Blank(said)).strip()


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""
