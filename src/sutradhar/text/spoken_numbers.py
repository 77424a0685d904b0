"""Numbers read out digit by digit, in any of our languages (slot filling for the offline path).

"4567", "4 5 6 7", "four five six seven", "चार पाँच छह सात", "నాలుగు ఐదు ఆరు ఏడు" and
"ચાર પાંચ છ સાત" all give "4567". Native digits (४५६७, ౪౫౬౭, ૪૫૬૭) count too. A run needs
at least `min_digits` digits, so "एक" (also "a") or "दो" (also "give") alone is not a number.
"""

from __future__ import annotations

import re
import unicodedata

DIGIT_WORDS: dict[str, str] = {
    word: str(value)
    for value, words in enumerate((
        ("zero", "oh", "शून्य", "ज़ीरो", "जीरो", "shunya", "zero", "సున్నా", "జీరో", "શૂન્ય", "ઝીરો"),
        ("one", "एक", "ek", "ఒకటి", "ఒక", "એક"),
        ("two", "दो", "రెండు", "બે"),  # not romanized "do": an English word
        ("three", "तीन", "teen", "మూడు", "ત્રણ"),
        ("four", "चार", "char", "chaar", "నాలుగు", "ચાર"),
        ("five", "पाँच", "पांच", "paanch", "panch", "ఐదు", "అయిదు", "પાંચ"),
        ("six", "छह", "छः", "छे", "chhah", "chhe", "ఆరు", "છ"),
        ("seven", "सात", "saat", "ఏడు", "સાત"),
        ("eight", "आठ", "aath", "ఎనిమిది", "આઠ"),
        ("nine", "नौ", "nau", "తొమ్మిది", "નવ"),
    ))
    for word in words
}
_TOKEN = re.compile(r"[^\s,.;:!?।॥\-–—]+")


def digits_of(token: str) -> str | None:
    """The digits a token stands for: "4567", "४५", "four"; None for any other word."""
    if all(unicodedata.category(ch) == "Nd" for ch in token):
        return "".join(str(unicodedata.digit(ch)) for ch in token)
    return DIGIT_WORDS.get(token.lower())


def spoken_number(text: str, min_digits: int = 3) -> str | None:
    """The longest run of digits read out in `text` (words and numerals may mix), or None."""
    best, run = "", ""
    for token in _TOKEN.findall(text):
        digits = digits_of(token)
        if digits is None:
            best, run = max(best, run, key=len), ""
            continue
        run += digits
    best = max(best, run, key=len)
    return best if len(best) >= min_digits else None
