"""Post-call results: a summary and fields extracted into a schema, from a call's transcript.

    results:
      summary: true
      extract:
        schema: {order_id: str, resolved: bool}     # field -> str | int | float | bool
      webhook:
        url: https://crm.example.com/sutradhar/calls
        secret_env: CRM_WEBHOOK_SECRET              # HMAC-SHA256 key, read from the environment

The slot filler fills each field the call itself established (the flow's slots, the tools'
arguments and results); a language model, when the LLM chain has one, writes the summary and fills
the fields left open from the transcript (its answer must be the JSON asked for, or it is ignored).
A field nothing established is null. `result_delivery.py` sends
them to the webhook; the store keeps them with the call record.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from loguru import logger
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
)

from sutradhar.agents.tools import REDACTED
from sutradhar.engines.base import Message, ProviderError

if TYPE_CHECKING:
    from sutradhar.engines.fallback import TaskRouter

FieldType = Literal["str", "int", "float", "bool"]
_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}
SUMMARY_CHARS = 600  # what a summary may hold
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class ExtractSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: dict[str, FieldType] = Field(alias="schema", min_length=1)


class ResultsWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^https?://")
    secret_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    timeout_s: float = Field(5.0, gt=0, le=60)

    def secret(self, env: Mapping[str, str] | None = None) -> str | None:
        return (os.environ if env is None else env).get(self.secret_env) or None


class ResultsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    summary: bool = False
    extract: ExtractSpec | None = None
    webhook: ResultsWebhook | None = None

    @field_validator("extract")
    @classmethod
    def _field_names(cls, value: ExtractSpec | None) -> ExtractSpec | None:
        if value is not None:
            bad = [name for name in value.schema_ if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", name)]
            if bad:
                raise ValueError(f"schema: not usable field names: {', '.join(bad)}")
        return value


@dataclass
class CallTranscript:
    """What the results are made from: the turns as stored, and what the call established."""

    call_id: str
    language: str
    end_reason: str
    turns: Sequence[Mapping[str, Any]]
    facts: dict[str, Any] = field(default_factory=dict)  # flow slots, tool arguments and results
    state: str | None = None  # the flow's last state

    def lines(self) -> list[str]:
        out = []
        for turn in self.turns:
            if turn.get("text"):
                out.append(f"Caller: {turn['text']}")
            said = turn.get("heard") if turn.get("interrupted") else turn.get("reply")
            if said:
                out.append(f"Agent: {said}")
        return out


async def compute_results(spec: ResultsSpec, transcript: CallTranscript,
                          router: TaskRouter | None) -> dict[str, Any]:
    """{"summary": str | None, "extracted": {...} | None, "source": "llm" | "slots"}. Never raises."""
    log = logger.bind(call_id=transcript.call_id, stage="results")
    summary = _plain_summary(transcript) if spec.summary else None
    extracted = _fill_from_facts(spec.extract.schema_, transcript.facts) if spec.extract else None
    source = "slots"
    if router is not None and _has_model(router) and transcript.lines():
        try:
            answer = await _ask_llm(spec, transcript, router)
        except Exception as exc:  # noqa: BLE001 - the slot filler's results still stand and are stored
            level = "WARNING" if isinstance(exc, (ProviderError, TimeoutError)) else "ERROR"
            log.log(level, "no LLM answer for the results, the slot filler's stand: {}", exc)
            answer = None
        if answer is not None:
            source = "llm"
            summary = (answer.get("summary") or summary) if spec.summary else None
            if spec.extract and extracted is not None:
                # What the call established (a tool's result, a flow slot) is a fact; the LLM's
                # reading of the transcript fills only what it left open.
                extracted = {k: extracted[k] if extracted.get(k) is not None else v
                             for k, v in answer["extracted"].items()}
    log.info("results ready source={} fields={}", source, sorted((extracted or {})))
    return {"summary": summary, "extracted": extracted, "source": source}


def _has_model(router: TaskRouter) -> bool:
    # The scripted responder is no language model: it cannot summarise what it never understood.
    return any(not getattr(p, "scripted", False) for p in router.providers("llm"))


async def _ask_llm(spec: ResultsSpec, transcript: CallTranscript, router: TaskRouter) -> dict[str, Any] | None:
    fields = spec.extract.schema_ if spec.extract else {}
    wanted = {**({"summary": "str"} if spec.summary else {}), **({"extracted": fields} if fields else {})}
    prompt = ("You read a phone call's transcript and answer with one JSON object only, no prose, "
              f"of this shape (types named; null where the call did not say): {json.dumps(wanted)}. "
              "The summary is two or three plain sentences in English.")
    messages = [Message("system", prompt), Message("user", "\n".join(transcript.lines()))]
    served: list[str] = []
    text = "".join([d async for d in router.route_generation(messages, "en-IN", served)
                    if isinstance(d, str)])
    if served and served[0] in {p.name for p in router.providers("llm") if getattr(p, "scripted", False)}:
        return None  # the chain fell back to the responder
    match = _JSON_OBJECT.search(text)
    try:
        data = json.loads(match.group(0)) if match else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return None
    out: dict[str, Any] = {}
    if spec.summary:
        out["summary"] = str(data.get("summary") or "")[:SUMMARY_CHARS] or None
    if fields:
        raw = data.get("extracted") if isinstance(data.get("extracted"), dict) else data
        out["extracted"] = _validated(fields, raw)
    return out


def _validated(fields: Mapping[str, str], raw: Mapping[str, Any]) -> dict[str, Any]:
    """Each field coerced to its type; a value that is not one becomes null, not an error."""
    model = create_model("Extracted", **{name: (_TYPES[kind] | None, None) for name, kind in fields.items()})
    values: dict[str, Any] = {}
    for name in fields:
        try:
            values[name] = getattr(model.model_validate({name: raw.get(name)}), name)
        except ValidationError:
            values[name] = None
    return values


def _fill_from_facts(fields: Mapping[str, str], facts: Mapping[str, Any]) -> dict[str, Any]:
    return _validated(fields, {name: facts.get(name) for name in fields})


def _plain_summary(transcript: CallTranscript) -> str:
    """A summary without a language model: what the call established, in one line."""
    parts = [f"{len(transcript.turns)} caller turns in {transcript.language}",
             f"ended: {transcript.end_reason}"]
    if transcript.state:
        parts.append(f"last state: {transcript.state}")
    tools = [c.get("name") for t in transcript.turns for c in t.get("tool_calls") or [] if not c.get("error")]
    if tools:
        parts.append(f"tools: {', '.join(dict.fromkeys(tools))}")
    if transcript.facts:
        parts.append("; ".join(f"{k}: {v}" for k, v in transcript.facts.items()))
    return (". ".join(parts) + ".")[:SUMMARY_CHARS]


def facts_from_tool(arguments: Mapping[str, Any], content: str) -> dict[str, Any]:
    """The scalar fields of a tool's arguments and of its JSON result (the result wins)."""
    facts = {k: v for k, v in arguments.items()
             if isinstance(v, (str, int, float, bool)) and v != REDACTED}  # a secret stays out
    try:
        result = json.loads(content)
    except ValueError:
        return facts
    if isinstance(result, dict) and "error" not in result:
        facts.update({k: v for k, v in result.items() if isinstance(v, (str, int, float, bool))})
    return facts
