"""Cutting text for TTS engines: under a length limit, at sentence ends where possible."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?।॥])\s+")


def split_text(text: str, limit: int) -> list[str]:
    """Pieces of at most `limit` characters, cut at sentence ends, else spaces, else anywhere."""
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text.strip()):
        words = sentence.split(" ") if len(sentence) > limit else [sentence]
        for word in words:
            while len(word) > limit:  # one unbroken run longer than the limit
                if current:
                    pieces.append(current)
                    current = ""
                pieces.append(word[:limit])
                word = word[limit:]
            joiner = " " if current else ""
            if len(current) + len(joiner) + len(word) <= limit:
                current += joiner + word
            else:
                pieces.append(current)
                current = word
    if current.strip():
        pieces.append(current)
    return [p.strip() for p in pieces if p.strip()]


def sentences(text: str, limit: int = 400) -> list[str]:
    """One piece per sentence (long sentences cut under `limit`), so audio can start early."""
    return [piece for sentence in _SENTENCE_END.split(text.strip()) for piece in split_text(sentence, limit)]
