"""Sentences: `SentenceChunker` cuts a streamed LLM reply into speakable pieces as early as
possible; `split_text` and `sentences` cut a whole text the same way for TTS engines.

TTS can start on the first clause while the LLM is still writing the rest, so the first chunk is
released at the first sentence end (. ? ! । ॥) or, if it runs long, at a comma, or after
`first_max_words` words (at the last comma among them, if any) when no sentence end comes (a small
local model tends to one long sentence, and the caller should not wait for all of it). A full stop is an
end only when whitespace follows it and it is not part of a number (3.5), an abbreviation (Dr.)
or an initial (A.), which is why the chunker waits for the character after a full stop.
Chunks are exact slices of the input: joined, they give back the text unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_ENDERS = frozenset(".?!।॥…")
_SOFT = frozenset(",;:—")
# Lowercased abbreviations that end with a full stop but do not end a sentence.
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt vs etc e.g i.e a.m p.m no nos approx dept est fig govt inc ltd co "
    "corp jan feb mar apr jun jul aug sep sept oct nov dec rs sh smt shri".split()
)
_WORD_BEFORE = re.compile(r"([\w.]+)\.$", re.UNICODE)


@dataclass
class SentenceChunker:
    first_min_chars: int = 12  # a first chunk shorter than this waits (avoids "Hi." alone... mostly)
    comma_min_chars: int = 40  # a chunk this long may be cut at a comma
    first_comma_min_chars: int = 24  # the first chunk may be cut at a comma sooner
    first_max_words: int = 0  # the first chunk is cut after this many words (0: never)
    max_chars: int = 220  # past this, cut at the last space
    _buffer: str = ""
    _emitted: int = field(default=0)

    def push(self, delta: str) -> list[str]:
        """Add a text delta; return the chunks that became complete."""
        self._buffer += delta
        chunks: list[str] = []
        while True:
            cut = self._find_cut(final=False)
            if cut is None:
                break
            chunks.append(self._take(cut))
        return chunks

    def flush(self) -> list[str]:
        """End of stream: return whatever is left as chunks."""
        chunks: list[str] = []
        while self._buffer:
            cut = self._find_cut(final=True)
            chunks.append(self._take(cut if cut is not None else len(self._buffer)))
        return chunks

    def _take(self, cut: int) -> str:
        # Whitespace after the cut goes with the chunk, so the next chunk starts with a word.
        while cut < len(self._buffer) and self._buffer[cut].isspace():
            cut += 1
        chunk, self._buffer = self._buffer[:cut], self._buffer[cut:]
        self._emitted += 1
        return chunk

    def _find_cut(self, final: bool) -> int | None:
        text = self._buffer
        first = self._emitted == 0
        min_len = self.first_min_chars if first else 1
        comma_min = self.first_comma_min_chars if first else self.comma_min_chars
        soft_cut: int | None = None
        for i, ch in enumerate(text):
            nxt = text[i + 1] if i + 1 < len(text) else None
            if ch in _ENDERS:
                if nxt is None and not final:
                    return None  # wait for the next character to know whether this ends a sentence
                if nxt is not None and nxt not in ' \n\t"\')' and ch != "।" and ch != "॥":
                    continue
                if ch == "." and self._is_non_final_period(text, i):
                    continue
                # Swallow runs like "?!" or "..." and closing quotes.
                end = i + 1
                while end < len(text) and (text[end] in _ENDERS or text[end] in "\"')"):
                    end += 1
                if len(text[:end].strip()) >= min_len or final:
                    return end
            elif ch in _SOFT and nxt is not None and nxt.isspace() and i + 1 >= comma_min and soft_cut is None:
                soft_cut = i + 1
            elif ch == "\n" and text[:i].strip():
                return i + 1
        if soft_cut is not None and len(text) >= soft_cut + 1:
            return soft_cut
        if first and self.first_max_words and not final:
            cut = _after_words(text, self.first_max_words)
            if cut is not None and cut <= self.max_chars and len(text[:cut].strip()) >= min_len:
                # At the last comma among those words, when the piece before it is long enough:
                # TTS says a phrase better than words cut anywhere.
                comma = max((i + 1 for i, ch in enumerate(text[:cut]) if ch in _SOFT and text[i + 1:i + 2].isspace()),
                            default=None)
                return comma if comma is not None and len(text[:comma].strip()) >= min_len else cut
        if len(text) > self.max_chars:
            space = text.rfind(" ", 0, self.max_chars)
            return space + 1 if space > 0 else self.max_chars
        return None

    @staticmethod
    def _is_non_final_period(text: str, i: int) -> bool:
        before = text[:i]
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if before[-1:].isdigit() and nxt.isdigit():
            return True  # 3.5
        match = _WORD_BEFORE.search(before + ".")
        word = match.group(1).lower() if match else ""
        if word in ABBREVIATIONS:
            return True
        if len(word) == 1 and word.isalpha() and before[-1:].isupper():
            return True  # an initial: "A. P. J. Abdul Kalam"
        return False


def _after_words(text: str, count: int) -> int | None:
    """The index just past the whitespace that ends the `count`-th word, or None before that."""
    words = 0
    for match in re.finditer(r"\S+\s", text):
        words += 1
        if words == count:
            return match.end()
    return None


def sentence_pieces(text: str) -> list[str]:
    """Every sentence of a whole text, stripped, cut where the streaming chunker would cut it."""
    chunker = SentenceChunker(first_min_chars=1)
    return [piece.strip() for piece in (*chunker.push(text), *chunker.flush()) if piece.strip()]


def split_text(text: str, limit: int) -> list[str]:
    """Pieces of at most `limit` characters for a TTS request: whole sentences packed together,
    a sentence longer than the limit cut at spaces, and an unbroken run cut anywhere."""
    pieces: list[str] = []
    current = ""
    for sentence in sentence_pieces(text):
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
    return [piece for sentence in sentence_pieces(text) for piece in split_text(sentence, limit)]
