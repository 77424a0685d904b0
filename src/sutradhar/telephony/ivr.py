"""The DTMF language menu every carrier plays the same way ("for English, press 1 ..."): its
lines, its attempts, and what a key press chooses. The carriers' webhooks only render it (Twilio
<Gather>, Plivo <GetInput>) and connect the stream in the chosen language."""

from __future__ import annotations

from dataclasses import dataclass

from sutradhar.config import Settings
from sutradhar.text.languages import LANGUAGES

MENU_ATTEMPTS = 2  # the menu plays at most twice, then the default language is used
MAX_DIGITS = 32  # the menu asks for one key; anything near this long is not a caller
MENU_TIMEOUT_S = 6  # to press a key, once the menu has been said


def menu_attempt(value: object) -> int:
    """`?attempt=` is ours (the menu's own action URL): 1 or 2. A value we cannot read counts as
    the first attempt instead of a 4xx: a carrier answers an error by telling the caller "an
    application error has occurred" and hanging up, while one more menu only costs seconds."""
    text = str(value).strip()
    if text.isascii() and text.isdigit() and len(text) <= 3:
        return min(max(int(text), 1), MENU_ATTEMPTS)
    return 1


@dataclass(frozen=True, slots=True)
class MenuLine:
    text: str
    language: str
    digit: int | None = None  # the key this line offers (None: the intro)


def menu_lines(settings: Settings, attempt: int) -> list[MenuLine]:
    """What the menu says, in order: the intro (first attempt only), then one line per key."""
    lines = []
    intro = LANGUAGES[settings.default_language].menu_intro
    if intro and attempt == 1:
        lines.append(MenuLine(intro, settings.default_language))
    lines += [MenuLine(LANGUAGES[code].menu_item.format(digit=digit), code, digit)
              for digit, code in enumerate(settings.languages, start=1)]
    return lines


def chosen_language(settings: Settings, digits: str | None, attempt: int) -> str | None:
    """The language the key chose; None when the menu should play again (no key or a wrong one,
    before the last attempt); the default language after the last."""
    digits = digits or ""
    choice = int(digits) if digits.isascii() and digits.isdigit() and len(digits) <= 3 else 0
    if 1 <= choice <= len(settings.languages):
        return settings.languages[choice - 1]
    if attempt < MENU_ATTEMPTS:
        return None
    return settings.default_language
