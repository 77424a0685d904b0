"""EndOfTurn: how long to wait after the caller pauses, decided from what they said so far.

A complete sentence ends the turn at the short pause; an unfinished one ("my number is", a trailing
"and" / "और" / "మరియు" / "અને") waits up to `max_wait_ms` for the caller to go on, and digits that
may still be being read out (fewer than a phone number's) wait `number_wait_ms`. With no
transcript yet, the plain silence window applies. The words are data, per language, in
`data/turn_taking.yaml`; the rules here know no language.

Optionally an acoustic model (TURN_ACOUSTIC_MODEL=smart-turn, audio/smart_turn.py) also hears the
pause, in the languages it was trained on (en, hi; Telugu and Gujarati keep the text rules alone).
One rule combines them, and the text has the first word:

    text unfinished, or digits going on  -> the text's wait (the audio is not asked)
    text complete or unknown, and the audio says incomplete (P(complete) < threshold)
                                         -> `acoustic_wait_ms` (at most `max_wait_ms`)
    text complete or unknown, and the audio says complete -> `pause_ms`
    no audio score (not asked, not covered, failed) -> the text alone, as above

An unknown transcript with no score keeps the plain silence window.

Backchannels ("hmm", "haan", "avunu", "haa") come from the same file: said while the agent speaks,
they must not stop it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Protocol

import yaml

# Punctuation a transcript may end with; "?" alone also marks a finished question.
_TRAILING = " \t\n.,!;:…।॥-–—\"'”’"
_DIGITS = re.compile(r"\d")
FULL_NUMBER_DIGITS = 10  # a phone number read out in full; fewer digits may still be going on


@dataclass(frozen=True)
class LanguageWords:
    continuation: frozenset[str] = frozenset()
    unfinished: tuple[str, ...] = ()
    number_words: frozenset[str] = frozenset()
    backchannels: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TurnWords:
    """The per-language word lists, loaded once from YAML."""

    languages: dict[str, LanguageWords] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None = None) -> TurnWords:
        text = (Path(path).read_text(encoding="utf-8") if path else
                resources.files("sutradhar").joinpath("data/turn_taking.yaml").read_text(encoding="utf-8"))
        raw = yaml.safe_load(text) or {}
        languages = {}
        for code, entry in raw.items():
            languages[code] = LanguageWords(
                continuation=frozenset(_norm(w) for w in entry.get("continuation") or ()),
                unfinished=tuple(_norm(p) for p in entry.get("unfinished") or ()),
                number_words=frozenset(_norm(w) for w in entry.get("number_words") or ()),
                backchannels=frozenset(_norm(w) for w in entry.get("backchannels") or ()))
        return cls(languages)

    def get(self, language: str) -> LanguageWords:
        return self.languages.get(language) or self.languages.get(language.split("-")[0], LanguageWords())


@lru_cache(maxsize=1)
def default_words() -> TurnWords:
    return TurnWords.load()


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", str(text)).lower().split())


def _words(text: str) -> list[str]:
    return _norm(text).strip(_TRAILING).replace(",", " ").split()


class AcousticModel(Protocol):
    """Hears the end of the caller's speech: P(turn complete). `SmartTurn` is one."""

    def covers(self, language: str) -> bool: ...

    async def score(self, pcm: bytes, sample_rate: int) -> float: ...


@dataclass
class EndOfTurn:
    """Turns a transcript into the silence to wait for before answering.

    `pause_ms`: the short pause at which a complete turn is answered (and a speculation starts).
    `max_wait_ms`: the longest wait after an unfinished phrase. `silence_ms`: the plain window,
    used while no transcript is known. `acoustic`: the optional model; below `acoustic_threshold`
    it calls the speech unfinished, and a text-complete turn then waits `acoustic_wait_ms`."""

    pause_ms: int = 200
    max_wait_ms: int = 1500
    silence_ms: int = 600
    number_wait_ms: int = 800  # digits may be all of an order id, or a phone number half read
    words: TurnWords = field(default_factory=default_words)
    acoustic: AcousticModel | None = None
    acoustic_threshold: float = 0.5
    acoustic_wait_ms: int = 1000

    def is_complete(self, text: str, language: str) -> bool:
        """Whether `text` reads as a finished turn in `language`."""
        return self._judge(text, language) == "complete"

    def wait_ms(self, text: str | None, language: str, complete_p: float | None = None) -> int:
        """Silence (from the end of speech) to wait for before the turn counts as over, from the
        transcript so far and, when there is one, the acoustic model's P(complete) (the module's
        rule)."""
        judged = self._judge(text, language) if text is not None and text.strip() else "unknown"
        if judged == "unfinished":
            return self.max_wait_ms
        if judged == "number":
            return self.number_wait_ms
        if complete_p is not None and complete_p < self.acoustic_threshold:
            return max(self.pause_ms, min(self.acoustic_wait_ms, self.max_wait_ms))
        if judged == "unknown" and complete_p is None:
            return self.silence_ms
        return self.pause_ms

    def hears(self, language: str) -> bool:
        """Whether the acoustic model judges pauses in `language`."""
        return self.acoustic is not None and self.acoustic.covers(language)

    async def score(self, pcm: bytes, sample_rate: int, language: str) -> float | None:
        """The acoustic model's P(complete) for speech ending with `pcm`; None where it does not
        hear `language` (failures are the caller's to log)."""
        if self.acoustic is None or not self.acoustic.covers(language):
            return None
        return await self.acoustic.score(pcm, sample_rate)

    def asks_acoustic(self, text: str | None, language: str) -> bool:
        """Whether a score would change the wait for `text`: not when the text says unfinished."""
        return self.hears(language) and (text is None or not text.strip()
                                         or self._judge(text, language) == "complete")

    def _judge(self, text: str, language: str) -> str:
        """complete | unfinished | number (digits that may still be going on)."""
        stripped = _norm(text).rstrip(" \t\n\"'”’")
        if stripped.endswith("?"):
            return "complete"
        words = _words(text)
        if not words:
            return "unfinished"
        lang = self.words.get(language)
        if words[-1] in lang.continuation:
            return "unfinished"
        joined = " ".join(words)
        if any(joined == phrase or joined.endswith(" " + phrase) for phrase in lang.unfinished):
            return "unfinished"
        return "number" if self._reading_a_number(words, lang) else "complete"

    def is_backchannel(self, text: str, language: str) -> bool:
        """A short acknowledgement ("hmm", "haan ji", "avunu") that must not stop the agent."""
        words = _words(text)
        if not words or len(words) > 3:
            return False
        backchannels = self.words.get(language).backchannels | self.words.get("en-IN").backchannels
        joined = " ".join(words)
        return joined in backchannels or all(w in backchannels for w in words)

    @staticmethod
    def _reading_a_number(words: list[str], lang: LanguageWords) -> bool:
        """The turn ends in a run of digits (or spoken digits) shorter than a full phone number."""
        digits = 0
        for word in reversed(words):
            if _DIGITS.search(word) and not word.isalpha():
                digits += len(_DIGITS.findall(word))
            elif word in lang.number_words:
                digits += 1
            else:
                break
        return 0 < digits < FULL_NUMBER_DIGITS
