"""The demo appointment backend: a small SQLite file under DATA_DIR, and `book_appointment` on it.

It ships with the appointment example agent (examples/appointment/) so the flow books something
real offline. Replace it with a webhook tool of the same name for a real clinic's calendar.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sutradhar.agents.demo_db import DemoDatabase
from sutradhar.agents.tools import Tool, ToolContext, tool

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
TIMES = ("10:00", "11:00", "12:00", "15:00", "16:00")
# Slots already booked when the demo starts: a caller can be told one is taken.
TAKEN = (("saturday", "10:00"), ("saturday", "11:00"))


class DemoAppointments(DemoDatabase):
    """The bookings table; created on first use. A (day, time) is booked at most once."""

    schema = ("CREATE TABLE IF NOT EXISTS bookings (reference INTEGER PRIMARY KEY AUTOINCREMENT, "
              "day TEXT NOT NULL, time TEXT NOT NULL, call_id TEXT, UNIQUE (day, time))")
    seed = "INSERT OR IGNORE INTO bookings (day, time, call_id) VALUES (?, ?, 'demo')"
    rows = TAKEN

    def _book(self, day: str, time: str, call_id: str) -> dict[str, Any]:
        db = self._connect()
        try:
            with db:
                cursor = db.execute("INSERT OR IGNORE INTO bookings (day, time, call_id) VALUES (?, ?, ?)",
                                    (day, time, call_id))
            if cursor.rowcount == 0:
                return {"booked": False, "status": "taken", "day": day, "time": time}
            return {"booked": True, "status": "booked", "day": day, "time": time,
                    "reference": f"A{1000 + int(cursor.lastrowid or 0)}"}
        finally:
            db.close()

    async def book(self, day: str, time: str, call_id: str) -> dict[str, Any]:
        # sqlite3 blocks; a thread keeps the event loop (and every other call) moving.
        return await asyncio.to_thread(self._book, day, time, call_id)


def _normalise_time(value: str) -> str | None:
    """"10", "10:00", "10 am", "3 pm", "15:00" -> "HH:00" of an opening hour; None otherwise."""
    text = value.strip().lower().replace(".", "")
    pm = text.endswith("pm")
    digits = text.removesuffix("am").removesuffix("pm").strip().split(":")[0]
    if not digits.isdigit():
        return None
    hour = int(digits) + (12 if pm and int(digits) < 12 else 0)
    if 1 <= hour <= 7:  # "at 3" on a phone line means the afternoon
        hour += 12
    slot = f"{hour:02d}:00"
    return slot if slot in TIMES else None


def book_appointment_tool(calendar: DemoAppointments) -> Tool:
    @tool(name="book_appointment", timeout_s=3.0, interruptible=False)  # a booking must not half-happen
    async def book_appointment(day: str, time: str, context: ToolContext) -> dict[str, Any]:
        """Book the appointment the caller confirmed. `day` is a weekday (monday to saturday),
        `time` an opening hour: 10:00, 11:00, 12:00, 15:00 or 16:00."""
        wanted_day, wanted_time = day.strip().lower(), _normalise_time(time)
        if wanted_day not in DAYS or wanted_time is None:
            return {"booked": False, "status": "closed", "day": day, "time": time,
                    "open": {"days": list(DAYS), "times": list(TIMES)}}
        return await calendar.book(wanted_day, wanted_time, context.call_id)

    return book_appointment
