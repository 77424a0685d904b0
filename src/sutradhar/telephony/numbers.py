"""Phone numbers in E.164, the form every carrier's REST API takes: `+919876543210`."""

from __future__ import annotations

import re

E164 = re.compile(r"^\+[1-9]\d{7,14}$")  # a plus, a country code and the number: at most 15 digits
_SEPARATORS = re.compile(r"[\s().-]")  # what people type between digits


def e164(number: str) -> str:
    """The number in E.164 with separators removed; ValueError if it is not one."""
    compact = _SEPARATORS.sub("", number or "")
    if not E164.fullmatch(compact):
        raise ValueError(f"{number!r:.40} is not an E.164 number (+, country code, up to 15 digits)")
    return compact
