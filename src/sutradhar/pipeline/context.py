"""ContextManager: what the LLM is shown of the conversation.

A sliding window of the last `max_history` messages (user and assistant each count as one), an
optional character budget, and a system prompt that is never dropped. After a barge-in the
assistant's message holds what the caller actually heard, not the unspoken rest of the reply.
A tool exchange is an assistant message carrying `tool_calls` then one `tool` message per call;
the window never starts with a tool message whose call it dropped (the API would refuse it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sutradhar.engines.base import Message, ToolCall


@dataclass
class Turn:
    role: str  # "user", "assistant" or "tool"
    content: str
    language: str | None = None
    timestamp: float = field(default_factory=time.time)
    turn_id: int | None = None
    interrupted: bool = False
    tool_calls: tuple[ToolCall, ...] = ()  # an assistant turn that called tools
    tool_call_id: str | None = None  # a tool turn: the call it answers

    def as_dict(self) -> dict[str, Any]:
        return {"role": self.role, "content": self.content, "language": self.language,
                "timestamp": self.timestamp, "turn_id": self.turn_id, "interrupted": self.interrupted,
                "tool_calls": [c.as_dict() for c in self.tool_calls], "tool_call_id": self.tool_call_id}


@dataclass
class ContextManager:
    max_history: int = 10
    max_chars: int = 0  # 0: no budget
    system_prompt: str = ""
    language_instruction: str = ""
    history: list[Turn] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)  # about the caller (name, account, ...)
    session: dict[str, Any] = field(default_factory=dict)  # about the call (transport, started_at, ...)
    total_turns: int = 0

    def add_turn(self, role: str, content: str, language: str | None = None, *,
                 turn_id: int | None = None, interrupted: bool = False) -> Turn:
        if role not in ("user", "assistant"):
            raise ValueError(f"role must be user or assistant, not {role!r}")
        return self._append(Turn(role, content, language, turn_id=turn_id, interrupted=interrupted))

    def add_tool_exchange(self, calls: tuple[ToolCall, ...], results: list[tuple[str, str]],
                          language: str | None = None, *, turn_id: int | None = None) -> None:
        """The assistant's tool calls and their results ((call id, JSON text) each), in order."""
        self.history.append(Turn("assistant", "", language, turn_id=turn_id, tool_calls=calls))
        for call_id, content in results:
            self.history.append(Turn("tool", content, language, turn_id=turn_id, tool_call_id=call_id))
        self.total_turns += 1 + len(results)
        self._trim()

    def _append(self, turn: Turn) -> Turn:
        self.history.append(turn)
        self.total_turns += 1
        self._trim()
        return turn

    def record_heard(self, turn_id: int, heard: str, language: str | None = None) -> None:
        """Replace (or add) the assistant message of `turn_id` with what the caller heard."""
        for turn in reversed(self.history):
            if turn.role == "assistant" and turn.turn_id == turn_id and not turn.tool_calls:
                turn.content, turn.interrupted = heard, True
                break
        else:
            if not heard:
                return
            self.add_turn("assistant", heard, language, turn_id=turn_id, interrupted=True)
        # An assistant turn the caller heard nothing of tells the LLM nothing: drop it (but not a
        # tool call, whose results follow it).
        self.history = [t for t in self.history
                        if not (t.role == "assistant" and t.turn_id == turn_id and not t.content
                                and not t.tool_calls)]

    def last_assistant(self) -> Turn | None:
        return next((t for t in reversed(self.history) if t.role == "assistant" and not t.tool_calls),
                    None)

    def get_context(self, system_prompt: str | None = None, include_metadata: bool = False) -> list[Message]:
        """Messages for the LLM: the system prompt (with the language instruction) then the window."""
        prompt = system_prompt if system_prompt is not None else self.system_prompt
        parts = [p for p in (prompt, self.language_instruction) if p]
        if include_metadata and (self.metadata or self.session):
            details = {**self.session, **self.metadata}
            parts.append("Known about this call: " + "; ".join(f"{k}: {v}" for k, v in details.items()))
        messages = [Message("system", "\n".join(parts))] if parts else []
        for turn in self.history:
            content = turn.content + (" [interrupted by the caller]" if turn.interrupted else "")
            messages.append(Message(turn.role, content, turn.tool_calls, turn.tool_call_id))
        return messages

    def set_metadata(self, **values: Any) -> None:
        self.metadata.update(values)

    def clear_history(self) -> None:
        self.history.clear()

    def get_turn_count(self) -> int:
        """Messages added since the call began (the window may hold fewer)."""
        return self.total_turns

    def _trim(self) -> None:
        if len(self.history) > self.max_history:
            del self.history[: len(self.history) - self.max_history]
        if self.max_chars:
            # Oldest first, but never the newest message: the LLM must see what it answers.
            while len(self.history) > 1 and sum(len(t.content) for t in self.history) > self.max_chars:
                del self.history[0]
        while self.history and self.history[0].role == "tool":
            del self.history[0]  # its assistant tool call was dropped
