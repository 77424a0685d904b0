"""Caller intents that are actions, not questions: end the call, talk to a human, repeat, switch
language. Recognised by phrases in English, Hindi (Devanagari and romanized), Telugu and Gujarati
before the LLM sees the turn, so they work even when the LLM is down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sutradhar.text.languages import LANGUAGES


@dataclass(frozen=True)
class Intent:
    kind: str  # "end_call" | "human" | "repeat" | "switch_language"
    language: str | None = None  # the target language, for switch_language
    matched: str = ""


END_CALL = (
    "bye", "goodbye", "good bye", "end the call", "end call", "hang up", "disconnect", "that's all",
    "that is all", "nothing else", "thank you bye",
    "अलविदा", "बाय", "कॉल काट", "कॉल बंद", "फ़ोन रख", "फोन रख", "बस इतना ही",
    "alvida", "call kaat", "call band", "phone rakh", "bas itna hi",
    "వీడ్కోలు", "బై", "కాల్ కట్", "కాల్ ముగించ", "ఫోన్ పెట్టేస్త", "ఇక చాలు",
    "આવજો", "બાય", "કૉલ કાપ", "કોલ કાપ", "કૉલ બંધ", "કોલ બંધ", "ફોન મૂક", "બસ આટલું",
)
HUMAN = (
    "human", "real person", "a person", "agent", "representative", "operator", "customer care",
    "someone real", "talk to someone",
    "इंसान", "किसी व्यक्ति", "एजेंट", "प्रतिनिधि", "ऑपरेटर", "असली आदमी",
    "insaan", "kisi vyakti", "kisi aadmi",
    "మనిషి", "ప్రతినిధి", "ఏజెంట్", "ఆపరేటర్", "వ్యక్తితో",
    "માણસ", "પ્રતિનિધિ", "એજન્ટ", "ઓપરેટર", "વ્યક્તિ સાથે",
)
REPEAT = (
    "repeat", "say that again", "say it again", "come again", "pardon", "once more", "one more time",
    "दोबारा बोल", "दोबारा कह", "फिर से बोल", "फिर से कह", "दोहरा", "दुबारा",
    "dobara bol", "dobara kah", "phir se bol", "phir se kah", "dohra",
    "మళ్ళీ చెప్ప", "మళ్లీ చెప్ప", "ఇంకోసారి చెప్ప", "మరోసారి చెప్ప",
    "ફરીથી કહ", "ફરી બોલ", "ફરીથી બોલ", "ફરી કહ",
)
# Words that ask for a change ("speak", "in", "switch") in each language.
SWITCH_CUES = (
    "speak", "talk", "switch", "change", "language", "in ", "reply",
    "में", "मे ", "बोल", "बात", "mein", "me baat", "bolo", "boliye",
    "లో", "మాట్లాడ", "మార్చ",
    "માં", "બોલ", "વાત",
)
# Names of each language as callers say them, in every language we serve.
LANGUAGE_NAMES: dict[str, tuple[str, ...]] = {
    "en-IN": ("english", "इंग्लिश", "अंग्रेज़ी", "अंग्रेजी", "angrezi", "ఇంగ్లీష్", "ఆంగ్ల", "અંગ્રેજી", "ઇંગ્લિશ"),
    "hi-IN": ("hindi", "हिंदी", "हिन्दी", "హిందీ", "હિન્દી", "હિંદી"),
    "te-IN": ("telugu", "तेलुगु", "తెలుగు", "તેલુગુ"),
    "gu-IN": ("gujarati", "गुजराती", "గుజరాతీ", "ગુજરાતી"),
}

_SPACE = re.compile(r"\s+")
# ASCII and Indic punctuation only: \w would also strip Indic vowel signs, which are marks.
_PUNCT = re.compile(r"[!-&(-/:-@\[-`{-~।॥…“”‘’]")
_CUES = tuple(cue.strip() for cue in SWITCH_CUES)


def _normalise(text: str) -> str:
    return " " + _SPACE.sub(" ", _PUNCT.sub(" ", text.lower())).strip() + " "


def _has(text: str, phrases: tuple[str, ...]) -> str | None:
    for phrase in phrases:
        # Latin phrases must match whole words ("agent" not in "agenda"); Indic ones match stems.
        if phrase.isascii():
            if f" {phrase} " in text:
                return phrase
        elif phrase in text:
            return phrase
    return None


def detect_intent(text: str, enabled_languages: tuple[str, ...] | None = None) -> Intent | None:
    """The action intent of a caller's turn, or None when it is for the LLM."""
    norm = _normalise(text)
    if not norm.strip():
        return None
    words = len(norm.split())
    enabled = enabled_languages or tuple(LANGUAGES)
    for code, names in LANGUAGE_NAMES.items():
        if code not in enabled:
            continue
        name = _has(norm, names)
        if name and (words <= 3 or (words <= 8 and _has(norm, _CUES))):
            return Intent("switch_language", code, name)
    # Short turns only: "can you repeat the order number from my bill" is a question for the LLM.
    if words <= 8:
        for kind, phrases in (("human", HUMAN), ("repeat", REPEAT), ("end_call", END_CALL)):
            matched = _has(norm, phrases)
            if matched:
                return Intent(kind, None, matched)
    return None
