"""Assembling streamed `tool_calls` deltas (OpenAI's chat wire format) into whole calls.

The first delta of a call carries its `index`, `id`, `type` and function `name` with empty
`arguments`; later deltas carry only the `index` and the next piece of the arguments' JSON text.
Several calls in one reply are told apart by `index`. Servers that send a whole call in one
delta (llama.cpp, vLLM) fit the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sutradhar.engines.base import MalformedResponse, ToolCall


@dataclass
class _Partial:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class ToolCallAssembler:
    provider: str = ""
    _calls: dict[int, _Partial] = field(default_factory=dict)

    def feed(self, deltas: Any) -> None:
        """One chunk's `delta.tool_calls` list."""
        if not isinstance(deltas, list):
            raise MalformedResponse(f"tool_calls is not a list: {deltas!r:.80}", provider=self.provider,
                                    stage="llm")
        for delta in deltas:
            if not isinstance(delta, dict):
                raise MalformedResponse(f"tool call delta is not an object: {delta!r:.80}",
                                        provider=self.provider, stage="llm")
            index = delta.get("index")
            if not isinstance(index, int):
                # A server that omits the index: a delta with an id opens the next call.
                index = len(self._calls) if delta.get("id") or not self._calls else max(self._calls)
            call = self._calls.setdefault(index, _Partial())
            call.id = call.id or str(delta.get("id") or "")
            function = delta.get("function") or {}
            call.name = call.name or str(function.get("name") or "")
            if function.get("arguments"):
                call.arguments.append(str(function["arguments"]))

    def finish(self) -> list[ToolCall]:
        """The complete calls in index order; raises when one never got its name."""
        calls = []
        for index in sorted(self._calls):
            partial = self._calls[index]
            if not partial.name:
                raise MalformedResponse(f"tool call {index} has no function name",
                                        provider=self.provider, stage="llm")
            calls.append(ToolCall(partial.id or f"call_{index}", partial.name,
                                  "".join(partial.arguments) or "{}"))
        self._calls.clear()
        return calls
