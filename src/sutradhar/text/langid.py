"""Which language a piece of text is in: by script first, then a text identifier for Latin script.

Native scripts decide at once (Telugu and Gujarati scripts name their language; Devanagari is Hindi
among our languages). Latin text is English unless it is romanized Hindi ("Hinglish"), which no
identifier recognises, so a small word list catches the common cases. lingua, limited to the
enabled languages, breaks the remaining ties.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

from sutradhar.text.languages import LANGUAGES

# Unicode blocks of the scripts we care about.
_SCRIPT_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x0900, 0x097F, "Devanagari"),
    (0x0980, 0x09FF, "Bengali"),
    (0x0A00, 0x0A7F, "Gurmukhi"),
    (0x0A80, 0x0AFF, "Gujarati"),
    (0x0B00, 0x0B7F, "Oriya"),
    (0x0B80, 0x0BFF, "Tamil"),
    (0x0C00, 0x0C7F, "Telugu"),
    (0x0C80, 0x0CFF, "Kannada"),
    (0x0D00, 0x0D7F, "Malayalam"),
)

# Common romanized Hindi words that are not English words.
HINGLISH_WORDS = frozenset(
    """
    hai hain haan nahi nahin kya kyun kyon kaise kaisa kaisi kab kahan kaun kitna kitne kitni mujhe
    mera meri mere tum tumhara aap aapka aapki aapke hum hamara humein mein main ko se ka ki ke bhi
    aur ya lekin kyunki agar toh accha acha achha theek thik bahut bohot zyada kam abhi kal aaj
    chahiye chahte chahta chahti karo karna karein kariye kijiye bolo boliye batao bataiye suno
    samajh samjha samjhi raha rahi rahe tha thi the hoga hogi kuch sab yeh woh wo yahan wahan
    namaste dhanyavad dhanyawad shukriya bhai bhaiya ji haanji paisa paise rupaye kitne baje
    """.split()
)

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def script_of(char: str) -> str | None:
    code = ord(char)
    if char.isascii():
        return "Latin" if char.isalpha() else None
    for low, high, name in _SCRIPT_RANGES:
        if low <= code <= high:
            return name
    if char.isalpha() and code < 0x0250:
        return "Latin"
    return None


def dominant_script(text: str) -> str | None:
    """The script most letters of `text` are written in, or None for text with no letters."""
    counts = Counter(s for s in map(script_of, text) if s)
    return counts.most_common(1)[0][0] if counts else None


def hinglish_ratio(text: str) -> float:
    words = [w.lower() for w in _WORD.findall(text)]
    if not words:
        return 0.0
    return sum(w in HINGLISH_WORDS for w in words) / len(words)


@lru_cache(maxsize=8)
def _lingua_detector(codes: tuple[str, ...]):  # type: ignore[no-untyped-def]
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    isos = []
    for code in codes:
        try:
            isos.append(getattr(IsoCode639_1, code.split("-")[0].upper()))
        except AttributeError:
            continue
    if len(isos) < 2:
        return None
    return LanguageDetectorBuilder.from_iso_codes_639_1(*isos).build()


def detect_text_language(text: str, candidates: Iterable[str]) -> str | None:
    """The candidate language (BCP-47) `text` is most likely in, or None when it cannot tell."""
    candidates = tuple(candidates)
    script = dominant_script(text)
    if script is None:
        return None
    by_script = [c for c in candidates if c in LANGUAGES and LANGUAGES[c].script == script]
    if script != "Latin":
        return by_script[0] if len(by_script) == 1 else _lingua_pick(text, by_script or candidates)
    hindi = next((c for c in candidates if c.startswith("hi")), None)
    if hindi and hinglish_ratio(text) >= 0.3:
        return hindi
    english = next((c for c in candidates if c.startswith("en")), None)
    if english:
        return english
    return _lingua_pick(text, candidates)


def _lingua_pick(text: str, candidates: Iterable[str]) -> str | None:
    candidates = tuple(candidates)
    if len(candidates) == 1:
        return candidates[0]
    detector = _lingua_detector(tuple(sorted(candidates)))
    if detector is None:
        return None
    found = detector.detect_language_of(text)
    if found is None:
        return None
    iso = found.iso_code_639_1.name.lower()
    return next((c for c in candidates if c.split("-")[0] == iso), None)


def resolve_language(stt_language: str | None, text: str, candidates: Iterable[str]) -> str | None:
    """Decide a turn's language from the STT's claim and the transcript's text.

    The text's script outranks the STT: an engine that claims "en-IN" for Devanagari text is wrong.
    """
    candidates = tuple(candidates)
    script = dominant_script(text)
    if stt_language in candidates and (script is None or LANGUAGES[stt_language].script == script):
        return stt_language
    from_text = detect_text_language(text, candidates)
    if from_text is not None:
        return from_text
    return stt_language if stt_language in candidates else None
