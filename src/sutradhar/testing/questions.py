"""The offline question set (data/offline_questions.yaml) and its scoring: does a reply state the
facts expected of it? Used by `sutradhar bench answers` and the end-to-end English test."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import yaml

_NOT_WORD = re.compile(r"[^a-z0-9']+")


@dataclass(frozen=True)
class Question:
    key: str
    domain: str
    text: str
    expect: tuple[tuple[str, ...], ...]  # facts; each a tuple of accepted phrasings

    def missing(self, reply: str) -> list[str]:
        """The expected facts `reply` does not state ("a|b" as written in the data file)."""
        said = _normalise(reply)
        return ["|".join(alternatives) for alternatives in self.expect
                if not any(f" {_normalise(a).strip()} " in said for a in alternatives)]

    def answered_by(self, reply: str) -> bool:
        return not self.missing(reply)


def _normalise(text: str) -> str:
    return " " + " ".join(_NOT_WORD.sub(" ", text.lower()).split()) + " "


def load_questions(group: str) -> tuple[Question, ...]:
    """The `call` set (the ten phone questions, in call order) or the `llm` set."""
    path = resources.files("sutradhar") / "data" / "offline_questions.yaml"
    data = yaml.safe_load(path.read_text("utf-8"))
    return tuple(Question(str(q["key"]), str(q["domain"]), str(q["text"]),
                          tuple(tuple(str(a) for a in str(fact).split("|")) for fact in q["expect"]))
                 for q in data[group])


def answered_share(questions: tuple[Question, ...], replies: list[str]) -> float:
    """The share of questions whose reply states every expected fact."""
    return sum(q.answered_by(r) for q, r in zip(questions, replies, strict=True)) / len(questions)
