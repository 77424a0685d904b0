"""The scripted responder: keyword intents from a YAML file, answered in the caller's language.

It is not a language model and never claims to be one: its provider name is "responder". It serves
every language in its file, so a call in Hindi, Telugu or Gujarati still gets a useful answer when
no LLM can speak the language (the local 0.5B model speaks only English) or no LLM is available.
The reply streams sentence by sentence like LLM deltas so the orchestrator treats it the same way
(whole sentences, so the orchestrator's early cut of a long first clause never splits a fixed line
mid-phrase: it is for a model still writing).

An intent may name a `tool`: when the turn offers that tool, the responder fills its one `slot`
from a number the caller read out ("four five six seven", "चार पाँच छह सात"), calls the tool, and
answers from its result with the intent's `tool_replies` (keyed by the result's `status`). With
no number yet it asks for one (`ask`), and a number said right after that question fills it.
When `collect_digits` is offered too, the question is its prompt: the number the caller keys in
(or reads out during the collection) fills the slot.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sutradhar.engines.base import (
    BadRequest,
    LanguageNotSupported,
    LLMDelta,
    Message,
    Provider,
    ToolCall,
    ToolSchema,
)
from sutradhar.engines.local.flow_plan import answer_tool, flow_plan, plan_turn
from sutradhar.text.keywords import keyword_matches
from sutradhar.text.languages import LANGUAGES
from sutradhar.text.sentences import SentenceChunker
from sutradhar.text.spoken_numbers import spoken_number

KEYPAD_TOOL = "collect_digits"  # the built-in that asks for a number on the keypad


@dataclass(frozen=True)
class Intent:
    name: str
    keywords: dict[str, tuple[str, ...]]  # language -> lower-cased keywords
    reply: dict[str, str]  # language -> reply
    tool: str | None = None  # called when offered, with `slot` filled from a spoken number
    slot: str = ""
    ask: dict[str, str] = field(default_factory=dict)  # language -> "what is your order number?"
    tool_replies: dict[str, dict[str, str]] = field(default_factory=dict)  # status -> language -> line


@dataclass(frozen=True)
class Script:
    intents: tuple[Intent, ...]
    fallback: dict[str, str]

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self.fallback)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Script:
        if path:
            text = Path(path).read_text(encoding="utf-8")
        else:
            text = (resources.files("sutradhar") / "data" / "responder.yaml").read_text("utf-8")
        data: dict[str, Any] = yaml.safe_load(text)
        intents = tuple(
            Intent(name=item["name"],
                   keywords={lang: tuple(str(k).lower() for k in words)
                             for lang, words in item.get("keywords", {}).items()},
                   reply={lang: str(r).strip() for lang, r in item["reply"].items()},
                   tool=item.get("tool"), slot=str(item.get("slot") or ""),
                   ask={lang: str(r).strip() for lang, r in (item.get("ask") or {}).items()},
                   tool_replies={str(status): {lang: str(r).strip() for lang, r in lines.items()}
                                 for status, lines in (item.get("tool_replies") or {}).items()})
            for item in data.get("intents", [])
        )
        fallback = {lang: str(r).strip() for lang, r in data["fallback"].items()}
        for intent in intents:
            replies = {"reply": intent.reply}
            if intent.tool:
                if not intent.slot:
                    raise ValueError(f"responder intent {intent.name!r} names a tool but no slot")
                replies |= {"ask": intent.ask} | {f"tool_replies.{k}": v for k, v in intent.tool_replies.items()}
            for key, lines in replies.items():
                missing = set(fallback) - set(lines)
                if missing:
                    raise ValueError(f"responder intent {intent.name!r} has no {key} in {sorted(missing)}")
        return cls(intents, fallback)

    def match(self, text: str, language: str) -> Intent | None:
        """The intent with the most keyword hits; the call's language first, then all others."""
        text = text.lower()
        for languages in ([language], [lang for lang in self.languages if lang != language]):
            best, best_score = None, 0
            for intent in self.intents:
                score = sum(keyword_matches(k, text) for lang in languages
                            for k in intent.keywords.get(lang, ()))
                if score > best_score:
                    best, best_score = intent, score
            if best is not None:
                return best
        return None

    def for_tool(self, name: str) -> Intent | None:
        return next((i for i in self.intents if i.tool == name), None)

    def asked_by(self, line: str, language: str) -> Intent | None:
        """The tool intent whose `ask` line this is (the agent's last words)."""
        return next((i for i in self.intents if i.tool and i.ask.get(language) == line.strip()), None)

    def plan(self, heard: str, messages: Sequence[Message], language: str,
             offered: set[str | None]) -> ToolCall | str | None:
        """For a turn offered tools: the tool call to make (a tool intent whose tool is offered,
        its slot filled), the intent's `ask` line when its number is missing, or None when no
        offered tool is wanted."""
        intent = self.match(heard, language)
        number = spoken_number(heard)
        if number and (intent is None or intent.tool is None):
            # "four five six seven" right after "what is your order number?" answers that question.
            said = next((m.content for m in reversed(messages) if m.role == "assistant" and m.content), "")
            intent = self.asked_by(said, language) or intent
        if intent is None or intent.tool is None or intent.tool not in offered:
            return None
        if number is None:
            if KEYPAD_TOOL in offered:
                return ToolCall(f"call_{uuid.uuid4().hex[:12]}", KEYPAD_TOOL,
                                json.dumps({"prompt": intent.ask[language]}, ensure_ascii=False))
            return intent.ask[language]
        return ToolCall(f"call_{uuid.uuid4().hex[:12]}", intent.tool, json.dumps({intent.slot: number}))

    def keyed(self, messages: Sequence[Message], language: str, offered: set[str | None]) -> ToolCall | str | None:
        """After a collect_digits the responder asked with an intent's `ask` line: that intent's
        tool with the number keyed in (or read out meanwhile), or the question again aloud when
        there is none. None when the last tool result is not such a collection."""
        result_message = messages[-1]
        calls = {c.id: c for m in messages for c in m.tool_calls}
        call = calls.get(result_message.tool_call_id or "")
        if call is None or call.name != KEYPAD_TOOL:
            return None
        try:
            prompt = str(json.loads(call.arguments or "{}").get("prompt", ""))
            result = json.loads(result_message.content)
        except (ValueError, AttributeError):
            return None
        intent = self.asked_by(prompt, language)
        if intent is None or intent.tool not in offered or not isinstance(result, dict):
            return None
        number = result.get("digits") or spoken_number(str(result.get("said") or ""))
        if not number:
            return intent.ask[language]
        return ToolCall(f"call_{uuid.uuid4().hex[:12]}", intent.tool, json.dumps({intent.slot: str(number)}))

    def tool_answer(self, messages: Sequence[Message], language: str) -> str:
        """Say the answer of the last tool result with its intent's line for the result's status."""
        result_message = messages[-1]
        names = {c.id: c.name for m in messages for c in m.tool_calls}
        intent = self.for_tool(names.get(result_message.tool_call_id or "", ""))
        try:
            result = json.loads(result_message.content)
        except ValueError:
            result = None
        if intent is None or not isinstance(result, dict) or "error" in result:
            return LANGUAGES[language].tool_failed if language in LANGUAGES else self.fallback[language]
        status = result.get("status") or ("not_found" if result.get("found") is False else "")
        line = intent.tool_replies.get(str(status), {}).get(language)
        if line is None:
            return self.fallback[language]
        return line.format_map(_Blank({k: v for k, v in result.items() if v is not None}))

    def respond(self, messages: Sequence[Message], language: str, offered: set[str | None],
                flow: Mapping[str, Any] | None = None) -> ToolCall | str | None:
        """What the script says to this turn: the line for the last tool result, a tool call (or
        the question for its number) when a tool intent's tool is offered, the reply of the intent
        the caller's words match, or None when no intent matches (the LLM's turn, or the fallback).
        `flow`: the offline plan of the agent's flow state (engines/local/flow_plan.py), whose own
        rules and lines come first."""
        if messages and messages[-1].role == "tool":
            return ((answer_tool(flow, messages) if flow is not None else None)
                    or self.keyed(messages, language, offered) or self.tool_answer(messages, language))
        heard = next((m.content for m in reversed(messages) if m.role == "user"), None)
        if heard is None:
            raise BadRequest("no caller turn to answer", provider="responder", stage="llm")
        planned = plan_turn(flow, messages) if flow is not None else None
        if planned is None and offered:
            planned = self.plan(heard, messages, language, offered)
        if planned is not None:
            return planned
        intent = self.match(heard, language)
        return intent.reply[language] if intent is not None else None

    def answer(self, text: str, language: str) -> tuple[str, str]:
        """(intent name, reply in `language`); the fallback when nothing matches."""
        intent = self.match(text, language)
        if intent is None:
            return "fallback", self.fallback[language]
        return intent.name, intent.reply[language]


