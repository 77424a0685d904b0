"""Is a small model's answer an answer? Checks on the first clause of a local LLM reply (and the
echo check on every later one) before the caller hears it.

A 0.5B model on a misheard turn says the caller's words back ("I'd be happy to cast my stand if
I'm ordered") or drifts off the subject, and it invents numbers ("our number is 555-123-4567").
A bad opening is replaced by the honest fallback line; a bad later clause ends the reply before
it. The rules, on lower-cased words:

- echo: the clause repeats a run of the caller's words at least `ECHO_RUN` long, or one covering
  three quarters of a short turn (3 words or more): "where is my parcel" back is an echo, "our
  opening hours on Sunday are ..." to "what are your opening hours on Sunday" is not;
- off the subject: the opening clause uses none of the domain words (data/local_llm.yaml);
- invented number: a number in the clause that is neither in the prompt's facts nor in the turn.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from sutradhar.text.spoken_numbers import spoken_number

ECHO_RUN = 5  # this many of the caller's words in a row is an echo, whatever the turn's length
_WORD = re.compile(r"[a-z0-9']+")
_NUMBER = re.compile(r"\d+")
# Facts are written in words ("seven days"); the model may write digits ("7 days").
_NUMBER_WORDS = {word: str(value) for value, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _longest_common_run(a: list[str], b: list[str]) -> int:
    best = 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def echoes(clause: str, heard: str) -> bool:
    """The clause says a run of the caller's words back."""
    said, caller = words(clause), words(heard)
    run = _longest_common_run(said, caller)
    return run >= ECHO_RUN or (run >= 3 and run * 4 >= len(caller) * 3)


@dataclass(frozen=True)
class ReplyGuard:
    domain_words: frozenset[str]
    known_numbers: frozenset[str]  # numbers the prompt's facts contain

    def verdict(self, clause: str, heard: str, before: str = "") -> str | None:
        """Why this clause must not be spoken ("echo", "off_subject", "invented_number"), or None.
        `before`: the reply's clauses already said (an echo may run across a clause boundary)."""
        if echoes(before + clause, heard):
            return "echo"
        if not before and not self.domain_words.intersection(words(clause)):
            return "off_subject"
        allowed = self.known_numbers | numbers_in([heard])
        read_out = spoken_number(heard)
        if read_out:
            allowed |= {read_out}
        if any(n not in allowed for n in _NUMBER.findall(clause)):
            return "invented_number"
        return None


def numbers_in(texts: Collection[str]) -> frozenset[str]:
    """The numbers `texts` state, as digits: "4567", and "7" for "seven"."""
    found = {n for text in texts for n in _NUMBER.findall(text)}
    return frozenset(found | {_NUMBER_WORDS[w] for text in texts for w in words(text) if w in _NUMBER_WORDS})
