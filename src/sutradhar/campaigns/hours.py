"""Calling hours: a daily window in each number's own time zone (default 09:00-21:00 Asia/Kolkata).

A window is local wall-clock time, so one campaign over India and the Gulf calls each number during
its own day. "00:00-24:00" is always open; a window may cross midnight ("20:00-02:00").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_WINDOW = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
DAY_MINUTES = 24 * 60


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; ValueError when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r:.64} (an IANA name like Asia/Kolkata)") from exc


@dataclass(frozen=True)
class CallingHours:
    start: int  # minutes after local midnight
    end: int  # minutes after local midnight, up to 1440; below `start`: the window crosses midnight

    @classmethod
    def parse(cls, text: str) -> CallingHours:
        match = _WINDOW.fullmatch(text.strip())
        if not match:
            raise ValueError(f"calling hours {text!r:.32} are not HH:MM-HH:MM (09:00-21:00)")
        start, end = int(match[1]) * 60 + int(match[2]), int(match[3]) * 60 + int(match[4])
        if start >= DAY_MINUTES or end > DAY_MINUTES or start == end:
            raise ValueError(f"calling hours {text!r} are not a window inside a day")
        return cls(start, end)

    def is_open(self, moment: datetime, tz: ZoneInfo) -> bool:
        local = moment.astimezone(tz)
        minute = local.hour * 60 + local.minute
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def next_open(self, moment: datetime, tz: ZoneInfo) -> datetime:
        """`moment` when the window is open then, else the (UTC) moment it next opens."""
        if self.is_open(moment, tz):
            return moment
        local = moment.astimezone(tz)
        opening = time(self.start // 60, self.start % 60)
        day = local.date()
        if local.hour * 60 + local.minute >= self.start:  # closed after the window: tomorrow
            day += timedelta(days=1)
        # Wall-clock time in the zone (a DST gap moves it forward by fold rules); back to UTC.
        return datetime.combine(day, opening, tzinfo=tz).astimezone(timezone.utc)


def campaign_problems(hours: str, tz: str) -> list[str]:
    """What is wrong with CAMPAIGN_CALLING_HOURS / CAMPAIGN_TIMEZONE (for Settings' check)."""
    problems = []
    for check, value, name in ((CallingHours.parse, hours, "CAMPAIGN_CALLING_HOURS"),
                               (zone, tz, "CAMPAIGN_TIMEZONE")):
        try:
            check(value)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    return problems
