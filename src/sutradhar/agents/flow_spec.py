"""The `flow:` of an agent file: named states, each with its own prompt, tools and transitions.

    flow:
      initial: collect
      intents:                      # offline keyword rules (the scripted responder), per language
        book: {en-IN: [appointment, book], te-IN: [అపాయింట్‌మెంట్]}
      slots:                        # what a slot's words are worth, per language
        day: {monday: {en-IN: [monday], te-IN: [సోమవారం]}}
      states:
        collect:
          prompt: {en-IN: Ask which day and time suit the caller.}   # or one line for every language
          tools: [end_call]         # of the agent's tools; omitted: all of them
          context: keep             # keep | reset | summary: what the state sees of earlier states
          say: {en-IN: Which day and time would suit you?}   # offline: when no rule fires
          transitions:
            - to: confirm           # the LLM calls `go_to_confirm(day, time)` to move
              description: The caller has said the day and the time.
              slots: [day, time]    # the transition tool's arguments, kept for later states
              when: {intent: book, slots: [day, time]}   # offline: fire on these words
              ask: {en-IN: Which day and time?}          # offline: the intent, slots missing
            - to: done
              after_tool: book_appointment   # fires when that tool returns without an error

A transition fires when the LLM calls its tool (the LLM's decision) or after a named tool succeeds.
Every problem (unknown states, unreachable states, transitions to missing states, unknown
tools, intents or slots) is reported at once with its key path by `agents.spec.load_agent`.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Per-language lines: {te-IN: "...", en-IN: "..."}; a plain string is the same line in every language.
Lines = dict[str, str] | str
NAME = r"^[A-Za-z][A-Za-z0-9_]{0,47}$"
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}-[A-Z]{2}$")  # a state, slot or intent name (it becomes part of a tool name)


class OfflineRule(BaseModel):
    """When the scripted responder (no LLM) calls a tool: the intent's words heard, or said right
    after this rule's `ask`, and every slot known."""

    model_config = ConfigDict(extra="forbid")

    intent: str | None = None  # None: any turn that names one of the slots
    slots: list[str] = Field(default_factory=list)


class Transition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")  # the tool; None: go_to_<to>
    description: str | None = None  # what the LLM reads: when to call it
    slots: list[str] = Field(default_factory=list)
    after_tool: str | None = None  # fire when this tool returns without an error (no tool of its own)
    when: OfflineRule | None = None
    ask: Lines | None = None  # offline: the line after it fired is the next state's `enter`

    @property
    def tool_name(self) -> str:
        return self.name or f"go_to_{self.to}"


class ToolRule(BaseModel):
    """An offline rule for one of the state's own tools (not a transition): `book_appointment`
    when the caller says yes, its arguments from the slots known."""

    model_config = ConfigDict(extra="forbid")

    tool: str
    when: OfflineRule
    arguments: list[str] | None = None  # slots passed; None: the rule's slots
    ask: Lines | None = None
    reply: dict[str, Lines] | Lines | None = None  # by the result's `status`, or one line


