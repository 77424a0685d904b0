"""FlowRun: one call's place in its agent's flow (`agents/flow.py`): the current state, the slots
carried so far, and what moving to another state does to the context.

The orchestrator asks it for the state's tools and prompt each round, and tells it which tools ran:
a transition tool the LLM called, or a tool a transition waits for (`after_tool`), moves the call.
On arrival the state's `context` policy applies: `keep` the conversation, `reset` it to this
turn, or `summary`: reset, with what was said before summarised into the state's prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from sutradhar.agents.flow import Flow
from sutradhar.agents.tools import ToolBox, ToolContext
from sutradhar.engines.base import ToolSchema
from sutradhar.pipeline.context import ContextManager

SUMMARY_CHARS = 600  # what a `summary` state is told of the conversation before it


@dataclass
class FlowRun:
    flow: Flow
    call_id: str = ""
    state: str = ""
    slots: dict[str, str] = field(default_factory=dict)
    summary: str = ""  # of the conversation before a `summary` state
    path: list[dict[str, Any]] = field(default_factory=list)  # every move: from, to, via, turn

    def __post_init__(self) -> None:
        self.state = self.state or self.flow.initial

    @property
    def box(self) -> ToolBox:
        return self.flow.boxes[self.state]

    def is_transition(self, tool_name: str) -> bool:
        return tool_name in self.flow.transition_tools

    def schemas(self, language: str) -> tuple[ToolSchema, ...]:
        return self.flow.schemas(self.state, language, self.slots)

    def system_prompt(self, base: str, language: str) -> str:
        """The agent's prompt, then the state's task, what is known and what was said before."""
        parts = [base]
        if prompt := self.flow.prompt(self.state, language):
            parts.append(prompt)
        if self.slots:
            parts.append("Known so far: " + "; ".join(f"{k}: {v}" for k, v in self.slots.items()) + ".")
        if self.summary:
            parts.append("Earlier in this call: " + self.summary)
        return "\n\n".join(p for p in parts if p)

    def after_tools(self, context: ToolContext, succeeded: Sequence[str], context_manager: ContextManager,
                    turn_id: int) -> str | None:
        """Move if a transition fired in this round of tools; the new state's name, or None."""
        target, via = context.next_state, "tool"
        context.next_state = None
        if target is None:
            for name in succeeded:
                transition = self.flow.after_tool(self.state, name)
                if transition is not None:
                    target, via = transition.to, f"after:{name}"
                    break
        self.slots.update(context.slots)
        context.slots.clear()
        if target is None:
            return None
        self.enter(target, context_manager, turn_id, via)
        return target

    def enter(self, target: str, context_manager: ContextManager, turn_id: int, via: str) -> None:
        old, self.state = self.state, target
        policy = self.flow.state(target).context
        if policy != "keep":
            earlier = [t for t in context_manager.history if t.turn_id != turn_id]
            if policy == "summary":
                self.summary = _summarise(earlier, self.summary)
            # The caller's words of this turn stay: the new state answers them.
            context_manager.history[:] = [t for t in context_manager.history if t.turn_id == turn_id]
        self.path.append({"from": old, "to": target, "via": via, "turn": turn_id})
        logger.bind(call_id=self.call_id or "-", stage="flow").info(
            "flow moved from={} to={} via={} context={} slots={}", old, target, via, policy,
            sorted(self.slots))

    def snapshot(self) -> tuple[str, dict[str, str], str, int]:
        return self.state, dict(self.slots), self.summary, len(self.path)

    def restore(self, snapshot: tuple[str, dict[str, str], str, int]) -> None:
        self.state, slots, self.summary, moves = snapshot
        self.slots = dict(slots)
        del self.path[moves:]


def _summarise(turns: Sequence[Any], before: str) -> str:
    """Without a model: the last lines said, newest kept, within SUMMARY_CHARS."""
    lines = [f"{'caller' if t.role == 'user' else 'agent'}: {t.content}" for t in turns
             if t.role in ("user", "assistant") and t.content and not t.tool_calls]
    text = " | ".join(([before] if before else []) + lines)
    return text[-SUMMARY_CHARS:]
