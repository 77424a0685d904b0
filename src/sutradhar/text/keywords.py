"""Keyword spotting in a transcript, the same in every language: the scripted responder's intents,
a flow state's offline rules and the tool prefetch rules all match words this way."""

from __future__ import annotations

import re


def _is_latin(keyword: str) -> bool:
    return all(ord(ch) < 0x250 for ch in keyword)


def keyword_matches(keyword: str, text: str) -> bool:
    """Whole-word match for Latin keywords; substring for Indian scripts (suffixes attach)."""
    if _is_latin(keyword):
        return re.search(rf"(?<![\w']){re.escape(keyword)}(?![\w'])", text) is not None
    return keyword in text
