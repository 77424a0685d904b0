"""The local model's prompt and decoding, from data/local_llm.yaml (tuned with `bench answers`).

The 0.5B model gets this focused prompt in place of the call's SYSTEM_PROMPT: a generic "helpful
assistant" prompt made it ramble and say the caller's words back. The shop's facts come from the
scripted responder's replies, so the script and the model cannot disagree. The prompt is a fixed
prefix (system + examples) followed by the call's last few turns: llama.cpp keeps the prefix's
evaluated tokens between turns, so after the warm-up only the turns are prefilled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sutradhar.engines.base import Message
from sutradhar.engines.local.reply_guard import ReplyGuard, numbers_in
from sutradhar.engines.local.responder import Script
from sutradhar.text.sentences import sentence_pieces

FACTS_LANGUAGE = "en-IN"  # the local model speaks English only


@dataclass(frozen=True)
class LocalPrompt:
    system: str
    examples: tuple[tuple[str, str], ...]
    history_turns: int  # caller turns of the call shown, the current one included
    temperature: float
    max_tokens: int
    repeat_penalty: float
    stop: tuple[str, ...]
    fallback: str
    guard: ReplyGuard

    @classmethod
    def load(cls, script: Script | None = None, path: str | Path | None = None) -> LocalPrompt:
        if path:
            text = Path(path).read_text(encoding="utf-8")
        else:
            text = (resources.files("sutradhar") / "data" / "local_llm.yaml").read_text("utf-8")
        data: dict[str, Any] = yaml.safe_load(text)
        fallback = str(data["fallback"]).strip()
        replies = {i.name: i.reply.get(FACTS_LANGUAGE, "") for i in script.intents} if script else {}
        missing = [name for name in data.get("facts", []) if name not in replies]
        if script is not None and missing:
            raise ValueError(f"local_llm.yaml names facts of unknown responder intents: {missing}")
        # Their statements only: "What is your order number?" is the script's question, not a fact.
        facts = " ".join(sentence for name in data.get("facts", []) if name in replies
                         for sentence in sentence_pieces(replies[name]) if not sentence.endswith("?"))
        fill = {"facts": facts, "fallback": fallback}
        system = " ".join(str(data["system"]).format_map(fill).split())
        examples = tuple((str(q).format_map(fill), str(a).format_map(fill))
                         for q, a in data.get("examples", []))
        guard = ReplyGuard(domain_words=frozenset(str(w).lower() for w in data["domain_words"]),
                           known_numbers=numbers_in([system, *(a for _, a in examples)]))
        return cls(system, examples, int(data.get("history_turns", 1)),
                   float(data.get("temperature", 0.0)), int(data.get("max_tokens", 64)),
                   float(data.get("repeat_penalty", 1.0)),
                   tuple(str(s) for s in data.get("stop", [])), fallback, guard)

    def prefix(self) -> list[dict[str, str]]:
        """The fixed start of every prompt: what the warm-up evaluates once."""
        messages = [{"role": "system", "content": self.system}]
        for question, answer in self.examples:
            messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        return messages

    def messages(self, conversation: Sequence[Message]) -> list[dict[str, str]]:
        """The prefix, then the call's last `history_turns` caller turns with the replies between
        (earlier tool exchanges left out: the reply after them says what they found)."""
        spoken = [m for m in conversation if m.role in ("user", "assistant") and not m.tool_calls
                  and m.content]
        users = [i for i, m in enumerate(spoken) if m.role == "user"]
        start = users[-self.history_turns] if len(users) >= self.history_turns else (users[0] if users else 0)
        return self.prefix() + [{"role": m.role, "content": m.content} for m in spoken[start:]]
