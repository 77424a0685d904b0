"""Tools the LLM can call mid-call: a `Tool` is a name, a JSON schema and an async handler.

    @tool(timeout_s=2)
    async def order_status(order_id: str) -> dict:
        "Look up an order by its number."

The decorator reads the type hints into a pydantic model: its JSON schema is what the LLM is
shown, and the model validates the arguments the LLM wrote before the handler sees them. A
parameter annotated `ToolContext` receives the call's context instead of an argument.
A `ToolBox` holds the tools of one agent; `sutradhar.agents.runs` runs a call of one.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from sutradhar.engines.base import ToolSchema
from sutradhar.pipeline.keypad import Keypad

# Argument names whose values never reach a record or a log line, whatever the tool declares.
_SECRET_ARGUMENT = re.compile(r"(password|passcode|secret|token|api_?key|pin|otp|cvv|card_?number)$",
                              re.IGNORECASE)
REDACTED = "***"


@dataclass
class ToolContext:
    """What a tool may know and ask of the call. The orchestrator acts on `actions` (performed after
    the reply has been heard) and `switch_to` (the language from the next sentence on)."""

    call_id: str
    language: str
    languages: tuple[str, ...] = ()
    actions: list[str] = field(default_factory=list)  # "end_call", "transfer"
    switch_to: str | None = None
    next_state: str | None = None  # a flow transition tool asks to move there (pipeline/flow.py)
    slots: dict[str, str] = field(default_factory=dict)  # what that transition carries to it
    keypad: Keypad | None = None  # the call's keys: collect the caller's, press the agent's
    # Say a line to the caller now, while the tool runs (a prompt); set by the orchestrator.
    say: Callable[[str], None] | None = None

    def request(self, action: str) -> None:
        if action not in self.actions:
            self.actions.append(action)


Handler = Callable[[dict[str, Any], ToolContext], Awaitable[Any]]
# The caller's words and language -> the arguments they settle, or None (agents/prefetch.py).
PrefetchRule = Callable[[str, str], dict[str, Any] | None]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments object
    handler: Handler  # gets the validated arguments
    timeout_s: float | None = None  # None: the agent's default (TOOL_TIMEOUT_S)
    # False: barge-in does not cancel it (a payment, a booking); it finishes in the background.
    interruptible: bool = True
    secrets: frozenset[str] = frozenset()  # argument names to redact besides the usual ones
    close: Callable[[], Awaitable[None]] | None = None  # releases what it holds (a connection pool)
    # Read-only and safe to run twice or for nothing: only such a tool may be prefetched.
    idempotent: bool = False
    prefetch: PrefetchRule | None = None  # started with the turn when the transcript settles a call
    # True: it acts on the live call (speaks, takes or presses keys), so a reply prepared ahead of
    # the end of the caller's turn runs it only once that reply is committed (like a booking).
    waits_for_commit: bool = False

    def __post_init__(self) -> None:
        if self.prefetch is not None and not (self.idempotent and self.interruptible):
            raise ValueError(f"tool {self.name}: prefetch needs idempotent=True and interruptible=True "
                             "(a speculative run may be discarded or cancelled)")

    def prefetch_arguments(self, text: str, language: str) -> dict[str, Any] | None:
        """The arguments the caller's words settle for a speculative run, or None."""
        return self.prefetch(text, language) if self.prefetch is not None else None

    def schema(self) -> ToolSchema:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description,
                             "parameters": self.parameters}}

    def redact(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return {k: REDACTED if k in self.secrets or _SECRET_ARGUMENT.search(k) else v
                for k, v in arguments.items()}


def _first_paragraph(doc: str | None) -> str:
    return " ".join((inspect.cleandoc(doc).split("\n\n")[0] if doc else "").split())


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return schema


def tool(fn: Callable[..., Awaitable[Any]] | None = None, *, name: str | None = None,
         description: str | None = None, timeout_s: float | None = None, interruptible: bool = True,
         secrets: Iterable[str] = (), idempotent: bool = False,
         prefetch: PrefetchRule | None = None, waits_for_commit: bool = False) -> Any:
    """Make an async function a `Tool`; its type hints are the schema, its docstring the description.
    `prefetch` (with `idempotent=True`): a rule that may start it before the LLM asks for it."""

    def wrap(func: Callable[..., Awaitable[Any]]) -> Tool:
        if not inspect.iscoroutinefunction(func):
            raise TypeError(f"tool {func.__name__} must be an async function")
        hints = typing.get_type_hints(func, include_extras=True)  # Annotated[..., Field()] bounds
        fields: dict[str, Any] = {}
        context_param: str | None = None
        for param in inspect.signature(func).parameters.values():
            hint = hints.get(param.name, Any)
            if hint is ToolContext or ToolContext in typing.get_args(hint):  # also `ToolContext | None`
                context_param = param.name
                continue
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[param.name] = (hint, default)
        model = create_model(f"{func.__name__}_arguments", __config__=ConfigDict(extra="forbid"),
                             **fields)

        async def handler(arguments: dict[str, Any], context: ToolContext) -> Any:
            values = dict(model.model_validate(arguments))
            if context_param:
                values[context_param] = context
            return await func(**values)

        return Tool(name or func.__name__, description or _first_paragraph(func.__doc__),
                    _schema(model), handler, timeout_s, interruptible, frozenset(secrets),
                    idempotent=idempotent, prefetch=prefetch,
                    waits_for_commit=waits_for_commit)

    return wrap(fn) if fn is not None else wrap


class ToolBox:
    """The tools one agent offers, by name; empty means the LLM is offered none."""

    def __init__(self, tools: Iterable[Tool] = (), default_timeout_s: float = 5.0) -> None:
        self.default_timeout_s = default_timeout_s
        self._tools: dict[str, Tool] = {}
        for item in tools:
            self.add(item)

    def add(self, item: Tool) -> None:
        if item.name in self._tools:
            raise ValueError(f"two tools are named {item.name!r}")
        self._tools[item.name] = item

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def timeout_for(self, item: Tool) -> float:
        return item.timeout_s if item.timeout_s is not None else self.default_timeout_s

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._tools)

    def schemas(self) -> tuple[ToolSchema, ...]:
        return tuple(item.schema() for item in self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    async def aclose(self) -> None:
        for item in self._tools.values():
            if item.close is not None:
                await item.close()
