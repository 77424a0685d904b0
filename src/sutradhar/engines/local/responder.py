"""The scripted responder: keyword intents from a YAML file, answered in the caller's language.

It is not a language model and never claims to be one: its provider name is "responder". It serves
every language in its file, so a call in Hindi, Telugu or Gujarati still gets a useful answer when
no LLM can speak the language (the local 0.5B model speaks only English) or no LLM is available.
The reply streams word by word like LLM deltas so the orchestrator treats it the same way.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sutradhar.engines.base import BadRequest, LanguageNotSupported, Message, Provider


@dataclass(frozen=True)
class Intent:
    name: str
    keywords: dict[str, tuple[str, ...]]  # language -> lower-cased keywords
    reply: dict[str, str]  # language -> reply


def _is_latin(keyword: str) -> bool:
    return all(ord(ch) < 0x250 for ch in keyword)


def keyword_matches(keyword: str, text: str) -> bool:
    """Whole-word match for Latin keywords; substring for Indian scripts (suffixes attach)."""
    if _is_latin(keyword):
        return re.search(rf"(?<![\w']){re.escape(keyword)}(?![\w'])", text) is not None
    return keyword in text


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
                   reply={lang: str(r).strip() for lang, r in item["reply"].items()})
            for item in data.get("intents", [])
        )
        fallback = {lang: str(r).strip() for lang, r in data["fallback"].items()}
        for intent in intents:
            missing = set(fallback) - set(intent.reply)
            if missing:
                raise ValueError(f"responder intent {intent.name!r} has no reply in {sorted(missing)}")
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

    def __post_init__(self) -> None:
        if self.script is None:
            self.script = Script.load(self.path)
        if self.languages is None:
            self.languages = self.script.languages

    async def stream(self, messages: Sequence[Message], language: str) -> AsyncIterator[str]:
        if language not in self.script.fallback:
            raise LanguageNotSupported(f"the responder has no replies in {language}",
                                       provider=self.name, stage="llm")
        heard = next((m.content for m in reversed(messages) if m.role == "user"), None)
        if heard is None:
            raise BadRequest("no caller turn to answer", provider=self.name, stage="llm")
        _, reply = self.script.answer(heard, language)
        for i, word in enumerate(reply.split(" ")):
            yield word if i == 0 else " " + word
            await asyncio.sleep(0)  # let barge-in cancel between words
