"""The do-not-call list: the `do_not_call` table and CAMPAIGN_DNC_FILE, both E.164.

A number on either is never dialled by a campaign: checked when the campaign is created and again
just before each attempt (a number added mid-campaign is honoured). The file is one number per
line (`#` comments allowed), reread when it changes.
"""

from __future__ import annotations

from pathlib import Path

from loguru import logger

from sutradhar.telephony.numbers import e164

log = logger.bind(call_id="-", stage="campaign")


def read_numbers(text: str, source: str = "do-not-call list") -> set[str]:
    """The E.164 numbers of a one-per-line list; a line that is not a number is logged and skipped."""
    numbers = set()
    for n, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            numbers.add(e164(entry))
        except ValueError:
            log.warning("{} line {}: not an E.164 number, ignored", source, n)
    return numbers


class DncFile:
    """CAMPAIGN_DNC_FILE, cached until its modification time changes."""

    def __init__(self, path: str) -> None:
        self.path = Path(path) if path else None
        self._stamp: float | None = None
        self._numbers: frozenset[str] = frozenset()

    def numbers(self) -> frozenset[str]:
        if self.path is None:
            return frozenset()
        try:
            stamp = self.path.stat().st_mtime
        except OSError as exc:  # a missing list must not stop the check: it is logged on every read
            log.error("CAMPAIGN_DNC_FILE {} unreadable: {}", self.path, exc)
            return self._numbers
        if stamp != self._stamp:
            self._numbers = frozenset(read_numbers(self.path.read_text(encoding="utf-8"), str(self.path)))
            self._stamp = stamp
        return self._numbers