class State(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: Lines | None = None
    tools: list[str] | None = None
    context: Literal["keep", "reset", "summary"] = "keep"
    transitions: list[Transition] = Field(default_factory=list)
    rules: list[ToolRule] = Field(default_factory=list)
    enter: Lines | None = None  # offline: said on arriving here by a transition
    say: Lines | None = None  # offline: when no rule fires


class FlowSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    initial: str
    states: dict[str, State] = Field(min_length=1)
    intents: dict[str, dict[str, list[str]]] = Field(default_factory=dict)
    slots: dict[str, dict[str, dict[str, list[str]]]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names(self) -> FlowSpec:
        bad = [f"flow.states.{name}: not a usable state name (letters, digits, _)"
               for name in self.states if not re.match(NAME, name)]
        if bad:
            raise ValueError("; ".join(bad))
        return self

    def problems(self, languages: list[str], tools: list[str]) -> list[str]:
        """Every inconsistency, each with its key path (the agent's languages and tool names given)."""
        out: list[str] = []
        if self.initial not in self.states:
            out.append(f"flow.initial: unknown state {self.initial!r}; states: {', '.join(self.states)}")
        tool_names: dict[str, str] = {}
        for name, state in self.states.items():
            where = f"flow.states.{name}"
            for n, tool in enumerate(state.tools or []):
                if tool not in tools:
                    out.append(f"{where}.tools.{n}: {tool!r} is not one of the agent's tools")
            for n, t in enumerate(state.transitions):
                at = f"{where}.transitions.{n}"
                if t.to not in self.states:
                    out.append(f"{at}.to: transition to a missing state {t.to!r}")
                if t.after_tool is not None:
                    offered = state.tools if state.tools is not None else tools
                    if t.after_tool not in offered:
                        out.append(f"{at}.after_tool: {t.after_tool!r} is not a tool of this state")
                    if t.slots or t.when or t.name:
                        out.append(f"{at}: an after_tool transition has no tool of its own "
                                   "(no name, slots or when)")
                elif t.tool_name in tools:
                    out.append(f"{at}.name: {t.tool_name!r} is also one of the agent's tools")
                else:
                    first = tool_names.setdefault(t.tool_name, at)
                    if first != at:
                        out.append(f"{at}.name: {t.tool_name!r} is already the tool of {first}")
                out += self._rule_problems(t.when, at, t.slots)
                out += self._lines_problems(t.ask, f"{at}.ask", languages)
            for n, rule in enumerate(state.rules):
                at = f"{where}.rules.{n}"
                offered = state.tools if state.tools is not None else tools
                if rule.tool not in offered:
                    out.append(f"{at}.tool: {rule.tool!r} is not a tool of this state")
                out += self._rule_problems(rule.when, at, rule.arguments or [])
                out += self._lines_problems(rule.ask, f"{at}.ask", languages)
                for status, lines in reply_lines(rule.reply).items():
                    out += self._lines_problems(lines, f"{at}.reply{'.' + status if status else ''}",
                                                languages)
            for key in ("prompt", "enter", "say"):
                out += self._lines_problems(getattr(state, key), f"{where}.{key}", languages)
        for name, words in self.intents.items():
            out += [f"flow.intents.{name}.{code}: not one of languages" for code in words
                    if code not in languages]
        for slot, values in self.slots.items():
            for value, words in values.items():
                out += [f"flow.slots.{slot}.{value}.{code}: not one of languages" for code in words
                        if code not in languages]
        if self.initial in self.states:
            reachable = self.reachable()
            out += [f"flow.states.{name}: unreachable from {self.initial!r}" for name in self.states
                    if name not in reachable]
        return out

    def reachable(self) -> set[str]:
        seen, todo = {self.initial}, [self.initial]
        while todo:
            for t in self.states[todo.pop()].transitions:
                if t.to in self.states and t.to not in seen:
                    seen.add(t.to)
                    todo.append(t.to)
        return seen

    def _rule_problems(self, rule: OfflineRule | None, at: str, slots: list[str]) -> list[str]:
        out = []
        if rule is not None and rule.intent is not None and rule.intent not in self.intents:
            out.append(f"{at}.when.intent: unknown intent {rule.intent!r}; flow.intents: "
                       f"{', '.join(self.intents) or 'none'}")
        needed = [*slots, *(rule.slots if rule else [])]
        out += [f"{at}: slot {slot!r} has no words in flow.slots" for slot in dict.fromkeys(needed)
                if rule is not None and slot not in self.slots]
        return out

    @staticmethod
    def _lines_problems(lines: Lines | None, at: str, languages: list[str]) -> list[str]:
        if lines is None or isinstance(lines, str):
            return []
        return [f"{at}.{code}: not one of languages" for code in lines if code not in languages]


def reply_lines(reply: dict[str, Lines] | Lines | None) -> dict[str, Lines]:
    """A rule's replies by the result's status ("" for any): `{te-IN: ..., en-IN: ...}` is one
    line per language for every status, `{booked: {...}, taken: ...}` one per status."""
    if reply is None:
        return {}
    if isinstance(reply, str) or all(isinstance(v, str) and _LANGUAGE_CODE.match(k) for k, v in reply.items()):
        return {"": reply}  # type: ignore[dict-item]
    return dict(reply)


def line_for(lines: Lines | None, language: str) -> str | None:
    """The line of `lines` in `language` (a plain string is every language's)."""
    if lines is None or isinstance(lines, str):
        return lines
    return lines.get(language)