@dataclass
class ScriptedResponder(Provider):
    """An LLMProvider answering from `Script` intents. Plainly named "responder"."""

    name: str = "responder"
    path: str | Path | None = None
    script: Script = field(default=None)  # type: ignore[assignment]
    supports_tools: bool = True
    scripted: bool = True  # not a language model: no post-call summary from it (agents/results.py)

    def __post_init__(self) -> None:
        if self.script is None:
            self.script = Script.load(self.path)
        if self.languages is None:
            self.languages = self.script.languages

    async def stream(self, messages: Sequence[Message], language: str,
                     tools: Sequence[ToolSchema] | None = None) -> AsyncIterator[LLMDelta]:
        if language not in self.script.fallback:
            raise LanguageNotSupported(f"the responder has no replies in {language}",
                                       provider=self.name, stage="llm")
        offered = {t.get("function", {}).get("name") for t in tools or ()}
        planned = self.script.respond(messages, language, offered, flow_plan(tools))
        if isinstance(planned, ToolCall):
            yield planned
            return
        reply = planned if planned is not None else self.script.fallback[language]
        async for sentence in spoken_sentences(reply):
            yield sentence


async def spoken_sentences(reply: str) -> AsyncIterator[str]:
    """A fixed reply streamed sentence by sentence (exact slices: joined, they give it back)."""
    chunker = SentenceChunker(first_max_words=0)
    for sentence in (*chunker.push(reply), *chunker.flush()):
        yield sentence
        await asyncio.sleep(0)  # let barge-in cancel between sentences


class _Blank(dict[str, Any]):
    """A template value the result lacks reads as nothing, not a KeyError mid-call."""

    def __missing__(self, key: str) -> str:
        return ""
