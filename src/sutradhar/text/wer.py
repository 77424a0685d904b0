"""Word error rate, after the normalisation that makes an STT's spelling choices not count as errors.

Both sides are lowercased, punctuation is dropped (apostrophes inside a word stay: "don't"), and
numbers become single digits whichever way they were written: "four five six seven", "4567",
"4,567" and "45 67" are all the words 4 5 6 7. Callers read order numbers digit by digit, and
Whisper writes them as words or numerals depending on the model and the prompt.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sutradhar.text.spoken_numbers import digits_of

_THOUSANDS = re.compile(r"(?<=\d)[,.](?=\d{3}\b)")  # 4,567 -> 4567 (not a decimal point)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")  # letters/digits, apostrophes inside a word


def normalize_words(text: str) -> list[str]:
    """The words of `text` as WER compares them: lowercase, no punctuation, digits one by one."""
    words: list[str] = []
    for token in _WORD.findall(_THOUSANDS.sub("", text.lower())):
        digits = digits_of(token)
        words.extend(digits if digits is not None else [token])
    return words


def word_errors(reference: str, hypothesis: str) -> int:
    """Substitutions + deletions + insertions turning the reference into the hypothesis."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        diagonal, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (r != h))
    return row[-1]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word errors over the reference's length (an empty reference counts each inserted word)."""
    return word_errors(reference, hypothesis) / max(1, len(normalize_words(reference)))


def corpus_word_error_rate(pairs: Iterable[tuple[str, str]]) -> float:
    """All errors over all reference words, so long sentences weigh more than short ones."""
    errors = words = 0
    for reference, hypothesis in pairs:
        errors += word_errors(reference, hypothesis)
        words += len(normalize_words(reference))
    return errors / max(1, words)
