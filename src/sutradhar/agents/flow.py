"""A flow compiled once per process: each state's tool box (its tools and one tool per transition)
and the offline plan the scripted responder walks it with. A call's place in it is
`pipeline.flow.FlowRun`.

A transition tool is a plain tool the LLM calls (`go_to_confirm(day, time)`): its handler asks the
call to move (`ToolContext.next_state`) and carries its arguments as the flow's slots. The offline
plan rides on the first tool schema of the state under `OFFLINE_PLAN_KEY`; the LLM clients send
only `type` and `function` on the wire (`engines.base.wire_tools`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import ConfigDict, StringConstraints, create_model

from sutradhar.agents.flow_spec import (
    FlowSpec,
    Lines,
    State,
    Transition,
    line_for,
    reply_lines,
)
from sutradhar.agents.tools import Tool, ToolBox, ToolContext
from sutradhar.engines.base import OFFLINE_PLAN_KEY, ToolSchema


def transition_tool(transition: Transition) -> Tool:
    slots = list(transition.slots)
    parameters = {"type": "object",
                  "properties": {name: {"type": "string"} for name in slots},
                  "required": slots, "additionalProperties": False}

    # Validated like any tool's arguments: a slot left out or empty is `bad_arguments`, no move.
    model = create_model(f"{transition.tool_name}_arguments", __config__=ConfigDict(extra="forbid"),
                         **{name: (Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)], ...)
                            for name in slots})

    async def handler(arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        carried = dict(model.model_validate(arguments))
        context.next_state = transition.to
        context.slots.update(carried)
        return {"ok": True, "state": transition.to, **carried}

    description = transition.description or f"Move the conversation on to the {transition.to} step."
    return Tool(transition.tool_name, description, parameters, handler, timeout_s=1.0)


class Flow:
    """The flow of one agent file, over the agent's tools."""

    def __init__(self, spec: FlowSpec, tools: ToolBox) -> None:
        self.spec = spec
        self.boxes: dict[str, ToolBox] = {}
        self.transition_tools = frozenset(t.tool_name for state in spec.states.values()
                                          for t in state.transitions if t.after_tool is None)
        for name, state in spec.states.items():
            box = ToolBox(default_timeout_s=tools.default_timeout_s)
            for tool_name in state.tools if state.tools is not None else tools.names:
                item = tools.get(tool_name)
                if item is not None:
                    box.add(item)
            for transition in state.transitions:
                if transition.after_tool is None:
                    box.add(transition_tool(transition))
            self.boxes[name] = box

    @property
    def initial(self) -> str:
        return self.spec.initial

    def state(self, name: str) -> State:
        return self.spec.states[name]

    def prompt(self, name: str, language: str) -> str | None:
        return line_for(self.spec.states[name].prompt, language)

    def after_tool(self, name: str, tool_name: str) -> Transition | None:
        """The transition of state `name` that fires when `tool_name` succeeds."""
        return next((t for t in self.spec.states[name].transitions if t.after_tool == tool_name), None)

    def schemas(self, name: str, language: str, known: Mapping[str, str]) -> tuple[ToolSchema, ...]:
        schemas = list(self.boxes[name].schemas())
        plan = self.offline_plan(name, language, known)
        if schemas and (plan["rules"] or plan["say"] or plan["enter"]):
            schemas[0] = {**schemas[0], OFFLINE_PLAN_KEY: plan}
        return tuple(schemas)

    def offline_plan(self, name: str, language: str, known: Mapping[str, str]) -> dict[str, Any]:
        """What the scripted responder needs to walk state `name` in `language`: plain JSON."""
        spec, state = self.spec, self.spec.states[name]
        rules: list[dict[str, Any]] = []
        for t in state.transitions:
            if t.when is not None and t.after_tool is None:
                rules.append(_rule(t.tool_name, t.when.intent, [*t.when.slots, *t.slots], t.slots,
                                   t.ask, {}, language))
        for r in state.rules:
            rules.append(_rule(r.tool, r.when.intent, r.when.slots,
                               r.arguments if r.arguments is not None else r.when.slots,
                               r.ask, reply_lines(r.reply), language))
        intents = {rule["intent"] for rule in rules if rule["intent"]}
        slots = {s for rule in rules for s in rule["slots"]}
        return {
            "state": name, "known": dict(known), "rules": rules,
            "intents": {i: [w.lower() for w in spec.intents[i].get(language, [])] for i in intents},
            "slots": {s: {value: [w.lower() for w in words.get(language, [])]
                          for value, words in spec.slots.get(s, {}).items()} for s in slots},
            # How a value is said in this language (its first word): lines read "సోమవారం", not "monday".
            "display": {s: {value: words[language][0] for value, words in values.items() if words.get(language)}
                        for s, values in spec.slots.items()},
            "enter": line_for(state.enter, language), "say": line_for(state.say, language),
        }


def _rule(tool: str, intent: str | None, slots: list[str], arguments: list[str], ask: Lines | None,
          replies: Mapping[str, Lines | None], language: str) -> dict[str, Any]:
    return {"tool": tool, "intent": intent, "slots": list(dict.fromkeys(slots)),
            "arguments": list(arguments), "ask": line_for(ask, language),
            "reply": {status: line_for(lines, language) for status, lines in replies.items()
                      if line_for(lines, language)}}
